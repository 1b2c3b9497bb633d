"""An installation's page with its live log, Retry, and the Change Log.

The installation page polls its log with htmx and appends new lines; once
the installation is terminal the server answers 286 and polling stops.
"""

from __future__ import annotations

import hashlib

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from opsconsole.auth import can_write
from opsconsole.errors import Conflict, NotFound, ServiceError
from tiles import services
from tiles.services import installations

from . import progress
from .common import _error_lines, writer_required

#: htmx stops polling when a response has this status.
HTMX_STOP_POLLING = 286


def _digest(lines: list[str]) -> str:
    return hashlib.sha1("".join(lines).encode()).hexdigest()[:16]


def installation(request, installation_id):
    """The installation, the one place to watch an Apply Changes, with its live log.

    Above the log: the overall progress, elapsed time, each step with its
    progress bar, the instance steps of the running (or failed) task, the
    timeline, and for a failed installation the "changes not applied" box
    with Retry. The page polls ``?fragment=log&after=<lines>&digest=<hash
    of them>``: the answer re-renders that part and, when the first
    ``after`` lines are still what the page shows, appends only the new log
    lines (else replaces the log: a step's header line changed). Once the
    installation is terminal the server answers 286 and htmx stops polling.
    """
    try:
        inst = services.get_installation(installation_id)
    except NotFound:
        raise Http404(f"No installation {installation_id}") from None
    events = installations.installation_events(inst)
    lines = services.installation_logs(inst.id, events).splitlines(keepends=True)
    terminal = inst.status != "running"
    ctx = {
        "inst": inst,
        **_live_context(inst, events),
        "log": "".join(lines),
        "terminal": terminal,
        "after": len(lines),
        "digest": _digest(lines),
        "poll_url": reverse("installation", args=[inst.id]),
        "can_write": can_write(request.user),
    }
    if request.htmx and request.GET.get("fragment") == "log":
        try:
            after = max(0, int(request.GET.get("after", "0")))
        except ValueError:
            after = 0
        same_prefix = after <= len(lines) and _digest(lines[:after]) == request.GET.get("digest")
        ctx["append"] = "".join(lines[after:]) if same_prefix else None
        response = render(request, "tiles/fragments/installation_poll.html", ctx)
        if terminal:
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, "tiles/installation.html", ctx)


def _live_context(inst, events) -> dict:
    """Progress, per-instance stages, timeline and failure summary (``progress``)."""
    now = timezone.now()
    steps = progress.step_progress(list(inst.steps.all()), events, now.timestamp())
    failure = progress.failure_of(steps, inst.message) if inst.status == "failed" else None
    # The instance steps shown: of the running step, else the failed one, else the last deploy.
    watched = next((p for p in steps if p.state == "running" and p.task), None)
    watched = watched or next((p for p in steps if p.state == "failed" and p.task), None)
    watched = watched or next(
        (p for p in reversed(steps) if p.task and p.step.kind in progress.INSTANCE_KINDS), None
    )
    return {
        "steps": steps,
        "overall": 100 if inst.status == "succeeded" else progress.overall_percent(steps),
        "elapsed": progress.elapsed(inst.started_at, inst.finished_at, now),
        "failure": failure,
        "failure_hint": _failure_hint(failure),
        "watched": watched,
        "now_ts": now.timestamp(),
        "timeline": progress.timeline(steps, now.timestamp()),
    }


def _failure_hint(failure) -> tuple[str, str] | None:
    """Where to fix what failed: ``(text, url)``."""
    if failure is None:
        return None
    kind = failure.step.kind
    if kind == "vcenter":
        return (
            "Fix the BOSH Director tile's vCenter Config",
            reverse("director-tile", args=["vcenter"]),
        )
    if kind == "configs":
        return ("Check the BOSH Director tile", reverse("director-tile-home"))
    if kind == "stemcells":
        return ("Import the stemcell on the Stemcells page", reverse("stemcells"))
    if kind in ("deploy", "errand") and failure.step.product_guid:
        return (
            f"Check {failure.step.product_name}'s configuration",
            reverse("product", args=[failure.step.product_guid]),
        )
    return None


@require_POST
@writer_required
def installation_retry(request, installation_id):
    """Retry: a new Apply Changes with the same product selection, refused while one runs."""
    try:
        inst = installations.retry_installation(installation_id, request.user.get_username())
    except NotFound:
        raise Http404(f"No installation {installation_id}") from None
    except Conflict:
        _refused_while_running(request)
        return redirect("installation", installation_id=installation_id)
    except ServiceError as exc:
        for line in _error_lines(exc.errors):
            messages.error(request, line)
        return redirect("installation", installation_id=installation_id)
    messages.success(request, f"Retrying installation {installation_id} as installation {inst.id}.")
    return redirect("installation", installation_id=inst.id)


def _refused_while_running(request) -> None:
    """The refusal of a second Apply Changes, with a link to the one running."""
    running = services.running_installation()
    if running is None:  # it ended meanwhile
        messages.error(request, "Another Apply Changes was running; try again.")
        return
    messages.error(
        request,
        format_html(
            'Apply Changes is already running: <a href="{}">installation {}</a> started by {}. '
            "Wait for it to finish.",
            reverse("installation", args=[running.id]),
            running.id,
            running.user_name or "someone",
        ),
    )


def _duration(start, end) -> str:
    if not start or not end:
        return ""
    seconds = int((end - start).total_seconds())
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


def changelog(request):
    """The Change Log: the last 100 installations, each with its director and product steps."""
    rows = list(services.list_installations()[:100])
    for inst in rows:
        inst.duration_text = _duration(inst.started_at, inst.finished_at)
        inst.product_steps = [
            {"step": st, "duration": _duration(st.started_at, st.finished_at)}
            for st in inst.steps.all()
            if st.kind in ("configs", "deploy", "delete")
            or (st.kind == "vcenter" and st.state == "failed")  # why nothing was deployed
        ]
    return render(request, "tiles/changelog.html", {"installations": rows})
