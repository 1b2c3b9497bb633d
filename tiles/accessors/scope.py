"""What an expression sees (``Scope``) and how a property's value reads as ``.value``.

Shared by every accessor family: the job facts' names, the effective
values of a template, and the variable name a property's secret lives
under (``credential_name``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tiles import properties as props
from tiles.accessors.syntax import AccessorError, Ref
from tiles.render_context import RenderContext
from tiles.template import ProductTemplate

JOB_FACTS = (
    "name",
    "instances",
    "any_instances",
    "cpu",
    "ram",
    "ephemeral_disk",
    "persistent_disk",
    "ips",
    "first_ip",
    "dns_names",
    "subnet_cidrs",
    "deployment_name",
)


@dataclass(frozen=True)
class Scope:
    """What an expression can see.

    ``values`` are the effective values (staged value or default) by
    reference; ``job_facts`` the facts of each job type (see JOB_FACTS);
    ``job`` the job type being rendered (for bare ``prop.value``);
    ``record`` the current collection record with its blueprint.
    """

    template: ProductTemplate
    values: Mapping[str, Any]
    ctx: RenderContext
    job_facts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    job: str | None = None
    record: tuple[Mapping, Mapping] | None = None  # (collection blueprint, record)
    #: the current record's reference, ``<collection reference>.<record guid>``
    record_ref: str | None = None
    depth: int = 0
    variables: frozenset[str] = frozenset()


def unknown_accessor(ref: Ref, what: str = "unknown accessor") -> AccessorError:
    return AccessorError(f"{what} {ref.raw}")


def manifest_value(bp: Mapping, value: Any) -> Any:
    """What ``.value`` gives for a normalised value of this blueprint."""
    t = bp.get("type")
    if value is None:
        return None
    if t == "secret":
        return value.get("secret") if isinstance(value, Mapping) else value
    if t == "selector":
        option = props.SelectorType().find_option(bp, value)
        return value if option is None else props.SelectorType.select_value(option)
    if t == "collection":
        if not isinstance(value, list):
            raise AccessorError("a collection value must be a list of records")
        fields = {f.get("name"): f for f in props.CollectionType.fields(bp)}
        return [
            {k: manifest_value(fields[k], v) if k in fields else v for k, v in rec.items()}
            for rec in value
            if isinstance(rec, Mapping)
        ]
    return value


def credential_name(root: str, deployment: str, reference: str) -> str:
    """The variable of a property: ``/opsmgr/<guid>/a/b`` for ``.properties.a.b`` or ``.a.b``."""
    parts = [p for p in reference.split(".") if p]
    if parts[:1] == ["properties"]:
        parts = parts[1:]
    return "/".join([root.rstrip("/"), deployment, *parts])


def record_id(record: Mapping, index: int) -> str:
    """A collection record's name in variable names: its guid, else its position."""
    guid = record.get("guid")
    return str(guid) if isinstance(guid, str) and re.fullmatch(r"[\w-]+", guid) else str(index)


def effective_values(template: ProductTemplate, values: Mapping[str, Any]) -> dict[str, Any]:
    """Staged values with defaults filled in, for every reference of the template."""
    out: dict[str, Any] = {}
    for pref in template.iter_property_references():
        out[pref.reference] = props.effective_value(pref.blueprint, values, pref.reference)
    return out
