"""How a step runs a director task inline, and the director's steps.

A step's director task is created with ``enqueue=False`` and run here, in
the installation's worker (``director.runner.run_task``): a worker never
waits for another worker to pick a task up, and no other worker races for
it. The director's steps: ``vcenter`` (log in before anything changes),
``configs`` (``configs.update_director_configs``) and ``stemcells``
(upload the library stemcells the products need and the director lacks).
"""

from __future__ import annotations

import time

import yaml

from director import runner
from director.models import Task, TaskState
from director.services import stemcells as director_stemcells
from opsconsole.errors import ServiceError
from tiles import director_tile
from tiles.models import Installation, InstallationStep, Product, StagedProduct, StepKind, StepState

from .. import stemcells
from .configs import CONFIG_TASK_TYPE
from .records import _finish_step
from .snapshot import _snapshot_of

#: How long a step waits for a director task another worker already runs.
FOREIGN_TASK_TIMEOUT = 6 * 3600


def _inline_task(type: str, description: str, user: str, deployment: str = "", args=None) -> Task:
    """A task row this worker runs itself: created queued, never sent to the queue."""
    return runner.create_task(
        type, description, user, deployment_name=deployment, args=args, enqueue=False
    )


def _run_inline(task: Task) -> Task:
    """Run a queued task here; if another worker got it first, follow it to its end."""
    try:
        runner.run_task(task.id)
    except runner.TaskNotRunnable:
        deadline = time.monotonic() + FOREIGN_TASK_TIMEOUT
        while time.monotonic() < deadline:
            task.refresh_from_db()
            if task.is_terminal:
                break
            time.sleep(1)
    task.refresh_from_db()
    return task


def _task_outcome(step: InstallationStep, task: Task) -> bool:
    ok = task.state == TaskState.DONE
    _finish_step(
        step,
        StepState.SUCCEEDED if ok else StepState.FAILED,
        task.result if not ok else (task.result or ""),
        task,
    )
    return ok


def _run_vcenter(step: InstallationStep, inst: Installation) -> bool:
    """Log in to the reviewed cpi-config's vCenter before anything is changed.

    A wrong password, an unreachable host, an untrusted certificate or an
    unknown datacenter fail the installation here, naming the cause and
    the field of the Director tile's vCenter Config to fix; nothing is
    stored or deployed.
    """
    cpi = yaml.safe_load(_snapshot_of(inst)["director"]["cpi_config"]) or {}
    props = ((cpi.get("cpis") or [{}])[0]).get("properties") or {}
    options = props.get("connection_options") or {}
    datacenter = ((props.get("datacenters") or [{}])[0]).get("name") or ""
    iaas = {
        "vcenter_host": props.get("host") or "",
        "vcenter_username": props.get("user") or "",
        "vcenter_password": props.get("password") or "",
        "ssl_verification_enabled": not options.get("insecure", False),
        "vcenter_ca_certificate": options.get("ca_cert") or "",
        "datacenter": datacenter,
    }
    try:
        director_tile.test_vcenter_connection(iaas)
    except ServiceError as exc:
        causes = "; ".join(f"{k}: {m}" for k, ms in exc.errors.items() for m in ms)
        _finish_step(
            step,
            StepState.FAILED,
            f"cannot log in to vCenter {iaas['vcenter_host']} as {iaas['vcenter_username']}: "
            f"{causes}. Fix the BOSH Director tile's vCenter Config and apply again; "
            "nothing was changed or deployed",
        )
        return False
    _finish_step(
        step,
        StepState.SUCCEEDED,
        f"logged in to vCenter {iaas['vcenter_host']} as {iaas['vcenter_username']}; "
        f"datacenter {datacenter} found",
    )
    return True


def _run_configs(step: InstallationStep, inst: Installation) -> bool:
    task = _inline_task(
        CONFIG_TASK_TYPE,
        "update director configs",
        inst.user_name,
        args={"installation_id": inst.id},
    )
    step.task = task
    step.save(update_fields=["task"])
    return _task_outcome(step, _run_inline(task))


def _run_stemcells(step: InstallationStep, inst: Installation) -> bool:
    """Upload the library stemcells this installation's products need and the director lacks."""
    snap = _snapshot_of(inst)["products"]
    guids = [  # a runtime-config-only tile (no manifest) creates no VM: it needs no stemcell
        g
        for g in inst.steps.filter(kind=StepKind.DEPLOY).values_list("product_guid", flat=True)
        if g not in snap or snap[g].get("manifest", True)
    ]
    products = list(StagedProduct.objects.select_related("product").filter(guid__in=guids))
    for sp in products:  # the version reviewed, should it have been upgraded since
        if sp.guid in snap and sp.product_id != snap[sp.guid]["product_id"]:
            sp.product = Product.objects.get(pk=snap[sp.guid]["product_id"])
    plan = stemcells.stemcells_to_upload(products)
    if plan.missing:
        _finish_step(
            step,
            StepState.FAILED,
            "; ".join(
                f"{guid}: missing stemcell {stemcells.criteria_text(c)}: neither the director "
                "nor the Stemcell Library has one"
                for guid, c in plan.missing
            ),
        )
        return False
    if not plan.uploads:
        _finish_step(
            step, StepState.SKIPPED, "no stemcell to upload: the director has every one needed"
        )
        return True
    done = []
    for lib, users in plan.uploads:
        label = f"{lib.name}/{lib.version}"
        try:
            task = director_stemcells.upload_stemcell(lib.path, inst.user_name, enqueue=False)
        except ServiceError as exc:  # the library file is gone or damaged
            msg = "; ".join(m for ms in exc.errors.values() for m in ms)
            _finish_step(step, StepState.FAILED, f"stemcell {label} ({lib.path}): {msg}")
            return False
        step.task = task
        step.save(update_fields=["task"])
        if not task.is_terminal:
            task = _run_inline(task)
        if task.state != TaskState.DONE:
            _finish_step(step, StepState.FAILED, f"stemcell {label}: {task.result}", task)
            return False
        done.append(f"uploaded {label} for {', '.join(users)} (task {task.id})")
    _finish_step(step, StepState.SUCCEEDED, "; ".join(done))
    return True
