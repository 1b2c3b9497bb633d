"""A director task end to end: queued on commit, run by a real Celery worker over Redis."""

import time

import pytest

from director import runner, services, uploads
from director.models import ReleaseVersion, TaskState
from tests.director.builders import build_release

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def wait_terminal(task, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = services.get_task(task.id)
        if task.is_terminal:
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {task.id} still {task.state} after {timeout} s")


def test_release_upload_runs_on_a_real_worker(celery_worker, tmp_path):
    task = services.upload_release(build_release(tmp_path / "zk.tgz", version="0.0.42"), "admin")
    task = wait_terminal(task)
    assert task.state == TaskState.DONE, task.result
    assert ReleaseVersion.objects.filter(release__name="zookeeper", version="0.0.42").exists()
    stages = {e["stage"] for e in runner.read_output(task, "event").events}
    assert {"Creating new packages", "Creating new jobs"} <= stages
    assert "Starting task" in runner.read_output(task, "debug").text


def test_cancel_while_queued_is_never_run_by_the_worker(celery_worker, tmp_path):
    from django.db import transaction

    with transaction.atomic():  # cancelled before the commit sends it to the worker
        task = services.upload_release(
            build_release(tmp_path / "zk.tgz", version="0.0.43"), "admin"
        )
        services.cancel_task(task.id, "admin")
    time.sleep(1.5)
    task = services.get_task(task.id)
    assert task.state == TaskState.CANCELLED
    assert not ReleaseVersion.objects.filter(version="0.0.43").exists()
    assert not any(p.name in task.args["path"] for p in uploads.upload_dir().iterdir())
