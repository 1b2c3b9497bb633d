"""The task page as an operator watches it: times, durations, the end of a long log.

(The basics, stages, polling ``?after=`` and 286, are in ``test_views.py``.)
Here: event lines carry a wall-clock time (not a Unix timestamp) and
finished steps their elapsed time as the BOSH CLI prints them; the poll
that sees the task end removes the Cancel button and fills in when it
finished; and a task that ended with more lines than one read sends is read
to its end before polling stops.
"""

import re
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from director import runner, views
from director.models import Task, TaskEvent, TaskState
from director.runner import create_task

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def running_task() -> Task:
    task = create_task("test_view_deploy", "create deployment", "admin", deployment_name="zk")
    Task.objects.filter(id=task.id).update(state=TaskState.PROCESSING, started_at=timezone.now())
    return Task.objects.get(id=task.id)


def write(task: Task, entries: list[dict]) -> None:
    """Event lines with the times given (``EventLog`` would stamp them with now)."""
    last = TaskEvent.objects.filter(task=task).count()
    for i, e in enumerate(entries, start=last + 1):
        TaskEvent.objects.create(task=task, seq=i, data=e)


def finish(task: Task) -> None:
    Task.objects.filter(id=task.id).update(
        state=TaskState.DONE, result="/deployments/zk", finished_at=timezone.now()
    )


def step(state: str, when: float, index: int = 1, progress: int = 0) -> dict:
    return {
        "time": when,
        "stage": "Updating instance",
        "tags": ["zookeeper"],
        "task": f"zookeeper/u-{index} ({index - 1})",
        "index": index,
        "total": 2,
        "state": state,
        "progress": progress,
    }


def test_lines_show_the_clock_and_finished_steps_their_elapsed_time(admin_client):
    task = running_task()
    start = 1_795_311_021
    write(task, [step("started", start), step("finished", start + 65, progress=100)])
    write(task, [step("started", start + 65, index=2)])

    page = admin_client.get(f"/director/tasks/{task.id}/").content.decode()
    lines = re.search(r'<pre id="task-lines"[^>]*>(.*?)</pre>', page, re.S).group(1)
    clock = timezone.localtime(datetime.fromtimestamp(start, tz=UTC)).strftime("%H:%M:%S")
    assert lines.splitlines()[0].startswith(f"1 {clock} Updating instance zookeeper:")
    assert str(start) not in lines
    stages = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.split('id="task-stages"')[1]))
    assert "finished zookeeper/u-1 (0) (00:01:05)" in stages
    assert "started zookeeper/u-2 (1) 0%" in stages  # a running step has no elapsed time yet


def test_the_poll_that_sees_the_end_removes_cancel_and_says_when_it_finished(admin_client):
    task = running_task()
    write(task, [step("started", 1_795_311_021)])
    page = admin_client.get(f"/director/tasks/{task.id}/").content.decode()
    assert "Cancel task" in page
    assert re.search(r'<dd id="task-finished">\s*—\s*</dd>', page)

    running = admin_client.get(f"/director/tasks/{task.id}/?type=event&after=1", **HTMX)
    assert running.status_code == 200 and 'id="task-actions"' not in running.content.decode()

    write(task, [step("finished", 1_795_311_030, progress=100)])
    finish(task)
    end = admin_client.get(f"/director/tasks/{task.id}/?type=event&after=1", **HTMX)
    body = end.content.decode()
    assert end.status_code == views.HTMX_STOP_POLLING
    assert '<div id="task-actions" hx-swap-oob="true"></div>' in body
    finished = re.search(r'<dd id="task-finished" hx-swap-oob="true">(.*?)</dd>', body, re.S)
    assert finished and re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", finished.group(1))
    assert "took 00:00:0" in finished.group(1)
    assert "/deployments/zk" in body  # the result


def test_a_task_that_ended_with_more_lines_than_one_read_is_read_to_the_end(
    admin_client, monkeypatch
):
    monkeypatch.setattr(views, "EVENT_PAGE", 3)
    task = running_task()
    write(task, [step("started", 1_795_311_021 + i, index=i + 1) for i in range(7)])
    finish(task)

    # The page shows the first 3 lines and keeps polling though the task is done...
    page = admin_client.get(f"/director/tasks/{task.id}/").content.decode()
    assert f'hx-get="/director/tasks/{task.id}/?type=event&amp;after=3"' in page
    assert "Cancel task" not in page
    # ...with stages folded from every event, not just the lines sent.
    stages, lines = page.split('id="task-stages"')[1].split('id="task-lines"')
    assert "zookeeper/u-7 (6)" in stages and "zookeeper/u-4" not in lines

    seen = []
    after = 3
    for _ in range(5):
        response = admin_client.get(f"/director/tasks/{task.id}/?type=event&after={after}", **HTMX)
        body = response.content.decode()
        appended = re.search(r'beforeend:#task-lines">(.*?)</pre>', body, re.S)
        seen += [line.split()[0] for line in appended.group(1).splitlines() if line.strip()]
        after = int(re.search(r'data-after="(\d+)"', body).group(1))
        if response.status_code == views.HTMX_STOP_POLLING:
            break
        assert 'hx-trigger="every 1s"' in body
    assert response.status_code == views.HTMX_STOP_POLLING
    assert seen == ["4", "5", "6", "7"] and after == 7
    assert len(runner.read_output(task, "event").events) == 7


def test_a_debug_log_longer_than_one_read_is_read_to_the_end(admin_client):
    task = running_task()
    ctx = runner.TaskContext(task)
    for i in range(12_000):  # ~1.2 MiB: more than one read (1 MiB) returns
        ctx.debug(f"line {i:05d} " + "x" * 90)
    ctx.debug("the last line")
    finish(task)
    size = (runner.task_dir(task.id) / "debug").stat().st_size

    page = admin_client.get(f"/director/tasks/{task.id}/?type=debug").content.decode()
    after = int(re.search(r'<div id="task-poller" hx-get="[^"]*after=(\d+)"', page).group(1))
    assert 0 < after < size and "the last line" not in page
    rest = admin_client.get(f"/director/tasks/{task.id}/?type=debug&after={after}", **HTMX)
    assert rest.status_code == views.HTMX_STOP_POLLING
    assert "the last line" in rest.content.decode()
    assert f'data-after="{size}"' in rest.content.decode()
