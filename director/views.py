"""Director pages (thin over director.services): tasks, a task's logs, events, VMs.

One view per page; with ``request.htmx`` it renders only the named
fragment the page asked for. The task page follows a running task: its
poller asks every second for what came after the last event (``?after=<seq>``)
or byte (debug/CPI logs), the answer appends the new lines and re-renders
the stage progress, and once the task is terminal the server answers 286
so htmx stops polling.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from opsconsole.auth import can_see_credentials, can_write
from opsconsole.errors import NotFound, ServiceError

from . import instance_actions, logs, runner, services
from .health import cck
from .health import services as hm
from .health.services import instance_health
from .health.timeline import timeline as resurrection_timeline
from .logs import bundle_of
from .models import TaskState

#: htmx stops polling when a response has this status.
HTMX_STOP_POLLING = 286
#: Event lines one page load or poll sends at most.
EVENT_PAGE = 1000


def _service_error_text(exc: ServiceError) -> str:
    return "; ".join(m for msgs in exc.errors.values() for m in msgs)


# --------------------------------------------------------------------------- tasks


def tasks(request):
    states = [s for s in request.GET.getlist("state") if s in TaskState.values]
    deployment = request.GET.get("deployment") or None
    qs = services.list_tasks(states=states or None, deployment=deployment)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "states": TaskState.values,
        "selected_states": states,
        "deployment": deployment or "",
        "any_active": any(t.state in (TaskState.QUEUED, TaskState.PROCESSING) for t in page),
    }
    if request.htmx:
        return render(request, "partials/task_table.html", context)
    return render(request, "director/tasks.html", context)


@dataclass
class StepView:
    index: int
    name: str
    state: str = "started"
    progress: int = 0
    status: str = ""
    error: str = ""
    started: float | None = None
    ended: float | None = None

    @property
    def elapsed(self) -> str:
        """``HH:MM:SS`` from start to end, as the BOSH CLI shows a finished step."""
        if self.started is None or self.ended is None:
            return ""
        return _hms(self.ended - self.started)


def _hms(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass
class StageView:
    name: str
    tags: list
    total: int = 0
    steps: dict = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return sum(1 for s in self.steps.values() if s.state == "finished")

    @property
    def failed(self) -> bool:
        return any(s.state == "failed" for s in self.steps.values())

    @property
    def percent(self) -> int:
        if not self.total:
            return 0
        done = sum(
            100 if s.state in ("finished", "failed") else s.progress for s in self.steps.values()
        )
        return min(100, int(done / self.total))

    @property
    def state(self) -> str:
        if self.failed:
            return "failed"
        return "finished" if self.total and self.finished >= self.total else "in_progress"


def stages_of(events: list[dict]) -> tuple[list[StageView], list[str], list[str]]:
    """Fold event lines into stages with their steps, plus warnings and errors."""
    stages: dict[tuple, StageView] = {}
    warnings, errors = [], []
    for e in events:
        if "error" in e and isinstance(e["error"], dict):
            errors.append(e["error"].get("message", ""))
            continue
        if e.get("type") in ("warning", "deprecation"):
            warnings.append(e.get("message", ""))
            continue
        if "stage" not in e:
            continue
        key = (e["stage"], tuple(e.get("tags") or []))
        stage = stages.get(key)
        if stage is None:
            stage = stages[key] = StageView(e["stage"], list(e.get("tags") or []))
        stage.total = max(stage.total, int(e.get("total") or 0))
        step = stage.steps.setdefault(
            e.get("index", 0), StepView(e.get("index", 0), e.get("task", ""))
        )
        step.state = e.get("state", step.state)
        step.progress = int(e.get("progress") or 0)
        when = e.get("time")
        if isinstance(when, int | float):
            if step.started is None or step.state == "started":
                step.started = when
            if step.state in ("finished", "failed"):
                step.ended = when
        data = e.get("data") or {}
        step.status = data.get("status", step.status)
        step.error = data.get("error", step.error)
    return list(stages.values()), warnings, errors


def _with_clock(events: list[dict]) -> list[dict]:
    """Each event line gets ``clock``: its time as ``HH:MM:SS`` in the console's time zone."""
    for e in events:
        when = e.get("time")
        if isinstance(when, int | float) and not isinstance(when, bool):
            stamp = datetime.fromtimestamp(when, tz=UTC)
            e["clock"] = timezone.localtime(stamp).strftime("%H:%M:%S")
    return events


