"""Review Pending Changes: what the next Apply Changes would do.

Per staged product: the action (``install`` never deployed, ``update``
manifest or version differs from the deployed snapshot, ``delete`` marked
for deletion, ``unchanged``), Ops Manager's completeness checks with the
warnings behind them (a stemcell only in the Stemcell Library counts as
present: ``notes`` says Apply Changes will upload it), the unified diff of
the manifest against the deployed one, and the director's plan for the new
manifest (``director.services.deployments.plan``: instances to create, update,
recreate or delete, and why). The Director tile's entry is
``director_changes``'s.

Each product's manifest is rendered once per review: the diff and the plan
share it, and ``pending_changes`` hands it back to a caller that asks
(``rendered``) so the page's foresight does not render it again.

Secrets never appear in a diff, whoever asks. A staged manifest holds
none: secrets render as references to the director's variable store
(``((/opsmgr/<guid>/<property>.<accessor>))``), so the diff shows the
reference, as ``om bosh-diff`` does. A manifest deployed by an older
console may still hold values: they are ``((redacted))`` before the YAML
is compared (``diffs``). A changed secret changes no line of a manifest of
references: the product is then ``update`` and its diff says which
properties' values changed, never how.

Revert is ``revert``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import yaml

from director.services import deployments
from opsconsole.errors import ServiceError
from tiles.models import StagedProduct

from . import runtime_configs
from .common import product_template
from .diffs import (
    _secrets_note,
    _status,
    _yaml,
    changed_secrets,
    redact,
    secret_strings,
    unified_diff,
)
from .director_changes import director_change
from .panes import get_errands
from .rendering import manifest_credentials, manifest_yaml, product_checks, render_manifest
from .staging import get_staged_product, list_staged_products
from .stemcells import stemcell_notes
from .upgrades import pending_upgrade


def _plan(
    name: str,
    manifest: dict,
    credentials: Mapping[str, Any] | None = None,
    runtime_configs: dict[str, str] | None = None,
) -> dict:
    """The director's plan; ``credentials`` resolve the manifest's secret references in memory.

    ``runtime_configs`` are the runtime configs the apply would leave (the
    staged tiles' own in place of what the director holds).
    """
    try:
        return deployments.plan(
            name,
            manifest_yaml(manifest),
            vars=dict(credentials or {}),
            runtime_configs=runtime_configs,
        )
    except ServiceError as exc:
        return {"errors": exc.errors}
    except Exception as exc:  # noqa: BLE001 - a preview must never break the page
        return {"errors": {"plan": [f"the plan could not be computed: {exc}"]}}


class Manifests(NamedTuple):
    """A product's manifests: ``deployed`` and ``staged`` redacted for the diff (``staged``
    None when it cannot be rendered or the product is deleted), the render ``errors``,
    and ``raw``, the staged manifest as rendered (secret references, no values) for the
    plan, the page's foresight and Apply Changes' snapshot."""

    deployed: dict
    staged: dict | None
    errors: dict[str, list[str]]
    raw: dict | None = None


def _manifests(staged: StagedProduct, raw: dict | None = None) -> Manifests:
    """The deployed and staged manifests of a product; ``raw`` when the caller rendered it."""
    state = staged.deployed_state or {}
    # Both maps, not one merged over the other: a changed secret's old value stays hidden.
    hidden = secret_strings(state.get("secrets"), staged.secrets)
    deployed = yaml.safe_load(staged.deployed_manifest) if staged.deployed_manifest else {}
    if staged.marked_for_deletion:
        return Manifests(redact(deployed or {}, hidden), None, {})
    if runtime_configs.runtime_config_only(staged):
        return Manifests({}, {}, {})  # no deployment of its own: only its runtime configs change
    if raw is None:
        try:
            raw = render_manifest(staged, require_stemcell=False)
        except ServiceError as exc:
            return Manifests(redact(deployed or {}, hidden), None, exc.errors)
    hidden |= secret_strings(staged.secrets)  # rendering may have generated some
    return Manifests(redact(deployed or {}, hidden), redact(raw, hidden), {}, raw)


def _manifest_diff(staged: StagedProduct, deployed: dict, manifest: dict | None) -> str:
    diff = unified_diff(_yaml(deployed), _yaml(manifest), "manifest.yml")
    changed = changed_secrets(staged) if manifest is not None else []
    return diff + _secrets_note(changed) if changed else diff


def _action(staged: StagedProduct, deployed: dict, manifest: dict | None) -> str:
    if staged.marked_for_deletion:
        return "delete"
    if not staged.is_deployed:
        return "install"
    if staged.deployed_version != staged.product.version:
        return "update"
    if manifest is None or manifest != deployed or changed_secrets(staged):
        return "update"
    return "unchanged"


def product_change(
    staged: StagedProduct,
    *,
    with_plan: bool = True,
    runtime_set: dict[str, str] | None = None,
    rendered: dict[str, dict] | None = None,
) -> dict:
    """One entry of ``product_changes`` (see the module docstring).

    ``runtime_set``: the runtime configs every staged tile would leave
    (``pending_changes`` computes it once for all products). ``rendered``,
    when given, receives the staged manifest (guid -> manifest) if it renders.
    """
    checks, warnings = product_checks(staged)
    deployed, manifest, render_errors, raw = _manifests(staged)
    if rendered is not None and raw is not None:
        rendered[staged.guid] = raw
    action = _action(staged, deployed, manifest)
    rc_entries, rc_notes, rc_errors = _runtime_configs(staged, manifest, runtime_set)
    if action == "unchanged" and rc_notes:
        action = "update"  # only its runtime configs (or another tile's addons) change it
    render_errors = {**render_errors, **rc_errors}
    if render_errors:
        warnings = [*warnings, *(f"{k}: {m}" for k, ms in render_errors.items() for m in ms)]
    entry: dict[str, Any] = {
        "guid": staged.guid,
        "product_name": staged.product.name,
        "label": staged.product.label,
        "action": action,
        "staged": {"product_version": staged.product.version},
        "deployed": {"product_version": staged.deployed_version} if staged.is_deployed else None,
        "completeness_checks": checks,
        "warnings": warnings,
        # Not warnings: things Apply Changes will do first (upload a library stemcell).
        "notes": ([] if staged.marked_for_deletion else stemcell_notes(staged)) + rc_notes,
        "render_errors": render_errors,
        "errands": get_errands(staged),
        "manifest_diff": _manifest_diff(staged, deployed, manifest)
        if action != "unchanged"
        else "",
        # Ops Manager's ``[{"name", "status", "diff"}]``.
        "runtime_configs": rc_entries,
        "plan": None,
        # The upgrade's property changes (migrations run, renamed/added/removed; secrets ***).
        "upgrade": pending_upgrade(staged),
    }
    if rc_entries:  # the page's "Runtime configs" block: every config's diff in one text
        entry["runtime_configs_diff"] = "".join(e["diff"] for e in rc_entries)
    if with_plan and manifest and action in ("install", "update"):
        entry["plan"] = _plan(
            staged.guid,
            raw,
            {**_runtime_credentials(), **manifest_credentials(staged)},
            _runtime_set(runtime_set),
        )
    return entry


def _runtime_set(runtime_set: dict[str, str] | None) -> dict[str, str]:
    if runtime_set is None:
        return runtime_configs.projected(runtime_configs.staged_changes(list_staged_products()))
    return runtime_set


def _runtime_credentials() -> dict[str, Any]:
    """The values of the staged runtime configs' secret references (for the plan only)."""
    out: dict[str, Any] = {}
    for sp in list_staged_products():
        if sp.marked_for_deletion or not product_template(sp).runtime_configs:
            continue
        try:
            out.update(runtime_configs.credentials(sp, runtime_configs.render(sp).values()))
        except ServiceError:
            continue
    return out


