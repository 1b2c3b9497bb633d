"""What the console does with tiles, for pages and the API alike.

Every function is a verb on the console's nouns (available products, staged
products, their panes, the Director tile, installations). Views and API
views stay thin and call these; both get the same validation and errors.

Errors are ``director.services.ServiceError`` (and its ``NotFound`` /
``Conflict``): ``errors`` maps a field, a property reference
(``.properties.port``, ``.properties.hosts[1].name``) or a path
(``networks/infra/subnets/0/gateway``) to messages, ``status`` is the HTTP
status the API answers with. A refused change stores nothing.

Layout: this module holds products, staging and a staged product's panes
(properties, AZs and networks, resource config, errands, manifest) and the
deployed views; the Director tile is ``tiles.director_tile``, Review Pending
Changes is ``tiles.pending`` and Apply Changes is ``tiles.installations``.
All of their public functions are re-exported here, so callers import
``tiles.services`` only.

Secrets: property values of secret and credential types live only in the
encrypted ``StagedProduct.secrets``; reads mask them as ``***`` unless the
caller asks to reveal them (the API only does so for roles that may see
credentials), and a ``***`` sent back keeps the stored value.
"""

from __future__ import annotations

import copy
import hashlib
import io
import uuid
from collections.abc import Mapping
from typing import IO, Any

import yaml
from django.db import IntegrityError, transaction
from django.utils import timezone

from director.services import Conflict, NotFound, ServiceError
from tiles import credentials as creds
from tiles import properties as props
from tiles.manifest import (
    ErrandConfig,
    NetworkAssignment,
    OtherProduct,
    RenderContext,
    RenderError,
    ResourceConfig,
    StemcellRef,
    VmType,
)
from tiles.template import ProductTemplate, TemplateError, load_pivotal, load_product_template

from .. import director_tile
from ..director_tile import MASK, get_director
from ..models import (
    DIRECTOR_PRODUCT_NAME,
    ConsoleCertificateAuthority,
    Product,
    StagedProduct,
    new_guid,
)

__all__ = [
    "ServiceError",
    "NotFound",
    "Conflict",
    "MASK",
    "AUTOMATIC",
    # products
    "import_product",
    "list_available_products",
    "get_available_product",
    "delete_available_product",
    "delete_unused_products",
    # staging
    "list_staged_products",
    "get_staged_product",
    "stage_product",
    "unstage_product",
    "product_template",
    # panes
    "get_properties",
    "set_properties",
    "get_networks_and_azs",
    "set_networks_and_azs",
    "list_jobs",
    "job_name_for_guid",
    "job_guid",
    "get_resource_config",
    "set_resource_config",
    "get_errands",
    "set_errands",
    # manifest
    "render_context",
    "render_manifest",
    "manifest_yaml",
    "product_checks",
    "find_stemcell",
    "root_ca",
    # deployed
    "list_deployed_products",
    "deployed_manifest",
    "deployed_status",
    "list_credentials",
    "get_credential",
]

AUTOMATIC = "automatic"
_UNSET: Any = object()


# --------------------------------------------------------------------------- helpers


def _err(errors: dict[str, list[str]], key: str, message: str) -> None:
    errors.setdefault(key, []).append(message)


def _template_errors(exc: TemplateError, field: str = "product[file]") -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for path, message in exc.errors:
        _err(errors, field, f"{path}: {message}" if path else message)
    return errors


def root_ca() -> tuple[str, str]:
    """The console's root CA ``(cert_pem, key_pem)``, generated on first use."""
    ca = ConsoleCertificateAuthority.objects.filter(active=True).order_by("id").first()
    if ca is None:
        with transaction.atomic():
            ca = (
                ConsoleCertificateAuthority.objects.select_for_update()
                .filter(active=True)
                .order_by("id")
                .first()
            )
            if ca is None:
                cert, key = creds.make_root_ca("opsconsole root CA")
                ca = ConsoleCertificateAuthority.objects.create(cert_pem=cert, private_key_pem=key)
    return ca.cert_pem, ca.private_key_pem


def product_template(staged_or_product: StagedProduct | Product) -> ProductTemplate:
    product = (
        staged_or_product.product
        if isinstance(staged_or_product, StagedProduct)
        else staged_or_product
    )
    return product.template()


# --------------------------------------------------------------------------- products


