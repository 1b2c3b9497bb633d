"""Recording audit events (BOSH ``bosh events``).

``record_event`` writes one event. ``event_span`` records a long action as
BOSH does: a start event, then on the way out an end event whose ``parent``
is the start, carrying ``error`` if the action raised::

    with event_span("create", "deployment", "zk", user=ctx.username,
                    task=ctx.task, deployment="zk") as span:
        ...
        span.context["after"] = {...}     # lands on the end event

Events never hold secrets: ``context`` is redacted before it is stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from opsconsole.redaction import redact, redact_text

from .models import Event


def _task_id(task) -> int | None:
    if task is None or task == "":
        return None
    if isinstance(task, int):
        return task
    if isinstance(task, str):
        return int(task)
    return task.id


def _instance_name(instance) -> str:
    if not instance:
        return ""
    if isinstance(instance, str):
        return instance
    return instance.name


def record_event(
    action: str,
    object_type: str,
    object_name: str = "",
    user: str = "",
    task=None,
    deployment: str = "",
    instance="",
    context: dict | None = None,
    parent: Event | int | None = None,
    error: str | BaseException | None = None,
) -> Event:
    """Write one audit event; ``task`` may be a Task or an id, ``instance`` an Instance or name."""
    return Event.objects.create(
        action=action,
        object_type=object_type,
        object_name=object_name or "",
        user=user or "",
        task=_task_id(task),
        deployment=deployment or "",
        instance=_instance_name(instance),
        context=redact(context or {}),
        parent_id=parent.id if isinstance(parent, Event) else parent,
        error=redact_text(str(error)) if error else "",
    )


@dataclass
class EventSpan:
    """The start event of a long action; ``context`` is what the end event will carry."""

    start: Event
    context: dict = field(default_factory=dict)


@contextmanager
def event_span(
    action: str,
    object_type: str,
    object_name: str = "",
    user: str = "",
    task=None,
    deployment: str = "",
    instance="",
    context: dict | None = None,
) -> Iterator[EventSpan]:
    """A start event now; an end event (``parent`` = start, ``error`` if raised) at exit."""
    common = dict(user=user, task=task, deployment=deployment, instance=instance)
    start = record_event(action, object_type, object_name, context=context, **common)
    span = EventSpan(start, dict(context or {}))
    try:
        yield span
    except BaseException as exc:
        record_event(
            action,
            object_type,
            object_name,
            context=span.context,
            parent=start,
            error=str(exc) or type(exc).__name__,
            **common,
        )
        raise
    record_event(action, object_type, object_name, context=span.context, parent=start, **common)


def event_to_dict(event: Event) -> dict:
    """BOSH's event JSON: ids as strings, unix timestamp, empty fields left out."""
    data = {
        "id": str(event.id),
        "parent_id": str(event.parent_id) if event.parent_id else None,
        "timestamp": int(event.timestamp.timestamp()),
        "user": event.user,
        "action": event.action,
        "object_type": event.object_type,
        "object_name": event.object_name,
        "error": event.error,
        "task": str(event.task) if event.task is not None else None,
        "deployment": event.deployment,
        "instance": event.instance,
        "context": event.context,
    }
    return {k: v for k, v in data.items() if v not in (None, "", {})}
