"""Task timeouts: the scan that ends ``timeout`` the tasks whose worker is gone, on a real database.

One rule (``Task.timeout_reason``) decides; ``runner.expire_timed_out_tasks``
records it (Celery beat runs it, and so does every read of a task). Rows of
every state are set up with checkpoints around the limit (10 s x 6 = 60 s).
"""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from director import locks, runner, services
from director.models import Event, Lock, Task, TaskEvent, TaskState
from director.runner import TaskContext, _Checkpointer, create_task, run_task, task_handler

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]

LIMIT = 60


@pytest.fixture(autouse=True)
def limit(settings):
    settings.TASK_CHECKPOINT_INTERVAL = LIMIT // settings.TASK_TIMEOUT_FACTOR


def ago(seconds):
    return timezone.now() - timedelta(seconds=seconds)


def a_task(state, checkpoint_age=None, created_age=0, deployment="zk", description="t"):
    """A row as a worker (or none) left it: ``checkpoint_age`` seconds since its last checkpoint."""
    task = create_task("update_deployment", description, "admin", deployment_name=deployment)
    fields = {"state": state, "created_at": ago(created_age)}
    fields["checkpoint_time"] = None if checkpoint_age is None else ago(checkpoint_age)
    if state != TaskState.QUEUED:
        fields["started_at"] = ago(max(created_age, checkpoint_age or 0))
    if state in (TaskState.DONE, TaskState.ERROR, TaskState.CANCELLED, TaskState.TIMEOUT):
        fields.update(finished_at=ago(LIMIT * 2), result=f"ended {state}")
    Task.objects.filter(id=task.id).update(**fields)
    task.refresh_from_db()
    return task


def snapshot(task):
    row = Task.objects.filter(id=task.id).values()[0]
    return row, TaskEvent.objects.filter(task=task).count()


def test_a_stale_processing_task_ends_timeout_says_why_and_releases_its_locks():
    dead = a_task(TaskState.PROCESSING, checkpoint_age=LIMIT + 1, deployment="zk")
    held = locks.acquire(locks.deployment_lock_name("zk"), dead)
    alive = a_task(TaskState.PROCESSING, checkpoint_age=1, deployment="cf")
    other = locks.acquire(locks.deployment_lock_name("cf"), alive)

    assert runner.expire_timed_out_tasks() == [dead.id]

    dead.refresh_from_db()
    reason = "task timed out: its worker stopped checkpointing (no checkpoint for 60 s)"
    assert dead.state == TaskState.TIMEOUT and dead.result == reason
    assert abs((dead.finished_at - timezone.now()).total_seconds()) < 5
    assert runner.read_output(dead, "event").events[-1]["error"] == {
        "code": runner.ERROR_CODE_GENERIC,
        "message": reason,
    }
    assert f"Task {dead.id} {reason}" in runner.read_output(dead, "debug").text
    assert not Lock.objects.filter(uid=held.uid).exists()
    assert Lock.objects.filter(uid=other.uid).exists()  # a live task keeps its lock
    release = Event.objects.get(object_type="lock", action="release")
    assert (release.object_name, release.task, release.deployment) == (held.name, dead.id, "zk")
    # the next deploy of the deployment is not blocked by the dead one
    assert runner.changing_task("zk") is None


def test_a_stale_cancelling_task_ends_timeout():
    task = a_task(TaskState.CANCELLING, checkpoint_age=LIMIT + 1)
    assert runner.expire_timed_out_tasks() == [task.id]
    assert Task.objects.get(id=task.id).state == TaskState.TIMEOUT


def test_a_queued_task_no_worker_started_ends_timeout_counted_from_when_it_was_queued():
    lost = a_task(TaskState.QUEUED, checkpoint_age=LIMIT + 1, created_age=LIMIT + 1)
    legacy = a_task(TaskState.QUEUED, checkpoint_age=None, created_age=LIMIT + 1)
    waiting = a_task(TaskState.QUEUED, checkpoint_age=LIMIT - 2, created_age=LIMIT - 2)

    assert sorted(runner.expire_timed_out_tasks()) == sorted([lost.id, legacy.id])

    lost.refresh_from_db()
    assert lost.state == TaskState.TIMEOUT and lost.started_at is None
    assert lost.result == (
        "task timed out: no worker started it, and none was busy, for more than 60 s "
        "(is a Celery worker running?)"
    )
    assert runner.read_output(lost, "event").events[-1]["error"]["message"] == lost.result
    assert Task.objects.get(id=waiting.id).state == TaskState.QUEUED


def test_a_busy_worker_keeps_the_queue_behind_it_from_timing_out():
    running = a_task(TaskState.PROCESSING, checkpoint_age=LIMIT - 2)
    behind = a_task(TaskState.QUEUED, checkpoint_age=LIMIT - 2, created_age=LIMIT * 10)
    already_lost = a_task(TaskState.QUEUED, checkpoint_age=LIMIT + 1, created_age=LIMIT + 1)

    _Checkpointer(TaskContext(running), 1).beat()  # the worker of ``running`` checkpoints

    later = timezone.now() + timedelta(seconds=10)  # both would be stale by now without it
    assert runner.expire_timed_out_tasks(now=later) == [already_lost.id]  # not revived
    assert Task.objects.get(id=running.id).state == TaskState.PROCESSING
    assert Task.objects.get(id=behind.id).state == TaskState.QUEUED


