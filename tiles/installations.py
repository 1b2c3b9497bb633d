"""Apply Changes: an Installation and the one worker task that runs its steps.

``apply_changes`` checks everything that can be checked at once (no other
installation running, the Director tile complete, the chosen products
complete and renderable), records an ``Installation`` with its steps, and
queues one Celery task (``tiles.tasks.run_installation``) after the
transaction commits. That task runs the steps in order, in its own worker;
each step is a director ``Task`` run inline with ``director.runner.run_task``
(a worker never waits for another worker to pick a task up). Those tasks are
created with ``enqueue=False``: they never reach the queue, so no other
worker races for them:

1. ``configs``: store the cpi-config and cloud-config the Director tile
   renders (``director.services.update_config``; unchanged content stores
   nothing) and the resurrector switch;
2. ``stemcells`` (when products are deployed): upload, from the Stemcell
   Library, every stemcell a product needs that the director lacks
   (``tiles.services.stemcells.stemcells_to_upload``), one director
   ``update_stemcell`` task per stemcell; skipped, saying so, when the
   director has them all;
3. ``deploy`` per chosen product (``director.deployments.deploy``), or
   ``delete`` for a product marked for deletion
   (``director.deployments.delete_deployment``); a product whose manifest,
   version and stemcell did not change is recorded ``unchanged`` and not
   redeployed (deliberately quicker than Ops Manager, which redeploys every
   selected tile);
4. ``errand`` per post-deploy errand that is on (or ``when-changed`` and the
   product changed). The director cannot run errands yet: such steps are
   recorded as skipped, saying so in the log.

The first failing step fails the installation; later steps are skipped.
Stemcells come from the Stemcell Library (``POST /api/v0/stemcells`` and
the Stemcells page keep every imported file): a product whose stemcell is
neither in the director nor in the library cannot be applied ("missing
stemcell").

The installation log is the event logs of its steps' tasks, formatted the way
the bosh CLI prints them, one section per step.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from director import runner
from director.models import DirectorAttribute, Task, TaskEvent, TaskState
from director.services import Conflict, NotFound, ServiceError
from opsconsole.redaction import redact_text, register_secret

from . import director_tile
from .models import (
    Installation,
    InstallationStatus,
    InstallationStep,
    StagedProduct,
    StepKind,
    StepState,
)

log = logging.getLogger(__name__)

__all__ = [
    "apply_changes",
    "run_installation",
    "running_installation",
    "list_installations",
    "get_installation",
    "installation_logs",
    "CONFIG_TASK_TYPE",
]

CONFIG_TASK_TYPE = "update_director_configs"
#: How long a step waits for a director task another worker already runs.
FOREIGN_TASK_TIMEOUT = 6 * 3600


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


def list_installations():
    """Installations, newest first, with their steps."""
    return Installation.objects.order_by("-id").prefetch_related("steps")


def get_installation(installation_id: int) -> Installation:
    inst = Installation.objects.filter(id=installation_id).prefetch_related("steps").first()
    if inst is None:
        raise NotFound({"id": [f"Installation {installation_id} does not exist"]})
    return inst


# --------------------------------------------------------------------------- apply


def _selected(deploy_products: Any, staged: list[StagedProduct]) -> list[StagedProduct]:
    if deploy_products in (None, "all"):
        return staged
    if deploy_products == "none":
        return []
    if isinstance(deploy_products, str):
        deploy_products = [deploy_products]
    if not isinstance(deploy_products, list) or not all(
        isinstance(g, str) for g in deploy_products
    ):
        raise ServiceError({"deploy_products": ['must be "all", "none" or a list of guids']})
    by_guid = {sp.guid: sp for sp in staged}
    director_guid = director_tile.get_director().guid
    unknown = [g for g in deploy_products if g not in by_guid and g != director_guid]
    if unknown:
        raise ServiceError(
            {"deploy_products": [f"'{g}' is not a staged product guid" for g in unknown]}
        )
    return [by_guid[g] for g in deploy_products if g in by_guid]


def _errand_overrides(errands: Any, staged: list[StagedProduct]) -> dict:
    """Validate ``{guid: {"run_post_deploy": {name: bool|"when-changed"}, "run_pre_delete": {}}}``."""
    if errands in (None, {}):
        return {}
    if not isinstance(errands, Mapping):
        raise ServiceError({"errands": ["must be a map of product guid to errand settings"]})
    from . import services as s

    by_guid = {sp.guid: sp for sp in staged}
    errors: dict[str, list[str]] = {}
    for guid, cfg in errands.items():
        if guid not in by_guid:
            errors.setdefault(f"errands/{guid}", []).append("is not a staged product guid")
            continue
        if not isinstance(cfg, Mapping):
            errors.setdefault(f"errands/{guid}", []).append("must be a map")
            continue
        names = {e["name"] for e in s.get_errands(by_guid[guid])}
        for phase in ("run_post_deploy", "run_pre_delete"):
            for name, value in (cfg.get(phase) or {}).items():
                if name not in names:
                    errors.setdefault(f"errands/{guid}/{phase}/{name}", []).append(
                        "is not an errand of this product"
                    )
                elif value not in (True, False, "when-changed", "default"):
                    errors.setdefault(f"errands/{guid}/{phase}/{name}", []).append(
                        "must be true, false, when-changed or default"
                    )
    if errors:
        raise ServiceError(errors)
    return dict(errands)


def _errands_to_run(staged, action: str, overrides: Mapping) -> list[str]:
    from tiles.manifest import errands_to_run

    from . import services as s

    if action not in ("install", "update"):
        return []
    template = s.product_template(staged)
    ctx = s._bare_context(staged)
    run = []
    override = (overrides.get(staged.guid) or {}).get("run_post_deploy") or {}
    for name, state in errands_to_run(template, ctx, "post_deploy"):
        state = override.get(name, state)
        if state in (True, "when-changed"):  # an install or update is a change
            run.append(name)
    for name, value in override.items():
        if value is True and name not in run:
            run.append(name)
    return run


def apply_changes(
    user: str,
    deploy_products: Any = "all",
    errands: Mapping | None = None,
    ignore_warnings: bool = False,
) -> Installation:
    """Start Apply Changes; returns the running ``Installation`` (API: 202).

    Refused with 409 naming the running installation while one runs; with
    422 when the Director tile is incomplete, when a chosen product cannot
    be rendered, or (unless ``ignore_warnings``) when a chosen product has
    warnings (incomplete configuration, missing stemcell or release). The
    director's configs always go; ``deploy_products`` chooses the products
    (``"all"``, ``"none"`` or guids). ``errands`` overrides the saved errand
    switches for this apply only (Ops Manager's ``run_post_deploy`` shape).
    """
    from . import pending
    from . import services as s

    if isinstance(ignore_warnings, str):
        ignore_warnings = ignore_warnings.lower() in ("true", "1", "yes")
    running = running_installation()
    if running is not None:
        raise Conflict(_running_message(running))
    errors: dict[str, list[str]] = {}
    missing = director_tile.director_completeness()
    cpi_cloud = pending._director_configs()
    for key, msgs in {**missing, **cpi_cloud[2]}.items():
        errors.setdefault(f"p-bosh/{key}", []).extend(msgs)
    if not errors:
        from director.manifest import ManifestError, parse_cloud_config

        try:
            parse_cloud_config(cpi_cloud[1])
        except ManifestError as exc:
            for path, msg in exc.errors:
                errors.setdefault(f"p-bosh/cloud_config/{path}", []).append(msg)
    staged = s.list_staged_products()
    selected = _selected(deploy_products, staged)
    overrides = _errand_overrides(errands, staged)
    plans: list[tuple[StagedProduct, str, list[str]]] = []
    for sp in selected:
        if sp.marked_for_deletion:
            plans.append((sp, "delete", []))
            continue
        checks, warnings = s.product_checks(sp)
        try:
            s.render_manifest(sp)
        except ServiceError as exc:
            for key, msgs in exc.errors.items():
                errors.setdefault(sp.guid, []).extend(f"{key}: {m}" for m in msgs)
        if warnings and not ignore_warnings:
            errors.setdefault(sp.guid, []).extend(warnings)
        deployed, manifest, _ = pending._manifests(sp)
        action = pending._action(sp, deployed, manifest)
        plans.append((sp, action, _errands_to_run(sp, action, overrides)))
    if errors:
        raise ServiceError(errors)
    with transaction.atomic():
        if running_installation() is not None:  # lost a race with another click
            raise Conflict(_running_message(running_installation()))
        inst = Installation.objects.create(
            user_name=user or "",
            deploy_products=deploy_products if deploy_products is not None else "all",
            errands=overrides,
            ignore_warnings=bool(ignore_warnings),
        )
        seq = 1
        InstallationStep.objects.create(
            installation=inst,
            seq=seq,
            kind=StepKind.CONFIGS,
            product_guid=director_tile.get_director().guid,
            product_name="p-bosh",
            label="Update director configs (cpi-config, cloud-config)",
            action="update",
        )
        if any(action != "delete" for _, action, _ in plans):
            seq += 1
            InstallationStep.objects.create(
                installation=inst,
                seq=seq,
                kind=StepKind.STEMCELLS,
                label="Upload missing stemcells",
            )
        for sp, action, _ in plans:
            seq += 1
            InstallationStep.objects.create(
                installation=inst,
                seq=seq,
                kind=StepKind.DELETE if action == "delete" else StepKind.DEPLOY,
                product_guid=sp.guid,
                product_name=sp.product.name,
                product_version=sp.product.version,
                label=f"{'Delete' if action == 'delete' else 'Deploy'} {sp.product.label or sp.product.name} ({sp.guid})",
                action=action,
            )
        for sp, _, errand_names in plans:
            for name in errand_names:
                seq += 1
                InstallationStep.objects.create(
                    installation=inst,
                    seq=seq,
                    kind=StepKind.ERRAND,
                    product_guid=sp.guid,
                    product_name=sp.product.name,
                    product_version=sp.product.version,
                    label=f"Run errand {name} for {sp.guid}",
                    errand=name,
                )
        transaction.on_commit(lambda: _enqueue(inst.id))
    return inst


def _running_message(running: Installation) -> dict:
    when = timezone.localtime(running.started_at).strftime("%Y-%m-%d %H:%M:%S %Z")
    return {
        "install": [
            f"Installation {running.id} started by {running.user_name or 'someone'} at {when} "
            "is still running; wait for it to finish"
        ]
    }


def _enqueue(installation_id: int) -> None:
    from . import tasks

    try:
        tasks.run_installation.delay(installation_id)
    except Exception as exc:  # the broker is down: say so rather than stay running forever
        log.error("could not queue installation %s: %s", installation_id, exc)
        Installation.objects.filter(id=installation_id, status=InstallationStatus.RUNNING).update(
            status=InstallationStatus.FAILED,
            finished_at=timezone.now(),
            message=f"could not queue the installation (is the task queue running?): {exc}",
        )


# --------------------------------------------------------------------------- run (worker)


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


@runner.task_handler(CONFIG_TASK_TYPE)
def _update_configs(ctx) -> str:
    """Store the Director tile's cpi-config and cloud-config, and the resurrector switch."""
    import yaml

    from director import services as director_services

    user = ctx.task.username
    d = director_tile.get_director()
    stage = ctx.stage("Updating director configs", total=3)
    changed = []
    with stage.track("cpi-config"):
        doc = director_tile.render_cpi_config(d)
        text = yaml.safe_dump(doc, default_flow_style=False, sort_keys=False)
        if director_services.update_config("cpi", "default", text, user).changed:
            changed.append("cpi-config")
    ctx.checkpoint()
    with stage.track("cloud-config"):
        doc = director_tile.render_cloud_config(d)
        text = yaml.safe_dump(doc, default_flow_style=False, sort_keys=False)
        if director_services.update_config("cloud", "default", text, user).changed:
            changed.append("cloud-config")
    with stage.track("resurrector"):
        cfg = {**director_tile.DIRECTOR_DEFAULTS, **d.director_configuration}
        if director_services.resurrection_enabled() != bool(cfg["resurrector_enabled"]):
            director_services.set_resurrection(bool(cfg["resurrector_enabled"]), user)
            changed.append("resurrection")
        DirectorAttribute.set(
            "hm_meltdown",
            json.dumps(
                {
                    "minimum_down_jobs": cfg["minimum_down_jobs"],
                    "percent_threshold": cfg["percent_threshold"],
                    "time_threshold": cfg["time_threshold"],
                }
            ),
        )
    d.deployed_state = director_tile.director_state(d)
    d.deployed_at = timezone.now()
    d.save(update_fields=["deployed_state", "deployed_at", "updated_at"])
    return ("updated " + ", ".join(changed)) if changed else "configs unchanged"


def _finish_step(step: InstallationStep, state: str, message: str = "", task: Task | None = None):
    step.state = state
    step.message = redact_text(message)  # an error may quote a config line with a password
    if task is not None:
        step.task = task
    step.finished_at = timezone.now()
    step.save(update_fields=["state", "message", "task", "finished_at"])


def _task_outcome(step: InstallationStep, task: Task) -> bool:
    ok = task.state == TaskState.DONE
    _finish_step(
        step,
        StepState.SUCCEEDED if ok else StepState.FAILED,
        task.result if not ok else (task.result or ""),
        task,
    )
    return ok


def _run_configs(step: InstallationStep, inst: Installation) -> bool:
    task = _inline_task(CONFIG_TASK_TYPE, "update director configs", inst.user_name)
    step.task = task
    step.save(update_fields=["task"])
    return _task_outcome(step, _run_inline(task))


def _run_stemcells(step: InstallationStep, inst: Installation) -> bool:
    """Upload the library stemcells this installation's products need and the director lacks."""
    from director import services as director_services

    from .services import stemcells

    guids = list(inst.steps.filter(kind=StepKind.DEPLOY).values_list("product_guid", flat=True))
    products = StagedProduct.objects.select_related("product").filter(guid__in=guids)
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
            task = director_services.upload_stemcell(lib.path, inst.user_name, enqueue=False)
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


def _run_deploy(step: InstallationStep, inst: Installation) -> bool:
    from director import deployments

    from . import services as s

    sp = StagedProduct.objects.select_related("product").filter(guid=step.product_guid).first()
    if sp is None:
        _finish_step(step, StepState.FAILED, f"{step.product_guid} is no longer staged")
        return False
    if step.action == "unchanged":
        _finish_step(step, StepState.SKIPPED, "no changes: the deployment is up to date")
        return True
    try:
        manifest = s.render_manifest(sp)
        text = s.manifest_yaml(manifest)
        task = deployments.deploy(text, inst.user_name, enqueue=False)
    except ServiceError as exc:
        msg = "; ".join(f"{k}: {m}" for k, ms in exc.errors.items() for m in ms)
        _finish_step(step, StepState.FAILED, msg)
        return False
    step.task = task
    step.save(update_fields=["task"])
    task = _run_inline(task)
    ok = _task_outcome(step, task)
    if ok:
        s._mark_deployed(sp, text)
    return ok


def _run_delete(step: InstallationStep, inst: Installation) -> bool:
    from director import deployments
    from director.models import Deployment

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
    from director import deployments

    run_errand = getattr(deployments, "run_errand", None)
    if run_errand is None:
        _finish_step(
            step,
            StepState.SKIPPED,
            f"errand {step.errand} skipped: running errands is not implemented by the director yet",
        )
        return True
    if _errand_instances(step.product_guid, step.errand) == 0:
        # Ops Manager's way to switch an errand job off: 0 instances, nothing to run on.
        _finish_step(
            step, StepState.SKIPPED, f"errand {step.errand} skipped: its job has 0 instances"
        )
        return True
    try:
        task = run_errand(step.product_guid, step.errand, inst.user_name, enqueue=False)
    except ServiceError as exc:
        msg = "; ".join(f"{k}: {m}" for k, ms in exc.errors.items() for m in ms)
        _finish_step(step, StepState.FAILED, msg)
        return False
    step.task = task
    step.save(update_fields=["task"])
    return _task_outcome(step, _run_inline(task))


def _errand_instances(guid: str, errand: str) -> int | None:
    """Instances of the errand's own job type (None for an errand colocated on other jobs)."""
    from . import services as s

    staged = StagedProduct.objects.filter(guid=guid).first()
    if staged is None or s.product_template(staged).job_type(errand) is None:
        return None
    rc = s.get_resource_config(staged, errand)
    count = rc["instances"]
    return rc["automatic"].get("instances") if count == s.AUTOMATIC else count


_RUNNERS = {
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


# --------------------------------------------------------------------------- logs


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


def installation_logs(installation_id: int) -> str:
    """The installation log: each step, then its task's event log."""
    inst = get_installation(installation_id)
    lines = [
        f"Installation {inst.id} by {inst.user_name or '-'}, started "
        f"{timezone.localtime(inst.started_at):%Y-%m-%d %H:%M:%S %Z}: {inst.status}"
    ]
    steps = list(inst.steps.order_by("seq"))
    task_ids = [st.task_id for st in steps if st.task_id]
    events: dict[int, list[dict]] = {}
    for task_id, data in (
        TaskEvent.objects.filter(task_id__in=task_ids)
        .order_by("task_id", "seq")
        .values_list("task_id", "data")
    ):
        events.setdefault(task_id, []).append(data)
    for st in steps:
        head = f"===== {st.label}: {st.state}"
        if st.task_id:
            head += f" (task {st.task_id})"
        lines.append(head)
        for e in events.get(st.task_id, []):
            lines.append(format_event(st.task_id, e))
        if st.message:
            lines.append(st.message)
    if inst.message and inst.status == InstallationStatus.FAILED:
        lines.append(f"Installation failed: {inst.message}")
    # Task logs were redacted by the worker that wrote them; redact again with the
    # secrets this process knows, the vCenter password among them.
    register_secret(director_tile.get_director().vcenter_password)
    return redact_text("\n".join(lines) + "\n")
