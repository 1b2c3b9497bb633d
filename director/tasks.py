"""Celery tasks of the director: thin wrappers that hand a task id to the runner.

The ``Task`` row is the source of truth; Celery only carries the id. With
``acks_late`` a message is acknowledged when the run ends, so a worker
killed mid-task has its message redelivered; ``run_task`` then finds the
row ``processing`` and refuses it (the dead run is reported as ``timeout``
once its checkpoint goes stale, and a new deploy converges).
``expire_timed_out_tasks`` is the beat job that records those timeouts
(``director.schedule``). Importing this module installs ``run_task`` as the
runner's way to queue a task (``runner.set_sender``): the runner sits below
Celery and does not import it.
"""

from celery import shared_task

from . import runner
from .health import monitor

#: Periodic director work for Celery beat (merged into CELERY_BEAT_SCHEDULE by
#: director.apps): orphaned-VM and orphaned-disk cleanup, health scans.
BEAT_SCHEDULE: dict = {}


@shared_task(name="director.run_task", acks_late=True, ignore_result=True)
def run_task(task_id: int) -> None:
    try:
        runner.run_task(task_id)
    except runner.TaskNotRunnable:
        pass  # logged by the runner; a redelivered message must not retry


@shared_task(name="director.expire_timed_out_tasks", ignore_result=True)
def expire_timed_out_tasks() -> None:
    runner.expire_timed_out_tasks()


@shared_task(name="director.health.scan", ignore_result=True)
def health_scan() -> None:
    monitor.scan()


def _send(task_id: int) -> None:
    run_task.delay(task_id)  # looked up at each call: tests replace ``run_task.delay``


runner.set_sender(_send)
