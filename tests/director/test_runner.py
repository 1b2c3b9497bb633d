"""Task lifecycle through the runner, on a real database."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from director import runner
from director.models import Task, TaskEvent, TaskState
from director.runner import TaskCancelled, create_task, run_task, task_handler

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]


@task_handler("test_two_steps")
def _two_steps(ctx):
    stage = ctx.stage("Doing things", tags=["zk"], total=2)
    with stage.track("first") as step:
        step.advance(50, status="halfway")
    ctx.debug("between the steps, password=sekrit-value")
    with stage.track("second"):
        pass
    ctx.write_result({"answer": 42})
    return "/deployments/zk"


@task_handler("test_fails")
def _fails(ctx):
    stage = ctx.stage("Updating instance", tags=["zk"], total=1)
    with stage.track("zk/abc (0)"):
        raise RuntimeError("zk/abc (0): VM creation failed: out of memory")


@task_handler("test_cancel_self")
def _cancel_self(ctx):
    runner.cancel_task(ctx.task_id)  # as if an operator cancelled meanwhile
    assert Task.objects.get(id=ctx.task_id).state == TaskState.CANCELLING
    ctx.checkpoint()
    raise AssertionError("checkpoint should have raised")


def events_of(task):
    return [e.data for e in TaskEvent.objects.filter(task=task).order_by("seq")]


def test_queued_processing_done_with_event_log():
    task = create_task("test_two_steps", "two steps", "admin", deployment_name="zk")
    assert task.state == TaskState.QUEUED and task.started_at is None

    assert run_task(task.id) == TaskState.DONE

    task.refresh_from_db()
    assert task.state == TaskState.DONE
    assert task.result == "/deployments/zk"
    assert task.started_at and task.finished_at and task.finished_at >= task.started_at
    events = events_of(task)
    assert [(e["task"], e["state"], e["progress"]) for e in events] == [
        ("first", "started", 0),
        ("first", "in_progress", 50),
        ("first", "finished", 100),
        ("second", "started", 0),
        ("second", "finished", 100),
    ]
    assert events[1]["data"] == {"status": "halfway"}
    assert {e["stage"] for e in events} == {"Doing things"}
    assert all(e["tags"] == ["zk"] and e["total"] == 2 for e in events)
    assert [e["index"] for e in events] == [1, 1, 1, 2, 2]
    assert all(isinstance(e["time"], int) for e in events)
    assert runner.read_output(task, "result").text == '{"answer": 42}\n'
    debug = runner.read_output(task, "debug").text
    assert "between the steps" in debug and "Starting task" in debug


def test_handler_exception_ends_in_error_with_message_and_error_event():
    task = create_task("test_fails", "failing", "admin")
    assert run_task(task.id) == TaskState.ERROR
    task.refresh_from_db()
    assert task.state == TaskState.ERROR
    assert task.result == "zk/abc (0): VM creation failed: out of memory"
    events = events_of(task)
    assert events[-2]["state"] == "failed"
    assert events[-2]["data"] == {"error": "zk/abc (0): VM creation failed: out of memory"}
    assert events[-1]["error"]["message"] == "zk/abc (0): VM creation failed: out of memory"
    assert "Traceback" in runner.read_output(task, "debug").text


def test_unknown_type_is_an_error_not_a_stuck_task():
    task = create_task("no_such_type", "mystery", "admin")
    assert run_task(task.id) == TaskState.ERROR
    task.refresh_from_db()
    assert "no handler for task type 'no_such_type'" in task.result


def test_a_task_not_queued_is_refused():
    task = create_task("test_two_steps", "x", "admin")
    run_task(task.id)
    with pytest.raises(runner.TaskNotRunnable, match="is done, not queued"):
        run_task(task.id)
    assert TaskEvent.objects.filter(task=task).count() == 5  # not run twice


def test_cancel_queued_ends_cancelled_at_once_and_never_runs():
    task = create_task("test_two_steps", "x", "admin")
    runner.cancel_task(task.id)
    task.refresh_from_db()
    assert task.state == TaskState.CANCELLED and task.finished_at
    with pytest.raises(runner.TaskNotRunnable):
        run_task(task.id)
    assert not TaskEvent.objects.filter(task=task).exists()


def test_cancel_processing_goes_through_cancelling_to_cancelled():
    task = create_task("test_cancel_self", "x", "admin")
    assert run_task(task.id) == TaskState.CANCELLED
    task.refresh_from_db()
    assert task.state == TaskState.CANCELLED and task.result == "task cancelled"


def test_cancel_a_finished_task_is_refused():
    task = create_task("test_two_steps", "x", "admin")
    run_task(task.id)
    with pytest.raises(runner.TaskNotCancellable, match="is done"):
        runner.cancel_task(task.id)


def test_stale_checkpoint_is_reported_and_recorded_as_timeout(settings):
    settings.TASK_CHECKPOINT_INTERVAL = 10  # timeout after 60 s
    fresh = create_task("test_two_steps", "fresh", "admin")
    stale = create_task("test_two_steps", "stale", "admin")
    long_ago = timezone.now() - timedelta(seconds=61)
    Task.objects.filter(id=stale.id).update(state=TaskState.PROCESSING, checkpoint_time=long_ago)
    Task.objects.filter(id=fresh.id).update(
        state=TaskState.PROCESSING, checkpoint_time=timezone.now() - timedelta(seconds=59)
    )
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.effective_state == TaskState.TIMEOUT
    assert fresh.effective_state == TaskState.PROCESSING

    assert runner.expire_timed_out_tasks() == [stale.id]
    stale.refresh_from_db()
    assert stale.state == TaskState.TIMEOUT and stale.finished_at


def test_event_output_is_read_incrementally_after_seq():
    task = create_task("test_two_steps", "x", "admin")
    run_task(task.id)
    first = runner.read_output(task, "event", after=0, limit=2)
    assert [e["seq"] for e in first.events] == [1, 2] and first.next == 2
    rest = runner.read_output(task, "event", after=first.next)
    assert [e["seq"] for e in rest.events] == [3, 4, 5] and rest.next == 5
    assert runner.read_output(task, "event", after=rest.next).events == []


def test_secrets_are_redacted_in_the_debug_log():
    from opsconsole.redaction import register_secret

    register_secret("sekrit-value")
    task = create_task("test_two_steps", "x", "admin")
    run_task(task.id)
    debug = runner.read_output(task, "debug").text
    assert "sekrit-value" not in debug and "((redacted))" in debug


@pytest.mark.django_db(transaction=True)
def test_cancel_from_another_thread_stops_the_task_at_its_next_checkpoint(settings):
    settings.TASK_CHECKPOINT_INTERVAL = 1
    started = threading.Event()

    @task_handler("test_loops")
    def _loops(ctx):
        started.set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ctx.checkpoint()
            time.sleep(0.05)
        return "never cancelled"

    # A row of our own: create_task would also queue it to the broker (on commit, at once here).
    task = Task.objects.create(type="test_loops", description="loops", username="admin")
    outcome = {}

    def work():
        try:
            outcome["state"] = run_task(task.id)
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    assert started.wait(10)
    time.sleep(1.5)  # let the checkpoint thread beat at least once
    beat = Task.objects.get(id=task.id).checkpoint_time
    runner.cancel_task(task.id)
    worker.join(20)
    task.refresh_from_db()
    assert outcome["state"] == TaskState.CANCELLED == task.state
    assert beat > task.started_at  # the checkpoint thread kept the task alive


def test_enqueue_on_commit_and_broker_failure_marks_error(
    django_capture_on_commit_callbacks, monkeypatch
):
    from director import tasks

    sent = []
    monkeypatch.setattr(tasks.run_task, "delay", lambda task_id: sent.append(task_id))
    with django_capture_on_commit_callbacks(execute=True):
        task = create_task("test_two_steps", "x", "admin")
        assert sent == []  # not before the commit
    assert sent == [task.id]

    def broken(task_id):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.run_task, "delay", broken)
    with django_capture_on_commit_callbacks(execute=True):
        task = create_task("test_two_steps", "x", "admin")
    task.refresh_from_db()
    assert task.state == TaskState.ERROR
    assert "could not queue the task" in task.result and "Connection refused" in task.result


def test_celery_task_runs_the_row_eagerly():
    from director import tasks

    task = create_task("test_two_steps", "x", "admin")
    tasks.run_task.apply(args=[task.id])
    task.refresh_from_db()
    assert task.state == TaskState.DONE
    tasks.run_task.apply(args=[task.id])  # a redelivery is refused quietly
    task.refresh_from_db()
    assert task.state == TaskState.DONE


def test_unused_cancelled_exception_is_importable():
    assert issubclass(TaskCancelled, Exception)
