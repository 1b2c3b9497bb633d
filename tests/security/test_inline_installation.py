"""An installation runs its director tasks inline and sends none of them to the queue.

The installation's own Celery task is the only message: each step's director
task (configs, deploy, delete) is created with ``enqueue=False`` and run by
the installation's worker, so no second worker can pick it up and refuse it.
What the queue would receive is recorded at the ``delay`` boundary, after
the transactions commit for real.
"""

from __future__ import annotations

import pytest

from director import runner
from director import tasks as director_tasks
from director.models import Deployment, Task, TaskState
from director.services import deployments
from tiles import director_tile, services
from tiles import tasks as tiles_tasks
from tiles.services import installations

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(monkeypatch):
    """What would be sent to the workers: ``{"tasks": [...], "installations": [...]}``."""
    sent = {"tasks": [], "installations": []}
    monkeypatch.setattr(director_tasks.run_task, "delay", sent["tasks"].append)
    monkeypatch.setattr(tiles_tasks.run_installation, "delay", sent["installations"].append)
    return sent


def test_create_task_enqueue_false_stays_off_the_queue(queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        inline = runner.create_task("update_deployment", "x", "admin", enqueue=False)
        queued = runner.create_task("update_deployment", "y", "admin")
    assert queue["tasks"] == [queued.id]
    assert Task.objects.get(id=inline.id).state == TaskState.QUEUED  # for its creator to run


def test_deploy_and_delete_take_enqueue_keyword_only(queue, django_capture_on_commit_callbacks):
    manifest = (
        "name: dep-a\nreleases: []\nstemcells: []\ninstance_groups: []\n"
        "update: {canaries: 1, max_in_flight: 1, canary_watch_time: 1000,"
        " update_watch_time: 1000}\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        task = deployments.deploy(manifest, "admin", enqueue=False)
    assert queue["tasks"] == [] and task.deployment_name == "dep-a"
    with pytest.raises(TypeError):
        deployments.deploy(manifest, "admin", None, None, False, False, False, False)
    task.delete()
    Deployment.objects.create(name="dep-b")
    from director import services as director_services

    with django_capture_on_commit_callbacks(execute=True):
        task = director_services.delete_deployment("dep-b", "admin", enqueue=False)
    assert queue["tasks"] == [] and task.type == "delete_deployment"
    task.delete()
    with django_capture_on_commit_callbacks(execute=True):
        queued = director_services.delete_deployment("dep-b", "admin")
    assert queue["tasks"] == [queued.id]  # the default still queues


def test_an_installation_queues_only_itself(
    small, stemcell, small_release, queue, django_capture_on_commit_callbacks, monkeypatch
):
    # vcenter.example.com is no vCenter: its login check passes here, so the steps after it run.
    monkeypatch.setattr(director_tile, "test_vcenter_connection", lambda iaas=None: {})
    # A product deployed once, now unstaged, whose deployment the director knows: a delete step.
    sp = services.get_staged_product(small.guid)
    services._mark_deployed(sp, services.manifest_yaml(services.render_manifest(sp)))
    Deployment.objects.create(name=small.guid)
    services.unstage_product(small.guid)

    with django_capture_on_commit_callbacks(execute=True):
        inst = services.apply_changes("admin")
    assert queue["installations"] == [inst.id]
    with django_capture_on_commit_callbacks(execute=True):
        installations.run_installation(inst.id)

    steps = list(inst.steps.order_by("seq"))[1:]  # after the vCenter check (no task)
    assert [s.kind for s in steps] == ["configs", "delete"]
    ran = [Task.objects.get(id=s.task_id) for s in steps]
    assert [t.type for t in ran] == ["update_director_configs", "delete_deployment"]
    # Both ran here, to their end (the delete fails: vcenter.example.com is not a vCenter).
    assert [t.state for t in ran] == [TaskState.DONE, TaskState.ERROR]
    assert all(t.started_at and t.finished_at for t in ran)
    assert "Cannot connect to vCenter vcenter.example.com" in ran[1].result
    assert queue["tasks"] == []  # nothing for another worker to race for
    logs = services.installation_logs(inst.id)
    assert "Cannot connect to vCenter" in logs and "s3cret-vc-password" not in logs