def import_product(fileobj: IO[bytes] | bytes, filename: str, user: str) -> Product:
    """Import a ``.pivotal`` (zip) or a bare product template YAML.

    The template is validated (``TemplateError`` messages become errors on
    ``product[file]`` naming the path in the template); a product with the
    same name and version is refused (409). The releases inside a
    ``.pivotal`` are handed to the director (``director.services.upload_release``,
    one task each, queued when the transaction commits; a release the
    director already has is skipped there). Returns the new ``Product``.
    """
    from director import services as director_services

    if isinstance(fileobj, bytes | bytearray):
        fileobj = io.BytesIO(bytes(fileobj))
    filename = filename or getattr(fileobj, "name", "") or "product"
    head = fileobj.read(4)
    fileobj.seek(0)
    release_files = []
    try:
        if head.startswith(b"PK"):
            template, release_files = load_pivotal(fileobj)
        else:
            data = fileobj.read()
            template = load_product_template(data, source=filename)
            data_text = data.decode("utf-8")
    except TemplateError as exc:
        raise ServiceError(_template_errors(exc)) from None
    if head.startswith(b"PK"):
        import zipfile

        fileobj.seek(0)
        with zipfile.ZipFile(fileobj) as zf:
            meta = next(
                n
                for n in zf.namelist()
                if n.startswith("metadata/") and n.endswith((".yml", ".yaml"))
            )
            data_text = zf.read(meta).decode("utf-8")
    if template.name == DIRECTOR_PRODUCT_NAME:
        raise ServiceError({"product[file]": ["p-bosh is the Director tile's name"]})
    if Product.objects.filter(name=template.name, version=template.product_version).exists():
        raise Conflict(
            {
                "product[file]": [
                    f"{template.name} {template.product_version} is already imported; "
                    "delete it first to import it again"
                ]
            }
        )
    task_ids = []
    with transaction.atomic():
        try:
            product = Product.objects.create(
                name=template.name,
                version=template.product_version,
                label=template.label,
                metadata=data_text,
                releases=[
                    {"name": r["name"], "version": str(r["version"]), "file": r.get("file", "")}
                    for r in template.releases
                ],
                filename=filename,
                uploaded_by=user or "",
            )
        except IntegrityError:
            raise Conflict(
                {
                    "product[file]": [
                        f"{template.name} {template.product_version} is already imported"
                    ]
                }
            ) from None
        for rf in release_files:
            with rf.open() as fh:
                try:
                    task = director_services.upload_release(fh, user)
                except ServiceError as exc:
                    msgs = [m for ms in exc.errors.values() for m in ms]
                    raise ServiceError(
                        {"product[file]": [f"{rf.filename}: {m}" for m in msgs]}
                    ) from None
            task_ids.append(task.id)
        if task_ids:
            product.release_task_ids = task_ids
            product.save(update_fields=["release_task_ids"])
    return product


def list_available_products() -> list[Product]:
    """Imported products, by name then newest version first."""
    return list(Product.objects.order_by("name", "-id"))


def get_available_product(name: str, version: str) -> Product:
    product = Product.objects.filter(name=name, version=str(version)).first()
    if product is None:
        raise NotFound({"product_name": [f"{name} {version} is not an available product"]})
    return product


def _product_in_use(product: Product) -> bool:
    return (
        StagedProduct.objects.filter(product=product).exists()
        or StagedProduct.objects.filter(deployed_product=product).exists()
    )


def delete_available_product(name: str, version: str) -> None:
    """Remove an imported product that no staged or deployed product uses (409 otherwise)."""
    product = get_available_product(name, version)
    if _product_in_use(product):
        raise Conflict(
            {"product_name": [f"{name} {version} is staged or deployed; unstage it first"]}
        )
    product.delete()


def delete_unused_products() -> int:
    """Ops Manager's "Delete All Unused Products"; returns how many were removed."""
    count = 0
    for product in Product.objects.all():
        if not _product_in_use(product):
            product.delete()
            count += 1
    return count


# --------------------------------------------------------------------------- staging


def list_staged_products() -> list[StagedProduct]:
    """Staged products (marked-for-deletion ones included), in staging order."""
    return list(StagedProduct.objects.select_related("product").order_by("id"))


def get_staged_product(guid: str) -> StagedProduct:
    sp = StagedProduct.objects.select_related("product").filter(guid=guid).first()
    if sp is None:
        raise NotFound({"guid": [f"no staged product with guid '{guid}'"]})
    return sp


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
    from tiles.accessors import AccessorError

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


@transaction.atomic
def stage_product(name: str, version: str) -> StagedProduct:
    """Stage an available product (Ops Manager's green **+**), or upgrade a staged one.

    A product not yet staged gets a new guid (``<name>-<20 hex>``) and its
    generated credentials. When ``name`` is staged at another version it is
    upgraded in place: values of properties that still exist with the same
    type and still validate are kept (others dropped), likewise resource
    config for jobs and errand switches for errands that still exist. The
    same version again is refused (409).
    """
    product = Product.objects.filter(name=name, version=str(version)).first()
    if product is None:
        raise NotFound(
            {"product_version": [f"{name} {version} is not an available product; import it first"]}
        )
    template = product.template()
    staged = (
        StagedProduct.objects.select_for_update()
        .select_related("product")
        .filter(product__name=name)
        .first()
    )
    if staged is None:
        staged = StagedProduct(guid=new_guid(name), product=product)
        _store(staged, template, _generated_values(template, {}))
        staged.save()
        return staged
    if staged.product_id == product.id:
        raise Conflict({"product_version": [f"{name} {version} is already staged ({staged.guid})"]})
    _upgrade(staged, product)
    return staged


def _upgrade(staged: StagedProduct, product: Product) -> None:
    old = staged.product.template()
    new = product.template()
    ctx = _validation_context(staged)
    kept: dict[str, Any] = {}
    for ref, value in staged.all_values().items():
        old_bp, new_bp = old.blueprint(ref), new.blueprint(ref)
        if new_bp is None or old_bp is None or old_bp.get("type") != new_bp.get("type"):
            continue
        if props.is_generated(new_bp) or not props.configurable(new_bp):
            kept[ref] = value  # generated credentials stay
            continue
        normalized, errors = props.validate_values(new, {ref: value}, ctx)
        if not errors:
            kept[ref] = normalized.get(ref)
    staged.product = product
    staged.values, staged.secrets = {}, {}
    _store(staged, new, {k: v for k, v in kept.items() if v is not None})
    _store(staged, new, _generated_values(new, staged.all_values()))
    staged.resource_config = {
        job: rc for job, rc in (staged.resource_config or {}).items() if new.job_type(job)
    }
    errand_names = {e.get("name") for e in new.post_deploy_errands + new.pre_delete_errands}
    staged.errands = {k: v for k, v in (staged.errands or {}).items() if k in errand_names}
    staged.marked_for_deletion = False
    staged.save()


