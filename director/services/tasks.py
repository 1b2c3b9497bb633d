"""Director tasks as pages, the API and commands read them: list, get, cancel, output.

Reading a task records the tasks that timed out first (``runner.expire_timed_out_tasks``),
so a dead worker's task never reads ``processing``. ``done_task`` records a
task that needed no work (BOSH's "already exists" answer).
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from opsconsole.errors import Conflict, NotFound, ServiceError

from .. import runner, tasklog
from ..events import record_event
from ..models import Task, TaskEvent, TaskState
from ..uploads import discard_upload


def done_task(type: str, description: str, user: str, result: str) -> Task:
    """A task that needed no work (BOSH's "already exists" answer): recorded, not queued."""
    now = timezone.now()
    task = Task.objects.create(
        type=type,
        description=description,
        username=user,
        state=TaskState.DONE,
        result=result,
        started_at=now,
        finished_at=now,
        checkpoint_time=now,
    )
    TaskEvent.objects.create(
        task=task, seq=1, data={"time": int(now.timestamp()), "type": "warning", "message": result}
    )
    return task


def list_tasks(
    states: list[str] | None = None,
    deployment: str | None = None,
    type: str | None = None,
    context_id: str | None = None,
) -> QuerySet[Task]:
    """Tasks, newest first; tasks that timed out are recorded as ``timeout`` first."""
    runner.expire_timed_out_tasks()
    qs = Task.objects.defer("args", "result_output").order_by("-id")
    if states:
        unknown = [s for s in states if s not in TaskState.values]
        if unknown:
            raise ServiceError(
                {"state": [f"unknown state '{unknown[0]}' (one of {', '.join(TaskState.values)})"]}
            )
        qs = qs.filter(state__in=states)
    if deployment:
        qs = qs.filter(deployment_name=deployment)
    if type:
        qs = qs.filter(type=type)
    if context_id:
        qs = qs.filter(context_id=context_id)
    return qs


def get_task(task_id: int) -> Task:
    runner.expire_timed_out_tasks(Task.objects.filter(id=task_id))
    task = Task.objects.filter(id=task_id).first()
    if task is None:
        raise NotFound(f"Task {task_id} does not exist")
    return task


def cancel_task(task_id: int, user: str = "") -> Task:
    """Cooperative cancel (see ``runner.cancel_task``); 409 if the task already ended."""
    get_task(task_id)
    try:
        task = runner.cancel_task(task_id)
    except runner.TaskNotCancellable as exc:
        raise Conflict({"state": [str(exc)]}) from None
    record_event("cancel", "task", str(task_id), user=user, task=task_id)
    if task.state == TaskState.CANCELLED and task.type in ("update_stemcell", "update_release"):
        discard_upload(task.args.get("path"))  # never to be run: its upload is not needed
    return task


def task_output(task_id: int, type: str = "event", after: int = 0) -> tuple[Task, tasklog.Output]:
    task = get_task(task_id)
    if type not in tasklog.OUTPUT_TYPES:
        raise ServiceError({"type": [f"must be one of {', '.join(tasklog.OUTPUT_TYPES)}"]}, 400)
    try:
        after = int(after or 0)
    except (TypeError, ValueError):
        raise ServiceError({"after": ["must be a number"]}, 400) from None
    return task, tasklog.read_output(task, type, after)
