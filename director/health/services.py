"""Reading the health monitor's record: alerts, resurrection events, per-instance health.

Shared by the API (``/api/v0/director/health/...``) and the pages (the VMs
page's health column and summary, the alerts feed). Filters are checked
here and a bad one is a ``ServiceError`` naming the parameter (400).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from director.models import Alert, AlertCategory, ResurrectionEvent
from opsconsole.errors import ServiceError

ALERT_STATES = ("open", "resolved", "all")


def list_alerts(
    state: str | None = None,
    deployment: str | None = None,
    category: str | None = None,
) -> QuerySet[Alert]:
    """Alerts, newest first; ``state`` open (default: all), resolved or all."""
    errors: dict[str, list[str]] = {}
    state = state or "all"
    if state not in ALERT_STATES:
        errors["state"] = [f"must be one of {', '.join(ALERT_STATES)}"]
    if category and category not in AlertCategory.values:
        errors["category"] = [f"must be one of {', '.join(AlertCategory.values)}"]
    if errors:
        raise ServiceError(errors, status=400)
    qs = Alert.objects.order_by("-id")
    if state == "open":
        qs = qs.filter(resolved_at__isnull=True)
    elif state == "resolved":
        qs = qs.filter(resolved_at__isnull=False)
    if deployment:
        qs = qs.filter(deployment=deployment)
    if category:
        qs = qs.filter(category=category)
    return qs


def list_resurrections(
    deployment: str | None = None, instance: str | None = None
) -> QuerySet[ResurrectionEvent]:
    qs = ResurrectionEvent.objects.order_by("-id")
    if deployment:
        qs = qs.filter(deployment=deployment)
    if instance:
        qs = qs.filter(instance=instance)
    return qs


@dataclass(frozen=True)
class InstanceHealth:
    """What the VMs page shows in its health column for one instance."""

    state: str  # "healthy", "unhealthy", "unknown"
    alert: Alert | None


def instance_health(instance_names: list[str]) -> dict[str, InstanceHealth]:
    """``{group/uuid: InstanceHealth}`` from the open vm_health alerts (one query)."""
    open_alerts = {
        a.instance: a
        for a in Alert.objects.filter(
            category=AlertCategory.VM_HEALTH,
            resolved_at__isnull=True,
            instance__in=instance_names,
        )
    }
    return {
        name: InstanceHealth("unhealthy", open_alerts[name])
        if name in open_alerts
        else InstanceHealth("healthy", None)
        for name in instance_names
    }


def alert_dict(a: Alert) -> dict:
    """BOSH's alert fields (``created_at`` unix seconds) plus its state and cause."""
    return {
        "id": a.id,
        "severity": a.severity,
        "category": a.category,
        "title": a.title,
        "summary": a.summary,
        "source": a.source,
        "deployment": a.deployment or None,
        "instance": a.instance or None,
        "vm_cid": a.vm_cid or None,
        "cause": a.cause,
        "decision": a.decision or None,
        "state": "open" if a.resolved_at is None else "resolved",
        "created_at": int(a.created_at.timestamp()),
        "last_seen_at": int(a.last_seen_at.timestamp()),
        "resolved_at": int(a.resolved_at.timestamp()) if a.resolved_at else None,
    }


def resurrection_dict(e: ResurrectionEvent) -> dict:
    return {
        "id": e.id,
        "timestamp": int(e.created_at.timestamp()),
        "deployment": e.deployment,
        "instance": e.instance or None,
        "cause": e.cause or None,
        "decision": e.decision,
        "task": str(e.task_id) if e.task_id else None,
        "old_cid": e.old_cid or None,
        "new_cid": e.new_cid or None,
        "seconds_to_recover": e.seconds_to_recover,
        "message": e.message,
    }