def unstage_product(guid: str) -> StagedProduct | None:
    """Unstage (Ops Manager's trash icon).

    A product never deployed is removed at once (returns None); a deployed
    one is marked for deletion and its deployment is deleted by the next
    Apply Changes (returns it).
    """
    staged = get_staged_product(guid)
    if not staged.is_deployed:
        staged.delete()
        return None
    staged.marked_for_deletion = True
    staged.save(update_fields=["marked_for_deletion", "updated_at"])
    return staged


# --------------------------------------------------------------------------- properties


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


def set_properties(staged: StagedProduct, values: Mapping[str, Any]) -> StagedProduct:
    """Change some properties (``PUT .../properties``); all or nothing.

    ``values`` maps a reference to a value or to ``{"value": ...}`` (the
    API's shape). Each is validated against its blueprint
    (``tiles.properties``); a property that is not configurable, an unknown
    reference, a value of the wrong type or one breaking a constraint gives
    an error on that reference (``.properties.c[0].field`` inside
    collections) and nothing is saved. ``***`` parts keep the stored secret;
    an empty value resets an optional property to its default. Generated
    values (collection record guids, credentials) are filled in.
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
            _err(errors, ref, "unknown property")
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
        _store(staged, template, normalized)
        _store(staged, template, _generated_values(template, staged.all_values()))
        staged.save()
    return staged


# --------------------------------------------------------------------------- AZs and networks


def get_networks_and_azs(staged: StagedProduct) -> dict:
    """``{"networks_and_azs": {"singleton_availability_zone": {"name"}, "other_availability_zones": [{"name"}], "network": {"name"}, "service_network": ...}}``."""
    na = staged.network_and_azs or {}
    if not na:
        return {"networks_and_azs": {}}
    out: dict[str, Any] = {
        "singleton_availability_zone": {"name": na.get("singleton_availability_zone")},
        "other_availability_zones": [{"name": n} for n in na.get("other_availability_zones", [])],
        "network": {"name": na.get("network")},
    }
    if na.get("service_network"):
        out["service_network"] = {"name": na["service_network"]}
    return {"networks_and_azs": out}


def _name(value: Any) -> Any:
    return value.get("name") if isinstance(value, Mapping) else value


def set_networks_and_azs(staged: StagedProduct, data: Mapping) -> StagedProduct:
    """The Assign AZs and Networks pane.

    ``data`` is Ops Manager's ``networks_and_azs`` (wrapped or not): names
    as ``{"name": ...}`` or plain strings. AZs and networks must exist in the
    Director tile, and the network needs a subnet in every chosen AZ.
    """
    if isinstance(data, Mapping) and "networks_and_azs" in data:
        data = data["networks_and_azs"]
    if not isinstance(data, Mapping):
        raise ServiceError({"networks_and_azs": ["must be a map"]})
    d = get_director()
    az_names = {a["name"] for a in d.availability_zones}
    nets = {n["name"]: n for n in (d.networks or {}).get("networks", [])}
    errors: dict[str, list[str]] = {}
    singleton = _name(data.get("singleton_availability_zone"))
    others_raw = data.get("other_availability_zones")
    if others_raw is None:
        others_raw = []
    if not isinstance(others_raw, list):
        _err(errors, "other_availability_zones", "must be a list of AZs")
        others_raw = []
    others = [_name(o) for o in others_raw]
    network = _name(data.get("network"))
    service_network = _name(data.get("service_network")) or None
    if not singleton:
        _err(errors, "singleton_availability_zone", "is required")
    elif singleton not in az_names:
        _err(errors, "singleton_availability_zone", f"'{singleton}' is not an availability zone")
    for o in others:
        if o not in az_names:
            _err(errors, "other_availability_zones", f"'{o}' is not an availability zone")
    if len(set(others)) != len(others):
        _err(errors, "other_availability_zones", "an availability zone is listed twice")
    if not others and singleton:
        others = [singleton]
    for key, net in (("network", network), ("service_network", service_network)):
        if key == "network" and not net:
            _err(errors, "network", "is required")
            continue
        if net and net not in nets:
            _err(errors, key, f"'{net}' is not a network of the director")
        elif net:
            covered = {az for sn in nets[net]["subnets"] for az in sn["availability_zone_names"]}
            for az in [singleton, *others]:
                if az and az in az_names and az not in covered:
                    _err(errors, key, f"network '{net}' has no subnet in availability zone '{az}'")
    if errors:
        raise ServiceError(errors)
    staged.network_and_azs = {
        "singleton_availability_zone": singleton,
        "other_availability_zones": others,
        "network": network,
        "service_network": service_network,
    }
    staged.save(update_fields=["network_and_azs", "updated_at"])
    return staged


# --------------------------------------------------------------------------- resource config


def job_guid(staged: StagedProduct, job_name: str) -> str:
    """Ops Manager's job guid (``<job>-<20 hex>``), stable for a staged product."""
    digest = hashlib.sha256(f"{staged.guid}/{job_name}".encode()).hexdigest()[:20]
    return f"{job_name}-{digest}"


