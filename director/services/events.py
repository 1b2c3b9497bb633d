"""Audit events: BOSH's filters (before/after time, task, deployment, ...), newest first."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from opsconsole.errors import NotFound, ServiceError

from ..models import Event

#: Most events one call returns (BOSH: 200).
MAX_EVENTS = 200


def _time(value, field: str) -> datetime:
    if isinstance(value, datetime):
        return value
    text = str(value).strip()
    if text.isdigit():
        try:
            return datetime.fromtimestamp(int(text), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ServiceError({field: ["is out of range"]}, 400) from None
    try:
        parsed = parse_datetime(text)
    except ValueError:  # well-formed but impossible, e.g. month 13
        parsed = None
    if parsed is None:
        raise ServiceError({field: ["must be a unix time or an ISO 8601 time"]}, 400)
    return parsed if parsed.tzinfo else timezone.make_aware(parsed, UTC)


def list_events(filters: dict | None = None, limit: int = MAX_EVENTS) -> list[Event]:
    """Audit events, newest first, at most 200 (BOSH's filters; see the API docs)."""
    filters = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
    qs = Event.objects.order_by("-id")
    if "before_id" in filters:
        try:
            qs = qs.filter(id__lt=int(filters["before_id"]))
        except (TypeError, ValueError):
            raise ServiceError({"before_id": ["must be a number"]}, 400) from None
    if "before_time" in filters:
        qs = qs.filter(timestamp__lt=_time(filters["before_time"], "before_time"))
    if "after_time" in filters:
        qs = qs.filter(timestamp__gt=_time(filters["after_time"], "after_time"))
    if "task" in filters:
        try:
            qs = qs.filter(task=int(filters["task"]))
        except (TypeError, ValueError):
            raise ServiceError({"task": ["must be a task id"]}, 400) from None
    for key, field in (
        ("deployment", "deployment"),
        ("instance", "instance"),
        ("user", "user"),
        ("action", "action"),
        ("object_type", "object_type"),
        ("object_name", "object_name"),
    ):
        if key in filters:
            qs = qs.filter(**{field: filters[key]})
    return list(qs[: max(1, min(int(limit), MAX_EVENTS))])


def event_filter_values(fields: tuple[str, ...]) -> dict[str, list[str]]:
    """The distinct values events hold in ``fields`` (the events page's filter choices)."""
    allowed = {"deployment", "action", "object_type", "user", "object_name", "instance"}
    return {
        f: sorted(v for v in Event.objects.order_by().values_list(f, flat=True).distinct() if v)
        for f in fields
        if f in allowed
    }


def get_event(event_id: int) -> Event:
    event = Event.objects.filter(id=event_id).first()
    if event is None:
        raise NotFound(f"Event {event_id} does not exist")
    return event
