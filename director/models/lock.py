"""Locks (BOSH ``locks``): mutual exclusion between tasks, held in the database.

A lock is a row with a unique ``name`` (``lock:deployment:zookeeper``), a
random ``uid`` naming the holder, and ``expired_at``. The holder renews it
(the task's checkpoint thread does); a row past ``expired_at`` belongs to a
holder that died and may be taken over. See ``director.locks``.
"""

from django.db import models


class Lock(models.Model):
    name = models.CharField(max_length=255, unique=True)
    uid = models.CharField(max_length=64, unique=True)
    expired_at = models.DateTimeField()
    task = models.ForeignKey(
        "director.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="locks"
    )

    def __str__(self):
        return self.name