def list_jobs(staged: StagedProduct) -> list[dict]:
    """``[{"name", "guid", "label", "errand"}]`` for every job type."""
    template = product_template(staged)
    return [
        {
            "name": name,
            "guid": job_guid(staged, name),
            "label": job.get("resource_label") or name,
            "errand": bool(job.get("errand")),
        }
        for name, job in template.job_types.items()
    ]


def job_name_for_guid(staged: StagedProduct, guid: str) -> str:
    for j in list_jobs(staged):
        if guid in (j["guid"], j["name"]):
            return j["name"]
    raise NotFound({"job_guid": [f"{staged.guid} has no job '{guid}'"]})


def _resource_defaults(staged: StagedProduct, job_name: str) -> dict:
    """What "Automatic" means for a job, and its constraints."""
    from tiles.accessors import effective_values
    from tiles.manifest import job_facts

    template = product_template(staged)
    job = template.job_type(job_name) or {}
    idef = job.get("instance_definition") or {}
    cons = idef.get("constraints") if isinstance(idef.get("constraints"), Mapping) else {}
    rds = {
        rd.get("name"): rd
        for rd in job.get("resource_definitions") or []
        if isinstance(rd, Mapping)
    }
    ctx = _bare_context(staged)
    facts = job_facts(template, effective_values(template, staged.all_values()), ctx, [])
    f = facts.get(job_name, {})
    disk_rd = rds.get("persistent_disk") or {}
    disk_cons = (
        disk_rd.get("constraints") if isinstance(disk_rd.get("constraints"), Mapping) else {}
    )
    return {
        "instances": f.get("instances"),
        "instances_configurable": bool(idef.get("configurable", True)) if idef else False,
        "instances_min": cons.get("min"),
        "instances_max": cons.get("max"),
        "instance_type": f.get("vm_type"),
        "has_persistent_disk": "persistent_disk" in rds,
        "persistent_disk_mb": disk_rd.get("default") if "persistent_disk" in rds else None,
        "persistent_disk_min_mb": disk_cons.get("min"),
    }


def get_resource_config(staged: StagedProduct, job_name: str) -> dict:
    """Ops Manager's resource config of one job.

    ``{"instances": int | "automatic", "instance_type": {"id": name |
    "automatic"}, "persistent_disk": {"size_mb": "automatic" | "<MB>"}
    (only for jobs with a persistent disk), "internet_connected": false,
    "elb_names": [], "additional_vm_extensions": [], "automatic": {what
    Automatic resolves to, and the constraints}}``.
    """
    if product_template(staged).job_type(job_name) is None:
        job_name = job_name_for_guid(staged, job_name)
    rc = (staged.resource_config or {}).get(job_name) or {}
    defaults = _resource_defaults(staged, job_name)
    out: dict[str, Any] = {
        "instances": rc.get("instances") if rc.get("instances") is not None else AUTOMATIC,
        "instance_type": {"id": rc.get("instance_type") or AUTOMATIC},
        "internet_connected": False,
        "elb_names": [],
        "additional_vm_extensions": [],
        "automatic": defaults,
    }
    if defaults["has_persistent_disk"] or rc.get("persistent_disk_mb") is not None:
        size = rc.get("persistent_disk_mb")
        out["persistent_disk"] = {"size_mb": str(size) if size is not None else AUTOMATIC}
    return out


