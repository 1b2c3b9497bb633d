"""Django forms built from a tile's blueprints (one form per Settings pane).

A ``FormSpec`` (``tiles.formspec``) describes a pane: its fields, each a
property blueprint with label, description, placeholder, default and
constraints. ``TilePaneForm`` turns it into a Django form whose HTML field
names are derived from the property references (``.properties.a.b`` ->
``properties__a__b``), and hands the submitted values back **by reference**,
validated by ``tiles.properties`` (the one place that knows each blueprint
type), so the view can pass them to ``tiles.services.set_properties``.

Layout: ``form.items`` is the list the templates walk, one ``PaneItem``
per property input; a plain property has one bound field; a selector has
its radio buttons plus the fields of the chosen option (re-rendered on the
server when the choice changes, via htmx); a collection has one
``RecordRow`` per record (rows are added and removed with htmx, or without
JavaScript by the ``_add``/``_remove`` submit buttons, which re-render the
form without saving).

Secrets never go back to the browser: a stored secret, a credential's
password or private key shows as an empty input with the placeholder
``***``; left blank, the stored value is kept. Validation errors land on the
field they belong to (``.properties.c[1].name`` -> the ``name`` input of
the second row) and nothing is returned for saving unless the whole pane
is valid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.forms.utils import ErrorDict

from tiles import properties as props
from tiles.formspec import FieldSpec, FormSpec, OptionSpec
from tiles.template import ProductTemplate

__all__ = [
    "Catalogs",
    "TilePaneForm",
    "PaneItem",
    "RecordRow",
    "field_name",
    "indexed_rows",
    "SECRET_PLACEHOLDER",
]

SECRET_PLACEHOLDER = "***"

TEXTAREA_TYPES = {"text", "ca_certificate"}
INTEGER_TYPES = {"integer", "port"}
SINGLE_CHOICE_TYPES = {"dropdown_select", "smtp_authentication"}
MULTI_CHOICE_TYPES = {"multi_select_options"}
CATALOG_TYPES = {
    "vm_type_dropdown": "vm_types",
    "disk_type_dropdown": "disk_types",
    "service_network_az_single_select": "availability_zones",
}
AZ_MULTI_TYPES = {"service_network_az_multi_select", "az_multi_select"}
#: Credential types and their parts: (key, label, secret?, textarea?).
CREDENTIAL_PARTS = {
    "simple_credentials": (
        ("identity", "Username", False, False),
        ("password", "Password", True, False),
    ),
    "salted_credentials": (
        ("identity", "Username", False, False),
        ("password", "Password", True, False),
        ("salt", "Salt", True, False),
    ),
    "rsa_cert_credentials": (
        ("cert_pem", "Certificate PEM", False, True),
        ("private_key_pem", "Private key PEM", True, True),
    ),
    "rsa_pkey_credentials": (("private_key_pem", "Private key PEM", True, True),),
}
INPUT_TYPES = {"email": forms.EmailInput, "http_url": forms.URLInput}


def field_name(reference: str) -> str:
    """HTML name for a property reference: ``.properties.a.b`` -> ``properties__a__b``."""
    return reference.strip(".").replace(".", "__")


def indexed_rows(data: Mapping, prefix: str) -> list[int]:
    """Row indexes present in ``data`` for names ``<prefix>-<i>-...``, sorted."""
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)-")
    return sorted({int(m.group(1)) for k in data for m in [pattern.match(k)] if m})


@dataclass(frozen=True)
class Catalogs:
    """Choices that come from outside the tile: the director's VM and disk
    types and AZs. ``None`` means not known (free text, not checked)."""

    vm_types: Sequence[str] | None = None
    disk_types: Sequence[str] | None = None
    availability_zones: Sequence[str] | None = None

    def context(self, previous: Mapping[str, Any] | None = None) -> props.ValidationContext:
        return props.ValidationContext(
            vm_types=self.vm_types,
            disk_types=self.disk_types,
            availability_zones=self.availability_zones,
            previous_values=previous or {},
        )


@dataclass
class RecordRow:
    """One collection record in the form: its HTML index and bound fields."""

    index: int
    fields: list  # BoundField
    original: int | None = None  # position of the stored record it edits


@dataclass
class PaneItem:
    """One property input of the pane, as the templates render it."""

    spec: FieldSpec
    name: str
    kind: str  # "field" | "credential" | "selector" | "collection"
    bound: Any = None  # BoundField for field/credential/selector
    parts: list = field(default_factory=list)  # credential part BoundFields
    option: OptionSpec | None = None  # selector: the chosen option
    option_items: list[PaneItem] = field(default_factory=list)
    rows: list[RecordRow] = field(default_factory=list)
    next_index: int = 0
    stored: bool = False  # a secret/credential has a stored value
    errors: list[str] = field(default_factory=list)  # collection-level messages

    @property
    def reference(self) -> str:
        return self.spec.reference


class TilePaneForm(forms.Form):
    """A tile pane as a Django form; ``values`` holds the result by reference.

    ``values`` (constructor): the staged values by reference (normalised, as
    stored, secrets included; they are never rendered). ``selected``
    overrides the chosen option of selectors by reference (the htmx
    re-render of a selector). ``extra_rows``/``remove_rows`` add or drop
    collection rows when re-rendering (no-JS add/remove).
    """

    def __init__(
        self,
        spec: FormSpec,
        template: ProductTemplate,
        values: Mapping[str, Any] | None = None,
        data: Mapping | None = None,
        *,
        catalogs: Catalogs | None = None,
        selected: Mapping[str, str] | None = None,
        previous_values: Mapping[str, Any] | None = None,
        url: str = "",
    ):
        super().__init__(data=data)
        self.url = url
        self.spec = spec
        self.template = template
        self.stored = dict(values or {})
        self.catalogs = catalogs or Catalogs()
        self.previous_values = previous_values or {}
        self._selected = dict(selected or {})
        self.values: dict[str, Any] = {}
        self.items: list[PaneItem] = []
        add_row = data.get("_add") if data is not None else None
        remove_row = data.get("_remove") if data is not None else None
        self.rerender_only = bool(add_row or remove_row)
        for fs in spec.fields:
            if not fs.configurable:
                continue  # generated or fixed by the tile: not the operator's to set
            self.items.append(self._item(fs, add_row, remove_row))

    # ------------------------------------------------------------------ building

    def _initial(self, fs: FieldSpec, ref: str) -> Any:
        v = self.stored.get(ref)
        if props.is_empty(v) and v is not False:
            return fs.default
        return v

    def _item(self, fs: FieldSpec, add_row, remove_row, *, name: str | None = None) -> PaneItem:
        name = name or field_name(fs.reference)
        if fs.type == "selector":
            return self._selector_item(fs, name, add_row, remove_row)
        if fs.type == "collection":
            return self._collection_item(fs, name, add_row, remove_row)
        if fs.type in CREDENTIAL_PARTS:
            return self._credential_item(fs, name, self._initial(fs, fs.reference))
        self.fields[name] = self._django_field(fs, self._initial(fs, fs.reference))
        stored = fs.secret and not props.is_empty(self.stored.get(fs.reference))
        if stored:
            self.fields[name].widget.attrs["placeholder"] = SECRET_PLACEHOLDER
        return PaneItem(fs, name, "field", bound=self[name], stored=stored)

    def _attrs(self, fs: FieldSpec, name: str) -> dict:
        attrs = {"id": f"id_{name}", "aria-describedby": f"help_{name}"}
        if fs.placeholder:
            attrs["placeholder"] = str(fs.placeholder)
        return attrs

    def _catalog_choices(self, key: str) -> list[tuple[str, str]] | None:
        names = getattr(self.catalogs, key)
        return None if names is None else [(n, n) for n in names]

    def _django_field(self, fs: FieldSpec, initial: Any, name: str | None = None) -> forms.Field:
        """A Django field for one blueprint; all ``required=False``: emptiness
        is judged by ``tiles.properties`` so there is one source of messages."""
        t = fs.type
        name = name or field_name(fs.reference)
        attrs = self._attrs(fs, name)
        common = {"label": fs.label, "required": False, "help_text": fs.description}
        if t == "boolean":
            return forms.BooleanField(
                initial=bool(initial), widget=forms.CheckboxInput(attrs), **common
            )
        if t in SINGLE_CHOICE_TYPES or t in CATALOG_TYPES:
            choices = list(fs.choices or [])
            if t in CATALOG_TYPES:
                choices = self._catalog_choices(CATALOG_TYPES[t])
                if choices is None:  # catalog not known: free text
                    return forms.CharField(initial=initial, widget=forms.TextInput(attrs), **common)
            blank = [("", "— choose —")]
            return forms.ChoiceField(
                choices=blank + choices,
                initial=initial,
                widget=forms.Select(attrs),
                **common,
            )
        if t in MULTI_CHOICE_TYPES or t in AZ_MULTI_TYPES:
            choices = list(fs.choices or [])
            if t in AZ_MULTI_TYPES:
                choices = self._catalog_choices("availability_zones") or [
                    (v, v) for v in (initial or [])
                ]
            attrs.pop("aria-describedby", None)
            return forms.MultipleChoiceField(
                choices=choices,
                initial=list(initial or []),
                widget=forms.CheckboxSelectMultiple(attrs),
                **common,
            )
        if fs.secret:  # plain ``secret``
            return forms.CharField(
                initial=None,
                strip=False,
                widget=forms.PasswordInput(attrs, render_value=False),
                **common,
            )
        if t in TEXTAREA_TYPES:
            attrs["rows"] = 4
            return forms.CharField(
                initial=initial, strip=False, widget=forms.Textarea(attrs), **common
            )
        if t in INTEGER_TYPES:
            c = fs.constraints if isinstance(fs.constraints, Mapping) else {}
            for k in ("min", "max"):
                if isinstance(c.get(k), int):
                    attrs[k] = c[k]
            if t == "port":
                attrs.setdefault("min", 1)
                attrs.setdefault("max", 65535)
            return forms.CharField(initial=initial, widget=forms.NumberInput(attrs), **common)
        widget = INPUT_TYPES.get(t, forms.TextInput)
        if t in ("string_list", "network_address_list", "ip_ranges") and isinstance(initial, list):
            initial = ",".join(map(str, initial))
        return forms.CharField(initial=initial, widget=widget(attrs), **common)

    def _credential_item(self, fs: FieldSpec, name: str, initial: Any) -> PaneItem:
        stored = isinstance(initial, Mapping) and any(initial.values())
        parts = []
        for key, label, secret, textarea in CREDENTIAL_PARTS[fs.type]:
            pname = f"{name}__{key}"
            attrs = {"id": f"id_{pname}"}
            if secret:
                if stored:
                    attrs["placeholder"] = SECRET_PLACEHOLDER
                widget = (
                    forms.Textarea({**attrs, "rows": 4})
                    if textarea
                    else forms.PasswordInput(attrs, render_value=False)
                )
                value = None
            else:
                widget = (
                    forms.Textarea({**attrs, "rows": 4}) if textarea else forms.TextInput(attrs)
                )
                value = initial.get(key) if isinstance(initial, Mapping) else None
            self.fields[pname] = forms.CharField(
                label=label, required=False, initial=value, strip=not textarea, widget=widget
            )
            parts.append(self[pname])
        return PaneItem(fs, name, "credential", parts=parts, stored=bool(stored))

    def _selector_item(self, fs: FieldSpec, name: str, add_row, remove_row) -> PaneItem:
        chosen_value = self._selected.get(fs.reference)
        if chosen_value is None and self.is_bound:
            chosen_value = self.data.get(name)
        if chosen_value is None:
            chosen_value = self._initial(fs, fs.reference)
        option = self._find_option(fs, chosen_value)
        if self.is_bound and option is not None:
            shown = self.data.get(f"{name}__shown")
            if shown is not None and shown != option.select_value:
                # No JavaScript: the choice changed, show its fields before saving.
                self.rerender_only = True
        attrs = {
            "hx-get": f"{self.url}?fragment=selector&selector={name}",
            "hx-trigger": "change",
            "hx-target": f"#option-{name}",
            "hx-swap": "outerHTML",
        }
        self.fields[name] = forms.ChoiceField(
            label=fs.label,
            help_text=fs.description,
            required=False,
            choices=list(fs.choices or []),
            initial=option.select_value if option else None,
            widget=forms.RadioSelect(attrs),
        )
        item = PaneItem(fs, name, "selector", bound=self[name], option=option)
        if option is not None:
            for sub in option.fields:
                if sub.configurable:
                    item.option_items.append(self._item(sub, add_row, remove_row))
        return item

    @staticmethod
    def _find_option(fs: FieldSpec, value: Any) -> OptionSpec | None:
        if value is None:
            return fs.options[0] if fs.options else None
        for o in fs.options:
            if o.select_value == str(value):
                return o
        for o in fs.options:
            if o.name == str(value):
                return o
        return fs.options[0] if fs.options else None

    def _collection_item(self, fs: FieldSpec, name: str, add_row, remove_row) -> PaneItem:
        item = PaneItem(fs, name, "collection")
        stored_records = self.stored.get(fs.reference)
        if not isinstance(stored_records, list):
            stored_records = []
        if self.is_bound:
            indexes = indexed_rows(self.data, name)
            originals = {}
            for i in indexes:
                raw = self.data.get(f"{name}-{i}-_original")
                originals[i] = int(raw) if raw and raw.isdigit() else None
            if remove_row and remove_row.startswith(f"{name}-"):
                tail = remove_row[len(name) + 1 :]
                if tail.isdigit():
                    indexes = [i for i in indexes if i != int(tail)]
            if add_row == name:
                indexes.append(max(indexes, default=-1) + 1)
            rows = [(i, originals.get(i), None) for i in indexes]
        else:
            initial = stored_records or (fs.default if isinstance(fs.default, list) else [])
            rows = [(i, i if stored_records else None, rec) for i, rec in enumerate(initial)]
        for index, original, record in rows:
            item.rows.append(self.record_row(fs, name, index, original, record, stored_records))
        item.next_index = max((r.index for r in item.rows), default=-1) + 1
        return item

    def record_row(
        self,
        fs: FieldSpec,
        name: str,
        index: int,
        original: int | None = None,
        record: Mapping | None = None,
        stored_records: Sequence | None = None,
    ) -> RecordRow:
        """Add the Django fields of one collection row and return it bound."""
        old = None
        if original is not None and stored_records and 0 <= original < len(stored_records):
            old = stored_records[original]
        row = RecordRow(index=index, fields=[], original=original)
        for sub in fs.record_fields:
            if not sub.configurable:
                continue
            rname = f"{name}-{index}-{sub.name}"
            value = (record or {}).get(sub.name) if record is not None else sub.default
            if sub.type in CREDENTIAL_PARTS:
                # Credentials in a record: one text box per part, secrets masked.
                for key, label, secret, textarea in CREDENTIAL_PARTS[sub.type]:
                    pname = f"{rname}__{key}"
                    attrs = {"id": f"id_{pname}"}
                    if secret and old and isinstance(old.get(sub.name), Mapping):
                        attrs["placeholder"] = SECRET_PLACEHOLDER
                    widget = (
                        forms.PasswordInput(attrs, render_value=False)
                        if secret and not textarea
                        else forms.Textarea({**attrs, "rows": 3})
                        if textarea
                        else forms.TextInput(attrs)
                    )
                    init = None if secret or not isinstance(value, Mapping) else value.get(key)
                    self.fields[pname] = forms.CharField(
                        label=f"{sub.label}: {label}", required=False, initial=init, widget=widget
                    )
                    row.fields.append(self[pname])
                continue
            self.fields[rname] = self._django_field(sub, value, name=rname)
            if sub.secret and old is not None and not props.is_empty(old.get(sub.name)):
                self.fields[rname].widget.attrs["placeholder"] = SECRET_PLACEHOLDER
            row.fields.append(self[rname])
        if original is not None:
            oname = f"{name}-{index}-_original"
            self.fields[oname] = forms.IntegerField(
                required=False, initial=original, widget=forms.HiddenInput
            )
            row.fields.append(self[oname])
        return row

    # ------------------------------------------------------------------ cleaning

    def _secret_value(self, fs: FieldSpec, raw: str, old: Any) -> Any:
        """A secret input left blank keeps the stored value."""
        if props.is_empty(raw):
            return old if not props.is_empty(old) else None
        return raw

    def _credential_value(self, parts_type: str, raw_parts: Mapping[str, str], old: Any) -> Any:
        old = old if isinstance(old, Mapping) else {}
        out = {}
        for key, _label, secret, _textarea in CREDENTIAL_PARTS[parts_type]:
            v = raw_parts.get(key) or ""
            if secret and not v.strip():
                v = old.get(key) or ""
            elif not secret and not str(v).strip():
                v = old.get(key) or ""
            out[key] = v
        if not any(str(v).strip() for v in out.values()):
            return None
        if parts_type == "rsa_pkey_credentials":
            return {"private_key_pem": out["private_key_pem"]}
        return out

    def _value_of(self, item: PaneItem, cd: Mapping[str, Any]) -> Any:
        fs = item.spec
        if item.kind == "credential":
            raw = {k: cd.get(f"{item.name}__{k}") for k, *_ in CREDENTIAL_PARTS[fs.type]}
            return self._credential_value(fs.type, raw, self.stored.get(fs.reference))
        raw = cd.get(item.name)
        if fs.secret:
            return self._secret_value(fs, raw, self.stored.get(fs.reference))
        if fs.type in INTEGER_TYPES and isinstance(raw, str):
            return raw.strip()
        return raw

    def _record_value(self, fs: FieldSpec, name: str, row: RecordRow, cd, stored_records):
        old = None
        if row.original is not None and 0 <= row.original < len(stored_records):
            old = stored_records[row.original]
        record: dict[str, Any] = {}
        if isinstance(old, Mapping) and "guid" in old:
            record["guid"] = old["guid"]
        for sub in fs.record_fields:
            rname = f"{name}-{row.index}-{sub.name}"
            old_v = old.get(sub.name) if isinstance(old, Mapping) else None
            if not sub.configurable:
                if old_v is not None:
                    record[sub.name] = old_v
                continue
            if sub.type in CREDENTIAL_PARTS:
                raw = {k: cd.get(f"{rname}__{k}") for k, *_ in CREDENTIAL_PARTS[sub.type]}
                v = self._credential_value(sub.type, raw, old_v)
            elif sub.secret:
                v = self._secret_value(sub, cd.get(rname), old_v)
            else:
                v = cd.get(rname)
            if v is not None and not (isinstance(v, str) and v == "" and sub.type != "boolean"):
                record[sub.name] = v
        return record

    def _collect(self, items: list[PaneItem], cd) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for item in items:
            fs = item.spec
            if item.kind == "selector":
                values[fs.reference] = cd.get(item.name) or (
                    item.option.select_value if item.option else None
                )
                values.update(self._collect(item.option_items, cd))
            elif item.kind == "collection":
                stored_records = self.stored.get(fs.reference)
                stored_records = stored_records if isinstance(stored_records, list) else []
                values[fs.reference] = [
                    self._record_value(fs, item.name, row, cd, stored_records) for row in item.rows
                ]
            else:
                values[fs.reference] = self._value_of(item, cd)
        return values

    def _all_items(self, items: list[PaneItem] | None = None):
        for item in self.items if items is None else items:
            yield item
            yield from self._all_items(item.option_items)

    def clean(self):
        cd = super().clean()
        if self.rerender_only:
            return cd
        raw = self._collect(self.items, cd)
        ctx = self.catalogs.context(self.previous_values)
        normalized, errors = props.validate_values(self.template, raw, ctx)
        self.add_reference_errors(errors)
        if not errors:
            self.values = normalized
        return cd

    def add_reference_errors(self, errors: Mapping[str, Any]) -> None:
        """Put errors keyed by property reference (``.properties.c[0].name``)
        on the fields they name; others become form errors naming the reference."""
        by_ref = {item.reference: item for item in self._all_items()}
        for ref, message in errors.items():
            msgs = message if isinstance(message, list | tuple) else [message]
            m = re.fullmatch(r"(.+?)\[(\d+)\]\.?(.*)", ref)
            target = None
            where = ref  # what a message that lands on no field names, in words
            if m and m.group(1) in by_ref:
                item = by_ref[m.group(1)]
                pos, sub = int(m.group(2)), m.group(3).split(".")[0]
                where = f"{item.spec.label}, row {pos + 1}"  # rows counted from 1, as shown
                if pos < len(item.rows):
                    row = item.rows[pos]
                    target = f"{item.name}-{row.index}-{sub}"
                    if target not in self.fields:
                        cred = [f for f in self.fields if f.startswith(f"{target}__")]
                        target = cred[-1] if cred else None
            elif ref in by_ref:
                item = by_ref[ref]
                where = item.spec.label
                target = item.name
                if item.kind == "credential":
                    target = item.parts[-1].name
                elif item.kind == "collection":
                    item.errors.extend(map(str, msgs))
                    continue
            for msg in msgs:
                if target and target in self.fields:
                    self.add_error(target, str(msg))
                else:
                    self.add_error(None, f"{where}: {msg}")

    def _collection_errors(self) -> bool:
        return any(item.errors for item in self._all_items())

    def is_valid(self) -> bool:
        return super().is_valid() and not self._collection_errors() and not self.rerender_only

    def quiet(self) -> TilePaneForm:
        """Drop validation errors (a no-JS add/remove row re-render)."""
        self._errors = ErrorDict()
        for item in self._all_items():
            item.errors.clear()
        return self

    def item(self, name: str) -> PaneItem | None:
        """The item (top level or inside a chosen option) with this HTML name."""
        for item in self._all_items():
            if item.name == name:
                return item
        return None