def _runtime_configs(
    staged: StagedProduct, manifest: dict | None, runtime_set: dict[str, str] | None
) -> tuple[list[dict], list[str], dict[str, list[str]]]:
    """``(diff entries, notes, render errors)`` of a product's runtime configs.

    The notes say why a product is ``update`` for them: its own runtime
    configs change, or runtime configs (its own or another tile's) change
    the addons of its deployment, by the director's include/exclude rules.
    """
    try:
        entries = runtime_configs.diffs(staged)
    except ServiceError as exc:
        return [], [], exc.errors
    notes = [
        f"runtime config {e['name']}: {e['status'].replace('_', ' ')}"
        for e in entries
        if e["status"] != "same"
    ]
    if manifest and staged.is_deployed and not staged.marked_for_deletion:
        names = runtime_configs.affected(
            staged.guid, manifest_yaml(manifest), _runtime_set(runtime_set)
        )
        if names:
            notes.append(
                "the addons of runtime config"
                f"{'s' if len(names) > 1 else ''} {', '.join(names)} change this deployment: "
                "it is redeployed"
            )
    return entries, notes, {}


def pending_changes(with_plan: bool = True, rendered: dict[str, dict] | None = None) -> dict:
    """``{"product_changes": [director, products...]}`` in deployment order.

    ``rendered``, when given, receives each staged manifest that rendered
    (guid -> manifest), so the page need not render it again.
    """
    changes = [director_change()]
    staged_products = list_staged_products()
    runtime_set = runtime_configs.projected(runtime_configs.staged_changes(staged_products))
    for staged in staged_products:
        changes.append(
            product_change(staged, with_plan=with_plan, runtime_set=runtime_set, rendered=rendered)
        )
    return {"product_changes": changes}


def product_diff(guid: str) -> dict:
    """``GET /api/v0/products/{guid}/diff``: ``{"manifest": {"status", "diff"}, "runtime_configs": []}``."""
    staged = get_staged_product(guid)
    deployed, manifest, errors, _ = _manifests(staged)
    status = _status(deployed, manifest) if not errors else "error"
    if status == "same" and changed_secrets(staged):
        status = "different"  # only secret values changed: the note names them
    try:
        rc_entries = runtime_configs.diffs(staged)
    except ServiceError as exc:
        rc_entries, errors = [], {**errors, **exc.errors}
    return {
        "manifest": {
            "status": status,
            "diff": _manifest_diff(staged, deployed, manifest),
        },
        "runtime_configs": rc_entries,
        "errors": errors,
    }
