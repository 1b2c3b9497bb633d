"""Health API: ``GET /api/v0/director/health/alerts`` and ``/resurrections`` (read-only).

Open to every role that may read (``opsconsole.auth.RolePermission``);
paginated (``limit``/``offset``), newest first. Filters: alerts by
``state`` (open, resolved, all), ``deployment`` and ``category``
(vm_health, deployment_health); resurrection events by ``deployment`` and
``instance`` (``group/uuid``). A bad filter is a 400 naming it.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema

from director.health import services as health
from opsconsole.apierrors import Pagination

from .guard import api_view


def _paginated(request, queryset, shape, view):
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response([shape(o) for o in page])


def _params(*names: str) -> list:
    return [OpenApiParameter(n, str, required=False) for n in names]


@extend_schema(responses=OpenApiTypes.OBJECT, parameters=_params("state", "deployment", "category"))
@api_view(["GET"])
def alerts(request):
    p = request.query_params
    qs = health.list_alerts(p.get("state"), p.get("deployment"), p.get("category"))
    return _paginated(request, qs, health.alert_dict, alerts)


@extend_schema(responses=OpenApiTypes.OBJECT, parameters=_params("deployment", "instance"))
@api_view(["GET"])
def resurrections(request):
    p = request.query_params
    qs = health.list_resurrections(p.get("deployment"), p.get("instance"))
    return _paginated(request, qs, health.resurrection_dict, resurrections)
