"""Errand routes of the director API (BOSH ``/deployments/:d/errands``), thin over services.errands.

``GET  deployments/{name}/errands``: the deployment's errands (lifecycle
errand instance groups and ``bin/run`` jobs, with the groups each runs on).
``POST deployments/{name}/errands/{errand}/runs`` with
``{"keep_alive", "when_changed", "instances"}`` (BOSH's ``keep-alive`` /
``when-changed`` spellings too): 202 with the ``run_errand`` task and its URL
in ``Location``; the task's result output holds the errand's
``{exit_code, stdout, stderr, logs}`` per instance.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers as drf
from rest_framework.response import Response

from director.services import errands
from opsconsole.apierrors import ApiError

from .guard import api_view
from .views import JSON, _accepted, _user

RUN_BODY = inline_serializer(
    name="ErrandRunRequest",
    fields={
        "keep_alive": drf.BooleanField(required=False, help_text="keep the errand VMs"),
        "when_changed": drf.BooleanField(
            required=False, help_text="skip if nothing changed since the last successful run"
        ),
        "instances": drf.ListField(
            child=drf.CharField(), required=False, help_text="group or group/id"
        ),
    },
)


def _option(data: dict, name: str):
    """``keep_alive`` or BOSH's ``keep-alive``."""
    if name in data:
        return data[name]
    return data.get(name.replace("_", "-"))


@extend_schema(responses=JSON)
@api_view(["GET"])
def deployment_errands(request, name):
    return Response(errands.list_errands(name))


@extend_schema(responses=JSON, request=RUN_BODY)
@api_view(["POST"])
def errand_runs(request, name, errand):
    data = request.data if request.data is not None else {}
    if not isinstance(data, dict):
        raise ApiError({"base": ["the body must be a JSON object"]})
    task = errands.run_errand(
        name,
        errand,
        _user(request),
        keep_alive=_option(data, "keep_alive"),
        when_changed=_option(data, "when_changed"),
        instances=data.get("instances"),
    )
    return _accepted(request, task)
