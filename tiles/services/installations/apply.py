"""Apply Changes at the click: check, snapshot, record the steps, queue the worker.

``apply_changes`` checks everything that can be checked at once (no other
installation running, the Director tile complete, the chosen products
complete and renderable), renders each chosen product's manifest once and
keeps it in the snapshot, records an ``Installation`` with its steps, and
queues one Celery task (``tiles.tasks.run_installation``) after the
transaction commits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from director.manifest import ManifestError, parse_cloud_config
from opsconsole.errors import Conflict, ServiceError
from tiles import director_tile, tasks
from tiles.manifest import errands_to_run
from tiles.models import Installation, InstallationStatus, InstallationStep, StagedProduct, StepKind

from .. import runtime_configs
from ..common import product_template
from ..director_changes import _director_configs
from ..panes import get_errands
from ..pending import _action, _manifests
from ..rendering import _bare_context, manifest_yaml, product_checks, render_manifest
from ..staging import list_staged_products, unmet_dependencies
from .records import _running_message, get_installation, running_installation
from .snapshot import _snapshot

log = logging.getLogger(__name__)


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
    by_guid = {sp.guid: sp for sp in staged}
    errors: dict[str, list[str]] = {}
    for guid, cfg in errands.items():
        if guid not in by_guid:
            errors.setdefault(f"errands/{guid}", []).append("is not a staged product guid")
            continue
        if not isinstance(cfg, Mapping):
            errors.setdefault(f"errands/{guid}", []).append("must be a map")
            continue
        names = {e["name"] for e in get_errands(by_guid[guid])}
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
    if action not in ("install", "update"):
        return []
    template = product_template(staged)
    ctx = _bare_context(staged)
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
    if isinstance(ignore_warnings, str):
        ignore_warnings = ignore_warnings.lower() in ("true", "1", "yes")
    running = running_installation()
    if running is not None:
        raise Conflict(_running_message(running))
    errors = _director_errors()
    staged = list_staged_products()
    selected = _selected(deploy_products, staged)
    overrides = _errand_overrides(errands, staged)
    plans, rendered, runtime = _plan_products(selected, overrides, ignore_warnings, errors)
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
        _create_steps(inst, plans)
        transaction.on_commit(lambda: _enqueue(inst.id))
    return inst


def _director_errors() -> dict[str, list[str]]:
    """What keeps the Director tile from applying: incomplete panes, configs that do not render."""
    errors: dict[str, list[str]] = {}
    missing = director_tile.director_completeness()
    _, cloud, render_errors = _director_configs()
    for key, msgs in {**missing, **render_errors}.items():
        errors.setdefault(f"p-bosh/{key}", []).extend(msgs)
    if not errors:
        try:
            parse_cloud_config(cloud)
        except ManifestError as exc:
            for path, msg in exc.errors:
                errors.setdefault(f"p-bosh/cloud_config/{path}", []).append(msg)
    return errors


def _plan_products(
    selected: list[StagedProduct],
    overrides: Mapping,
    ignore_warnings: bool,
    errors: dict[str, list[str]],
) -> tuple[list[tuple[StagedProduct, str, list[str]]], dict[str, str], dict[str, dict[str, str]]]:
    """Each chosen product's action and errands, its manifest and runtime configs.

    ``(plans, rendered, runtime)``: ``[(staged, action, errands)]``, guid ->
    manifest YAML (``""`` for a runtime-config-only tile), guid -> the
    runtime configs it writes. Each manifest is rendered once, here: the
    action compares it with the deployed one, the snapshot keeps it. What
    refuses the apply is added to ``errors`` under the product's guid.
    """
    plans: list[tuple[StagedProduct, str, list[str]]] = []
    rendered: dict[str, str] = {}
    runtime: dict[str, dict[str, str]] = {}
    for sp in selected:
        if sp.marked_for_deletion:
            plans.append((sp, "delete", []))
            runtime[sp.guid] = {}
            continue
        checks, warnings = product_checks(sp)
        # A dependency unstaged since staging: refused, never ignorable.
        missing = unmet_dependencies(sp)
        if missing:
            errors.setdefault(sp.guid, []).extend(missing)
        manifest = None
        try:
            # A runtime-config-only tile has no deployment: an empty manifest, never deployed.
            only_rc = runtime_configs.runtime_config_only(sp)
            manifest = None if only_rc else render_manifest(sp)
            rendered[sp.guid] = "" if only_rc else manifest_yaml(manifest)
            runtime[sp.guid] = runtime_configs.render(sp)
        except ServiceError as exc:
            lines = [f"{key}: {m}" for key, msgs in exc.errors.items() for m in msgs]
            errors.setdefault(sp.guid, []).extend(lines or ["its manifest does not render"])
        if warnings and not ignore_warnings:
            errors.setdefault(sp.guid, []).extend(warnings)
        if sp.guid not in runtime:
            continue  # it did not render: the apply is refused, it has no action
        deployed, staged_manifest, _, _ = _manifests(sp, manifest)
        action = _action(sp, deployed, staged_manifest)
        plans.append((sp, action, _errands_to_run(sp, action, overrides)))
    return plans, rendered, runtime


def _create_steps(inst: Installation, plans: list[tuple[StagedProduct, str, list[str]]]) -> None:
    """The installation's steps in the order the worker runs them."""
    director_guid = director_tile.get_director().guid
    InstallationStep.objects.create(
        installation=inst,
        seq=1,
        kind=StepKind.VCENTER,
        product_guid=director_guid,
        product_name="p-bosh",
        label="Check the vCenter connection",
    )
    seq = 2
    InstallationStep.objects.create(
        installation=inst,
        seq=seq,
        kind=StepKind.CONFIGS,
        product_guid=director_guid,
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


def _enqueue(installation_id: int) -> None:
    try:
        tasks.run_installation.delay(installation_id)
    except Exception as exc:  # the broker is down: say so rather than stay running forever
        log.error("could not queue installation %s: %s", installation_id, exc)
        Installation.objects.filter(id=installation_id, status=InstallationStatus.RUNNING).update(
            status=InstallationStatus.FAILED,
            finished_at=timezone.now(),
            message=f"could not queue the installation (is the task queue running?): {exc}",
        )
