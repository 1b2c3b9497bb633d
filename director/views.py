"""Director pages (thin over director.services): stemcells, tasks, a task's logs, events, VMs.

One view per page; with ``request.htmx`` it renders only the named
fragment the page asked for. The task page follows a running task: its
poller asks every second for what came after the last event (``?after=<seq>``)
or byte (debug/CPI logs), the answer appends the new lines and re-renders
the stage progress, and once the task is terminal the server answers 286
so htmx stops polling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from opsconsole.auth import can_see_credentials, can_write

from . import runner, services
from .models import TaskState

#: htmx stops polling when a response has this status.
HTMX_STOP_POLLING = 286


def _service_error_text(exc: services.ServiceError) -> str:
    return "; ".join(m for msgs in exc.errors.values() for m in msgs)


# --------------------------------------------------------------------------- stemcells


@require_http_methods(["GET", "POST"])
def stemcells(request):
    """The director's stemcells and the console's Stemcell Library.

    This page is the console's (Ops Manager's "Stemcell Library"), so it is
    the one director page that reads ``tiles``: an upload is kept in the
    library and its director upload starts at once
    (``tiles.services.import_stemcell``); the library lists, per stemcell,
    whether the director has it or Apply Changes will upload it, and the
    staged products deploying with it.
    """
    from tiles import services as console

    if request.method == "POST":
        if not can_write(request.user):
            messages.error(request, "Your role may not upload stemcells.")
            return redirect("stemcells")
        upload = request.FILES.get("stemcell[file]") or request.FILES.get("file")
        if upload is None:
            messages.error(request, "Choose a stemcell tarball (.tgz) to upload.")
            return redirect("stemcells")
        try:
            result = console.import_stemcell(upload, request.user.get_username())
        except services.ServiceError as exc:
            messages.error(request, f"{upload.name}: {_service_error_text(exc)}")
            return redirect("stemcells")
        messages.info(request, result.message)
        task = result.task
        if task.state == TaskState.DONE:
            messages.info(request, task.result)
            return redirect("stemcells")
        return redirect("task", task_id=task.id)
    return render(
        request,
        "director/stemcells.html",
        {
            "stemcells": services.list_stemcells(),
            "library": console.stemcell_library(),
            "can_write": can_write(request.user),
        },
    )


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
        data = e.get("data") or {}
        step.status = data.get("status", step.status)
        step.error = data.get("error", step.error)
    return list(stages.values()), warnings, errors


def task(request, task_id: int):
    """A task and one of its logs; ``?type=event|debug|cpi|result``, ``?after=`` for polling."""
    try:
        task = services.get_task(task_id)
    except services.NotFound:
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
    out = runner.read_output(task, kind, after) if allowed else runner.Output(kind, 0, 0, text="")
    terminal = task.is_terminal
    context = {
        "task": task,
        "state": task.effective_state,
        "kind": kind,
        "allowed": allowed,
        "output": out,
        "terminal": terminal,
        "poll_url": f"{reverse('task', args=[task.id])}?type={kind}&after={out.next}",
        "tabs": [
            ("event", "Event log"),
            ("debug", "Debug log"),
            ("cpi", "CPI log"),
            ("result", "Result"),
        ],
    }
    if kind == "event":
        # Stages are folded from all events: cheap next to rendering, and always right.
        all_events = (
            out.events if not polling else runner.read_output(task, "event", 0, limit=100000).events
        )
        context["stages"], context["warnings"], context["errors"] = stages_of(all_events)
    if polling:
        response = render(request, "partials/task_poll.html", context)
        if terminal:
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, "director/task.html", context)


@require_http_methods(["POST"])
def task_cancel(request, task_id: int):
    if not can_write(request.user):
        messages.error(request, "Your role may not cancel tasks.")
    else:
        try:
            services.cancel_task(task_id, request.user.get_username())
            messages.info(request, f"Task {task_id}: cancel requested.")
        except services.ServiceError as exc:
            messages.error(request, _service_error_text(exc))
    return redirect("task", task_id=task_id)


# --------------------------------------------------------------------------- events


EVENT_FILTERS = ("deployment", "instance", "user", "action", "object_type", "object_name", "task")


def events(request):
    filters = {k: request.GET.get(k, "").strip() for k in EVENT_FILTERS}
    before = request.GET.get("before_id") or None
    error = None
    try:
        found = services.list_events({**filters, "before_id": before}, limit=100)
    except services.ServiceError as exc:
        found, error = [], _service_error_text(exc)
    next_query = None
    if len(found) == 100:
        query = request.GET.copy()
        query["before_id"] = str(found[-1].id)
        next_query = query.urlencode()
    context = {"events": found, "filters": filters, "error": error, "next_query": next_query}
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
    """
    names = list(services.list_deployments().values_list("name", flat=True))
    chosen = request.GET.get("deployment") or ""
    try:
        report = services.deployment_vms(chosen or None)
    except services.NotFound as exc:
        messages.error(request, _service_error_text(exc))
        chosen = ""
        report = services.deployment_vms(None)
    context = {
        "deployments": names,
        "chosen": chosen,
        "report": report,
        "refresh_url": reverse("vms") + (f"?{urlencode({'deployment': chosen})}" if chosen else ""),
        "refresh": VMS_REFRESH,
    }
    if request.htmx:
        return render(request, "partials/vm_table.html", context)
    return render(request, "director/vms.html", context)
