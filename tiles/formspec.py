"""Form descriptions built from a tile's ``form_types`` (pure data, no Django).

Each ``form_types`` entry is one pane of the tile's Settings tab. Its
``property_inputs`` name the properties shown, with labels, descriptions
and placeholders. This module joins them with the ``property_blueprints``
into ``FormSpec``/``FieldSpec`` values that the Django forms and htmx
templates render:

- a plain property is one field (type, required, default, choices for
  dropdowns and multi-selects, secret flag, constraints);
- a selector is one field whose ``options`` each carry their own fields
  (from ``selector_property_inputs``, whose labels name the options; an
  option without inputs there shows its configurable properties);
- a collection is one field whose ``nested`` fields describe one record
  (from the nested ``property_inputs``, else every configurable field).

``FieldSpec.reference`` is the full property reference for properties
(``.properties.x``, ``.web.x``, ``.properties.sel.option.y``) and the bare
field name for collection record fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tiles import properties as props
from tiles.template import ProductTemplate

__all__ = ["FieldSpec", "OptionSpec", "FormSpec", "build_form_specs", "build_form_spec"]


@dataclass(frozen=True)
class OptionSpec:
    """One choice of a selector: its value, label and the fields it reveals."""

    name: str
    select_value: str
    label: str
    fields: tuple[FieldSpec, ...] = ()


@dataclass(frozen=True)
class FieldSpec:
    reference: str
    name: str
    type: str
    label: str
    description: str = ""
    placeholder: str | None = None
    required: bool = False
    default: Any = None
    choices: tuple[tuple[str, str], ...] | None = None  # (value, label)
    options: tuple[OptionSpec, ...] = ()  # selectors
    record_fields: tuple[FieldSpec, ...] = ()  # collections
    secret: bool = False
    credential: bool = False
    configurable: bool = True
    freeze_on_deploy: bool = False
    display_type: str | None = None
    constraints: Any = None
    unique: bool = False

    @property
    def nested(self) -> Mapping[str, tuple[FieldSpec, ...]] | tuple[FieldSpec, ...] | None:
        """Selectors: option name -> fields; collections: a record's fields."""
        if self.type == "selector":
            return {o.name: o.fields for o in self.options}
        if self.type == "collection":
            return self.record_fields
        return None


@dataclass(frozen=True)
class FormSpec:
    name: str
    label: str
    description: str = ""
    markdown: str | None = None
    fields: tuple[FieldSpec, ...] = field(default_factory=tuple)


def _text(v: Any) -> str:
    return "" if v is None else str(v).strip()


def _default(bp: Mapping) -> Any:
    try:
        return props.default(bp)
    except props.PropertyError:
        return None


def _field(
    template: ProductTemplate,
    ref: str,
    bp: Mapping,
    inp: Mapping,
    *,
    in_collection: bool = False,
) -> FieldSpec:
    t = bp.get("type")
    choices = None
    options: tuple[OptionSpec, ...] = ()
    record_fields: tuple[FieldSpec, ...] = ()
    if t in ("dropdown_select", "multi_select_options"):
        choices = tuple(
            (str(o.get("name")), _text(o.get("label")) or str(o.get("name")))
            for o in bp.get("options") or []
            if isinstance(o, Mapping)
        )
    elif t == "smtp_authentication":
        choices = tuple((c, c) for c in props.SmtpAuthenticationType.choices)
    elif t == "selector":
        options = _selector_options(template, ref, bp, inp)
        choices = tuple((o.select_value, o.label) for o in options)
    elif t == "collection":
        record_fields = _record_fields(template, bp, inp)
    return FieldSpec(
        reference=ref,
        name=bp.get("name"),
        type=t,
        label=_text(inp.get("label")) or _text(bp.get("label")) or bp.get("name"),
        description=_text(inp.get("description")) or _text(bp.get("description")),
        placeholder=inp.get("placeholder") or bp.get("placeholder"),
        required=not props.optional(bp),
        default=_default(bp),
        choices=choices,
        options=options,
        record_fields=record_fields,
        secret=props.is_secret(bp),
        credential=props.is_credential(bp),
        configurable=props.configurable(bp, in_collection=in_collection),
        freeze_on_deploy=bool(bp.get("freeze_on_deploy")),
        display_type=inp.get("display_type") or bp.get("display_type"),
        constraints=bp.get("constraints"),
        unique=bool(bp.get("unique")),
    )


def _selector_options(
    template: ProductTemplate, ref: str, bp: Mapping, inp: Mapping
) -> tuple[OptionSpec, ...]:
    declared = {}
    for sel in inp.get("selector_property_inputs") or []:
        if isinstance(sel, Mapping) and isinstance(sel.get("reference"), str):
            declared[sel["reference"].rpartition(".")[2]] = sel
    out = []
    for opt in props.SelectorType.options(bp):
        name = opt.get("name")
        sel = declared.get(name)
        if sel is not None and sel.get("property_inputs") is not None:
            fields = tuple(
                _field(template, sub["reference"], template.blueprint(sub["reference"]), sub)
                for sub in sel.get("property_inputs") or []
                if isinstance(sub, Mapping)
                and template.blueprint(sub.get("reference", "")) is not None
            )
        else:
            fields = tuple(
                _field(template, f"{ref}.{name}.{child['name']}", child, {})
                for child in opt.get("property_blueprints") or []
                if isinstance(child, Mapping) and props.configurable(child)
            )
        label = (
            (_text(sel.get("label")) if sel is not None and sel.get("label") else None)
            or _text(opt.get("label"))
            or props.SelectorType.select_value(opt)
        )
        out.append(
            OptionSpec(
                name=name,
                select_value=props.SelectorType.select_value(opt),
                label=label,
                fields=fields,
            )
        )
    return tuple(out)


def _record_fields(template: ProductTemplate, bp: Mapping, inp: Mapping) -> tuple[FieldSpec, ...]:
    fields = {f.get("name"): f for f in props.CollectionType.fields(bp)}
    subs = inp.get("property_inputs")
    if subs:
        return tuple(
            _field(template, sub["reference"], fields[sub["reference"]], sub, in_collection=True)
            for sub in subs
            if isinstance(sub, Mapping) and sub.get("reference") in fields
        )
    return tuple(
        _field(template, name, f, {}, in_collection=True)
        for name, f in fields.items()
        if props.configurable(f, in_collection=True)
    )


def build_form_spec(template: ProductTemplate, form: Mapping | str) -> FormSpec:
    """One pane; ``form`` is a ``form_types`` entry or its name (KeyError if unknown)."""
    if isinstance(form, str):
        matches = [f for f in template.form_types if f.get("name") == form]
        if not matches:
            raise KeyError(form)
        form = matches[0]
    fields = []
    for inp in form.get("property_inputs") or []:
        if not isinstance(inp, Mapping):
            continue
        bp = template.blueprint(inp.get("reference", ""))
        if bp is None:
            continue  # load_product_template already refused such templates
        fields.append(_field(template, inp["reference"], bp, inp))
    return FormSpec(
        name=form.get("name"),
        label=_text(form.get("label")) or form.get("name"),
        description=_text(form.get("description")),
        markdown=form.get("markdown"),
        fields=tuple(fields),
    )


def build_form_specs(template: ProductTemplate) -> list[FormSpec]:
    """All panes of the tile, in template order."""
    return [build_form_spec(template, f) for f in template.form_types if isinstance(f, Mapping)]