def test_fresh_and_finished_tasks_are_left_alone():
    untouched = [
        a_task(TaskState.PROCESSING, checkpoint_age=LIMIT - 2),
        a_task(TaskState.CANCELLING, checkpoint_age=LIMIT - 2),
        a_task(TaskState.QUEUED, checkpoint_age=0),
        a_task(TaskState.QUEUED, checkpoint_age=None, created_age=LIMIT - 2),
        *[
            a_task(state, checkpoint_age=LIMIT * 10, created_age=LIMIT * 10)
            for state in (TaskState.DONE, TaskState.ERROR, TaskState.CANCELLED, TaskState.TIMEOUT)
        ],
    ]
    finished_lock = locks.acquire(locks.deployment_lock_name("zk"), untouched[4])
    before = [snapshot(t) for t in untouched]

    assert runner.expire_timed_out_tasks() == []

    assert [snapshot(t) for t in untouched] == before
    assert Lock.objects.filter(uid=finished_lock.uid).exists()  # only timeouts release locks


def test_a_checkpoint_landing_during_the_scan_wins(monkeypatch):
    task = a_task(TaskState.PROCESSING, checkpoint_age=LIMIT + 1)
    decide = Task.timeout_reason

    def checkpoint_meanwhile(self, now=None):
        reason = decide(self, now)
        Task.objects.filter(id=self.id).update(checkpoint_time=timezone.now())  # the worker
        return reason

    monkeypatch.setattr(Task, "timeout_reason", checkpoint_meanwhile)
    assert runner.expire_timed_out_tasks() == []
    assert Task.objects.get(id=task.id).state == TaskState.PROCESSING
    assert not TaskEvent.objects.filter(task=task).exists()


def test_a_timeout_is_recorded_once_however_often_it_is_scanned():
    task = a_task(TaskState.PROCESSING, checkpoint_age=LIMIT + 1)
    assert runner.expire_timed_out_tasks() == [task.id]
    finished = Task.objects.get(id=task.id).finished_at
    assert runner.expire_timed_out_tasks() == []
    services.get_task(task.id)
    services.list_tasks()
    assert Task.objects.get(id=task.id).finished_at == finished
    assert TaskEvent.objects.filter(task=task).count() == 1


@pytest.mark.parametrize(
    "state, checkpoint_age, created_age",
    [
        (TaskState.PROCESSING, LIMIT + 1, 0),
        (TaskState.PROCESSING, LIMIT - 2, 0),
        (TaskState.CANCELLING, LIMIT + 1, 0),
        (TaskState.QUEUED, LIMIT + 1, LIMIT + 1),
        (TaskState.QUEUED, None, LIMIT + 1),
        (TaskState.QUEUED, LIMIT - 2, LIMIT * 10),
        (TaskState.DONE, LIMIT + 1, LIMIT + 1),
    ],
)
def test_readers_and_the_scan_agree(state, checkpoint_age, created_age):
    """What a reader is shown before the scan ran is what the scan then records."""
    task = a_task(state, checkpoint_age, created_age)
    shown = task.effective_state
    assert runner.expire_timed_out_tasks() == ([task.id] if shown == TaskState.TIMEOUT else [])
    assert Task.objects.get(id=task.id).state == shown


def test_reading_a_task_records_its_timeout():
    task = a_task(TaskState.PROCESSING, checkpoint_age=LIMIT + 1)
    assert services.get_task(task.id).state == TaskState.TIMEOUT
    assert TaskEvent.objects.filter(task=task).count() == 1


@task_handler("test_outlived_by_its_timeout")
def _outlived(ctx):
    # the worker went silent for longer than the limit, and a scan ended the task meanwhile
    Task.objects.filter(id=ctx.task_id).update(checkpoint_time=ago(LIMIT + 1))
    assert runner.expire_timed_out_tasks() == [ctx.task_id]
    return "finished late"


def test_a_worker_that_comes_back_does_not_overwrite_the_timeout():
    task = create_task("test_outlived_by_its_timeout", "x", "admin")
    assert run_task(task.id) == TaskState.TIMEOUT
    task.refresh_from_db()
    assert task.state == TaskState.TIMEOUT and task.result.startswith("task timed out")


def _beat_entry(interval):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "opsconsole.settings"}
    env["OPSCONSOLE_TASK_TIMEOUT_SCAN_INTERVAL"] = interval
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CELERY_BEAT_SCHEDULE['director-task-timeouts'])"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=str(django_settings.BASE_DIR),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_scan_is_on_beat_every_configured_interval():
    entry = _beat_entry("7").stdout.strip()
    assert entry == (
        "{'task': 'director.expire_timed_out_tasks', 'schedule': 7.0, 'options': {'expires': 14.0}}"
    )
    bad = _beat_entry("soon")
    assert bad.returncode != 0
    assert (
        "OPSCONSOLE_TASK_TIMEOUT_SCAN_INTERVAL: must be a positive number of seconds, not 'soon'"
        in bad.stderr
    )
    assert _beat_entry("0").returncode != 0