def _more_to_read(task, kind: str, out: runner.Output) -> bool:
    """Did this read stop short of the end of the log (a page of events, a MiB of text)?"""
    if kind == "event":
        return len(out.events or []) >= EVENT_PAGE
    if kind in ("debug", "cpi"):
        path = runner.task_dir(task.id) / kind
        return path.exists() and path.stat().st_size > out.next
    return False


def task(request, task_id: int):
    """A task and one of its logs; ``?type=event|debug|cpi|result``, ``?after=`` for polling.

    Polling stops (286, and a poller without ``hx-get``) only once the task
    is terminal *and* everything up to the end of the log has been sent: a
    task that ends with more lines than one read returns is read to the end.
    """
    try:
        task = services.get_task(task_id)
    except NotFound:
        raise Http404(f"Task {task_id} does not exist") from None
    kind = request.GET.get("type", "event")
    if kind not in runner.OUTPUT_TYPES:
        kind = "event"
    allowed = kind in ("event", "result") or can_see_credentials(request.user)
    polling = request.htmx and "after" in request.GET
    try:
        after = int(request.GET.get("after", 0)) if polling else 0
    except ValueError:
        after = 0
    # The task is read before its log: if it was terminal then, the log is complete now.
    terminal = task.is_terminal
    if allowed:
        out = runner.read_output(task, kind, after, limit=EVENT_PAGE)
    else:
        out = runner.Output(kind, 0, 0, text="")
    keep_polling = allowed and (not terminal or _more_to_read(task, kind, out))
    context = {
        "task": task,
        "state": task.effective_state,
        "kind": kind,
        "allowed": allowed,
        "output": out,
        "terminal": terminal,
        "keep_polling": keep_polling,
        "took": _hms(task.duration.total_seconds()) if task.duration else "",
        "poll_url": f"{reverse('task', args=[task.id])}?type={kind}&after={out.next}",
        "tabs": [
            ("event", "Event log"),
            ("debug", "Debug log"),
            ("cpi", "CPI log"),
            ("result", "Result"),
        ],
    }
    if (
        task.type == "fetch_logs"
        and task.state == TaskState.DONE
        and can_see_credentials(request.user)
    ):
        context["logs_url"] = _logs_bundle_url(task)
    if kind == "event":
        _with_clock(out.events or [])
        # Stages are folded from all events: cheap next to rendering, and always right.
        # A poll that brought nothing new re-renders no stages, so folds nothing.
        if not polling and not _more_to_read(task, kind, out):
            all_events = out.events or []
        elif not polling or out.events or terminal:
            all_events = runner.read_output(task, "event", 0, limit=100000).events or []
        else:
            all_events = []
        context["stages"], context["warnings"], context["errors"] = stages_of(all_events)
    if polling:
        response = render(request, "partials/task_poll.html", context)
        if not keep_polling:
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, "director/task.html", context)


def _logs_bundle_url(task) -> str | None:
    """The download URL of the logs bundle a ``fetch_logs`` task produced."""
    blob = bundle_of(task)
    return reverse("director-resource", args=[blob]) if blob else None


@require_http_methods(["POST"])
def task_cancel(request, task_id: int):
    if not can_write(request.user):
        messages.error(request, "Your role may not cancel tasks.")
    else:
        try:
            services.cancel_task(task_id, request.user.get_username())
            messages.info(request, f"Task {task_id}: cancel requested.")
        except ServiceError as exc:
            messages.error(request, _service_error_text(exc))
    return redirect("task", task_id=task_id)


