"""The ``collection`` type: a list of records ``{field name: normalised value}``.

Each field of a record is a blueprint of its own, validated by
``validate()``; ``guid`` is Ops Manager's record identity, kept as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tiles.properties.base import (
    NO_CONTEXT,
    PropertyError,
    PropertyType,
    ValidationContext,
    as_list,
    configurable,
    default,
    is_empty,
    is_secret,
    optional,
    validate,
)


class CollectionType(PropertyType):
    name = "collection"

    @staticmethod
    def fields(bp: Mapping) -> list[Mapping]:
        # Fields without a text name are reported by the template checker.
        return [
            f
            for f in as_list(bp.get("property_blueprints"))
            if isinstance(f, Mapping) and isinstance(f.get("name"), str)
        ]

    def check(self, bp, value, ctx, *, check_constraints):
        # Records are checked field by field, each against its own blueprint.
        records, errors = validate_collection(bp, value, ctx, check_constraints=check_constraints)
        if errors:
            raise PropertyError(_first_error(errors))
        return records

    def coerce(self, bp, value, ctx):
        records, errors = validate_collection(bp, value, ctx, check_constraints=False)
        if errors:
            raise PropertyError(_first_error(errors))
        return records

    def default(self, bp):
        raw = bp.get("default")
        if is_empty(raw):
            return None
        records, errors = validate_collection(bp, raw, NO_CONTEXT, check_constraints=False)
        if errors:
            raise PropertyError(_first_error(errors))
        return records


def row_words(path: str) -> str:
    """A record path in the form's words, rows counted from 1: ``[1].name`` -> ``row 2, name``."""
    head, _, field = path.partition("].")
    if head.startswith("[") and head[1:].rstrip("]").isdigit():
        row = f"row {int(head[1:].rstrip(']')) + 1}"
        return f"{row}, {field}" if field else row
    return path


def _first_error(errors: list[tuple[str, str]]) -> str:
    path, msg = errors[0]
    return f"{row_words(path)}: {msg}" if path else msg


def _shown(value: Any) -> str:
    """A record's value as the operator typed it, quoted: ``"web"``, ``"8080"``."""
    if isinstance(value, bool):
        return '"true"' if value else '"false"'
    return f'"{value}"'


def unwrap_field(value: Any) -> Any:
    """Accept the API's ``{"value": x, "type": ...}`` wrapping of record fields."""
    if isinstance(value, Mapping) and "value" in value:
        if set(value) <= {"value", "type", "configurable", "credential", "optional"}:
            return value["value"]
    return value


def validate_collection(
    bp: Mapping,
    value: Any,
    ctx: ValidationContext,
    *,
    check_constraints: bool = True,
) -> tuple[list[dict], list[tuple[str, str]]]:
    """Validate collection records; errors are ``("[i].field", message)``.

    With ``check_constraints=False`` (template defaults) only the types are
    checked: a default record may leave required fields to the operator.
    """
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list | tuple):
        return [], [("", "must be a list of records")]
    fields = {f.get("name"): f for f in CollectionType.fields(bp)}
    records: list[dict] = []
    errors: list[tuple[str, str]] = []
    for i, record in enumerate(value):
        if not isinstance(record, Mapping):
            errors.append((f"[{i}]", "must be a mapping of field names to values"))
            continue
        out: dict[str, Any] = {}
        for name, raw in record.items():
            if name not in fields:
                if name == "guid":  # Ops Manager's record identity, kept as is
                    guid = unwrap_field(raw)
                    if isinstance(guid, str):
                        out[name] = guid
                    else:
                        errors.append((f"[{i}].guid", "must be a string"))
                    continue
                errors.append((f"[{i}].{name}", "unknown field"))
                continue
            fbp = fields[name]
            raw = unwrap_field(raw)
            if is_empty(raw):
                continue
            try:
                out[name] = validate(fbp, raw, ctx, check_constraints=check_constraints)
            except PropertyError as e:
                errors.append((f"[{i}].{name}", e.message))
        for name, fbp in fields.items():
            if name in out:
                continue
            d = default(fbp)
            if d is not None:
                out[name] = d
            elif (
                check_constraints
                and configurable(fbp, in_collection=True)
                and not optional(fbp)
                and fbp.get("type") != "boolean"
            ):
                errors.append((f"[{i}].{name}", "value is required"))
        records.append(out)
    for name, fbp in fields.items():
        if fbp.get("unique") and check_constraints:
            # Rows are counted from 1, as the form shows them.
            seen: dict[str, int] = {}
            for i, rec in enumerate(records):
                key = repr(rec.get(name))
                if name in rec and key in seen:
                    first = seen[key] + 1
                    if is_secret(fbp) or isinstance(rec[name], Mapping | list):  # no secret echoed
                        msg = f"must be unique: row {first} has the same value"
                    else:
                        msg = f"must be unique: row {first} already uses {_shown(rec[name])}"
                    errors.append((f"[{i}].{name}", msg))
                seen.setdefault(key, i)
    return records, errors


# --------------------------------------------------------------------------
# A product's set of values
