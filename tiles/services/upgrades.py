"""Upgrading a staged product to another version: its migrations, what it keeps, what changed.

Staging a newer version of a staged product (``staging.stage_product``)
comes here. As in Ops Manager, the new version's ``migrations/v1/*.js``
that the old version did not ship run first, in name order, over every
property of the old version (``{"properties": {ref: {"value": ...}}}``,
``tiles.jsmigrations``): that is how a tile keeps a value across a renamed
property. The migrated properties are then kept where the new version
declares them and they still validate; others are dropped. A migration that
fails refuses the upgrade (422 naming the file and its message) and nothing
is written.

The upgrade's property changes (renamed, added, removed, changed; secret
parts as ``***``) are kept in ``StagedProduct.upgrade`` for Review Pending
Changes, which shows them until the new version is deployed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opsconsole.errors import ServiceError
from tiles import properties as props
from tiles.jsmigrations import MigrationError, MigrationFile, run_migrations
from tiles.models import Product, StagedProduct
from tiles.template import ProductTemplate

from .properties import _validation_context

__all__ = ["migrations_to_run", "migrate_values", "pending_upgrade"]


def migrations_to_run(old: Product, new: Product) -> list[MigrationFile]:
    """The new version's migrations the old one did not ship (Ops Manager's chaining)."""
    done = {m.get("name") for m in old.migrations or []}
    return [
        MigrationFile(name=m["name"], source=m["source"])
        for m in sorted(new.migrations or [], key=lambda m: m["name"])
        if m.get("name") not in done
    ]


def _to_input(bp: Mapping, value: Any) -> Any:
    if bp.get("type") == "collection" and isinstance(value, list):
        return [
            {k: {"value": v} for k, v in rec.items()} if isinstance(rec, Mapping) else rec
            for rec in value
        ]
    return value


def _from_output(value: Any) -> Any:
    """A migrated value in the stored shape (collection fields unwrapped from ``{value}``)."""
    if isinstance(value, list) and value and all(isinstance(r, Mapping) for r in value):
        if all(isinstance(v, Mapping) and "value" in v for r in value for v in r.values()):
            return [{k: v["value"] for k, v in r.items()} for r in value]
    return value


def _effective(template: ProductTemplate, values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        p.reference: props.effective_value(p.blueprint, values, p.reference)
        for p in template.iter_property_references()
    }


def _shown(bp: Mapping | None, value: Any) -> Any:
    if bp is None:
        return value
    try:
        return props.redact(bp, value)
    except (props.PropertyError, AttributeError, TypeError):
        return props.REDACTED


def migrate_values(
    staged: StagedProduct, new_product: Product
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The values to keep for ``new_product`` and the upgrade record.

    Returns ``(kept, step)``: ``kept`` maps references of the new version to
    stored-shape values (generated credentials not yet filled in); ``step``
    is ``{"from_version", "to_version", "migrations", "changes"}``. Raises
    ``ServiceError`` (422 on ``product_version``) when a migration fails.
    """
    old_product = staged.product
    old, new = old_product.template(), new_product.template()
    stored = staged.all_values()
    before = _effective(old, stored)
    files = migrations_to_run(old_product, new_product)
    migrated = dict(before)
    renamed: list[tuple[str, str]] = []
    if files:
        given = {
            ref: {"value": _to_input(old.blueprint(ref) or {}, v)} for ref, v in before.items()
        }
        try:
            out = run_migrations(files, given, old_product.version)
        except MigrationError as exc:
            raise ServiceError(
                {
                    "product_version": [
                        f"upgrading {old_product.name} {old_product.version} to "
                        f"{new_product.version}: migration {exc.file} failed: {exc.message}"
                    ]
                }
            ) from None
        migrated = {ref: _from_output(entry["value"]) for ref, entry in out.items()}
        gone = [r for r in before if r not in migrated]
        added = [r for r in migrated if r not in before]
        for src in gone:
            for dst in added:
                if migrated[dst] == before[src] and dst not in {d for _, d in renamed}:
                    renamed.append((src, dst))
                    break

    ctx = _validation_context(staged)
    kept: dict[str, Any] = {}
    dropped: dict[str, str] = {}
    for ref, value in migrated.items():
        new_bp = new.blueprint(ref)
        if new_bp is None:
            continue
        touched = ref not in before or before[ref] != value
        if not touched and ref not in stored:
            continue  # a default: it follows the new version's default
        old_bp = old.blueprint(ref)
        if not touched and old_bp is not None and old_bp.get("type") != new_bp.get("type"):
            dropped[ref] = f"its type changed from {old_bp.get('type')} to {new_bp.get('type')}"
            continue
        if props.is_empty(value):
            continue
        if props.is_generated(new_bp) or not props.configurable(new_bp):
            kept[ref] = value  # generated credentials stay
            continue
        normalized, errors = props.validate_values(new, {ref: value}, ctx)
        if errors:
            dropped[ref] = next(iter(errors.values()))
            continue
        kept[ref] = normalized.get(ref)

    after = _effective(new, kept)
    changes: list[dict[str, Any]] = []
    sources = {s for s, _ in renamed}
    targets = {d for _, d in renamed}
    for src, dst in renamed:
        if dst in after:
            changes.append(
                {
                    "change": "renamed",
                    "from": src,
                    "ref": dst,
                    "value": _shown(new.blueprint(dst), after[dst]),
                }
            )
    for ref, value in before.items():
        if ref in sources and any(d in after for s, d in renamed if s == ref):
            continue
        if ref not in after:
            entry = {"change": "removed", "ref": ref, "value": _shown(old.blueprint(ref), value)}
            if ref in dropped:
                entry["reason"] = dropped[ref]
            changes.append(entry)
        elif after[ref] != value:
            entry = {
                "change": "changed",
                "ref": ref,
                "from_value": _shown(old.blueprint(ref), value),
                "value": _shown(new.blueprint(ref), after[ref]),
            }
            if ref in dropped:
                entry["reason"] = f"reset to its default: {dropped[ref]}"
            changes.append(entry)
    for ref, value in after.items():
        if ref not in before and ref not in targets:
            changes.append(
                {"change": "added", "ref": ref, "value": _shown(new.blueprint(ref), value)}
            )
    step = {
        "from_version": old_product.version,
        "to_version": new_product.version,
        "migrations": [f.path for f in files],
        "changes": changes,
    }
    return kept, step


def record_upgrade(staged: StagedProduct, old_version: str, step: dict[str, Any]) -> None:
    """Append ``step`` to the upgrades pending since the last deploy (not saved here)."""
    steps = list((staged.upgrade or {}).get("steps") or [])
    if (
        not steps
        or steps[-1].get("to_version") != old_version
        or (staged.deployed_version == old_version)
    ):
        steps = []
    staged.upgrade = {"steps": [*steps, step]}


def pending_upgrade(staged: StagedProduct) -> list[dict[str, Any]]:
    """The upgrade steps Review Pending Changes shows: those up to the staged version, not
    yet deployed (an empty list otherwise)."""
    steps = (staged.upgrade or {}).get("steps") or []
    if not steps or steps[-1].get("to_version") != staged.product.version:
        return []
    if staged.deployed_version == staged.product.version:
        return []
    return steps