# --------------------------------------------------------------------------- events


EVENT_FILTERS = ("deployment", "instance", "user", "action", "object_type", "object_name", "task")


#: Event filters offered as choices (the values the events hold); the others are typed.
EVENT_CHOICE_FILTERS = ("deployment", "action", "object_type", "user")


def _event_context_lines(context) -> list[tuple[str, str]]:
    """An event's context as ``key: value`` lines (nested values as compact JSON)."""
    if not isinstance(context, dict):
        return [("", json.dumps(context))] if context not in (None, "") else []
    return [
        (str(k), v if isinstance(v, str) else json.dumps(v, sort_keys=True))
        for k, v in sorted(context.items())
    ]


def events(request):
    """Audit events, newest first; the filters are in the URL (htmx pushes it too)."""
    filters = {k: request.GET.get(k, "").strip() for k in EVENT_FILTERS}
    before = request.GET.get("before_id") or None
    error = None
    try:
        found = services.list_events({**filters, "before_id": before}, limit=100)
    except ServiceError as exc:
        found, error = [], _service_error_text(exc)
    next_query = None
    if len(found) == 100:
        query = request.GET.copy()
        query["before_id"] = str(found[-1].id)
        next_query = query.urlencode()
    for e in found:
        e.context_lines = _event_context_lines(e.context)
    choices = services.event_filter_values(EVENT_CHOICE_FILTERS)
    fields = [
        {
            "name": k,
            "label": k.replace("_", " ").capitalize(),
            "value": filters[k],
            # a value typed in the URL that no event holds stays selectable
            "choices": sorted({*choices[k], filters[k]} - {""}) if k in choices else None,
        }
        for k in EVENT_FILTERS
    ]
    context = {
        "events": found,
        "filters": filters,
        "fields": fields,
        "error": error,
        "next_query": next_query,
    }
    if request.htmx:
        return render(request, "director/events_table.html", context)
    return render(request, "director/events.html", context)


# --------------------------------------------------------------------------- VMs


#: How often the VMs table refreshes itself (htmx ``every``).
VMS_REFRESH = "5s"


def vms(request):
    """``bosh vms`` with vCenter's live power state, per deployment; ``?deployment=`` filters.

    The table (``partials/vm_table.html``) refreshes itself every 5 s; an
    htmx request gets only that fragment. If vCenter does not answer the
    rows still come from the database, under a banner naming the error.
    Each row has the vitals of its agent's last heartbeat (``bosh vms
    --vitals`` columns) and a row of its processes (a ``<details>``).
    """
    names = list(services.list_deployments().values_list("name", flat=True))
    chosen = request.GET.get("deployment") or ""
    try:
        report = services.deployment_vms(chosen or None)
    except NotFound as exc:
        messages.error(request, _service_error_text(exc))
        chosen = ""
        report = services.deployment_vms(None)
    context = {
        "deployments": names,
        "chosen": chosen,
        "report": report,
        "health": _attach_health(report),
        "may_act": can_write(request.user),
        "may_fetch_logs": can_write(request.user) and can_see_credentials(request.user),
        "refresh_url": reverse("vms") + (f"?{urlencode({'deployment': chosen})}" if chosen else ""),
        "refresh": VMS_REFRESH,
        "vital_columns": services.vms.VITAL_COLUMNS,
    }
    if request.htmx:
        return render(request, "partials/vm_table.html", context)
    return render(request, "director/vms.html", context)


#: The VMs page's instance buttons (``stop-hard``: ``stop --hard``); ``logs`` besides.
INSTANCE_BUTTONS = ("start", "stop", "stop-hard", "restart", "recreate")


