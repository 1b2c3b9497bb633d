"""The worker's side of Apply Changes: run an installation's steps in order.

``run_installation`` is the body of the Celery task
``tiles.run_installation``. The first failing step fails the installation;
later steps are skipped.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from opsconsole.errors import ServiceError
from tiles.models import Installation, InstallationStatus, StepKind, StepState

from .product_steps import _run_delete, _run_deploy, _run_errand
from .records import _finish_step
from .steps import _run_configs, _run_stemcells, _run_vcenter

log = logging.getLogger(__name__)


_RUNNERS = {
    StepKind.VCENTER: _run_vcenter,
    StepKind.CONFIGS: _run_configs,
    StepKind.STEMCELLS: _run_stemcells,
    StepKind.DEPLOY: _run_deploy,
    StepKind.DELETE: _run_delete,
    StepKind.ERRAND: _run_errand,
}


def run_installation(installation_id: int) -> str:
    """Run an installation's steps in order (the Celery task's body); returns its status.

    Claims the row first (``worker_started_at``), so a redelivered message
    never runs an installation twice; any unexpected error fails the
    installation rather than leaving it running.
    """
    claimed = Installation.objects.filter(
        id=installation_id, status=InstallationStatus.RUNNING, worker_started_at__isnull=True
    ).update(worker_started_at=timezone.now())
    if not claimed:
        log.warning("installation %s not run: not running or already started", installation_id)
        return (
            Installation.objects.filter(id=installation_id).values_list("status", flat=True).first()
            or ""
        )
    inst = Installation.objects.get(id=installation_id)
    failed = False
    message = ""
    try:
        for step in inst.steps.order_by("seq"):
            if step.state != StepState.PENDING:
                continue
            if failed:
                _finish_step(step, StepState.SKIPPED, "not run: an earlier step failed")
                continue
            step.state = StepState.RUNNING
            step.started_at = timezone.now()
            step.save(update_fields=["state", "started_at"])
            try:
                ok = _RUNNERS[step.kind](step, inst)
            except ServiceError as exc:  # the snapshot is missing: say why, not a traceback
                _finish_step(
                    step, StepState.FAILED, "; ".join(m for ms in exc.errors.values() for m in ms)
                )
                ok = False
            except Exception as exc:  # noqa: BLE001 - recorded on the step, never left running
                log.exception("installation %s step %s failed", installation_id, step.seq)
                _finish_step(step, StepState.FAILED, f"unexpected error: {exc}")
                ok = False
            if not ok:
                failed = True
                message = f"{step.label}: {step.message}" if step.message else step.label
    finally:
        Installation.objects.filter(id=installation_id).update(
            status=InstallationStatus.FAILED if failed else InstallationStatus.SUCCEEDED,
            finished_at=timezone.now(),
            message=message,
        )
    return InstallationStatus.FAILED if failed else InstallationStatus.SUCCEEDED
