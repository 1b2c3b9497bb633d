"""Apply Changes: an Installation and the one worker task that runs its steps.

``apply_changes`` checks everything that can be checked at once (no other
installation running, the Director tile complete, the chosen products
complete and renderable), records an ``Installation`` with its steps, and
queues one Celery task (``tiles.tasks.run_installation``) after the
transaction commits. That task runs the steps in order, in its own worker;
each step is a director ``Task`` run inline with ``director.runner.run_task``
(a worker never waits for another worker to pick a task up). Those tasks are
created with ``enqueue=False``: they never reach the queue, so no other
worker races for them.

What was reviewed is what deploys: at the click, ``apply_changes`` renders
the cpi-config, cloud-config and every chosen product's manifest and keeps
them, with the staged configuration they came from, in the encrypted
``Installation.snapshot``; the worker deploys that snapshot, so an edit
saved after the click waits for the next Apply Changes. The steps:

1. ``vcenter``: log in to the reviewed cpi-config's vCenter (the check
   "Test connection" runs); a wrong password or an unreachable host fails
   the installation here, naming the cause, before anything changes;
2. ``configs``: store the reviewed cpi-config and cloud-config
   (``director.services.update_config``; unchanged content stores
   nothing, and the versions written are remembered so Review Pending
   Changes can tell a config someone else uploaded), the chosen tiles'
   runtime configs (named ``<product guid>-<name>``, uploaded, or deleted
   when the tile no longer has them or is deleted;
   ``tiles.services.runtime_configs``) and the resurrector switch;
3. ``stemcells`` (when products are deployed): upload, from the Stemcell
   Library, every stemcell a product needs that the director lacks
   (``tiles.services.stemcells.stemcells_to_upload``), one director
   ``update_stemcell`` task per stemcell; skipped, saying so, when the
   director has them all;
4. ``deploy`` per chosen product (``director.deployments.deploy``), or
   ``delete`` for a product marked for deletion
   (``director.deployments.delete_deployment``); a product whose manifest,
   version and stemcell did not change is recorded ``unchanged`` and not
   redeployed (deliberately quicker than Ops Manager, which redeploys every
   selected tile) unless runtime configs change it (its own, or addons whose
   include/exclude rules reach it); a runtime-config-only tile (no job
   types) deploys nothing;
5. ``errand`` per post-deploy errand that is on (or ``when-changed`` and the
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

from director import runner, vm_security
from director import syslog as director_syslog
from director.models import DirectorAttribute, Task, TaskEvent, TaskState
from opsconsole.errors import Conflict, NotFound, ServiceError
from opsconsole.redaction import redact_text, register_secret

from . import director_security, director_tile
from .models import (
    Installation,
    InstallationStatus,
    InstallationStep,
    Product,
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
    "installation_events",
    "retry_installation",
    "last_steps",
    "CONFIG_TASK_TYPE",
]

CONFIG_TASK_TYPE = "update_director_configs"
#: DirectorAttribute: ids of the config versions the Director tile wrote last.
TILE_CONFIGS_ATTRIBUTE = "tile_configs"
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


def retry_installation(installation_id: int, user: str) -> Installation:
    """Apply Changes again with a finished installation's product selection and errands.

    The same choice of products (``deploy_products``), errand overrides and
    ``ignore_warnings`` as the installation retried; what deploys is the
    staged configuration as it is now, rendered at this click. Refused as
    ``apply_changes`` refuses (409 while an installation runs).
    """
    inst = get_installation(installation_id)
    if inst.status == InstallationStatus.RUNNING:
        raise Conflict(_running_message(inst))
    return apply_changes(
        user,
        deploy_products=inst.deploy_products,
        errands=inst.errands or None,
        ignore_warnings=inst.ignore_warnings,
    )


def last_steps(guids: list[str]) -> dict[str, InstallationStep]:
    """Per product guid, its step in the newest installation that had one (two queries).

    For the dashboard: a product whose last deploy failed shows so, whatever
    installations ran since without it.
    """
    from django.db.models import Max

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
            settings_ = cfg.get(phase) or {}
            if not isinstance(settings_, Mapping):
                errors.setdefault(f"errands/{guid}/{phase}", []).append(
                    "must be a map of errand name to true, false, when-changed or default"
                )
                continue
            for name, value in settings_.items():
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
    from .services import runtime_configs
    from .services.staging import unmet_dependencies

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
    rendered: dict[str, str] = {}
    runtime: dict[str, dict[str, str]] = {}  # guid -> the runtime configs it writes
    for sp in selected:
        if sp.marked_for_deletion:
            plans.append((sp, "delete", []))
            runtime[sp.guid] = {}
            continue
        checks, warnings = s.product_checks(sp)
        # A dependency unstaged since staging: refused, never ignorable.
        missing = unmet_dependencies(sp)
        if missing:
            errors.setdefault(sp.guid, []).extend(missing)
        try:
            # A runtime-config-only tile has no deployment: an empty manifest, never deployed.
            only_rc = runtime_configs.runtime_config_only(sp)
            rendered[sp.guid] = "" if only_rc else s.manifest_yaml(s.render_manifest(sp))
            runtime[sp.guid] = runtime_configs.render(sp)
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
    plans = _runtime_config_plans(plans, rendered, runtime, overrides)
    snapshot = _snapshot(plans, rendered)
    for guid, configs in runtime.items():
        # Stored with the snapshot (encrypted), uploaded by the configs step.
        entry = snapshot["products"][guid]
        entry["runtime_configs"] = configs
        sp = next(p for p, _, _ in plans if p.guid == guid)
        entry["runtime_credentials"] = runtime_configs.credentials(sp, configs.values())
    with transaction.atomic():
        if running_installation() is not None:  # lost a race with another click
            raise Conflict(_running_message(running_installation()))
        inst = Installation.objects.create(
            user_name=user or "",
            deploy_products=deploy_products if deploy_products is not None else "all",
            errands=overrides,
            ignore_warnings=bool(ignore_warnings),
            snapshot=snapshot,
        )
        InstallationStep.objects.create(
            installation=inst,
            seq=1,
            kind=StepKind.VCENTER,
            product_guid=director_tile.get_director().guid,
            product_name="p-bosh",
            label="Check the vCenter connection",
        )
        seq = 2
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


def _runtime_config_plans(
    plans: list[tuple[StagedProduct, str, list[str]]],
    rendered: Mapping[str, str],
    runtime: Mapping[str, dict[str, str]],
    overrides: Mapping,
) -> list[tuple[StagedProduct, str, list[str]]]:
    """An ``unchanged`` product becomes ``update`` when runtime configs change it.

    Either its own runtime configs change (uploaded, then its deployment
    deployed), or the addons of the runtime configs this apply leaves
    change its deployment (``tiles.services.runtime_configs.affected``:
    the director's include/exclude rules decide).
    """
    from .services import runtime_configs

    new = runtime_configs.projected(runtime)
    out = []
    for sp, action, errands in plans:
        if action == "unchanged" and (
            runtime_configs.current(sp.guid) != runtime.get(sp.guid, {})
            or runtime_configs.affected(sp.guid, rendered.get(sp.guid, ""), new)
        ):
            action = "update"
            errands = _errands_to_run(sp, action, overrides)
        out.append((sp, action, errands))
    return out


def _snapshot(plans: list[tuple[StagedProduct, str, list[str]]], rendered: Mapping) -> dict:
    """What the click deploys (``Installation.snapshot``), rendered now.

    ``{"director": {"guid", "cpi_config", "cloud_config", "settings",
    "state"}, "products": {guid: {"product_id", "name", "version", "action",
    "manifest", "state"}}}``: configs and manifests as the YAML text the
    director gets, ``settings`` the resurrector and meltdown switches,
    ``state`` the staged configuration the deployed snapshot will record,
    ``credentials`` the values of the manifest's secret references
    (``tiles.services.manifest_credentials``), handed to the deploy as vars.
    An edit saved after the click changes none of it.
    """
    import yaml

    from . import services as s

    d = director_tile.get_director()
    cfg = {**director_tile.DIRECTOR_DEFAULTS, **d.director_configuration}
    products: dict[str, dict] = {}
    for sp, action, _ in plans:
        entry: dict[str, Any] = {
            "product_id": sp.product_id,
            "name": sp.product.name,
            "version": sp.product.version,
            "action": action,
        }
        if action != "delete":
            entry["manifest"] = rendered[sp.guid]
            entry["credentials"] = s.manifest_credentials(sp)
            entry["state"] = {
                "values": sp.values,
                "secrets": sp.secrets,
                "network_and_azs": sp.network_and_azs,
                "resource_config": sp.resource_config,
                "errands": sp.errands,
            }
        products[sp.guid] = entry
    return {
        "director": {
            "guid": d.guid,
            "cpi_config": yaml.safe_dump(
                director_tile.render_cpi_config(d), default_flow_style=False, sort_keys=False
            ),
            "cloud_config": yaml.safe_dump(
                director_tile.render_cloud_config(d), default_flow_style=False, sort_keys=False
            ),
            "settings": {
                k: cfg[k]
                for k in (
                    "resurrector_enabled",
                    "minimum_down_jobs",
                    "percent_threshold",
                    "time_threshold",
                )
            },
            "state": director_tile.director_state(d),
            # The Security and Syslog panes, as the director takes them.
            "vm_security": director_security.director_vm_security(d),
            "syslog": director_security.director_syslog(d),
        },
        "products": products,
    }


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


class SnapshotMissing(ServiceError):
    """An installation without the snapshot of what was reviewed (queued by an older console)."""


def _snapshot_of(installation: Installation | int | None) -> dict:
    if not isinstance(installation, Installation):
        installation = Installation.objects.filter(id=installation).first()
    if installation is None or not installation.snapshot:
        raise SnapshotMissing(
            {
                "install": [
                    "this installation holds no snapshot of the reviewed configuration "
                    "(it was queued by an older console): review the pending changes and "
                    "apply again"
                ]
            }
        )
    return installation.snapshot


def _record_tile_config(type: str, config_id: int) -> None:
    """Remember which version of ``(type, "default")`` the Director tile wrote.

    Review Pending Changes compares the director's current version with it:
    a different one was uploaded by someone else, and the next Apply
    Changes replaces it (``tiles.pending.config_replacements``).
    """
    ids = json.loads(DirectorAttribute.get(TILE_CONFIGS_ATTRIBUTE) or "{}")
    ids[f"{type}/default"] = config_id
    DirectorAttribute.set(TILE_CONFIGS_ATTRIBUTE, json.dumps(ids, sort_keys=True))


@runner.task_handler(CONFIG_TASK_TYPE)
def _update_configs(ctx) -> str:
    """Store the reviewed cpi-config and cloud-config, and the resurrector switch.

    They come from the installation's snapshot (``args.installation_id``),
    rendered at the click: a Director tile edit saved since is not applied.
    """
    from director import services as director_services

    user = ctx.task.username
    snap = _snapshot_of(ctx.args.get("installation_id"))["director"]
    d = director_tile.get_director()
    stage = ctx.stage("Updating director configs", total=4)
    changed = []
    with stage.track("cpi-config"):
        update = director_services.update_config("cpi", "default", snap["cpi_config"], user)
        _record_tile_config("cpi", update.config.id)
        if update.changed:
            changed.append("cpi-config")
    ctx.checkpoint()
    with stage.track("cloud-config"):
        update = director_services.update_config("cloud", "default", snap["cloud_config"], user)
        _record_tile_config("cloud", update.config.id)
        if update.changed:
            changed.append("cloud-config")
    ctx.checkpoint()
    changed += _update_runtime_configs(
        ctx, _snapshot_of(ctx.args.get("installation_id"))["products"], user
    )
    with stage.track("resurrector"):
        cfg = snap["settings"]
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
    with stage.track("security and syslog"):
        # Snapshots taken before these panes existed carry neither: nothing to change.
        if "vm_security" in snap and vm_security.set_vm_security(
            snap["vm_security"]["trusted_certs"], snap["vm_security"]["generate_vm_passwords"]
        ):
            changed.append("VM security")
        if "syslog" in snap and director_syslog.set_syslog(snap["syslog"]):
            changed.append("syslog")
    d.deployed_state = snap["state"]
    d.deployed_at = timezone.now()
    d.save(update_fields=["deployed_state", "deployed_at", "updated_at"])
    return ("updated " + ", ".join(changed)) if changed else "configs unchanged"


def _update_runtime_configs(ctx, products: Mapping[str, Mapping], user: str) -> list[str]:
    """Upload the reviewed tiles' runtime configs; delete those a tile no longer has.

    Only products whose snapshot entry carries ``runtime_configs`` (chosen
    at the click; ``{}`` for a deleted tile) are touched. The values of the
    secrets they reference go to the director's variable store first, so
    every deployment their addons reach can resolve them.
    """
    from director import services as director_services
    from director.execution.variables import store_vars

    from .services import runtime_configs

    work: list[tuple[str, str | None]] = []
    for guid, entry in products.items():
        if "runtime_configs" not in entry:
            continue
        store_vars("", entry.get("runtime_credentials") or {})  # absolute names: no deployment
        old = runtime_configs.current(guid)
        new = entry["runtime_configs"]
        work += [(name, text) for name, text in new.items() if old.get(name) != text]
        work += [(name, None) for name in old if name not in new]
    if not work:
        return []
    stage = ctx.stage("Updating runtime configs", total=len(work))
    changed = []
    for name, text in work:
        with stage.track(name):
            if text is None:
                director_services.delete_config(runtime_configs.RUNTIME, name, user)
                changed.append(f"runtime-config {name} (deleted)")
            else:
                director_services.update_config(runtime_configs.RUNTIME, name, text, user)
                changed.append(f"runtime-config {name}")
    return changed


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


def _run_vcenter(step: InstallationStep, inst: Installation) -> bool:
    """Log in to the reviewed cpi-config's vCenter before anything is changed.

    A wrong password, an unreachable host, an untrusted certificate or an
    unknown datacenter fail the installation here, naming the cause and
    the field of the Director tile's vCenter Config to fix; nothing is
    stored or deployed.
    """
    import yaml

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
    from director import services as director_services

    from .services import stemcells

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
    # The manifest rendered at the click, not the staged configuration as it is now.
    reviewed = _snapshot_of(inst)["products"].get(sp.guid)
    if reviewed is None or "manifest" not in reviewed:
        _finish_step(step, StepState.FAILED, f"{sp.guid} is not in the installation's snapshot")
        return False
    text = reviewed["manifest"]
    if not text:  # a runtime-config-only tile: the configs step uploaded all it has
        product = Product.objects.filter(pk=reviewed["product_id"]).first() or sp.product
        s._mark_deployed(sp, "", product=product, state=reviewed["state"])
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
        s._mark_deployed(sp, text, product=product, state=reviewed["state"])
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
