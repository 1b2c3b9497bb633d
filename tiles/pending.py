"""Review Pending Changes: what the next Apply Changes would do, and Revert.

Per staged product: the action (``install`` never deployed, ``update``
manifest or version differs from the deployed snapshot, ``delete`` marked
for deletion, ``unchanged``), Ops Manager's completeness checks with the
warnings behind them (a stemcell only in the Stemcell Library counts as
present: ``notes`` says Apply Changes will upload it), the unified diff of the manifest against the deployed
one, and the director's plan for the new manifest
(``director.deployments.plan``: instances to create, update, recreate or
delete, and why). For the Director tile: the diff of the cpi-config and
cloud-config it renders against the director's current configs.

Secrets never appear in a diff, whoever asks. A staged manifest holds
none: secrets render as references to the director's variable store
(``((/opsmgr/<guid>/<property>.<accessor>))``), so the diff shows the
reference, as ``om bosh-diff`` does. A manifest deployed by an older
console may still hold values: every credential value the product had, as
staged and as deployed (both, so a changed secret's old value is hidden as
well as its new one), and the values derived from them (a salted
password's hash) are replaced by ``((redacted))`` before the YAML is
compared. A changed secret changes no line of a manifest of references:
the product is then ``update`` and its diff says which properties' values
changed, never how. The Director tile's
configs are redacted the same way: the vCenter password, every value under
a secret-looking key (``opsconsole.redaction``) and those values wherever
else they occur. Their status compares the real values, so a changed
password shows as ``different`` (with a note in place of a diff line)
rather than ``same`` - deliberately more than ``om`` tells.

A config uploaded through the director API under a name the Director tile
writes (``cloud``/``cpi`` ``default``) is replaced by the next Apply
Changes: ``config_replacements`` finds such a version (it is not the one
the last Apply Changes wrote) and the Director tile's entry warns, naming
the config, who uploaded it and when, with the diff from it to what the
tile will write.

``revert_staged`` puts every staged product back to its deployed snapshot
(products never deployed are unstaged) and the Director tile back to what
the last successful apply used.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from django.db import transaction
from django.utils import timezone

from opsconsole.errors import Conflict, ServiceError
from opsconsole.redaction import redact as redact_secret_keys
from opsconsole.redaction import secret_values

from . import director_tile
from . import services as s
from .models import DIRECTOR_PRODUCT_NAME, StagedProduct
from .services import runtime_configs
from .services.upgrades import pending_upgrade

REDACTED = "((redacted))"
_PUBLIC_KEYS = {"identity", "cert_pem", "public_key_pem", "guid"}

__all__ = [
    "REDACTED",
    "secret_strings",
    "changed_secrets",
    "redact",
    "unified_diff",
    "product_change",
    "director_change",
    "pending_changes",
    "product_diff",
    "director_diff",
    "config_replacements",
    "revert_staged",
]


def secret_strings(*secrets: Mapping[str, Any] | None) -> set[str]:
    """The secret strings inside stored credential values (not identities or certificates).

    Takes any number of ``{reference: value}`` maps (staged and deployed
    secrets) and hides the strings of all of them: a value one map changed
    is still hidden as the other had it. A salted credential's
    ``sha512_hashed_password`` counts as secret too.
    """
    out: set[str] = set()

    def walk(value: Any, key: str | None = None) -> None:
        if isinstance(value, str):
            if key not in _PUBLIC_KEYS and len(value) >= 4:
                out.add(value)
        elif isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, k)
            hashed = _hashed_password(value)
            if hashed:
                out.add(hashed)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)

    for values in secrets:
        for v in (values or {}).values():
            walk(v)
    return out


def _hashed_password(value: Mapping) -> str | None:
    from tiles.credentials import CredentialError, sha512_crypt

    password, salt = value.get("password"), value.get("salt")
    if not isinstance(password, str) or not isinstance(salt, str) or not password:
        return None
    try:
        return sha512_crypt(password, salt)
    except CredentialError:
        return None


def changed_secrets(staged: StagedProduct) -> list[str]:
    """References of the secrets whose staged value differs from the deployed one (names only)."""
    if not staged.is_deployed:
        return []
    deployed = (staged.deployed_state or {}).get("secrets") or {}
    current = staged.secrets or {}
    return sorted(r for r in set(deployed) | set(current) if deployed.get(r) != current.get(r))


def _secrets_note(refs: list[str]) -> str:
    return (
        f"# secret values changed: {', '.join(refs)} (the manifest references them; "
        "values are not shown)\n"
    )


def redact(tree: Any, secrets: Iterable[str]) -> Any:
    """A copy of ``tree`` with every occurrence of a secret string replaced by ``((redacted))``."""
    ordered = sorted(set(secrets), key=len, reverse=True)

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            for secret in ordered:
                if secret in node:
                    node = node.replace(secret, REDACTED)
            return node
        if isinstance(node, Mapping):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(tree) if ordered else tree


def _yaml(doc: Any, sort_keys: bool = False) -> str:
    if doc in (None, {}, ""):
        return ""
    return yaml.safe_dump(doc, default_flow_style=False, sort_keys=sort_keys)


def unified_diff(old: str, new: str, label: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(True), new.splitlines(True), f"deployed/{label}", f"staged/{label}"
        )
    )


def _status(old: Any, new: Any) -> str:
    if not old and new:
        return "to_be_installed"
    if old and not new:
        return "to_be_deleted"
    return "same" if old == new else "different"


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
        from director import deployments
    except ImportError:
        return {"error": "planning is not available yet"}
    try:
        return deployments.plan(
            name,
            s.manifest_yaml(manifest),
            vars=dict(credentials or {}),
            runtime_configs=runtime_configs,
        )
    except ServiceError as exc:
        return {"errors": exc.errors}
    except Exception as exc:  # noqa: BLE001 - a preview must never break the page
        return {"errors": {"plan": [f"the plan could not be computed: {exc}"]}}


def _manifests(staged: StagedProduct) -> tuple[dict, dict | None, dict[str, list[str]]]:
    """``(deployed, staged or None, render errors)``, both redacted."""
    state = staged.deployed_state or {}
    # Both maps, not one merged over the other: a changed secret's old value stays hidden.
    hidden = secret_strings(state.get("secrets"), staged.secrets)
    deployed = yaml.safe_load(staged.deployed_manifest) if staged.deployed_manifest else {}
    if staged.marked_for_deletion:
        return redact(deployed or {}, hidden), None, {}
    if runtime_configs.runtime_config_only(staged):
        return {}, {}, {}  # no deployment of its own: only its runtime configs change
    try:
        manifest = s.render_manifest(staged, require_stemcell=False)
    except ServiceError as exc:
        return redact(deployed or {}, hidden), None, exc.errors
    hidden |= secret_strings(staged.secrets)  # rendering may have generated some
    return redact(deployed or {}, hidden), redact(manifest, hidden), {}


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
    staged: StagedProduct, *, with_plan: bool = True, runtime_set: dict[str, str] | None = None
) -> dict:
    """One entry of ``product_changes`` (see the module docstring).

    ``runtime_set``: the runtime configs every staged tile would leave
    (``pending_changes`` computes it once for all products).
    """
    checks, warnings = s.product_checks(staged)
    deployed, manifest, render_errors = _manifests(staged)
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
        "notes": ([] if staged.marked_for_deletion else s.stemcell_notes(staged)) + rc_notes,
        "render_errors": render_errors,
        "errands": s.get_errands(staged),
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
        raw = s.render_manifest(staged, require_stemcell=False)
        entry["plan"] = _plan(
            staged.guid,
            raw,
            {**_runtime_credentials(), **s.manifest_credentials(staged)},
            _runtime_set(runtime_set),
        )
    return entry


def _runtime_set(runtime_set: dict[str, str] | None) -> dict[str, str]:
    if runtime_set is None:
        return runtime_configs.projected(runtime_configs.staged_changes(s.list_staged_products()))
    return runtime_set


def _runtime_credentials() -> dict[str, Any]:
    """The values of the staged runtime configs' secret references (for the plan only)."""
    out: dict[str, Any] = {}
    for sp in s.list_staged_products():
        if sp.marked_for_deletion or not s.product_template(sp).runtime_configs:
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
            staged.guid, s.manifest_yaml(manifest), _runtime_set(runtime_set)
        )
        if names:
            notes.append(
                "the addons of runtime config"
                f"{'s' if len(names) > 1 else ''} {', '.join(names)} change this deployment: "
                "it is redeployed"
            )
    return entries, notes, {}


