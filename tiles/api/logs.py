"""A deployed product's log downloads through Ops Manager's paths (the Logs tab's API).

``POST /deployed/products/{guid}/jobs/{job_guid}/logs`` starts the
director's ``fetch_logs`` task for every instance of that job (instance
group): 202 with ``{"id": "<task id>"}`` and the director task's URL in
``Location``. ``GET .../jobs/{job_guid}/logs`` lists that job's log
downloads, newest first: ``{"tasks": [{"guid", "status", "timestamp"}]}``
with Ops Manager's ``status`` words (``downloading``, ``downloaded``,
``failed``). ``GET .../jobs/{job_guid}/logs/{task guid}`` is the bundle:
a tgz (Ops Manager serves a zip; BOSH's ``bosh logs`` makes a tgz).

Logs may hold what jobs print, secrets included: every route needs a role
that may see credentials (403 else), and starting one a control role.
The job guid is the one ``GET /staged/products/{guid}/jobs`` gives, or the
job's name. A product never deployed is 404.
"""

from __future__ import annotations

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from director import logs as director_logs
from director.api.guard import api_view
from director.models import Instance, Task, TaskState
from director.services import tasks as director_tasks
from opsconsole.apierrors import ApiError
from opsconsole.auth import can_see_credentials
from opsconsole.errors import NotFound
from tiles import services

JSON = OpenApiTypes.OBJECT
#: The log downloads a listing shows at most.
LISTED = 50
_STATUS = {TaskState.DONE: "downloaded"}


def _may_read_logs(request) -> None:
    if not can_see_credentials(request.user):
        raise ApiError({"logs": ["Logs may hold credentials: your role may not read them."]}, 403)


def _job(guid: str, job_guid: str) -> tuple[str, str]:
    """``(deployment, instance group)`` of a deployed product's job; 404 naming what is not."""
    staged = services.get_staged_product(guid)
    if not staged.is_deployed:
        raise NotFound({"guid": [f"no deployed product with guid '{guid}'"]})
    return staged.guid, services.job_name_for_guid(staged, job_guid)


def _job_tasks(deployment: str, group: str) -> list[Task]:
    """This job's log downloads: the ``fetch_logs`` tasks of the deployment that fetched
    only instances of the group (a whole-tile download belongs to no one job)."""
    tasks = list(
        director_tasks.list_tasks(deployment=deployment, type=director_logs.TASK_TYPE).defer(
            "result_output"
        )[: LISTED * 4]
    )
    uuids = {u for t in tasks for u in (t.args or {}).get("instances") or []}
    groups = dict(
        Instance.objects.filter(deployment__name=deployment, uuid__in=uuids).values_list(
            "uuid", "group"
        )
    )
    mine = [
        t
        for t in tasks
        if (t.args or {}).get("instances")
        and {groups.get(u) for u in t.args["instances"]} == {group}
    ]
    return mine[:LISTED]


def _task_json(task: Task) -> dict:
    state = task.effective_state
    word = _STATUS.get(state) or ("downloading" if not task.is_terminal else "failed")
    when = task.finished_at or task.created_at
    return {
        "guid": str(task.id),
        "status": word,
        "timestamp": when.isoformat() if when else None,
    }


@extend_schema(request=None, responses=JSON)
@extend_schema(methods=["GET"], operation_id="deployed_products_jobs_logs_list")
@api_view(["GET", "POST"])
def job_logs(request, guid, job_guid):
    """``POST``: fetch the job's logs (202, ``{"id"}``); ``GET``: its log downloads."""
    _may_read_logs(request)
    deployment, group = _job(guid, job_guid)
    if request.method == "POST":
        task = director_logs.fetch_logs(deployment, request.user.get_username(), [group])
        location = request.build_absolute_uri(reverse("director-task", args=[task.id]))
        return Response(
            {"id": str(task.id)}, status=status.HTTP_202_ACCEPTED, headers={"Location": location}
        )
    return Response({"tasks": [_task_json(t) for t in _job_tasks(deployment, group)]})


@extend_schema(request=None, responses={(200, "application/gzip"): OpenApiTypes.BINARY})
@api_view(["GET"])
def job_logs_bundle(request, guid, job_guid, task_guid):
    """The tgz one of the job's log downloads produced (404 while it is not ready)."""
    _may_read_logs(request)
    deployment, group = _job(guid, job_guid)
    task = next((t for t in _job_tasks(deployment, group) if str(t.id) == task_guid), None)
    if task is None:
        raise NotFound({"task_guid": [f"no log download {task_guid} of job '{group}'"]})
    task = Task.objects.get(id=task.id)  # with its result output
    blob = director_logs.bundle_of(task) if task.state == TaskState.DONE else None
    if blob is None:
        raise NotFound({"task_guid": [f"log download {task_guid} is {_task_json(task)['status']}"]})
    stream, size = director_logs.open_bundle(blob)
    response = FileResponse(
        stream,
        as_attachment=True,
        filename=f"{deployment}-{group}-logs-{task.id}.tgz",
        content_type="application/gzip",
    )
    response["Content-Length"] = str(size)
    return response
