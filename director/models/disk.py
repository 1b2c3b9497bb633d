"""Persistent disks and orphaned disks (BOSH ``persistent_disks``, ``orphan_disks``).

A persistent disk belongs to an instance and survives its VMs. ``active`` is
False for a disk being migrated to (copy migration) until the switch; only
the disk named ``''`` is the managed disk of the instance group's
``persistent_disk``/``persistent_disk_type``. A disk no longer wanted is
orphaned (kept ``max_orphaned_age`` days, then deleted) rather than deleted
at once, so data survives a mistaken scale-down.
"""

from django.db import models

from .instance import Instance


class PersistentDisk(models.Model):
    """An IaaS disk (``disk_cid``) attached to an instance; ``size`` in MiB."""

    instance = models.ForeignKey(
        Instance, on_delete=models.CASCADE, related_name="persistent_disks"
    )
    disk_cid = models.CharField(max_length=255, unique=True)
    size = models.PositiveIntegerField(help_text="MiB")
    active = models.BooleanField(default=False)
    cloud_properties = models.JSONField(default=dict, blank=True)
    name = models.CharField(max_length=255, blank=True, default="")
    cpi = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.disk_cid


class OrphanDisk(models.Model):
    """A disk detached from its instance and kept for a while (``bosh disks --orphaned``)."""

    disk_cid = models.CharField(max_length=255, unique=True)
    size = models.PositiveIntegerField(help_text="MiB")
    az = models.CharField(max_length=255, blank=True, default="")
    cpi = models.CharField(max_length=100, blank=True, default="")
    deployment_name = models.CharField(max_length=255)
    instance_name = models.CharField(max_length=255)
    cloud_properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.disk_cid} (was {self.deployment_name}/{self.instance_name})"