@require_http_methods(["POST"])
def instance_action(request, deployment: str, group: str, ident: str, action: str):
    """A VMs page button: start, stop, stop --hard, restart or recreate one instance, or
    fetch its logs. Off to the task's page, or back to the VMs page saying why not."""
    back = reverse("vms") + f"?{urlencode({'deployment': deployment})}"
    if action != "logs" and action not in INSTANCE_BUTTONS:
        raise Http404(f"No instance action '{action}'")
    if not can_write(request.user) or (action == "logs" and not can_see_credentials(request.user)):
        messages.error(request, "Your role may not do that.")
        return redirect(back)
    user = request.user.get_username()
    try:
        if action == "logs":
            task = logs.fetch_logs(deployment, user, [f"{group}/{ident}"])
        else:
            hard = action == "stop-hard"
            task = instance_actions.change_instance_state(
                deployment, group, ident, "stop" if hard else action, user, hard=hard
            )
    except ServiceError as exc:
        messages.error(request, _service_error_text(exc))
        return redirect(back)
    return redirect("task", task_id=task.id)


def _attach_health(report) -> dict:
    """The health monitor's view of the rows shown: each instance gets ``hm_health``
    (its open vm_health alert, if any), and the page a summary (one query)."""
    rows = [row for d in report.deployments for row in d.rows]
    found = instance_health([row.instance.name for row in rows])
    for row in rows:
        row.instance.hm_health = found[row.instance.name]
    unhealthy = sum(1 for h in found.values() if h.state == "unhealthy")
    return {
        "instances": len(rows),
        "healthy": len(rows) - unhealthy,
        "unhealthy": unhealthy,
        "resurrection": services.resurrection_enabled(),
    }


# --------------------------------------------------------------------------- health


def health(request):
    """The alerts feed and the resurrection timeline (``?deployment=`` filters).

    Open alerts first, then the latest resolved ones, and the latest
    resurrection events, drawn as outages (``director.health.timeline``)
    and listed; refreshes itself every 5 s (htmx fragment).
    """
    chosen = request.GET.get("deployment") or ""
    open_alerts = list(hm.list_alerts("open", chosen or None)[:200])
    resolved = list(hm.list_alerts("resolved", chosen or None)[:50])
    events = list(hm.list_resurrections(chosen or None).select_related("task")[:100])
    context = {
        "timeline": resurrection_timeline(events, timezone.now()),
        "chosen": chosen,
        "open_alerts": open_alerts,
        "resolved_alerts": resolved,
        "resurrections": events,
        "resurrection": services.resurrection_enabled(),
        "refresh_url": reverse("health")
        + (f"?{urlencode({'deployment': chosen})}" if chosen else ""),
        "refresh": VMS_REFRESH,
        "vital_columns": services.vms.VITAL_COLUMNS,
    }
    if request.htmx:
        return render(request, "director/health_feed.html", context)
    return render(request, "director/health.html", context)


@require_http_methods(["GET", "POST"])
def cloud_check(request, deployment: str):
    """``bosh cck`` for one deployment: its open problems, each with BOSH's resolutions.

    POST ``scan`` queues a scan; POST ``apply`` queues the resolutions
    chosen in the form (``resolution_<id>``) and leaves problems left on
    "-" open. Both go to the task's page; a refusal
    comes back here naming why.
    """
    try:
        problems = list(cck.open_problems(deployment))
    except NotFound as exc:
        raise Http404(_service_error_text(exc)) from None
    if request.method == "POST":
        if not can_write(request.user):
            messages.error(request, "Your role may not do that.")
            return redirect("cloud-check", deployment=deployment)
        user = request.user.get_username()
        try:
            if "scan" in request.POST:
                task = cck.scan_deployment(deployment, user)
            else:
                chosen = {
                    str(p.id): request.POST.get(f"resolution_{p.id}")
                    for p in problems
                    if request.POST.get(f"resolution_{p.id}")
                }
                task = cck.resolve_problems(deployment, chosen, user)
        except ServiceError as exc:
            messages.error(request, _service_error_text(exc))
            return redirect("cloud-check", deployment=deployment)
        return redirect("task", task_id=task.id)
    context = {
        "deployment": deployment,
        "problems": [cck.problem_dict(p) for p in problems],
        "may_act": can_write(request.user),
    }
    return render(request, "director/cloud_check.html", context)
