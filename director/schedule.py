"""Periodic director work for Celery beat: orphan cleanup and task timeouts.

BOSH's schedules: orphaned VMs every 5 minutes (``director.vms.cleanup_schedule``),
orphaned disks every 30 minutes. Each of those beats only queues a director
task (``director.cleanup``); the task does the work and shows in the task list.
Task timeouts are scanned every ``TASK_TIMEOUT_SCAN_INTERVAL`` seconds
(``OPSCONSOLE_TASK_TIMEOUT_SCAN_INTERVAL``): a quick database pass, run as a
plain Celery job rather than a task row, and dropped when it waited longer
than two intervals (a newer scan is queued behind it: no backlog piles up
while no worker runs); ``OPSCONSOLE_TASK_TIMEOUT_SCAN_QUEUE`` sends it to a
queue of its own.
The health monitor scans every ``HM_SCAN_INTERVAL`` seconds
(``OPSCONSOLE_HM_SCAN_INTERVAL``, default 10; ``director.health.monitor``),
dropped like the timeout scan when it waited longer than two intervals.
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
    "director-health-scan": {
        "task": "director.health.scan",
        "schedule": settings.HM_SCAN_INTERVAL,
        "options": {"expires": 2 * settings.HM_SCAN_INTERVAL},
    },
    "director-task-timeouts": {
        "task": "director.expire_timed_out_tasks",
        "schedule": settings.TASK_TIMEOUT_SCAN_INTERVAL,
        "options": {
            "expires": 2 * settings.TASK_TIMEOUT_SCAN_INTERVAL,
            **(
                {"queue": settings.TASK_TIMEOUT_SCAN_QUEUE}
                if settings.TASK_TIMEOUT_SCAN_QUEUE
                else {}
            ),
        },
    },
}


def install() -> None:
    for name, entry in BEAT_SCHEDULE.items():
        settings.CELERY_BEAT_SCHEDULE.setdefault(name, entry)


install()
