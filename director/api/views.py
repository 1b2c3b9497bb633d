"""Director API views (BOSH nouns under /api/v0/director/), thin over director.services.

Reads are open to every role; changes need a control role
(``opsconsole.auth.RolePermission``); debug and CPI logs need a role that
may see credentials. Long actions answer 202 with the task and its URL in
``Location``. Every error is ``{"errors": {field or path: [messages]}}``.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers as drf
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from director import services
from opsconsole import __version__
from opsconsole.apierrors import ApiError, Pagination
from opsconsole.auth import can_see_credentials

from . import serializers as s
from .guard import api_view

JSON = OpenApiTypes.OBJECT


def _upload_body(field: str):
    return {
        "multipart/form-data": inline_serializer(
            name=f"{field.capitalize()}Upload", fields={f"{field}[file]": drf.FileField()}
        )
    }


def _params(*names: str) -> list:
    return [OpenApiParameter(n, str, required=False) for n in names]


CONFIG_BODY = inline_serializer(
    name="ConfigUpdate",
    fields={
        "type": drf.CharField(help_text="cloud, runtime, cpi, resurrection or any other type"),
        "name": drf.CharField(required=False, default="default"),
        "content": drf.CharField(help_text="YAML text"),
    },
)
DEPLOY_BODY = inline_serializer(
    name="DeployRequest",
    fields={
        "manifest": drf.CharField(help_text="BOSH v2 manifest (YAML text)"),
        "ops": drf.ListField(child=drf.JSONField(), required=False),
        "vars": drf.DictField(required=False),
        "dry_run": drf.BooleanField(required=False),
        "recreate": drf.BooleanField(required=False),
        "fix": drf.BooleanField(required=False),
    },
)


def _user(request) -> str:
    return request.user.get_username()


def _paginated(request, queryset, shape, view):
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response([shape(o) for o in page])


def _accepted(request, task) -> Response:
    """202 with the task and its URL; 200 when the task needed no work (already done)."""
    url = request.build_absolute_uri(reverse("director-task", args=[task.id]))
    code = status.HTTP_200_OK if task.is_terminal else status.HTTP_202_ACCEPTED
    return Response(s.task(task), status=code, headers={"Location": url})


def _uploaded_file(request, field: str):
    upload = request.FILES.get(f"{field}[file]") or request.FILES.get("file")
    if upload is None:
        raise ApiError({f"{field}[file]": ["a tarball is required (multipart form field)"]})
    return upload


def _bool(value) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def _flag(params: Mapping, name: str) -> bool:
    """A deploy flag (``?fix=true`` or ``{"fix": true}``); anything but a yes/no is a 400."""
    value = params.get(name, False)
    text = str(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ApiError({name: [f"must be true or false, got {value!r}"]})


@extend_schema(responses=JSON)
@api_view(["GET"])
def info(request):
    return Response(
        {
            "name": settings.DIRECTOR_NAME,
            "uuid": _director_uuid(),
            "version": __version__,
            "user": _user(request),
            "cpi": "vsphere_cpi",
            "stemcell_os": None,
            "features": {
                "config_server": {"status": True, "extras": {"urls": []}},
                "snapshots": {"status": False},
                "local_dns": {"status": False},
                "resurrection": {"status": services.resurrection_enabled()},
            },
        }
    )


def _director_uuid() -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{settings.DIRECTOR_NAME}.opsconsole"))


# --------------------------------------------------------------------------- stemcells


#: The multipart stemcell upload body, shared with the console's POST /api/v0/stemcells.
STEMCELL_UPLOAD = _upload_body("stemcell")


@extend_schema(responses=JSON, request=STEMCELL_UPLOAD)
@extend_schema(methods=["GET"], operation_id="director_stemcells_list")
@api_view(["GET", "POST"])
def stemcells(request):
    if request.method == "POST":
        return _accepted(
            request, services.upload_stemcell(_uploaded_file(request, "stemcell"), _user(request))
        )
    return _paginated(request, services.list_stemcells(), s.stemcell, stemcells)


@extend_schema(responses=JSON, parameters=_params("force"))
@api_view(["DELETE"])
def stemcell(request, name, version):
    force = _bool(request.query_params.get("force"))
    return _accepted(request, services.delete_stemcell(name, version, _user(request), force))


# --------------------------------------------------------------------------- releases


@extend_schema(responses=JSON, request=_upload_body("release"))
@api_view(["GET", "POST"])
def releases(request):
    if request.method == "POST":
        upload = _uploaded_file(request, "release")
        return _accepted(request, services.upload_release(upload, _user(request)))
    return _paginated(request, services.list_releases(), s.release, releases)


# --------------------------------------------------------------------------- configs


def _config_shape(request):
    """The config shape for this caller: secrets in content only for roles that may see them."""
    return functools.partial(s.config, reveal=can_see_credentials(request.user))


@extend_schema(responses=JSON, request=CONFIG_BODY, parameters=_params("type", "name", "latest"))
@api_view(["GET", "POST", "DELETE"])
def configs(request):
    if request.method == "POST":
        data = request.data
        if not isinstance(data, Mapping):
            raise ApiError({"body": ["must be a JSON object with type, name and content"]})
        missing = {k: ["is required"] for k in ("type", "content") if not data.get(k)}
        if missing:
            raise ApiError(missing)
        wrong = {
            k: ["must be a string (content: YAML text)"]
            for k in ("type", "name", "content")
            if data.get(k) is not None and not isinstance(data[k], str)
        }
        if wrong:
            raise ApiError(wrong)
        result = services.update_config(
            data["type"], data.get("name") or "default", data["content"], _user(request)
        )
        body = _config_shape(request)(result.config)
        if not result.changed:
            return Response({**body, "message": "unchanged"}, status=status.HTTP_200_OK)
        return Response(body, status=status.HTTP_201_CREATED)
    params = request.query_params
    if request.method == "DELETE":
        missing = {k: ["is required"] for k in ("type", "name") if not params.get(k)}
        if missing:
            raise ApiError(missing)
        services.delete_config(params["type"], params["name"], _user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
    latest = _bool(params.get("latest", "true"))
    qs = services.list_configs(params.get("type"), params.get("name"), latest=latest)
    return _paginated(request, qs, _config_shape(request), configs)


@extend_schema(responses=JSON, operation_id="director_config_retrieve")
@api_view(["GET"])
def config(request, config_id):
    return Response(_config_shape(request)(services.get_config(config_id)))


# --------------------------------------------------------------------------- deployments


def _deploy_arguments(request) -> dict:
    """A deploy body: raw YAML (text/yaml) or JSON ``{manifest, ops, vars, dry_run, recreate}``."""
    if request.content_type and "yaml" in request.content_type:
        return {"manifest_text": request.body.decode("utf-8", "replace")}
    data = request.data
    if not isinstance(data, dict) or not data.get("manifest"):
        raise ApiError({"manifest": ["is required (YAML text)"]})
    ops = data.get("ops")
    vars_ = data.get("vars")
    if ops is not None and not isinstance(ops, list):
        raise ApiError({"ops": ["must be a list of ops files (each a list of operations)"]})
    if vars_ is not None and not isinstance(vars_, dict):
        raise ApiError({"vars": ["must be a map of variable name to value"]})
    return {"manifest_text": data["manifest"], "ops": ops, "vars": vars_}


@extend_schema(responses=JSON, request=DEPLOY_BODY)
@extend_schema(methods=["GET"], operation_id="director_deployments_list")
@api_view(["GET", "POST"])
def deployments(request):
    if request.method == "POST":
        args = _deploy_arguments(request)
        params = {
            **request.query_params.dict(),
            **(request.data if isinstance(request.data, dict) else {}),
        }
        task = services.deploy(
            user=_user(request),
            recreate=_flag(params, "recreate"),
            dry_run=_flag(params, "dry_run"),
            # BOSH ?fix=true: also recreate instances whose VM is missing or agent silent
            fix=_flag(params, "fix"),
            **args,
        )
        return _accepted(request, task)
    return _paginated(request, services.list_deployments(), s.deployment, deployments)


@extend_schema(responses=JSON, parameters=_params("force"))
@api_view(["GET", "DELETE"])
def deployment(request, name):
    if request.method == "DELETE":
        force = _bool(request.query_params.get("force"))
        return _accepted(request, services.delete_deployment(name, _user(request), force))
    reveal = can_see_credentials(request.user)
    return Response(s.deployment(services.get_deployment(name), manifest=True, reveal=reveal))


@extend_schema(responses=JSON, request=DEPLOY_BODY)
@api_view(["POST"])
def deployment_plan(request, name):
    args = _deploy_arguments(request)
    plan = services.plan(name, args["manifest_text"], args.get("ops"), args.get("vars"))
    return Response(plan)


# --------------------------------------------------------------------------- resurrection


@extend_schema(
    responses=JSON,
    request=inline_serializer(
        name="Resurrection", fields={"resurrection_paused": drf.BooleanField()}
    ),
)
@api_view(["GET", "PUT"])
def resurrection(request):
    if request.method == "PUT":
        data = request.data if isinstance(request.data, dict) else {}
        if "resurrection_paused" in data:
            value = data["resurrection_paused"]
            enabled = not value if isinstance(value, bool) else None
        elif "resurrection" in data:
            value = data["resurrection"]
            enabled = value if isinstance(value, bool) else None
        else:
            value, enabled = None, None
        if enabled is None:
            raise ApiError({"resurrection_paused": ["true or false is required"]})
        services.set_resurrection(enabled, _user(request))
    return Response({"resurrection": services.resurrection_enabled()})


# --------------------------------------------------------------------------- tasks


@extend_schema(responses=JSON, parameters=_params("state", "deployment", "type", "context_id"))
@extend_schema(methods=["GET"], operation_id="director_tasks_list")
@api_view(["GET"])
def tasks(request):
    params = request.query_params
    states = [x for x in (params.get("state") or "").split(",") if x]
    qs = services.list_tasks(
        states=states or None,
        deployment=params.get("deployment"),
        type=params.get("type"),
        context_id=params.get("context_id"),
    )
    return _paginated(request, qs, s.task, tasks)


@extend_schema(responses=JSON)
@api_view(["GET"])
def task(request, task_id):
    return Response(s.task(services.get_task(task_id)))


@extend_schema(responses=JSON, parameters=_params("type", "after"))
@api_view(["GET"])
def task_output(request, task_id):
    kind = request.query_params.get("type", "event")
    if kind in ("debug", "cpi") and not can_see_credentials(request.user):
        raise PermissionDenied("Your role may not read debug or CPI logs.")
    t, out = services.task_output(task_id, kind, request.query_params.get("after", 0))
    body = {
        "id": t.id,
        "type": out.type,
        "state": t.effective_state,
        "done": t.is_terminal,
        "after": out.after,
        "next": out.next,
    }
    if out.events is not None:
        body["events"] = out.events
    else:
        body["output"] = out.text
    return Response(body)


@extend_schema(responses=JSON, request=None)
@api_view(["POST"])
def task_cancel(request, task_id):
    t = services.cancel_task(task_id, _user(request))
    return Response(s.task(t), status=status.HTTP_202_ACCEPTED)


# --------------------------------------------------------------------------- events


EVENT_FILTERS = (
    "before_id",
    "before_time",
    "after_time",
    "deployment",
    "instance",
    "user",
    "action",
    "object_type",
    "object_name",
    "task",
)


@extend_schema(responses=JSON, parameters=_params(*EVENT_FILTERS, "limit"))
@extend_schema(methods=["GET"], operation_id="director_events_list")
@api_view(["GET"])
def events(request):
    """Newest first, at most 200 (or ``limit``); ``next`` pages on with ``before_id``."""
    params = request.query_params
    filters = {k: params.get(k) for k in EVENT_FILTERS if params.get(k)}
    try:
        limit = int(params.get("limit", services.MAX_EVENTS))
    except ValueError:
        raise ApiError({"limit": ["must be a number"]}, status.HTTP_400_BAD_REQUEST) from None
    found = services.list_events(filters, limit=limit)
    following = None
    if found and len(found) == min(max(1, limit), services.MAX_EVENTS):
        query = params.copy()
        query["before_id"] = str(found[-1].id)
        following = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return Response({"next": following, "results": [s.event(e) for e in found]})


@extend_schema(responses=JSON)
@api_view(["GET"])
def event(request, event_id):
    return Response(s.event(services.get_event(event_id)))
