"""Audit events (BOSH ``events``): who did what to which object, and how it ended.

Long actions record two events: a start, and an end whose ``parent`` is the
start (with ``error`` if it failed). One-off actions record one. ``task``,
``deployment`` and ``instance`` are names/ids rather than foreign keys: the
audit trail must survive the objects it talks about.
"""

from django.db import models


class Event(models.Model):
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children"
    )
    user = models.CharField(max_length=150, blank=True, default="")
    timestamp = models.DateTimeField(auto_now_add=True)
    #: create, update, delete, recreate, start, stop, orphan, acquire, release, lost...
    action = models.CharField(max_length=64)
    #: deployment, instance, vm, disk, stemcell, release, lock, cloud-config, config...
    object_type = models.CharField(max_length=64)
    object_name = models.CharField(max_length=500, blank=True, default="")
    error = models.TextField(blank=True, default="")
    task = models.BigIntegerField(null=True, blank=True, help_text="task id")
    deployment = models.CharField(max_length=255, blank=True, default="")
    instance = models.CharField(max_length=255, blank=True, default="", help_text="group/uuid")
    context = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["deployment", "-id"], name="event_deployment_idx"),
            models.Index(fields=["task", "-id"], name="event_task_idx"),
            models.Index(fields=["object_type", "action", "-id"], name="event_object_idx"),
        ]
        ordering = ["-id"]

    def __str__(self):
        return f"{self.action} {self.object_type} {self.object_name}"
