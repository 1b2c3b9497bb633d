"""A product's set of staged values: validation, effective values, completeness.

References are Ops Manager's: ``.properties.x`` (product level), ``.<job>.x``
(job level), ``.properties.sel.<option name>.y`` (inside a selector option).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from tiles.properties.base import (
    NO_CONTEXT,
    TYPES,
    PropertyError,
    ValidationContext,
    configurable,
    default,
    is_empty,
    optional,
    validate,
)
from tiles.properties.choice import SelectorType
from tiles.properties.collection import CollectionType, unwrap_field, validate_collection


class Blueprints(Protocol):
    """What these functions read of a product template (``tiles.template.ProductTemplate``).

    A protocol, so that this package does not import the template parser,
    which itself checks blueprints with this package.
    """

    def blueprint(self, ref: str) -> Mapping | None: ...

    def reference(self, ref: str) -> Any: ...

    def iter_property_references(self) -> Iterable[Any]: ...


def validate_values(
    template: Blueprints,
    values: Mapping[str, Any],
    context: ValidationContext | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate staged values by reference (``.properties.x``, ``.job.x``,
    ``.properties.sel.option.y``).

    Returns the normalised values and errors by reference; collection record
    errors use ``.properties.c[0].field``. Only given values are checked; use
    ``completeness()`` for missing ones.
    """
    ctx = context or NO_CONTEXT
    normalized: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for ref, value in values.items():
        bp = template.blueprint(ref) if isinstance(ref, str) else None
        if bp is None:
            errors[ref if isinstance(ref, str) else repr(ref)] = "unknown property"
            continue
        t = TYPES.get(bp.get("type")) if isinstance(bp.get("type"), str) else None
        if t is None:
            errors[ref] = f"unknown type '{bp.get('type')}'"
            continue
        if is_empty(value):
            if optional(bp) or not configurable(bp):
                normalized[ref] = None
            else:
                errors[ref] = "value is required"
            continue
        if isinstance(t, CollectionType):
            records, errs = validate_collection(bp, value, ctx)
            for path, msg in errs:
                errors[f"{ref}{path}"] = msg
            if not errs:
                normalized[ref] = records
            continue
        try:
            normalized[ref] = validate(bp, value, ctx)
        except PropertyError as e:
            errors[ref] = e.message
            continue
        c = bp.get("constraints")
        previous = ctx.previous_values.get(ref)
        if bp.get("freeze_on_deploy") and not is_empty(previous) and normalized[ref] != previous:
            errors[ref] = "This value cannot be changed once it has been deployed"
            del normalized[ref]
            continue
        if (
            isinstance(c, Mapping)
            and c.get("can_only_increase")
            and isinstance(previous, int)
            and normalized[ref] < previous
        ):
            errors[ref] = f"Value can only increase (it was {previous})"
            del normalized[ref]
    return normalized, errors


def effective_value(bp: Mapping, values: Mapping[str, Any], ref: str) -> Any:
    """The staged value of ``ref``, or the blueprint's default."""
    v = values.get(ref)
    if is_empty(v):
        try:
            return default(bp)
        except PropertyError:
            return None
    return v


def completeness(template: Blueprints, values: Mapping[str, Any]) -> list[str]:
    """References of required configurable properties with neither value nor default.

    Properties inside a selector option count only when that option is the
    selected one; collection records are checked field by field.
    """
    missing: list[str] = []
    for pref in template.iter_property_references():
        if pref.selector is not None and not _option_selected(template, values, pref):
            continue
        bp = pref.blueprint
        if not configurable(bp) or optional(bp):
            continue
        v = effective_value(bp, values, pref.reference)
        if is_empty(v):
            missing.append(pref.reference)
            continue
        if bp.get("type") == "collection" and isinstance(v, list):
            for i, rec in enumerate(v):
                for fbp in CollectionType.fields(bp):
                    name = fbp.get("name")
                    if not configurable(fbp, in_collection=True) or optional(fbp):
                        continue
                    rv = unwrap_field(rec.get(name)) if isinstance(rec, Mapping) else None
                    if is_empty(rv) and default(fbp) is None:
                        missing.append(f"{pref.reference}[{i}].{name}")
    return missing


def _option_selected(template: Blueprints, values: Mapping[str, Any], pref) -> bool:
    """Whether every selector above ``pref`` has ``pref``'s option selected."""
    chain = pref
    while chain.selector is not None:
        sel_bp = template.blueprint(chain.selector)
        if sel_bp is None:
            return False
        chosen = SelectorType().find_option(sel_bp, effective_value(sel_bp, values, chain.selector))
        if chosen is None or chosen.get("name") != chain.option:
            return False
        chain = template.reference(chain.selector)
        if chain is None:
            return True
    return True


# --------------------------------------------------------------------------