def set_resource_config(
    staged: StagedProduct,
    job_name: str,
    instances: Any = _UNSET,
    instance_type: Any = _UNSET,
    persistent_disk_mb: Any = _UNSET,
) -> dict:
    """Change one job's resource config; ``"automatic"`` (or None) restores the tile default.

    Checks the instance definition (``configurable``, ``constraints``
    ``min``/``max``), that the VM type is in the catalog and that the disk
    size meets the job's minimum. Errors name ``instances``,
    ``instance_type.id`` and ``persistent_disk.size_mb``.
    """
    template = product_template(staged)
    job = template.job_type(job_name)
    if job is None:
        raise NotFound({"job_guid": [f"{staged.guid} has no job '{job_name}'"]})
    rc = dict((staged.resource_config or {}).get(job_name) or {})
    errors: dict[str, list[str]] = {}
    idef = job.get("instance_definition") or {}
    cons = idef.get("constraints") if isinstance(idef.get("constraints"), Mapping) else {}
    if instances is not _UNSET:
        if instances in (None, AUTOMATIC, ""):
            rc["instances"] = None
        else:
            try:
                if isinstance(instances, bool):
                    raise ValueError
                n = int(str(instances).strip())
            except (TypeError, ValueError):
                _err(errors, "instances", f"'{instances}' is not a whole number")
            else:
                default = idef.get("default")
                if idef and not idef.get("configurable", True) and n != default:
                    _err(
                        errors,
                        "instances",
                        f"is not configurable for {job_name} (fixed at {default})",
                    )
                elif n < 0:
                    _err(errors, "instances", "must be 0 or more")
                elif isinstance(cons.get("min"), int) and n < cons["min"]:
                    _err(errors, "instances", f"must be at least {cons['min']}")
                elif isinstance(cons.get("max"), int) and n > cons["max"]:
                    _err(errors, "instances", f"must be at most {cons['max']}")
                elif cons.get("may_only_be_odd_or_zero") and n % 2 == 0 and n != 0:
                    _err(errors, "instances", "must be odd or zero")
                else:
                    rc["instances"] = n
    if instance_type is not _UNSET:
        if isinstance(instance_type, Mapping):
            instance_type = instance_type.get("id")
        if instance_type in (None, AUTOMATIC, ""):
            rc["instance_type"] = None
        elif instance_type not in {t["name"] for t in director_tile.vm_types()}:
            _err(errors, "instance_type.id", f"'{instance_type}' is not in the VM type catalog")
        else:
            rc["instance_type"] = instance_type
    if persistent_disk_mb is not _UNSET:
        if isinstance(persistent_disk_mb, Mapping):
            persistent_disk_mb = persistent_disk_mb.get("size_mb")
        rds = {
            rd.get("name"): rd
            for rd in job.get("resource_definitions") or []
            if isinstance(rd, Mapping)
        }
        if persistent_disk_mb in (None, AUTOMATIC, ""):
            rc["persistent_disk_mb"] = None
        elif "persistent_disk" not in rds:
            _err(errors, "persistent_disk.size_mb", f"{job_name} has no persistent disk")
        else:
            try:
                if isinstance(persistent_disk_mb, bool):
                    raise ValueError
                size = int(str(persistent_disk_mb).strip())
            except (TypeError, ValueError):
                _err(
                    errors, "persistent_disk.size_mb", f"'{persistent_disk_mb}' is not a size in MB"
                )
            else:
                dcons = rds["persistent_disk"].get("constraints") or {}
                if size < 0:
                    _err(errors, "persistent_disk.size_mb", "must be 0 or more")
                elif isinstance(dcons.get("min"), int) and 0 < size < dcons["min"]:
                    _err(errors, "persistent_disk.size_mb", f"must be at least {dcons['min']} MB")
                else:
                    rc["persistent_disk_mb"] = size
    if errors:
        raise ServiceError(errors)
    config = dict(staged.resource_config or {})
    config[job_name] = rc
    staged.resource_config = config
    staged.save(update_fields=["resource_config", "updated_at"])
    return get_resource_config(staged, job_name)


# --------------------------------------------------------------------------- errands


_ERRAND_STATES = (True, False, "when-changed", "default")


def get_errands(staged: StagedProduct) -> list[dict]:
    """``[{"name", "label", "post_deploy": bool | "when-changed" | "default", "pre_delete": ...}]``.

    A phase an errand does not belong to is left out; ``"default"`` means
    the tile's default (shown in ``default_post_deploy`` / ``default_pre_delete``).
    """
    from tiles.manifest import _errand_default

    template = product_template(staged)
    saved = staged.errands or {}
    by_name: dict[str, dict] = {}
    for phase, items in (
        ("post_deploy", template.post_deploy_errands),
        ("pre_delete", template.pre_delete_errands),
    ):
        for e in items:
            name = e.get("name")
            entry = by_name.setdefault(name, {"name": name, "label": e.get("label") or name})
            state = (saved.get(name) or {}).get(phase)
            entry[phase] = "default" if state is None else state
            entry[f"default_{phase}"] = _errand_default(e, template.job_type(name), phase)
    return list(by_name.values())


def set_errands(staged: StagedProduct, errands: Any) -> list[dict]:
    """Save errand switches: ``[{"name", "post_deploy", "pre_delete"}]`` (or a map by name).

    Values: true/false, ``"when-changed"``, or ``"default"``/null for the tile default.
    """
    if isinstance(errands, Mapping) and "errands" in errands:
        errands = errands["errands"]
    if isinstance(errands, Mapping):
        errands = [{"name": k, **(v if isinstance(v, Mapping) else {})} for k, v in errands.items()]
    if not isinstance(errands, list):
        raise ServiceError({"errands": ["must be a list of {name, post_deploy, pre_delete}"]})
    known = {e["name"]: e for e in get_errands(staged)}
    errors: dict[str, list[str]] = {}
    saved = copy.deepcopy(staged.errands or {})
    for i, e in enumerate(errands):
        if not isinstance(e, Mapping) or not e.get("name"):
            _err(errors, f"errands/{i}", "must be a map with name")
            continue
        name = e["name"]
        if name not in known:
            _err(errors, f"errands/{name}", "is not an errand of this product")
            continue
        for phase in ("post_deploy", "pre_delete"):
            key = phase if phase in e else f"{phase.replace('_', '-')}-state"
            if key not in e:
                continue
            v = e[key]
            if isinstance(v, str) and v.lower() in ("true", "false", "on", "off"):
                v = v.lower() in ("true", "on")
            if v is None:
                v = "default"
            if v not in _ERRAND_STATES:
                _err(
                    errors,
                    f"errands/{name}/{phase}",
                    "must be true, false, when-changed or default",
                )
                continue
            if phase not in known[name]:
                _err(errors, f"errands/{name}/{phase}", f"{name} is not a {phase} errand")
                continue
            saved.setdefault(name, {})[phase] = None if v == "default" else v
    if errors:
        raise ServiceError(errors)
    staged.errands = saved
    staged.save(update_fields=["errands", "updated_at"])
    return get_errands(staged)


# --------------------------------------------------------------------------- manifest


def _version_key(v: str) -> tuple:
    parts = []
    for p in str(v).replace("-", ".").split("."):
        parts.append((0, int(p), "") if p.isdigit() else (1, 0, p))
    return tuple(parts)


