"""Deployment locks (held, expired, takeover, renewal) and audit events with parent ids."""

from datetime import timedelta

import pytest
from django.utils import timezone

from director import locks
from director.events import event_span, event_to_dict, record_event
from director.models import Event, Lock, Task, TaskState
from director.runner import TaskContext, create_task, run_task, task_handler

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]


def a_task(description="deploy zk"):
    return create_task("noop", description, "admin", deployment_name="zk")


def test_a_held_lock_is_refused_naming_the_holding_task():
    first, second = a_task(), a_task()
    locks.acquire(locks.deployment_lock_name("zk"), first)
    with pytest.raises(locks.LockHeld) as err:
        locks.acquire(locks.deployment_lock_name("zk"), second, timeout=0)
    assert str(err.value) == f"Deployment 'zk' is being changed by task {first.id}"
    assert err.value.task_id == first.id
    assert locks.holder_of("zk") == first.id


def test_other_deployments_are_not_blocked():
    locks.acquire(locks.deployment_lock_name("zk"), a_task())
    other = locks.acquire(locks.deployment_lock_name("cf"), a_task())
    assert other.name == "lock:deployment:cf"


def test_an_expired_lock_is_taken_over():
    dead, alive = a_task(), a_task()
    stale = locks.acquire(locks.deployment_lock_name("zk"), dead)
    Lock.objects.filter(id=stale.id).update(expired_at=timezone.now() - timedelta(seconds=1))

    taken = locks.acquire(locks.deployment_lock_name("zk"), alive)
    assert taken.task_id == alive.id and taken.uid != stale.uid
    # the dead holder can neither renew nor release what is no longer its lock
    assert locks.renew(stale) is False
    locks.release(stale)
    assert Lock.objects.get(name="lock:deployment:zk").uid == taken.uid


def test_renew_pushes_the_expiry_forward():
    held = locks.acquire(locks.deployment_lock_name("zk"), a_task())
    Lock.objects.filter(id=held.id).update(expired_at=timezone.now() + timedelta(seconds=5))
    assert locks.renew(held) is True
    assert Lock.objects.get(id=held.id).expired_at > timezone.now() + timedelta(seconds=60)


def test_context_manager_releases_even_on_error():
    with pytest.raises(RuntimeError), locks.deployment_lock("zk", a_task()):
        raise RuntimeError("boom")
    assert not Lock.objects.exists()
    actions = list(Event.objects.filter(object_type="lock").order_by("id").values_list("action"))
    assert actions == [("acquire",), ("release",)]


def test_lock_lost_asks_the_task_to_stop():
    task = a_task()
    Task.objects.filter(id=task.id).update(state=TaskState.PROCESSING)
    task.refresh_from_db()
    ctx = TaskContext(task)
    held = locks.acquire(locks.deployment_lock_name("zk"), ctx)
    assert [h.lock.uid for h in ctx.locks] == [held.uid]
    Lock.objects.filter(id=held.id).update(uid="someone-else")

    from director.runner import _Checkpointer

    _Checkpointer(ctx, 1).beat()
    assert Task.objects.get(id=task.id).state == TaskState.CANCELLING
    assert ctx.locks == []
    assert Event.objects.filter(object_type="lock", action="lost").exists()


@task_handler("test_holds_lock_and_fails")
def _holds_lock_and_fails(ctx):
    locks.acquire(locks.deployment_lock_name("zk"), ctx)
    raise RuntimeError("failed while holding the lock")


def test_a_failing_task_releases_its_locks():
    task = create_task("test_holds_lock_and_fails", "x", "admin")
    assert run_task(task.id) == TaskState.ERROR
    assert not Lock.objects.exists()


@task_handler("test_lock_conflict")
def _lock_conflict(ctx):
    with locks.deployment_lock("zk", ctx, timeout=0):
        return "got it"


def test_a_second_deploy_of_the_same_deployment_fails_naming_the_running_task():
    running = a_task()
    locks.acquire(locks.deployment_lock_name("zk"), running)
    second = create_task("test_lock_conflict", "deploy zk again", "admin", deployment_name="zk")
    assert run_task(second.id) == TaskState.ERROR
    second.refresh_from_db()
    assert second.result == f"Deployment 'zk' is being changed by task {running.id}"


def test_record_event_and_its_bosh_shape():
    task = a_task()
    event = record_event(
        "update",
        "cloud-config",
        "default",
        user="admin",
        task=task,
        context={"password": "hunter22", "azs": 3},
    )
    shaped = event_to_dict(event)
    assert shaped["id"] == str(event.id) and shaped["task"] == str(task.id)
    assert shaped["context"] == {"password": "((redacted))", "azs": 3}
    assert "error" not in shaped and "parent_id" not in shaped
    assert isinstance(shaped["timestamp"], int)


def test_event_span_links_the_end_event_to_the_start():
    with event_span("create", "deployment", "zk", user="admin", deployment="zk") as span:
        span.context["after"] = {"releases": ["zookeeper/0.0.10"]}
    start, end = Event.objects.order_by("id")
    assert end.parent_id == start.id and start.parent_id is None
    assert end.context == {"after": {"releases": ["zookeeper/0.0.10"]}}
    assert end.error == ""


def test_event_span_records_the_error_and_reraises():
    with (
        pytest.raises(ValueError, match="bad disk"),
        event_span("delete", "disk", "disk-1", deployment="zk"),
    ):
        raise ValueError("bad disk")
    start, end = Event.objects.order_by("id")
    assert end.parent_id == start.id and end.error == "bad disk"
    assert event_to_dict(end)["parent_id"] == str(start.id)
