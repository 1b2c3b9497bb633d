"""What every blueprint type shares, and the functions on one blueprint.

``PropertyType`` is the base each family module (scalar, network, choice,
collection, credential, catalog) derives from; ``TYPES`` maps a blueprint's
``type`` to its instance and is filled by the package ``__init__``, which
lists every type once. ``validate()``, ``default()`` and the ``is_*`` flags
read one blueprint through that table.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any


class PropertyError(ValueError):
    """A value does not fit its blueprint; ``message`` is safe to show (no secret)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ValidationContext:
    """Facts some types need; ``None`` means "not known, do not check"."""

    vm_types: Collection[str] | None = None
    disk_types: Collection[str] | None = None
    availability_zones: Collection[str] | None = None
    # Values last deployed, by reference, for ``can_only_increase`` and
    # ``freeze_on_deploy``.
    previous_values: Mapping[str, Any] = field(default_factory=dict)


NO_CONTEXT = ValidationContext()


def as_list(node: Any) -> list:
    """``node`` if it is a list, else ``[]``: blueprints are read before (and
    while) the template checker reports a wrongly typed list."""
    return node if isinstance(node, list) else []


def is_empty(value: Any) -> bool:
    """Ops Manager treats nil, blank strings and empty lists as "no value"."""
    return value is None or (isinstance(value, str) and value.strip() == "") or value == []


def optional(bp: Mapping) -> bool:
    return bool(bp.get("optional", False))


def configurable(bp: Mapping, *, in_collection: bool = False) -> bool:
    """Whether the operator sets this property.

    Top-level and job blueprints default to not configurable (Ops Manager's
    rule). Fields of a collection record default to configurable, because real
    tiles (the official example product) list fields without the flag in
    their forms; generated-only types stay non-configurable.
    """
    if "configurable" in bp:
        return bool(bp["configurable"])
    if in_collection:
        return bp.get("type") not in ("uuid", "salted_credentials")
    return False


class PropertyType:
    """Base of the blueprint types. Subclasses override ``coerce``."""

    name = ""
    secret = False  # masked as *** when read back
    credential = False  # a credential (Credentials tab, never logged)
    generatable = False  # Ops Manager generates it when not configurable

    def coerce(self, bp: Mapping, value: Any, ctx: ValidationContext) -> Any:
        """Return the normalised form of a non-empty value or raise PropertyError."""
        return value

    def constraints(self, bp: Mapping, value: Any, ctx: ValidationContext) -> None:
        """Check the blueprint's ``constraints`` on a normalised value."""

    def check(
        self, bp: Mapping, value: Any, ctx: ValidationContext, *, check_constraints: bool
    ) -> Any:
        """Normalise a non-empty value and, when asked, hold it to the constraints."""
        normalized = self.coerce(bp, value, ctx)
        if check_constraints:
            self.constraints(bp, normalized, ctx)
        return normalized

    def default(self, bp: Mapping) -> Any:
        raw = bp.get("default")
        if is_empty(raw):
            return None
        return self.coerce(bp, raw, NO_CONTEXT)


#: Every blueprint type by name; ``tiles.properties`` registers them all.
TYPES: dict[str, PropertyType] = {}


def get_type(name: str) -> PropertyType:
    t = TYPES.get(name) if isinstance(name, str) else None
    if t is None:
        raise PropertyError(f"unknown type '{name}'")
    return t


def validate(
    blueprint: Mapping,
    value: Any,
    context: ValidationContext | None = None,
    *,
    check_constraints: bool = True,
) -> Any:
    """Normalise ``value`` for ``blueprint`` or raise PropertyError.

    An empty value is ``None`` for an optional property and an error for a
    required one. ``check_constraints=False`` checks only the type (used for
    template defaults, which Ops Manager does not hold to constraints).
    """
    ctx = context or NO_CONTEXT
    t = get_type(blueprint.get("type"))
    if is_empty(value):
        if optional(blueprint):
            return None
        raise PropertyError("value is required")
    return t.check(blueprint, value, ctx, check_constraints=check_constraints)


def default(blueprint: Mapping) -> Any:
    """The blueprint's default in normalised form, or None (credentials: None)."""
    return get_type(blueprint.get("type")).default(blueprint)


def is_secret(blueprint: Mapping) -> bool:
    """Read back as ``***``; never logged."""
    return get_type(blueprint.get("type")).secret


def is_credential(blueprint: Mapping) -> bool:
    """A credential type (listed on the Credentials tab, role-gated)."""
    return get_type(blueprint.get("type")).credential


def is_generated(blueprint: Mapping, *, in_collection: bool = False) -> bool:
    """Ops Manager generates the value: a generatable type nobody configures."""
    t = get_type(blueprint.get("type"))
    return t.generatable and not configurable(blueprint, in_collection=in_collection)