def find_stemcell(criteria: Mapping | None):
    """The director stemcell for ``stemcell_criteria``: the exact version, else the
    newest of the same major line (Ops Manager's floating stemcells), else None."""
    from director.models import Stemcell

    if not criteria or not criteria.get("os"):
        return None
    os_name = str(criteria["os"])
    version = str(criteria.get("version") or "")
    candidates = [
        s
        for s in Stemcell.objects.all()
        if s.operating_system == os_name or (not s.operating_system and os_name in s.name)
    ]
    if not candidates:
        return None
    exact = [s for s in candidates if s.version == version]
    if exact:
        return exact[0]
    major = version.split(".")[0]
    same_line = [s for s in candidates if s.version.split(".")[0] == major]
    if same_line and criteria.get("enable_patch_security_updates", True) is not False:
        return max(same_line, key=lambda s: _version_key(s.version))
    return None


def _other_products(staged: StagedProduct) -> dict[str, OtherProduct]:
    out = {}
    for other in StagedProduct.objects.select_related("product").exclude(pk=staged.pk):
        try:
            template = other.product.template()
        except TemplateError:
            continue
        out[other.product.name] = OtherProduct(
            name=other.product.name,
            deployment_name=other.guid,
            network_name=(other.network_and_azs or {}).get("network") or "",
            values=other.all_values(),
            template=template,
        )
    return out


def _known_ips(deployment: str) -> dict[str, tuple[str, ...]]:
    from director.models import Instance

    out: dict[str, list[str]] = {}
    rows = (
        Instance.objects.filter(deployment__name=deployment)
        .order_by("group", "index")
        .prefetch_related("ip_addresses")
    )
    for inst in rows:
        ips = [ip.address for ip in inst.ip_addresses.all()]
        if ips:
            out.setdefault(inst.group, []).append(ips[0])
    return {k: tuple(v) for k, v in out.items()}


def _bare_context(staged: StagedProduct) -> RenderContext:
    """A context good enough for job facts (no network/stemcell checks)."""
    na = staged.network_and_azs or {}
    types = director_tile.vm_types()
    return RenderContext(
        deployment_name=staged.guid,
        network=NetworkAssignment(
            network=na.get("network") or "default",
            singleton_availability_zone=na.get("singleton_availability_zone") or "",
            other_availability_zones=tuple(na.get("other_availability_zones") or ()),
        ),
        stemcell=StemcellRef("", ""),
        resources=_resources(staged),
        vm_types={
            t["name"]: VmType(t["name"], t["cpu"], t["ram"], t["ephemeral_disk"]) for t in types
        },
        disk_types={t["name"]: t["size_mb"] for t in director_tile.disk_types()},
    )


def _resources(staged: StagedProduct) -> dict[str, ResourceConfig]:
    return {
        job: ResourceConfig(
            instances=rc.get("instances"),
            vm_type=rc.get("instance_type"),
            persistent_disk_mb=rc.get("persistent_disk_mb"),
        )
        for job, rc in (staged.resource_config or {}).items()
    }


def render_context(staged: StagedProduct, *, require_stemcell: bool = True) -> RenderContext:
    """Everything outside the tile its manifest needs, from the Director tile.

    Raises ``ServiceError`` on ``networks_and_azs`` when no AZ/network is
    assigned, and on ``stemcells`` when no uploaded stemcell matches the
    tile's ``stemcell_criteria`` (unless ``require_stemcell=False``, which
    renders with the criteria's version, for previews).
    """
    template = product_template(staged)
    na = staged.network_and_azs or {}
    if not na.get("network") or not na.get("singleton_availability_zone"):
        raise ServiceError({"networks_and_azs": ["assign availability zones and a network first"]})
    d = get_director()
    criteria = template.stemcell_criteria or {}
    stemcell = find_stemcell(criteria)
    if stemcell is not None:
        ref = StemcellRef(criteria.get("os") or stemcell.operating_system, stemcell.version)
    elif require_stemcell and criteria.get("os"):
        raise ServiceError(
            {
                "stemcells": [
                    f"missing stemcell: upload a {criteria['os']} stemcell "
                    f"{criteria.get('version', '')} (Stemcell Library)".replace("  ", " ")
                ]
            }
        )
    else:
        ref = StemcellRef(
            str(criteria.get("os") or "ubuntu-jammy"), str(criteria.get("version") or "latest")
        )
    net_by_name = {n["name"]: n for n in (d.networks or {}).get("networks", [])}
    net = net_by_name.get(na["network"]) or {"subnets": []}
    azs = {na["singleton_availability_zone"], *(na.get("other_availability_zones") or [])}
    cidrs = tuple(sn["cidr"] for sn in net["subnets"] if set(sn["availability_zone_names"]) & azs)
    types = director_tile.vm_types()
    dcfg = {**director_tile.DIRECTOR_DEFAULTS, **d.director_configuration}
    ca_cert, _ = root_ca()
    errands = {
        name: ErrandConfig(post_deploy=e.get("post_deploy"), pre_delete=e.get("pre_delete"))
        for name, e in (staged.errands or {}).items()
    }
    return RenderContext(
        deployment_name=staged.guid,
        network=NetworkAssignment(
            network=na["network"],
            singleton_availability_zone=na["singleton_availability_zone"],
            other_availability_zones=tuple(na.get("other_availability_zones") or ()),
            service_network=na.get("service_network"),
            subnet_cidrs=cidrs,
        ),
        stemcell=ref,
        resources=_resources(staged),
        vm_types={
            t["name"]: VmType(t["name"], t["cpu"], t["ram"], t["ephemeral_disk"]) for t in types
        },
        disk_types={t["name"]: t["size_mb"] for t in director_tile.disk_types()},
        errands=errands,
        director={
            "guid": d.guid,
            "hostname": dcfg.get("director_hostname") or "127.0.0.1",
            "deployment_ip": "127.0.0.1",
            "ntp_servers": director_tile._csv(dcfg.get("ntp_servers_string")),
            "ca_public_key": ca_cert,
            "tld": "bosh",
            "dns_release_present": False,
        },
        ops_manager={
            "ca_certificate": ca_cert,
            "trusted_certificates": ca_cert,
            "iaas_type": "vsphere",
            "http_proxy": "",
            "https_proxy": "",
            "no_proxy": "",
            "instance_types_catalog": [
                {
                    "name": t["name"],
                    "cpu": t["cpu"],
                    "ram": t["ram"],
                    "ephemeral_disk": t["ephemeral_disk"],
                }
                for t in types
            ],
        },
        self_facts={"guid": staged.guid, "product_version": staged.product.version},
        other_products=_other_products(staged),
        known_ips=_known_ips(staged.guid),
    )


