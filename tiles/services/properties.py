"""A staged product's properties: read (masked), write (validated), generate.

Values are validated against their blueprints by ``tiles.properties``.
Secret and credential values (and collections holding one) are stored only
in the encrypted ``StagedProduct.secrets``; reads show them as ``***``
unless revealed, and a ``***`` sent back keeps the stored value. Generated
credentials and collection record guids are filled in on every write, as
Ops Manager does.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from opsconsole.errors import ServiceError
from tiles import credentials as creds
from tiles import director_tile
from tiles import properties as props
from tiles.accessors import AccessorError
from tiles.director_tile import MASK, get_director
from tiles.models import StagedProduct
from tiles.template import ProductTemplate

from . import versions
from .common import _err, product_template, root_ca


def _validation_context(staged: StagedProduct | None = None) -> props.ValidationContext:
    d = get_director()
    previous = {}
    if staged is not None and staged.deployed_state:
        previous = {
            **(staged.deployed_state.get("values") or {}),
            **(staged.deployed_state.get("secrets") or {}),
        }
    return props.ValidationContext(
        vm_types=[t["name"] for t in director_tile.vm_types()],
        disk_types=[t["name"] for t in director_tile.disk_types()],
        availability_zones=[a["name"] for a in d.availability_zones],
        previous_values=previous,
    )


def _secret_ref(bp: Mapping) -> bool:
    """Stored encrypted: secret/credential types, and collections holding one."""
    try:
        if props.is_secret(bp) or props.is_credential(bp):
            return True
    except props.PropertyError:
        return False
    if bp.get("type") == "collection":
        return any(_secret_ref(f) for f in props.CollectionType.fields(bp))
    return False


def _store(staged: StagedProduct, template: ProductTemplate, values: Mapping[str, Any]) -> None:
    """Put normalised values into ``values``/``secrets``; None removes (back to default)."""
    plain = dict(staged.values or {})
    secret = dict(staged.secrets or {})
    for ref, value in values.items():
        bp = template.blueprint(ref) or {}
        target, other = (secret, plain) if _secret_ref(bp) else (plain, secret)
        other.pop(ref, None)
        if value is None:
            target.pop(ref, None)
        else:
            target[ref] = value
    staged.values = plain
    staged.secrets = secret


def _generated_values(
    template: ProductTemplate, values: Mapping[str, Any], evaluate=None
) -> dict[str, Any]:
    """Credentials and uuids to generate for ``values``, as Ops Manager does.

    A certificate whose domains hold ``(( ))`` accessors is generated only
    when ``evaluate`` is given and they evaluate (at render time).
    """
    out: dict[str, Any] = {}
    ca = None
    for pref in template.iter_property_references():
        bp = pref.blueprint
        ref = pref.reference
        if bp.get("type") == "collection":
            records = values.get(ref)
            if not isinstance(records, list) or not records:
                continue
            changed, new_records = False, []
            for rec in records:
                rec = dict(rec)
                if not rec.get("guid"):
                    rec["guid"] = str(uuid.uuid4())
                    changed = True
                for fbp in props.CollectionType.fields(bp):
                    name = fbp.get("name")
                    if props.is_generated(fbp, in_collection=True) and props.is_empty(
                        rec.get(name)
                    ):
                        if fbp.get("type") == "rsa_cert_credentials":
                            ca = ca or root_ca()
                        try:
                            rec[name] = creds.generate_credential(fbp, root_ca=ca)
                            changed = True
                        except creds.CredentialError:
                            continue
                new_records.append(rec)
            if changed:
                out[ref] = new_records
            continue
        try:
            generated = props.is_generated(bp)
        except props.PropertyError:
            continue
        if not generated or not props.is_empty(values.get(ref)):
            continue
        domains = None
        if bp.get("type") == "rsa_cert_credentials":
            ca = ca or root_ca()
            hint = bp.get("default") if isinstance(bp.get("default"), Mapping) else {}
            raw = [str(d) for d in hint.get("domains") or []]
            if any("((" in d for d in raw):
                if evaluate is None:
                    continue
                try:
                    domains = [str(evaluate(d)) if "((" in d else d for d in raw]
                except AccessorError:
                    continue
        try:
            out[ref] = creds.generate_credential(bp, root_ca=ca, domains=domains)
        except creds.CredentialError:
            continue
    return out


def _mask(bp: Mapping, value: Any) -> Any:
    """A secret value as Ops Manager reads it back: ``***`` for every secret part."""
    if value is None:
        return None
    t = bp.get("type")
    if t == "secret":
        return {"secret": MASK}
    if t == "simple_credentials" and isinstance(value, Mapping):
        return {"identity": value.get("identity"), "password": MASK}
    if t == "salted_credentials" and isinstance(value, Mapping):
        return {"identity": value.get("identity"), "password": MASK, "salt": MASK}
    if t == "rsa_cert_credentials" and isinstance(value, Mapping):
        return {"cert_pem": value.get("cert_pem"), "private_key_pem": MASK}
    if t == "rsa_pkey_credentials" and isinstance(value, Mapping):
        return {"private_key_pem": MASK, "public_key_pem": value.get("public_key_pem")}
    if t == "collection" and isinstance(value, list):
        fields = {f.get("name"): f for f in props.CollectionType.fields(bp)}
        return [
            {
                k: (_mask(fields[k], v) if k in fields and _secret_ref(fields[k]) else v)
                for k, v in r.items()
            }
            for r in value
            if isinstance(r, Mapping)
        ]
    return MASK


def _describe(bp: Mapping, value: Any, reveal: bool, in_collection: bool = False) -> dict:
    secret = _secret_ref(bp)
    try:
        credential = props.is_credential(bp)
    except props.PropertyError:
        credential = False
    out = {
        "type": bp.get("type"),
        "configurable": props.configurable(bp, in_collection=in_collection),
        "credential": credential,
        "optional": props.optional(bp),
        "value": value
        if (reveal or not secret or bp.get("type") == "collection")
        else _mask(bp, value),
    }
    if bp.get("type") == "collection" and isinstance(value, list):
        fields = {f.get("name"): f for f in props.CollectionType.fields(bp)}
        records = []
        for rec in value:
            if not isinstance(rec, Mapping):
                continue
            r: dict[str, Any] = {}
            if rec.get("guid"):
                r["guid"] = {
                    "type": "uuid",
                    "configurable": False,
                    "credential": False,
                    "value": rec["guid"],
                }
            for name, fbp in fields.items():
                r[name] = _describe(fbp, rec.get(name), reveal, in_collection=True)
            records.append(r)
        out["value"] = records
    if bp.get("type") == "selector":
        option = props.SelectorType().find_option(bp, value)
        out["selected_option"] = option.get("name") if option else None
        out["options"] = [
            {
                "name": o.get("name"),
                "select_value": props.SelectorType.select_value(o),
                "label": o.get("label"),
            }
            for o in props.SelectorType.options(bp)
        ]
    if bp.get("type") in ("dropdown_select", "multi_select_options"):
        out["options"] = [
            {"name": o.get("name"), "label": o.get("label")}
            for o in bp.get("options") or []
            if isinstance(o, Mapping)
        ]
    return out


def get_properties(staged: StagedProduct, reveal_secrets: bool = False) -> dict[str, dict]:
    """Every property of the staged product, Ops Manager's shape.

    ``{".properties.x": {"type", "configurable", "credential", "optional",
    "value"}, ...}`` in template order, including job properties
    (``.web.x``) and selector option properties (``.properties.sel.opt.y``).
    ``value`` is the staged value, else the default. Secret parts read
    ``***`` unless ``reveal_secrets``. Selectors add ``selected_option`` and
    ``options``; collections give each record field in the same shape.
    """
    template = product_template(staged)
    values = staged.all_values()
    out: dict[str, dict] = {}
    for pref in template.iter_property_references():
        bp = pref.blueprint
        value = props.effective_value(bp, values, pref.reference)
        out[pref.reference] = _describe(bp, value, reveal_secrets)
    return out


def _unmask(new: Any, old: Any) -> Any:
    """Replace ``***`` parts of a value sent back with the stored ones."""
    if isinstance(new, str) and new == MASK:
        return old
    if isinstance(new, Mapping):
        old_map = old if isinstance(old, Mapping) else {}
        if set(new) == {"secret"} and new.get("secret") == MASK:
            return old
        return {k: _unmask(v, old_map.get(k)) for k, v in new.items()}
    if isinstance(new, list) and isinstance(old, list):
        by_guid = {r.get("guid"): r for r in old if isinstance(r, Mapping) and r.get("guid")}
        out = []
        for rec in new:
            if isinstance(rec, Mapping):
                g = rec.get("guid")
                g = g.get("value") if isinstance(g, Mapping) else g
                rec = {
                    k: (v.get("value") if isinstance(v, Mapping) and "value" in v else v)
                    for k, v in rec.items()
                }
                if g:
                    rec["guid"] = g
                out.append(_unmask(rec, by_guid.get(g)) if g in by_guid else rec)
            else:
                out.append(rec)
        return out
    return new


def set_properties(
    staged: StagedProduct,
    values: Mapping[str, Any],
    *,
    user: str = "",
    version: int | None = None,
    version_covers: list[str] | None = None,
) -> StagedProduct:
    """Change some properties (``PUT .../properties``); all or nothing.

    ``values`` maps a reference to a value or to ``{"value": ...}`` (the
    API's shape). Each is validated against its blueprint
    (``tiles.properties``); a property that is not configurable, an unknown
    reference, a value of the wrong type or one breaking a constraint gives
    an error on that reference (``.properties.c[0].field`` inside
    collections) and nothing is saved. ``***`` parts keep the stored secret;
    an empty value resets an optional property to its default. Generated
    values (collection record guids, credentials) are filled in.

    ``version`` (a form's hidden field, ``If-Match``) is the version of the
    read the change is based on; it covers the properties of
    ``version_covers`` (a pane's references; None: every property). When
    one of them was changed since, the write is refused with 409 naming
    who changed it (``tiles.services.versions``). ``user`` is recorded as
    the author of the properties whose value changed.
    """
    if not isinstance(values, Mapping):
        raise ServiceError({"properties": ["must be a map of property references to values"]})
    template = product_template(staged)
    current = staged.all_values()
    errors: dict[str, list[str]] = {}
    given: dict[str, Any] = {}
    for ref, raw in values.items():
        bp = template.blueprint(ref)
        if bp is None:
            # An empty or odd key still gets a field name the operator can find.
            _err(errors, ref or "properties/''", "unknown property")
            continue
        value = raw.get("value") if isinstance(raw, Mapping) and "value" in raw else raw
        if (
            isinstance(raw, Mapping)
            and "value" not in raw
            and bp.get("type")
            not in (
                "simple_credentials",
                "salted_credentials",
                "rsa_cert_credentials",
                "rsa_pkey_credentials",
                "secret",
            )
        ):
            _err(errors, ref, 'must be {"value": ...}')
            continue
        value = _unmask(value, current.get(ref))
        if not props.configurable(bp):
            if value == current.get(ref) or value == props.effective_value(bp, current, ref):
                continue
            _err(errors, ref, "is not configurable")
            continue
        given[ref] = value
    normalized, verrors = props.validate_values(template, given, _validation_context(staged))
    for ref, msg in verrors.items():
        _err(errors, ref, msg)
    if errors:
        raise ServiceError(errors)
    with transaction.atomic():
        staged = (
            StagedProduct.objects.select_for_update().select_related("product").get(pk=staged.pk)
        )
        versions.check_fresh(staged, version, versions.properties_part(version_covers))
        before = staged.all_values()
        _store(staged, template, normalized)
        changed = versions.changed_parts(before, staged.all_values(), normalized)
        _store(staged, template, _generated_values(template, staged.all_values()))
        versions.record_edits(staged, changed, user)
        staged.save()
    return staged


# --------------------------------------------------------------------------- AZs and networks
