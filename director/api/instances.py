"""Instance routes of the director API: ``bosh logs`` and ``bosh start/stop/restart/recreate``.

``POST deployments/{name}/logs`` with ``{"instances": ["group/id", ...],
"type": "job" or "agent", "filters": [...]}``: 202 with the ``fetch_logs``
task; its result output holds ``{"blob": "<id>", "sha1"}``.
``GET resources/{blob}``: the logs bundle (a tgz) such a task produced.
Logs may hold what jobs print, secrets included: both need a role that may
see credentials (and fetching, a control role).

``POST deployments/{name}/instances/{group}/{id}/actions`` (or
``.../instances/{group}/actions`` for the whole group) with ``{"action":
"start" | "stop" | "restart" | "recreate", "hard": bool}``: 202 with the
``change_instance_state`` task.

``POST deployments/{name}/scans``: 202 with the cloud check's ``cck_scan``
task; ``GET deployments/{name}/problems``: its open problems with BOSH's
resolutions; ``PUT deployments/{name}/problems`` with ``{"resolutions":
{problem id: name}}`` or ``{"auto": true}``: 202 with the task applying them.
"""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers as drf
from rest_framework.exceptions import PermissionDenied

from director import instance_actions, logs
from director.health import cck
from opsconsole.apierrors import ApiError, Pagination
from opsconsole.auth import can_see_credentials

from .guard import api_view
from .views import JSON, _accepted, _user

LOGS_BODY = inline_serializer(
    name="FetchLogsRequest",
    fields={
        "instances": drf.ListField(
            child=drf.CharField(), required=False, help_text="group or group/id; default all"
        ),
        "type": drf.ChoiceField(choices=list(logs.LOG_TYPES), required=False, default="job"),
        "filters": drf.ListField(child=drf.CharField(), required=False, help_text="globs"),
    },
)
ACTION_BODY = inline_serializer(
    name="InstanceActionRequest",
    fields={
        "action": drf.ChoiceField(choices=list(instance_actions.ACTIONS)),
        "hard": drf.BooleanField(required=False, help_text="stop only: delete the VM too"),
    },
)


def _body(request) -> dict:
    data = request.data if request.data is not None else {}
    if not isinstance(data, dict):
        raise ApiError({"base": ["the body must be a JSON object"]})
    return data


def _may_read_logs(request) -> None:
    if not can_see_credentials(request.user):
        raise PermissionDenied("Logs may hold credentials: your role may not read them.")


@extend_schema(responses=JSON, request=LOGS_BODY)
@api_view(["POST"])
def deployment_logs(request, name):
    _may_read_logs(request)
    data = _body(request)
    task = logs.fetch_logs(
        name,
        _user(request),
        instances=data.get("instances"),
        log_type=data.get("type"),
        filters=data.get("filters"),
    )
    return _accepted(request, task)


@extend_schema(responses={(200, "application/gzip"): OpenApiTypes.BINARY})
@api_view(["GET"])
def resource(request, blob):
    _may_read_logs(request)
    stream, size = logs.open_bundle(blob)
    response = FileResponse(
        stream, as_attachment=True, filename=f"logs-{blob}.tgz", content_type="application/gzip"
    )
    response["Content-Length"] = str(size)
    return response


def _change_state(request, name, group, ident):
    data = _body(request)
    task = instance_actions.change_instance_state(
        name, group, ident, data.get("action"), _user(request), hard=data.get("hard", False)
    )
    return _accepted(request, task)


@extend_schema(responses=JSON, request=ACTION_BODY, operation_id="director_group_action")
@api_view(["POST"])
def group_action(request, name, group):
    """``bosh start|stop|restart|recreate GROUP``: every instance of the group."""
    return _change_state(request, name, group, None)


@extend_schema(responses=JSON, request=ACTION_BODY, operation_id="director_instance_action")
@api_view(["POST"])
def instance_action(request, name, group, ident):
    """``bosh start|stop|restart|recreate GROUP/ID``: one instance (index or uuid)."""
    return _change_state(request, name, group, ident)


@extend_schema(responses=JSON, request=None)
@api_view(["POST"])
def deployment_scans(request, name):
    """``bosh cck`` scan: 202 with the ``cck_scan`` task."""
    return _accepted(request, cck.scan_deployment(name, _user(request)))


RESOLVE_BODY = inline_serializer(
    name="ResolveProblemsRequest",
    fields={
        "resolutions": drf.DictField(child=drf.CharField(), required=False),
        "auto": drf.BooleanField(required=False, help_text="BOSH's automatic resolutions"),
    },
)


@extend_schema(responses=JSON, request=RESOLVE_BODY)
@api_view(["GET", "PUT"])
def deployment_problems(request, name):
    """GET: open problems with their resolutions; PUT: apply resolutions (202 + task)."""
    if request.method == "GET":
        paginator = Pagination()
        page = paginator.paginate_queryset(cck.open_problems(name), request, view=None)
        return paginator.get_paginated_response([cck.problem_dict(p) for p in page])
    data = _body(request)
    task = cck.resolve_problems(
        name, data.get("resolutions"), _user(request), auto=data.get("auto", False)
    )
    return _accepted(request, task)