def _director_configs() -> tuple[dict | None, dict | None, dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    cloud = cpi = None
    try:
        cpi = director_tile.render_cpi_config()
    except ServiceError as exc:
        errors.update(exc.errors)
    try:
        cloud = director_tile.render_cloud_config()
    except ServiceError as exc:
        errors.update(exc.errors)
    return cpi, cloud, errors


def _current_config(type: str, name: str = "default") -> dict | None:
    from director.models import Config

    config = Config.latest(type, name)
    if config is None:
        return None
    return yaml.safe_load(config.content) or {}


def _cpi_secrets(*docs: dict | None) -> set[str]:
    """The vCenter passwords and every value under a secret-looking key of the configs.

    Their occurrences anywhere in either document are hidden, so a password
    also quoted elsewhere (a URL) does not leak through the diff.
    """
    out = set()
    for doc in docs:
        for cpi in (doc or {}).get("cpis", []) or []:
            pw = (cpi.get("properties") or {}).get("password")
            if isinstance(pw, str) and pw:
                out.add(pw)
        out.update(str(v) for v in secret_values(doc or {}) if len(str(v)) >= 4)
    return out


def _redact_config(doc: dict | None, hidden: set[str]) -> dict | None:
    """A config as the diff shows it: secret strings and secret-keyed values ``((redacted))``."""
    if doc is None:
        return None
    return redact_secret_keys(redact(doc, hidden))


def director_diff() -> dict:
    """``GET /api/v0/director/diff``: Ops Manager's shape.

    ``{"manifest": {"status", "diff"}, "cloud_config": {"status", "diff"},
    "runtime_configs": [], "cpi_configs": [{"guid", "iaas_configuration_name",
    "status", "diff"}], "errors": {...}}``. Status is ``same``,
    ``different``, ``to_be_installed``. The director runs inside the console,
    so its own manifest never changes (``same``).
    """
    d = director_tile.get_director()
    cpi, cloud, errors = _director_configs()
    name = ((cpi or {}).get("cpis") or [{}])[0].get("name") or "default"
    cur_cpi = _current_config("cpi", "default")
    cur_cloud = _current_config("cloud", "default")
    hidden = _cpi_secrets(cpi, cur_cpi, cloud, cur_cloud)
    cpi_r, cur_cpi_r = _redact_config(cpi, hidden), _redact_config(cur_cpi, hidden)
    cloud_r, cur_cloud_r = _redact_config(cloud, hidden), _redact_config(cur_cloud, hidden)
    cpi_diff = unified_diff(_yaml(cur_cpi_r, True), _yaml(cpi_r, True), "cpi-config.yml")
    cpi_status = _status(cur_cpi, cpi)
    if cpi_status == "different" and not cpi_diff:
        # Only a secret changed: say so without showing it (om would show no change).
        cpi_diff = "# a secret value changed (vCenter password); values stay ((redacted))\n"
    return {
        "manifest": {"status": "same", "diff": ""},
        "cloud_config": {
            "status": _status(cur_cloud, cloud),
            "diff": unified_diff(
                _yaml(cur_cloud_r, True), _yaml(cloud_r, True), "cloud-config.yml"
            ),
        },
        "runtime_configs": [],
        "cpi_configs": [
            {
                "guid": d.guid,
                "iaas_configuration_name": name,
                "status": cpi_status,
                "diff": cpi_diff,
            }
        ],
        "errors": errors,
    }


def config_replacements() -> list[dict]:
    """Configs the next Apply Changes replaces that the Director tile did not write.

    ``[{"type", "name", "config_id", "uploaded_by", "uploaded_at",
    "message", "diff"}]``: the director's current ``cloud``/``cpi``
    ``default`` when it is not the version the last Apply Changes wrote
    (``tiles.installations`` remembers those) and differs from what the tile
    renders now. ``uploaded_by``/``uploaded_at`` come from the director's
    event for that version. The diff goes from the uploaded config to the
    tile's, secrets ``((redacted))``.
    """
    from director.models import Config, DirectorAttribute, Event
    from director.services import _config_object_type

    from .installations import TILE_CONFIGS_ATTRIBUTE

    written = json.loads(DirectorAttribute.get(TILE_CONFIGS_ATTRIBUTE) or "{}")
    d = director_tile.get_director()
    cpi, cloud, _ = _director_configs()
    out = []
    for type, rendered in (("cloud", cloud), ("cpi", cpi)):
        current = Config.latest(type, "default")
        if current is None or current.id == written.get(f"{type}/default"):
            continue
        if f"{type}/default" not in written and d.deployed_at is not None:
            continue  # applied before the console remembered what it wrote
        try:
            uploaded = yaml.safe_load(current.content) or {}
        except yaml.YAMLError:
            uploaded = {}
        if uploaded == rendered:
            continue  # the same config: replacing it changes nothing
        event = (
            Event.objects.filter(
                object_type=_config_object_type(type),
                object_name="default",
                context__id=current.id,
            )
            .order_by("-id")
            .first()
        )
        who = (event.user if event else "") or "an unknown user"
        when = event.timestamp if event else current.created_at
        hidden = _cpi_secrets(uploaded, rendered)
        diff = unified_diff(
            _yaml(_redact_config(uploaded, hidden), True),
            _yaml(_redact_config(rendered, hidden), True),
            f"{type}-config.yml",
        ).replace("--- deployed/", "--- uploaded/", 1)
        if not diff:
            diff = "# a secret value differs; values stay ((redacted))\n"
        out.append(
            {
                "type": type,
                "name": "default",
                "config_id": current.id,
                "uploaded_by": who,
                "uploaded_at": when.isoformat(),
                "message": (
                    f"{type}-config 'default' (director config {current.id}) was uploaded by "
                    f"{who} at {timezone.localtime(when):%Y-%m-%d %H:%M:%S %Z} through the "
                    "director API, not by "
                    f"this tile: the next Apply Changes replaces it with the tile's {type}-config"
                ),
                "diff": diff,
            }
        )
    return out


def director_change() -> dict:
    """The Director tile's entry in ``product_changes``."""
    d = director_tile.get_director()
    missing = director_tile.director_completeness(d)
    diff = director_diff()
    replacements = config_replacements()
    changed = (
        diff["cloud_config"]["status"] != "same"
        or diff["cpi_configs"][0]["status"] != "same"
        or d.deployed_state != director_tile.director_state(d)
    )
    action = "install" if d.deployed_at is None else ("update" if changed else "unchanged")
    return {
        "guid": d.guid,
        "product_name": DIRECTOR_PRODUCT_NAME,
        "label": "BOSH Director",
        "action": action,
        "completeness_checks": {
            "configuration_complete": not missing,
            "stemcell_present": True,
            "releases_present": True,
            "configurable_properties_valid": not diff["errors"],
        },
        "warnings": [
            *(f"{k}: {m}" for k, ms in {**missing, **diff["errors"]}.items() for m in ms),
            *(r["message"] for r in replacements),
        ],
        "config_replacements": replacements,
        "errands": [],
        "cloud_config_diff": diff["cloud_config"]["diff"],
        "cpi_config_diff": diff["cpi_configs"][0]["diff"],
        "plan": None,
    }


def pending_changes(with_plan: bool = True) -> dict:
    """``{"product_changes": [director, products...]}`` in deployment order."""
    changes = [director_change()]
    staged_products = s.list_staged_products()
    runtime_set = runtime_configs.projected(runtime_configs.staged_changes(staged_products))
    for staged in staged_products:
        changes.append(product_change(staged, with_plan=with_plan, runtime_set=runtime_set))
    return {"product_changes": changes}


def product_diff(guid: str) -> dict:
    """``GET /api/v0/products/{guid}/diff``: ``{"manifest": {"status", "diff"}, "runtime_configs": []}``."""
    staged = s.get_staged_product(guid)
    deployed, manifest, errors = _manifests(staged)
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


def revert_staged() -> None:
    """Discard staged changes (``DELETE /api/v0/staged``); refused while an apply runs."""
    from .installations import running_installation

    running = running_installation()
    if running is not None:
        raise Conflict({"install": [f"Installation {running.id} is running; revert after it ends"]})
    with transaction.atomic():
        for staged in StagedProduct.objects.select_for_update(of=("self",)).select_related(
            "deployed_product"
        ):
            if not staged.is_deployed or staged.deployed_state is None:
                staged.delete()
                continue
            state = staged.deployed_state
            if staged.deployed_product is not None:
                staged.product = staged.deployed_product
            staged.values = state.get("values") or {}
            staged.secrets = state.get("secrets") or {}
            staged.network_and_azs = state.get("network_and_azs") or {}
            staged.resource_config = state.get("resource_config") or {}
            staged.errands = state.get("errands") or {}
            staged.marked_for_deletion = False
            staged.save()
        d = director_tile.get_director()
        if d.deployed_state:
            director_tile.restore_director_state(d.deployed_state)
