"""A staged product's manifest: its render context, the manifest, and the checks.

``render_context`` gathers what the tile's manifest needs from outside the
tile (the Director tile's AZs, networks and VM types, the stemcell, the
other products, IPs the director already gave out); ``render_manifest``
renders it (``tiles.manifest``), generating certificates whose domains
needed other values; ``product_checks`` are Ops Manager's completeness
checks that gate Apply Changes.

The manifest holds no secret: secrets and credentials render as
``((/opsmgr/<guid>/<property>.<accessor>))`` references, and
``manifest_credentials`` gives the values the director's variable store
must hold for them. Apply Changes hands those to the deploy as ``vars``,
which the director stores encrypted and never puts in the task; Review
Pending Changes hands them to the plan preview, which stores nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

import yaml
from django.db import transaction
from django.utils.crypto import salted_hmac

from director.models import Instance, ReleaseVersion
from opsconsole.errors import ServiceError
from tiles import director_tile
from tiles import properties as props
from tiles.accessors import CREDENTIAL_ROOT, ContextSecret, credential_values
from tiles.director_tile import get_director
from tiles.manifest import (
    ErrandConfig,
    NetworkAssignment,
    OtherProduct,
    RenderContext,
    RenderError,
    ResourceConfig,
    StemcellRef,
    VmType,
    evaluator,
)
from tiles.manifest import render_manifest as _render
from tiles.models import StagedProduct
from tiles.template import TemplateError

from .common import _err, product_template, root_ca
from .properties import _generated_values, _store, _validation_context
from .stemcells import criteria_text, find_director_stemcell, resolve_stemcell


def find_stemcell(criteria: Mapping | None):
    """The director stemcell for ``stemcell_criteria``: the exact version, else the
    newest of the same major line (Ops Manager's floating stemcells), else None.
    The library is not looked at: see ``tiles.services.stemcells.resolve_stemcell``."""
    return find_director_stemcell(criteria)


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
            version=other.product.version,
        )
    return out


def _derived_secret(purpose: str) -> str:
    """A stable secret for a ``$director``/``$self`` credential, derived from the
    console's key: never stored, reaching the director only as a variable."""
    return salted_hmac("opsconsole.tiles.context_secret", purpose).hexdigest()[:32]


def _context_secrets(staged: StagedProduct, director_guid: str) -> dict[str, ContextSecret]:
    """The secrets ``$director.password``, ``$director.bosh_metrics_forwarder_client_secret``
    and ``$self.uaa_client_secret`` give, as references under ``/opsmgr``."""
    root = CREDENTIAL_ROOT
    return {
        "$director.password": ContextSecret(
            f"{root}/{director_guid}/director_vm_credentials",
            "password",
            _derived_secret(f"{director_guid}/director_vm_credentials"),
        ),
        "$director.bosh_metrics_forwarder_client_secret": ContextSecret(
            f"{root}/{director_guid}/bosh_metrics_forwarder_client",
            "secret",
            _derived_secret(f"{director_guid}/bosh_metrics_forwarder_client"),
        ),
        "$self.uaa_client_secret": ContextSecret(
            f"{root}/{staged.guid}/uaa_client",
            "secret",
            _derived_secret(f"{staged.guid}/uaa_client"),
        ),
    }


def _known_ips(deployment: str) -> dict[str, tuple[str, ...]]:
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


def render_context(
    staged: StagedProduct, *, require_stemcell: bool = True, require_network: bool = True
) -> RenderContext:
    """Everything outside the tile its manifest needs, from the Director tile.

    Raises ``ServiceError`` on ``networks_and_azs`` when no AZ/network is
    assigned, and on ``stemcells`` when neither the director nor the
    Stemcell Library has a stemcell matching the tile's ``stemcell_criteria``
    (unless ``require_stemcell=False``, which renders with the criteria's
    version, for previews). A library stemcell renders as the version Apply
    Changes will upload. ``require_network=False`` renders a tile without
    AZs and network as on no network (a runtime-config-only tile has no
    instance to place).
    """
    template = product_template(staged)
    na = staged.network_and_azs or {}
    if not na.get("network") or not na.get("singleton_availability_zone"):
        if require_network:
            raise ServiceError(
                {"networks_and_azs": ["assign availability zones and a network first"]}
            )
        na = {**na, "network": na.get("network") or "", "singleton_availability_zone": ""}
    d = get_director()
    criteria = template.stemcell_criteria or {}
    stemcell = resolve_stemcell(criteria)
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
            "username": "vcap",
            "bosh_metrics_forwarder_client_name": "bosh_metrics_forwarder",
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
        self_facts={
            "guid": staged.guid,
            "product_version": staged.product.version,
            "uaa_client_name": staged.guid,
        },
        other_products=_other_products(staged),
        known_ips=_known_ips(staged.guid),
        credential_root=CREDENTIAL_ROOT,
        context_secrets=_context_secrets(staged, d.guid),
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
    template path of any rendering problem. Secrets appear only as
    references to the variable store (``manifest_credentials``).
    """
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


def manifest_credentials(staged: StagedProduct, values: Mapping | None = None) -> dict[str, dict]:
    """Variable name -> value: what the store must hold for the manifest's secret references.

    ``values`` default to the staged ones (``staged.all_values()``); pass
    a snapshot's values to get what was reviewed. Only the director sees the
    result (as deploy or plan ``vars``): never log or show it.
    """
    template = product_template(staged)
    values = staged.all_values() if values is None else values
    out = credential_values(template, values, CREDENTIAL_ROOT, staged.guid)
    for secret in _context_secrets(staged, get_director().guid).values():
        out.setdefault(secret.variable, {})[secret.key] = secret.value
    return out


def manifest_yaml(manifest: Mapping) -> str:
    return yaml.safe_dump(dict(manifest), default_flow_style=False, sort_keys=False)


def product_checks(staged: StagedProduct) -> tuple[dict[str, bool], list[str]]:
    """Ops Manager's completeness checks and the warnings behind them.

    ``({"configuration_complete", "stemcell_present", "releases_present",
    "configurable_properties_valid"}, ["Configuration is incomplete:
    .properties.x", ...])``.
    """
    template = product_template(staged)
    warnings: list[str] = []
    values = staged.all_values()
    missing = props.completeness(template, values)
    na = staged.network_and_azs or {}
    if (not na.get("network") or not na.get("singleton_availability_zone")) and template.job_types:
        # A runtime-config-only tile places no instance: it needs no AZ or network.
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
    # A stemcell only in the Stemcell Library counts: Apply Changes uploads it first.
    # A runtime-config-only tile creates no VM: it needs no stemcell.
    stemcell_ok = not criteria or not template.job_types or resolve_stemcell(criteria) is not None
    if not stemcell_ok:
        warnings.append(f"Missing stemcell: {criteria_text(criteria)}")
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
