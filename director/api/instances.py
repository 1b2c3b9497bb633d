"""Instance routes of the director API: ``bosh instances``, ``bosh logs``, ``bosh start/stop/...``.

``GET deployments/{name}/instances``: the instances; ``?format=full`` adds
what each VM's agent last reported (``bosh instances --ps --vitals``).

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
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers as drf
from rest_framework.decorators import content_negotiation_class
from rest_framework.exceptions import PermissionDenied
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from director import instance_actions, logs, services
from director.health import cck
from director.services.vms import agent_view, heartbeats_of
from opsconsole.apierrors import ApiError, Pagination
from opsconsole.auth import can_see_credentials

from . import serializers as s
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


#: ``?format=`` of the instances route: ``full`` adds the agent's view (``--ps --vitals``).
INSTANCE_FORMATS = ("full",)


class BoshFormatNegotiation(DefaultContentNegotiation):
    """Content negotiation that leaves ``?format=`` to the view (BOSH's ``format=full``).

    DRF reads ``?format=`` as a renderer override and answers 404 for a
    format no renderer has; on this route the name is BOSH's, so only the
    ``Accept`` header chooses the renderer.
    """

    settings = type("NoFormatOverride", (), {"URL_FORMAT_OVERRIDE": None})()


@extend_schema(
    responses=JSON,
    parameters=[
        OpenApiParameter(
            "format",
            str,
            required=False,
            enum=list(INSTANCE_FORMATS),
            description=(
                "full: each instance also has the agent's view from its last heartbeat: "
                "process_state, processes, vitals and last_heartbeat"
            ),
        )
    ],
)
@api_view(["GET"])
@content_negotiation_class(BoshFormatNegotiation)
def deployment_instances(request, name):
    """``bosh instances``; ``?format=full`` adds what each VM's agent last reported.

    ``process_state`` (running, failing, stopped, unresponsive agent; null
    without a VM), ``processes`` ([{name, state, uptime, cpu, mem}]),
    ``vitals`` (cpu, mem, swap, load, uptime, disk: the agent's strings; null
    before its first heartbeat) and ``last_heartbeat`` (ISO time or null).
    """
    shape = request.query_params.get("format")
    if shape is not None and shape not in INSTANCE_FORMATS:
        raise ApiError({"format": [f"must be one of: {', '.join(INSTANCE_FORMATS)}"]})
    instances = services.deployment_instances(name)
    if shape != "full":
        return Response([s.instance(i) for i in instances])
    heartbeats = heartbeats_of(i.active_vm for i in instances)
    rows = []
    for i in instances:
        vm = i.active_vm
        view = agent_view(vm, heartbeats.get(vm.agent_id) if vm else None)
        rows.append({**s.instance(i), **view.as_dict()})
    return Response(rows)


@extend_schema(responses=JSON)
@api_view(["GET"])
def deployment_vms(request, name):
    """``bosh vms``: each VM with vCenter's power state and BOSH's process state.

    If vCenter cannot be asked, ``power_state`` is null and the
    ``Warning`` header says why; the rows still come from the director.
    """
    services.get_deployment(name)
    report = services.deployment_vms(name)
    rows = report.deployments[0].rows if report.deployments else []
    shaped = []
    for row in rows:
        vm = s.vm_of(row.instance)
        if vm is not None:
            shaped.append(
                {**vm, "power_state": row.power_state, "process_state": row.process_state}
            )
    headers = (
        {"Warning": f'199 - "vCenter: {report.vcenter_error}"'} if report.vcenter_error else None
    )
    return Response(shaped, headers=headers)


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
