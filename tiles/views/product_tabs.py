"""A product tile's Status and Logs tabs (Ops Manager's), beside Settings and Credentials.

**Status**: one row per instance of the tile's deployment, as ``GET
/api/v0/deployed/products/{guid}/status`` gives it
(``tiles.services.deployed_status``): job and index, AZ, IPs, VM CID, the
director's job state and BOSH's process state, the vitals of the agent's
last heartbeat (load, CPU, memory, swap, disks) and when it came, and a
button that fetches that instance's logs. The table refreshes itself (htmx).

**Logs**: download the logs of one instance, of an instance group or of the
whole tile. A request starts the director's ``fetch_logs`` task
(``director.logs.fetch_logs``, the deployment is named by the tile's guid);
the tab lists the tile's log tasks, newest first, each with its progress
while it runs (the row polls itself and the server answers 286 once the
task is terminal) and, once done, the tgz's download link
(``GET /api/v0/director/resources/{blob}``).

Logs may hold what jobs print, secrets included: as on the VMs page,
fetching needs a control role that may see credentials, and only a role
that may see credentials gets the download link. A tile never deployed
says so, on both tabs.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods

from director import logs as director_logs
from director import tasklog
from director.models import Task, TaskState
from director.services import tasks as director_tasks
from opsconsole.auth import can_see_credentials, can_write
from opsconsole.errors import NotFound, ServiceError
from tiles import services

from .common import _error_lines, _staged_or_404, writer_required

#: htmx stops polling when a response has this status.
HTMX_STOP_POLLING = 286
#: How often the Status table refreshes itself, and a running log task's row.
STATUS_REFRESH = "10s"
LOGS_POLL = "1s"
#: The log tasks the Logs tab lists.
LOG_TASKS_SHOWN = 10
#: The stage of a ``fetch_logs`` task whose steps are the instances.
FETCH_STAGE = "Fetching logs"


def _tab_context(request, staged, tab: str) -> dict[str, Any]:
    return {
        "staged": staged,
        "label": staged.product.label or staged.product.name,
        "tab": tab,
        "may_fetch_logs": can_write(request.user) and can_see_credentials(request.user),
        "may_download_logs": can_see_credentials(request.user),
    }


# --------------------------------------------------------------------------- Status


def _percent(values: dict | None) -> str:
    return f"{values['percent']}%" if values and values.get("percent") not in (None, "") else ""


def _usage(values: dict | None) -> str:
    """``26% (1.0 GB)`` from the agent's ``{percent, kb}``."""
    text = _percent(values)
    try:
        kb = int(float((values or {}).get("kb")))
    except (TypeError, ValueError):
        return text
    return f"{text} ({filesizeformat(kb * 1024)})" if text else filesizeformat(kb * 1024)


def _disk(values: dict | None) -> str:
    text = _percent(values)
    inodes = (values or {}).get("inode_percent")
    return f"{text} (inodes {inodes}%)" if text and inodes not in (None, "") else text


def status_row(row: dict) -> dict[str, Any]:
    """One row of ``deployed_status`` with the texts the Status tab shows ("" when unknown)."""
    cpu = row.get("cpu") or {}
    return {
        **row,
        "job": row["job-name"],
        "instance": f"{row['job-name']}/{row['id']}",
        "load_text": ", ".join(row.get("load_avg") or []),
        "cpu_text": ", ".join(
            f"{cpu[k]}% {k}" for k in ("user", "sys", "wait") if cpu.get(k) not in (None, "")
        ),
        "memory_text": _usage(row.get("memory")),
        "swap_text": _usage(row.get("swap")),
        "heartbeat_at": parse_datetime(row["last_heartbeat"])
        if row.get("last_heartbeat")
        else None,
        "disks": [
            (name, text)
            for name in ("system", "ephemeral", "persistent")
            if (text := _disk(row.get(f"{name}_disk")))
        ],
    }


@require_GET
def product_status(request, guid):
    """The Status tab; ``?fragment=table`` (htmx) is the table alone, for its refresh."""
    staged = _staged_or_404(guid)
    rows: list[dict] = []
    if staged.is_deployed:
        try:
            rows = [status_row(r) for r in services.deployed_status(guid)]
        except NotFound:
            rows = []
    context = {
        **_tab_context(request, staged, "status"),
        "rows": rows,
        "refresh": STATUS_REFRESH,
    }
    if request.htmx and request.GET.get("fragment") == "table":
        return render(request, "tiles/fragments/product_status_table.html", context)
    return render(request, "tiles/product_status.html", context)


# --------------------------------------------------------------------------- Logs


