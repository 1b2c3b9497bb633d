"""Each product's steps: deploy its reviewed manifest, delete it, run its errands.

A deploy hands the director the manifest rendered at the click (the
snapshot) with the values of its secret references as ``vars``; once it
succeeds the product's deployed snapshot is recorded (``deployed``). A
product whose manifest did not change is skipped (``unchanged``).
"""

from __future__ import annotations

from director.models import Deployment
from director.services import deployments, errands
from opsconsole.errors import ServiceError
from tiles.models import Installation, InstallationStep, Product, StagedProduct, StepState

from ..common import product_template
from ..deployed import _mark_deployed
from ..panes import AUTOMATIC, get_resource_config
from .records import _finish_step
from .snapshot import _snapshot_of
from .steps import _run_inline, _task_outcome


def _run_deploy(step: InstallationStep, inst: Installation) -> bool:
    sp = StagedProduct.objects.select_related("product").filter(guid=step.product_guid).first()
    if sp is None:
        _finish_step(step, StepState.FAILED, f"{step.product_guid} is no longer staged")
        return False
    if step.action == "unchanged":
        _finish_step(step, StepState.SKIPPED, "no changes: the deployment is up to date")
        return True
    # The manifest rendered at the click, not the staged configuration as it is now.
    reviewed = _snapshot_of(inst)["products"].get(sp.guid)
    if reviewed is None or "manifest" not in reviewed:
        _finish_step(step, StepState.FAILED, f"{sp.guid} is not in the installation's snapshot")
        return False
    text = reviewed["manifest"]
    if not text:  # a runtime-config-only tile: the configs step uploaded all it has
        product = Product.objects.filter(pk=reviewed["product_id"]).first() or sp.product
        _mark_deployed(sp, "", product=product, state=reviewed["state"])
        _finish_step(
            step,
            StepState.SUCCEEDED,
            "runtime configs only: uploaded with the director configs, no deployment to deploy",
        )
        return True
    try:
        # The reviewed secret values go to the director's variable store, not into the task.
        credentials = reviewed.get("credentials") or None
        task = deployments.deploy(text, inst.user_name, vars=credentials, enqueue=False)
    except ServiceError as exc:
        msg = "; ".join(f"{k}: {m}" for k, ms in exc.errors.items() for m in ms)
        _finish_step(step, StepState.FAILED, msg)
        return False
    step.task = task
    step.save(update_fields=["task"])
    task = _run_inline(task)
    ok = _task_outcome(step, task)
    if ok:
        product = Product.objects.filter(pk=reviewed["product_id"]).first() or sp.product
        _mark_deployed(sp, text, product=product, state=reviewed["state"])
    return ok


def _run_delete(step: InstallationStep, inst: Installation) -> bool:
    sp = StagedProduct.objects.filter(guid=step.product_guid).first()
    if sp is None:
        _finish_step(step, StepState.SUCCEEDED, "already deleted")
        return True
    if not Deployment.objects.filter(name=sp.guid).exists():
        sp.delete()
        _finish_step(step, StepState.SUCCEEDED, f"deployment {sp.guid} did not exist")
        return True
    try:
        task = deployments.delete_deployment(sp.guid, inst.user_name, enqueue=False)
    except ServiceError as exc:
        msg = "; ".join(f"{k}: {m}" for k, ms in exc.errors.items() for m in ms)
        _finish_step(step, StepState.FAILED, msg)
        return False
    step.task = task
    step.save(update_fields=["task"])
    ok = _task_outcome(step, _run_inline(task))
    if ok:
        sp.delete()
    return ok


def _run_errand(step: InstallationStep, inst: Installation) -> bool:
    if _errand_instances(step.product_guid, step.errand) == 0:
        # Ops Manager's way to switch an errand job off: 0 instances, nothing to run on.
        _finish_step(
            step, StepState.SKIPPED, f"errand {step.errand} skipped: its job has 0 instances"
        )
        return True
    try:
        task = errands.run_errand(step.product_guid, step.errand, inst.user_name, enqueue=False)
    except ServiceError as exc:
        msg = "; ".join(f"{k}: {m}" for k, ms in exc.errors.items() for m in ms)
        _finish_step(step, StepState.FAILED, msg)
        return False
    step.task = task
    step.save(update_fields=["task"])
    return _task_outcome(step, _run_inline(task))


def _errand_instances(guid: str, errand: str) -> int | None:
    """Instances of the errand's own job type (None for an errand colocated on other jobs)."""
    staged = StagedProduct.objects.filter(guid=guid).first()
    if staged is None or product_template(staged).job_type(errand) is None:
        return None
    rc = get_resource_config(staged, errand)
    count = rc["instances"]
    return rc["automatic"].get("instances") if count == AUTOMATIC else count
