"""The installation log: its steps' task event logs, printed the way the bosh CLI does.

One section per step; the installation page folds the same events into
progress (``installation_events``). Logs are redacted again with the
secrets this process knows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from director.models import TaskEvent
from opsconsole.redaction import redact_text, register_secret
from tiles import director_tile
from tiles.models import Installation, InstallationStatus

from .records import get_installation


def _ts(t: Any) -> str:
    try:
        return datetime.fromtimestamp(int(t), tz=UTC).strftime("%H:%M:%S")
    except (TypeError, ValueError, OverflowError):
        return "--:--:--"


def format_event(task_id: int, e: Mapping) -> str:
    """One event line the way the bosh CLI prints a task's event log."""
    t = _ts(e.get("time"))
    if isinstance(e.get("error"), Mapping):
        return f"Task {task_id} | {t} | Error: {e['error'].get('message', '')}"
    if e.get("type") == "warning":
        return f"Task {task_id} | {t} | Warning: {e.get('message', '')}"
    stage = e.get("stage") or ""
    what = e.get("task") or ""
    tags = e.get("tags") or []
    if tags:
        stage = f"{stage} {', '.join(str(x) for x in tags)}"
    state = e.get("state") or ""
    word = {"started": "started", "finished": "done", "failed": "failed"}.get(state, state)
    if state == "in_progress":
        word = f"{e.get('progress', 0)}%"
    return f"Task {task_id} | {t} | {stage}: {what} ({word})"


def installation_events(installation: Installation) -> dict[int, list[tuple[int, dict]]]:
    """The event logs of an installation's step tasks: ``{task_id: [(seq, event), ...]}``.

    One query for all the steps; the installation page folds them into
    progress, and ``installation_logs`` prints them.
    """
    task_ids = [st.task_id for st in installation.steps.all() if st.task_id]
    events: dict[int, list[tuple[int, dict]]] = {}
    for task_id, seq, data in (
        TaskEvent.objects.filter(task_id__in=task_ids)
        .order_by("task_id", "seq")
        .values_list("task_id", "seq", "data")
    ):
        events.setdefault(task_id, []).append((seq, data))
    return events


def installation_logs(
    installation_id: int, events: dict[int, list[tuple[int, dict]]] | None = None
) -> str:
    """The installation log: each step, then its task's event log.

    ``events`` are the steps' event logs when the caller read them already
    (``installation_events``).
    """
    inst = get_installation(installation_id)
    lines = [
        f"Installation {inst.id} by {inst.user_name or '-'}, started "
        f"{timezone.localtime(inst.started_at):%Y-%m-%d %H:%M:%S %Z}: {inst.status}"
    ]
    steps = list(inst.steps.order_by("seq"))
    if events is None:
        events = installation_events(inst)
    for st in steps:
        head = f"===== {st.label}: {st.state}"
        if st.task_id:
            head += f" (task {st.task_id})"
        lines.append(head)
        for _, e in events.get(st.task_id, []):
            lines.append(format_event(st.task_id, e))
        if st.message:
            lines.append(st.message)
    if inst.message and inst.status == InstallationStatus.FAILED:
        lines.append(f"Installation failed: {inst.message}")
    # Task logs were redacted by the worker that wrote them; redact again with the
    # secrets this process knows, the vCenter password among them.
    register_secret(director_tile.get_director().vcenter_password)
    return redact_text("\n".join(lines) + "\n")
