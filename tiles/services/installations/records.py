"""Installation rows: the running one, the list, one by id, each product's last step.

``running_installation`` first fails installations whose worker is gone
(never claimed within ``QUEUE_TIMEOUT``, or its running step's director
task timed out), so a lost worker never blocks Apply Changes.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Max
from django.utils import timezone

from director.models import Task, TaskState
from opsconsole.errors import NotFound
from opsconsole.redaction import redact_text
from tiles.models import Installation, InstallationStatus, InstallationStep, StepKind, StepState

#: An installation no worker started within this time is failed (the queue lost it).
QUEUE_TIMEOUT = timedelta(minutes=15)


def _reap_stale() -> None:
    """Fail running installations whose worker is gone, so they never block Apply Changes.

    Either no worker claimed it within ``QUEUE_TIMEOUT``, or the director
    task of its running step timed out (its worker stopped checkpointing).
    """
    now = timezone.now()
    Installation.objects.filter(
        status=InstallationStatus.RUNNING,
        worker_started_at__isnull=True,
        started_at__lt=now - QUEUE_TIMEOUT,
    ).update(
        status=InstallationStatus.FAILED,
        finished_at=now,
        message="no worker started this installation (is the task queue running?)",
    )
    for step in InstallationStep.objects.filter(
        installation__status=InstallationStatus.RUNNING,
        state=StepState.RUNNING,
        task__isnull=False,
    ).select_related("task"):
        if step.task.effective_state == TaskState.TIMEOUT:
            message = f"{step.label}: its worker stopped (task {step.task_id} timed out)"
            _finish_step(step, StepState.FAILED, message)
            Installation.objects.filter(id=step.installation_id).update(
                status=InstallationStatus.FAILED, finished_at=now, message=message
            )


def running_installation() -> Installation | None:
    _reap_stale()
    return Installation.objects.filter(status=InstallationStatus.RUNNING).order_by("id").first()


def last_steps(guids: list[str]) -> dict[str, InstallationStep]:
    """Per product guid, its step in the newest installation that had one (two queries).

    For the dashboard: a product whose last deploy failed shows so, whatever
    installations ran since without it.
    """
    newest = (
        InstallationStep.objects.filter(product_guid__in=guids)
        .exclude(kind=StepKind.ERRAND)
        .values("product_guid")
        .annotate(last=Max("installation_id"))
    )
    wanted = {(row["product_guid"], row["last"]) for row in newest}
    if not wanted:
        return {}
    out: dict[str, InstallationStep] = {}
    for step in (
        InstallationStep.objects.filter(
            product_guid__in=guids, installation_id__in={i for _, i in wanted}
        )
        .exclude(kind=StepKind.ERRAND)
        .select_related("installation")
        .defer("installation__snapshot")
        .order_by("seq")
    ):
        if (step.product_guid, step.installation_id) not in wanted:
            continue
        # The first failed step of a product wins (vCenter check before configs).
        if step.product_guid not in out or out[step.product_guid].state != StepState.FAILED:
            out[step.product_guid] = step
    return out


def list_installations():
    """Installations, newest first, with their steps."""
    return Installation.objects.order_by("-id").prefetch_related("steps")


def get_installation(installation_id: int) -> Installation:
    inst = Installation.objects.filter(id=installation_id).prefetch_related("steps").first()
    if inst is None:
        raise NotFound({"id": [f"Installation {installation_id} does not exist"]})
    return inst


def _running_message(running: Installation) -> dict:
    when = timezone.localtime(running.started_at).strftime("%Y-%m-%d %H:%M:%S %Z")
    return {
        "install": [
            f"Installation {running.id} started by {running.user_name or 'someone'} at {when} "
            "is still running; wait for it to finish"
        ]
    }


def _finish_step(step: InstallationStep, state: str, message: str = "", task: Task | None = None):
    step.state = state
    step.message = redact_text(message)  # an error may quote a config line with a password
    if task is not None:
        step.task = task
    step.finished_at = timezone.now()
    step.save(update_fields=["state", "message", "task", "finished_at"])