def _progress(task: Task) -> tuple[int, int, int]:
    """``(instances done, instances, percent)`` of a ``fetch_logs`` task, from its events."""
    events = tasklog.read_output(task, "event", 0, limit=100000).events or []
    total, steps = 0, {}
    for e in events:
        if e.get("stage") != FETCH_STAGE:
            continue
        total = max(total, int(e.get("total") or 0))
        steps[e.get("index", 0)] = e.get("state")
    done = sum(1 for s in steps.values() if s in ("finished", "failed"))
    if task.state == TaskState.DONE:
        return done, total, 100
    return done, total, int(100 * done / total) if total else 0


def log_task_row(task: Task, may_download: bool) -> dict[str, Any]:
    """A log task as the Logs tab lists it: what, who, state, progress, download link."""
    state = task.effective_state
    done, total, percent = _progress(task)
    blob = director_logs.bundle_of(task) if state == TaskState.DONE else None
    return {
        "task": task,
        "state": state,
        "terminal": task.is_terminal,
        "done": done,
        "total": total,
        "percent": percent,
        "download_url": reverse("director-resource", args=[blob]) if blob and may_download else "",
        "has_bundle": bool(blob),
        "error": task.result if state != TaskState.DONE and task.is_terminal else "",
    }


def _log_tasks(guid: str) -> list[Task]:
    return list(
        director_tasks.list_tasks(deployment=guid, type=director_logs.TASK_TYPE)[:LOG_TASKS_SHOWN]
    )


def _choices(rows: list[dict]) -> list[tuple[str, str]]:
    """What a log request may name: the whole tile, each instance group, each instance."""
    groups = sorted({r["job-name"] for r in rows})
    out = [("", "All instances")]
    for g in groups:
        out.append((g, f"{g} (every instance)"))
        out += [
            (f"{r['job-name']}/{r['id']}", f"{r['job-name']}/{r['index']} ({r['id']})")
            for r in rows
            if r["job-name"] == g
        ]
    return out


def _logs_page(request, staged, *, chosen: str = "", errors=None, highlight=None, status=200):
    rows = services.deployed_status(staged.guid) if staged.is_deployed else []
    may_download = can_see_credentials(request.user)
    context = {
        **_tab_context(request, staged, "logs"),
        "choices": _choices(rows),
        "chosen": chosen,
        "log_types": director_logs.LOG_TYPES,
        "errors": errors or [],
        "highlight": highlight,
        "tasks": [log_task_row(t, may_download) for t in _log_tasks(staged.guid)],
        "poll": LOGS_POLL,
    }
    return render(request, "tiles/product_logs.html", context, status=status)


@require_http_methods(["GET", "POST"])
@writer_required
def product_logs(request, guid):
    """The Logs tab. POST ``instances`` (empty: all; ``group`` or ``group/id``) and
    ``type`` (job or agent) starts a ``fetch_logs`` task and shows it on the tab;
    ``?task=<id>`` with htmx is that task's row, 286 once it is terminal."""
    staged = _staged_or_404(guid)
    if request.method == "GET" and request.htmx and request.GET.get("task"):
        return _log_task_fragment(request, staged)
    if request.method == "GET":
        try:
            highlight = int(request.GET.get("task", ""))
        except ValueError:
            highlight = None
        return _logs_page(request, staged, highlight=highlight)
    if not can_see_credentials(request.user):
        raise PermissionDenied("Logs may hold credentials: your role may not fetch them.")
    chosen = request.POST.get("instances", "").strip()
    if not staged.is_deployed:
        return _logs_page(
            request, staged, errors=["The product is not deployed yet: it has no logs."], status=409
        )
    try:
        task = director_logs.fetch_logs(
            staged.guid,
            request.user.get_username(),
            instances=[chosen] if chosen else None,
            log_type=request.POST.get("type") or "job",
        )
    except ServiceError as exc:
        return _logs_page(
            request, staged, chosen=chosen, errors=_error_lines(exc.errors), status=exc.status
        )
    return redirect(f"{reverse('product-logs', args=[staged.guid])}?task={task.id}#logs-tasks")


def _log_task_fragment(request, staged):
    try:
        task_id = int(request.GET["task"])
    except ValueError:
        raise Http404("bad task id") from None
    task = Task.objects.filter(
        id=task_id, deployment_name=staged.guid, type=director_logs.TASK_TYPE
    ).first()
    if task is None:
        raise Http404(f"No log task {task_id} of {staged.guid}")
    task = director_tasks.get_task(task.id)  # records a timeout first, as every reader does
    row = log_task_row(task, can_see_credentials(request.user))
    response = render(
        request,
        "tiles/fragments/log_task_row.html",
        {"row": row, "staged": staged, "poll": LOGS_POLL},
    )
    if row["terminal"]:
        response.status_code = HTMX_STOP_POLLING
    return response