def _render_errors(exc: RenderError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for path, message in exc.errors:
        _err(errors, path or "manifest", message)
    return errors


def render_manifest(staged: StagedProduct, *, require_stemcell: bool = True) -> dict:
    """The BOSH v2 manifest of the staged configuration (``GET .../manifest``).

    Credentials whose certificate domains need other values are generated
    here once those values exist (and saved). ``ServiceError`` names the
    template path of any rendering problem. The manifest holds secrets:
    show it only to roles that may see credentials, or redact it
    (``tiles.pending.redact``).
    """
    from tiles.manifest import evaluator
    from tiles.manifest import render_manifest as _render

    template = product_template(staged)
    ctx = render_context(staged, require_stemcell=require_stemcell)
    values = staged.all_values()
    try:
        evaluate = evaluator(template, values, ctx)
    except RenderError:
        evaluate = None
    generated = _generated_values(template, values, evaluate)
    if generated:
        with transaction.atomic():
            fresh = StagedProduct.objects.select_for_update().get(pk=staged.pk)
            fresh.product = staged.product
            _store(fresh, template, _generated_values(template, fresh.all_values(), evaluate))
            fresh.save(update_fields=["values", "secrets", "updated_at"])
            staged.values, staged.secrets = fresh.values, fresh.secrets
        values = staged.all_values()
    try:
        return _render(template, values, ctx)
    except RenderError as exc:
        raise ServiceError(_render_errors(exc)) from None


def manifest_yaml(manifest: Mapping) -> str:
    return yaml.safe_dump(dict(manifest), default_flow_style=False, sort_keys=False)


def product_checks(staged: StagedProduct) -> tuple[dict[str, bool], list[str]]:
    """Ops Manager's completeness checks and the warnings behind them.

    ``({"configuration_complete", "stemcell_present", "releases_present",
    "configurable_properties_valid"}, ["Configuration is incomplete:
    .properties.x", ...])``.
    """
    from director.models import ReleaseVersion

    template = product_template(staged)
    warnings: list[str] = []
    values = staged.all_values()
    missing = props.completeness(template, values)
    na = staged.network_and_azs or {}
    if not na.get("network") or not na.get("singleton_availability_zone"):
        missing = ["Assign AZs and Networks", *missing]
    if missing:
        warnings.append("Configuration is incomplete: " + ", ".join(missing))
    _, invalid = props.validate_values(
        template,
        {r: v for r, v in values.items() if template.blueprint(r) is not None},
        _validation_context(staged),
    )
    unknown = [r for r in values if template.blueprint(r) is None]
    if invalid or unknown:
        warnings.append(
            "Configuration is invalid: "
            + ", ".join(
                [f"{r}: {m}" for r, m in invalid.items()] + [f"{r}: unknown" for r in unknown]
            )
        )
    criteria = template.stemcell_criteria
    stemcell_ok = not criteria or find_stemcell(criteria) is not None
    if not stemcell_ok:
        warnings.append(
            f"Missing stemcell: {criteria.get('os')} {criteria.get('version', '')}".strip()
        )
    have = set(
        ReleaseVersion.objects.filter(update_completed=True).values_list("release__name", "version")
    )
    missing_releases = [
        f"{r['name']}/{r['version']}"
        for r in template.releases
        if (r["name"], str(r["version"])) not in have
    ]
    if missing_releases:
        warnings.append("Missing release: " + ", ".join(missing_releases))
    return (
        {
            "configuration_complete": not missing,
            "stemcell_present": stemcell_ok,
            "releases_present": not missing_releases,
            "configurable_properties_valid": not invalid and not unknown,
        },
        warnings,
    )


# --------------------------------------------------------------------------- deployed


def list_deployed_products() -> list[dict]:
    """``[{"installation_name", "guid", "type", "product_version", "label"}]``, the director first."""
    d = get_director()
    out = []
    if d.deployed_at:
        from opsconsole import __version__

        out.append(
            {
                "installation_name": d.guid,
                "guid": d.guid,
                "type": DIRECTOR_PRODUCT_NAME,
                "product_version": __version__,
                "label": "BOSH Director",
            }
        )
    for sp in StagedProduct.objects.select_related("deployed_product").exclude(deployed_version=""):
        out.append(
            {
                "installation_name": sp.guid,
                "guid": sp.guid,
                "type": sp.deployed_product.name
                if sp.deployed_product
                else sp.guid.rsplit("-", 1)[0],
                "product_version": sp.deployed_version,
                "label": sp.deployed_product.label if sp.deployed_product else "",
            }
        )
    return out


def _deployed(guid: str) -> StagedProduct:
    sp = StagedProduct.objects.select_related("deployed_product").filter(guid=guid).first()
    if sp is None or not sp.is_deployed:
        raise NotFound({"guid": [f"no deployed product with guid '{guid}'"]})
    return sp


def deployed_manifest(guid: str, reveal_secrets: bool = False) -> dict:
    """The manifest last deployed; secrets as ``((redacted))`` unless revealed."""
    from tiles.pending import redact, secret_strings

    sp = _deployed(guid)
    manifest = yaml.safe_load(sp.deployed_manifest) or {}
    if reveal_secrets:
        return manifest
    state = sp.deployed_state or {}
    return redact(manifest, secret_strings(state.get("secrets") or {}))


def deployed_status(guid: str) -> list[dict]:
    """``GET /deployed/products/{guid}/status``: one row per instance, from the director.

    Ops Manager's ``ProductStatus`` keys (``job-name``, ``index``,
    ``az_name``, ``ips``, ``cid``, ...) plus ``job_state`` (the director's
    instance state); VM vitals are null (no agent reports them yet).
    """
    from director import services as director_services

    _deployed(guid)
    try:
        instances = director_services.deployment_instances(guid)
    except NotFound:
        return []
    rows = []
    for inst in instances:
        vm = next((v for v in inst.vms.all() if v.active), None)
        rows.append(
            {
                "job-name": inst.group,
                "index": inst.index,
                "id": inst.uuid,
                "az_name": inst.az,
                "ips": [ip.address for ip in inst.ip_addresses.all()],
                "cid": vm.cid if vm else None,
                "job_state": inst.state,
                "load_avg": None,
                "cpu": None,
                "memory": None,
                "swap": None,
                "system_disk": None,
                "ephemeral_disk": None,
                "persistent_disk": None,
            }
        )
    return rows


def _credential_refs(template: ProductTemplate) -> list[str]:
    out = []
    for pref in template.iter_property_references():
        try:
            if props.is_credential(pref.blueprint):
                out.append(pref.reference)
        except props.PropertyError:
            continue
    return out


def list_credentials(guid: str) -> list[str]:
    """References of the deployed product's credentials (``.properties.x``, ``.job.y``)."""
    sp = _deployed(guid)
    template = (sp.deployed_product or sp.product).template()
    return _credential_refs(template)


def get_credential(guid: str, ref: str, reveal: bool) -> dict:
    """``{"credential": {"type", "value"}}`` of a deployed credential; masked unless ``reveal``."""
    sp = _deployed(guid)
    template = (sp.deployed_product or sp.product).template()
    if ref not in _credential_refs(template):
        raise NotFound({"credential": [f"{ref} is not a credential of {guid}"]})
    bp = template.blueprint(ref)
    state = sp.deployed_state or {}
    value = (state.get("secrets") or {}).get(ref)
    return {
        "credential": {
            "type": bp.get("type"),
            "value": value if reveal else _mask(bp, value),
        }
    }


def _mark_deployed(staged: StagedProduct, manifest_text: str) -> None:
    """Snapshot the staged configuration as deployed (after a successful deploy)."""
    staged.deployed_product = staged.product
    staged.deployed_version = staged.product.version
    staged.deployed_manifest = manifest_text
    staged.deployed_state = {
        "values": staged.values,
        "secrets": staged.secrets,
        "network_and_azs": staged.network_and_azs,
        "resource_config": staged.resource_config,
        "errands": staged.errands,
    }
    staged.deployed_at = timezone.now()
    staged.save()


# Re-exports: the Director tile, pending changes and installations.
from ..director_tile import (  # noqa: E402
    add_availability_zone,
    director_completeness,
    director_properties,
    disk_types,
    get_network_and_az,
    get_networks,
    list_availability_zones,
    render_cloud_config,
    render_cpi_config,
    set_availability_zones,
    set_director_configuration,
    set_director_properties,
    set_iaas_configuration,
    set_network_and_az,
    set_networks,
    set_vm_types,
    test_vcenter_connection,
    update_availability_zone,
    vm_types,
)
from ..installations import (  # noqa: E402
    apply_changes,
    get_installation,
    installation_logs,
    list_installations,
    running_installation,
)
from ..pending import director_diff, pending_changes, product_diff, revert_staged  # noqa: E402

__all__ += [
    "add_availability_zone",
    "director_completeness",
    "director_properties",
    "disk_types",
    "get_network_and_az",
    "get_networks",
    "list_availability_zones",
    "render_cloud_config",
    "render_cpi_config",
    "set_availability_zones",
    "set_director_configuration",
    "set_director_properties",
    "set_iaas_configuration",
    "set_network_and_az",
    "set_networks",
    "set_vm_types",
    "test_vcenter_connection",
    "update_availability_zone",
    "vm_types",
    "apply_changes",
    "get_installation",
    "installation_logs",
    "list_installations",
    "running_installation",
    "director_diff",
    "pending_changes",
    "product_diff",
    "revert_staged",
]
