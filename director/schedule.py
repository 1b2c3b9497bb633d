"""Periodic director work for Celery beat: orphaned-VM and orphaned-disk cleanup.

BOSH's schedules: orphaned VMs every 5 minutes (``director.vms.cleanup_schedule``),
orphaned disks every 30 minutes. Each beat only queues a director task
(``director.cleanup``); the task does the work and shows in the task list.
Importing this module (``director.apps`` does, when Django is ready) merges
the entries into ``settings.CELERY_BEAT_SCHEDULE``.
"""

from django.conf import settings

BEAT_SCHEDULE: dict = {
    "director-orphaned-vm-cleanup": {
        "task": "director.cleanup.orphaned_vms",
        "schedule": 300.0,
    },
    "director-orphaned-disk-cleanup": {
        "task": "director.cleanup.orphaned_disks",
        "schedule": 1800.0,
    },
}


def install() -> None:
    for name, entry in BEAT_SCHEDULE.items():
        settings.CELERY_BEAT_SCHEDULE.setdefault(name, entry)


install()
