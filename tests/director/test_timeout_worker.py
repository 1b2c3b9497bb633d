"""A task whose worker is SIGKILLed ends ``timeout`` by itself: real workers, real beat.

Short intervals through the environment (a checkpoint every 1 s, so the limit
is 6 s; a timeout scan every 1 s) for three processes: a worker on a queue of
its own that runs a task holding a deployment lock and is killed mid-task
(the way ``execution/test_failures_vcsim`` kills its deploy worker),
``celery beat`` (``start_beat``), and a worker on the default queue that runs
beat's scans (``start_worker``, as the ``celery_worker`` fixture does; that
fixture's worker checkpoints every 30 s and must not be killed). The test
reads the rows straight from the database, never through the API or
``Task.effective_state``: nothing in this process records the timeout.
"""

import sys
import time
import uuid

import pytest
from django.conf import settings as django_settings

from director import runner, tasks
from director.locks import deployment_lock_name
from director.models import Event, Lock, Task, TaskEvent, TaskState
from opsconsole.localservices.celery import start_beat, start_worker
from opsconsole.localservices.process import ManagedProcess
from tests.conftest import _test_database_url

from .timeout_handlers import HOLDS_LOCK

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CHECKPOINT_INTERVAL = 1
SCAN_INTERVAL = 1
LIMIT = CHECKPOINT_INTERVAL * django_settings.TASK_TIMEOUT_FACTOR


def _env(**extra) -> dict:
    return {
        **extra,
        "DATABASE_URL": _test_database_url(),
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": django_settings.CELERY_RESULT_BACKEND,
        "OPSCONSOLE_DATA_DIR": str(django_settings.DATA_DIR),
        "OPSCONSOLE_ENCRYPTION_KEY": django_settings.ENCRYPTION_KEY,
        "SECRET_KEY": django_settings.SECRET_KEY,
        "DJANGO_SETTINGS_MODULE": "opsconsole.settings",
        "OPSCONSOLE_TASK_CHECKPOINT_INTERVAL": str(CHECKPOINT_INTERVAL),
        "OPSCONSOLE_TASK_TIMEOUT_SCAN_INTERVAL": str(SCAN_INTERVAL),
    }


def _doomed_worker(tmp_path, queue: str) -> ManagedProcess:
    """A worker consuming only ``queue``, with the lock-holding handler loaded."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "opsconsole",
        "worker",
        "--loglevel=INFO",
        "--concurrency=1",
        "--pool=prefork",
        "-n",
        f"{queue}@%h",
        "-Q",
        queue,
        "--include",
        "tests.director.timeout_handlers",
        "--without-gossip",
        "--without-mingle",
    ]
    return ManagedProcess(
        queue, argv, tmp_path / "doomed-worker.log", env=_env(), cwd=str(django_settings.BASE_DIR)
    )


def _state(task_id: int) -> str:
    return Task.objects.filter(id=task_id).values_list("state", flat=True).get()


def _wait(condition, timeout: float, what: str, *procs: ManagedProcess) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.tail()}" for p in procs)
            raise AssertionError(f"{what} within {timeout:.0f} s\n{logs}")
        time.sleep(0.1)


def test_a_task_whose_worker_is_killed_ends_timeout_without_being_read(tmp_path):
    if not django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        pytest.skip("needs the PostgreSQL test database shared with the worker processes")
    queue = f"doomed-{uuid.uuid4().hex[:6]}"
    deployment = f"zk-{queue}"
    doomed = _doomed_worker(tmp_path, queue)
    # The scans go to a queue only this test's scanner reads: the session's
    # celery_worker (checkpoints every 30 s) must not take them.
    scans = {"OPSCONSOLE_TASK_TIMEOUT_SCAN_QUEUE": f"scans-{queue}"}
    scanner = start_worker(
        _env(**scans),
        tmp_path / "scanner.log",
        concurrency=1,
        name=f"scanner-{queue}",
        cwd=str(django_settings.BASE_DIR),
        queues=[f"scans-{queue}"],
    )
    beat = start_beat(
        _env(**scans),
        tmp_path / "beat.log",
        tmp_path / "beat-schedule",
        cwd=str(django_settings.BASE_DIR),
    )
    procs = (doomed, scanner, beat)
    try:
        running = runner.create_task(
            HOLDS_LOCK, "hold a lock", "admin", deployment_name=deployment, enqueue=False
        )
        tasks.run_task.apply_async((running.id,), queue=queue)
        _wait(
            lambda: TaskEvent.objects.filter(task_id=running.id).exists(),
            90,
            "the doomed worker never started the task",
            *procs,
        )
        assert Lock.objects.get(name=deployment_lock_name(deployment)).task_id == running.id
        # Queued while a worker is busy, and its message is lost: no worker will start it.
        lost = runner.create_task("update_stemcell", "create stemcell", "admin", enqueue=False)
        _wait(
            lambda: b"director.expire_timed_out_tasks[" in scanner.log_path.read_bytes(),
            90,
            "beat's timeout scan never reached the scanner",
            *procs,
        )
        # Longer than the limit with scans every second: a live task is left alone,
        # and the lost task waits legitimately while a worker is busy.
        time.sleep(LIMIT + 2 * SCAN_INTERVAL)
        assert _state(running.id) == TaskState.PROCESSING
        assert _state(lost.id) == TaskState.QUEUED

        doomed.kill()
        doomed.proc.wait(10)
        killed_at = time.time()
        assert _state(running.id) == TaskState.PROCESSING

        _wait(
            lambda: _state(running.id) == _state(lost.id) == TaskState.TIMEOUT,
            LIMIT + SCAN_INTERVAL + 20,  # slack for a loaded machine; checked exactly below
            "the killed task and the lost one did not end timeout",
            *procs,
        )
        took = time.time() - killed_at
    finally:
        for proc in procs:
            proc.stop()

    for task_id in (running.id, lost.id):
        task = Task.objects.get(id=task_id)
        silent = (task.finished_at - task.checkpoint_time).total_seconds()
        # after the limit, and within the limit plus one scan (plus the scan's own latency)
        assert LIMIT < silent < LIMIT + SCAN_INTERVAL + 3, (task_id, silent, took)
    running = Task.objects.get(id=running.id)
    assert running.result == (
        f"task timed out: its worker stopped checkpointing (no checkpoint for {LIMIT} s)"
    )
    assert runner.read_output(running, "event").events[-1]["error"]["message"] == running.result
    assert running.result in runner.read_output(running, "debug").text
    assert not Lock.objects.filter(name=deployment_lock_name(deployment)).exists()
    assert Event.objects.filter(object_type="lock", action="release", task=running.id).exists()
    lost = Task.objects.get(id=lost.id)
    assert lost.started_at is None
    assert lost.result.startswith("task timed out: no worker started it")
