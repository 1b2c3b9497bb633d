"""What the console knows outside a tile when it renders one, and the job facts.

``RenderContext`` carries the deployment name, AZ and network assignment,
resource config per job, the VM and disk type catalogs, the stemcell, the
director and Ops Manager facts and the other products. ``job_facts()``
resolves, per job type, what accessors such as ``(( .web.instances ))`` or
``(( first_ip ))`` read: instances, VM type, CPU, RAM, disks and IPs. Both
the accessors (``tiles.accessors``) and the renderer (``tiles.manifest``)
read these, so they live below both. Pure: no Django, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tiles import properties as props
from tiles.template import MAX_INSTANCES, ProductTemplate


@dataclass(frozen=True)
class StemcellRef:
    os: str
    version: str


@dataclass(frozen=True)
class NetworkAssignment:
    """The tile's Assign AZs and Networks pane."""

    network: str
    singleton_availability_zone: str
    other_availability_zones: tuple[str, ...] = ()
    service_network: str | None = None
    subnet_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class VmType:
    """One entry of the VM type catalog (``/api/v0/vm_types``); ram/disk in MB."""

    name: str
    cpu: int
    ram: int
    ephemeral_disk: int


@dataclass(frozen=True)
class ResourceConfig:
    """A job's Resource Config; ``None`` means "Automatic" (the tile default)."""

    instances: int | None = None
    vm_type: str | None = None
    persistent_disk_mb: int | None = None
    persistent_disk_type: str | None = None
    vm_extensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class OtherProduct:
    """Another staged/deployed product, for ``(( ..name.x ))`` accessors.

    With ``template`` the other product's accessors are typed; without it a
    reference is looked up in ``values`` and read untyped (``.value``, or a
    key of a credential mapping).
    """

    name: str
    deployment_name: str
    network_name: str
    values: Mapping[str, Any] = field(default_factory=dict)
    template: ProductTemplate | None = None
    version: str = ""


@dataclass(frozen=True)
class ErrandConfig:
    """Errand state: True/False, ``"when-changed"``, or None for the tile default."""

    post_deploy: bool | str | None = None
    pre_delete: bool | str | None = None


@dataclass(frozen=True)
class RenderContext:
    deployment_name: str
    network: NetworkAssignment
    stemcell: StemcellRef
    resources: Mapping[str, ResourceConfig] = field(default_factory=dict)
    vm_types: Mapping[str, VmType] = field(default_factory=dict)
    disk_types: Mapping[str, int] = field(default_factory=dict)  # name -> size MB
    errands: Mapping[str, ErrandConfig] = field(default_factory=dict)
    director: Mapping[str, Any] = field(default_factory=dict)
    ops_manager: Mapping[str, Any] = field(default_factory=dict)
    runtime: Mapping[str, Any] = field(default_factory=dict)
    self_facts: Mapping[str, Any] = field(default_factory=dict)
    other_products: Mapping[str, OtherProduct] = field(default_factory=dict)
    # IPs of each job's instances from the last deploy, if known.
    known_ips: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Prefix for the template's relative CredHub variable names, e.g.
    # "/opsconsole/p-redis-0a1b"; None leaves them relative, which BOSH scopes
    # to /<director>/<deployment>/ already.
    variable_prefix: str | None = None
    # Where the product's secrets live in the director's variable store
    # (``tiles.accessors.CREDENTIAL_ROOT``); None writes their values in.
    credential_root: str | None = None
    # Secrets of ``$director``/``$self`` accessors (``"$director.password"`` ->
    # ``tiles.accessors.ContextSecret``): rendered as references like the tile's own.
    context_secrets: Mapping[str, Any] = field(default_factory=dict)


def _bosh_dns_label(name: str) -> str:
    """BOSH's canonical DNS label: lower case, ``_`` as ``-``, anything else but
    letters, digits and ``-`` dropped (a job type ``migrate-v1.1-v1.2``)."""
    return re.sub(r"[^a-z0-9-]", "", name.lower().replace("_", "-"))


def _expand_static_ips(ranges: str) -> list[str]:
    """BOSH accepts ``a - b`` ranges in static_ips; keep single IPs as they are."""
    out = []
    for entry in props.parse_ip_ranges(ranges):
        if "-" in entry:
            first, last = entry.split("-")
            out.append(f"{first} - {last}")
        elif "/" in entry:
            net = ipaddress.ip_network(entry)
            out.append(f"{net[0]} - {net[-1]}")
        else:
            out.append(entry)
    return out


def _ip_count(entries: list[str]) -> list[str]:
    ips: list[str] = []
    for e in entries:
        if " - " in e:
            a, b = (ipaddress.ip_address(x) for x in e.split(" - "))
            cur = a
            while cur <= b and len(ips) < 4096:
                ips.append(str(cur))
                cur += 1
        else:
            ips.append(e)
    return ips


def _resource_defs(job: Mapping) -> dict[str, Mapping]:
    return {
        rd.get("name"): rd
        for rd in job.get("resource_definitions") or []
        if isinstance(rd, Mapping)
    }


def _zero_if(job: Mapping, values: Mapping[str, Any], template: ProductTemplate) -> bool:
    zi = (job.get("instance_definition") or {}).get("zero_if")
    if not isinstance(zi, Mapping):
        return False
    ref = zi.get("property_reference")
    bp = template.blueprint(ref) if isinstance(ref, str) else None
    if bp is None:
        return False
    current = values.get(ref)
    targets = zi.get("property_values")
    if targets is None:
        targets = [zi.get("property_value")]
    if bp.get("type") == "selector":
        option = props.SelectorType().find_option(bp, current)
        current_forms = {str(current)}
        if option is not None:
            current_forms |= {props.SelectorType.select_value(option), str(option.get("name"))}
        return any(str(t) in current_forms for t in targets)
    return any(t == current or str(t) == str(current) for t in targets)


def job_facts(
    template: ProductTemplate,
    values: Mapping[str, Any],
    ctx: RenderContext,
    errors: list[tuple[str, str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Resolved resource facts per job type: instances, vm_type, cpu, ram, ...

    ``values`` are effective values (defaults filled). Problems with the
    resource config are appended to ``errors`` as ``resource_config/<job>/...``.
    """
    errors = [] if errors is None else errors
    facts: dict[str, dict[str, Any]] = {}
    dep_label = _bosh_dns_label(ctx.deployment_name)
    net_label = _bosh_dns_label(ctx.network.network)
    for name, job in template.job_types.items():
        path = f"resource_config/{name}"
        rc = ctx.resources.get(name) or ResourceConfig()
        idef = job.get("instance_definition") or {}
        cons = idef.get("constraints") if isinstance(idef.get("constraints"), Mapping) else {}
        if rc.instances is not None:
            instances = rc.instances
            if isinstance(cons.get("min"), int) and instances < cons["min"]:
                errors.append(
                    (f"{path}/instances", f"{instances} is below the minimum {cons['min']}")
                )
            if isinstance(cons.get("max"), int) and instances > cons["max"]:
                errors.append(
                    (f"{path}/instances", f"{instances} is above the maximum {cons['max']}")
                )
        elif isinstance(idef.get("default"), int):
            instances = idef["default"]
        elif isinstance(cons.get("min"), int):
            instances = cons["min"]
        else:
            instances = 1
        if _zero_if(job, values, template):
            instances = 0
        if isinstance(instances, bool) or not isinstance(instances, int) or instances < 0:
            errors.append((f"{path}/instances", f"{instances!r} is not a number of instances"))
            instances = 0
        elif instances > MAX_INSTANCES:
            errors.append((f"{path}/instances", f"{instances} is more than {MAX_INSTANCES}"))
            instances = 0
        rds = _resource_defs(job)

        def rd_default(key: str, rds=rds) -> int:
            d = (rds.get(key) or {}).get("default")
            return d if isinstance(d, int) else 0

        vm_type = rc.vm_type
        spec: VmType | None = None
        if vm_type is not None:
            spec = ctx.vm_types.get(vm_type)
            if spec is None and ctx.vm_types:
                errors.append((f"{path}/vm_type", f"'{vm_type}' is not in the VM type catalog"))
        else:
            need = (rd_default("cpu"), rd_default("ram"), rd_default("ephemeral_disk"))
            fitting = [
                v
                for v in ctx.vm_types.values()
                if v.cpu >= need[0] and v.ram >= need[1] and v.ephemeral_disk >= need[2]
            ]
            if fitting:
                spec = min(fitting, key=lambda v: (v.cpu, v.ram, v.ephemeral_disk, v.name))
                vm_type = spec.name
            elif instances > 0 or job.get("errand"):
                errors.append(
                    (
                        f"{path}/vm_type",
                        "no VM type is set and none in the catalog has "
                        f"{need[0]} CPU, {need[1]} MB RAM and {need[2]} MB ephemeral disk",
                    )
                )
        disk_rd = rds.get("persistent_disk") or {}
        disk = (
            rc.persistent_disk_mb
            if rc.persistent_disk_mb is not None
            else rd_default("persistent_disk")
        )
        if rc.persistent_disk_type is not None:
            if ctx.disk_types and rc.persistent_disk_type not in ctx.disk_types:
                errors.append(
                    (
                        f"{path}/persistent_disk",
                        f"'{rc.persistent_disk_type}' is not a known disk type",
                    )
                )
            disk = ctx.disk_types.get(rc.persistent_disk_type, disk)
        dmin = (
            (disk_rd.get("constraints") or {}).get("min")
            if isinstance(disk_rd.get("constraints"), Mapping)
            else None
        )
        if disk and isinstance(dmin, int) and disk < dmin:
            errors.append((f"{path}/persistent_disk", f"{disk} MB is below the minimum {dmin} MB"))

        static = values.get(f".{name}.static_ips")
        static_entries = _expand_static_ips(static) if isinstance(static, str) and static else []
        if ctx.known_ips.get(name):
            ips = list(ctx.known_ips[name])[:instances]
        elif static_entries:
            ips = _ip_count(static_entries)[:instances]
        else:
            ips = [
                f"{i}.{_bosh_dns_label(name)}.{net_label}.{dep_label}.bosh"
                for i in range(instances)
            ]
        facts[name] = {
            "name": name,
            "instances": instances,
            "any_instances": instances > 0,
            "vm_type": vm_type,
            "cpu": spec.cpu if spec else rd_default("cpu"),
            "ram": spec.ram if spec else rd_default("ram"),
            "ephemeral_disk": spec.ephemeral_disk if spec else rd_default("ephemeral_disk"),
            "persistent_disk": disk,
            "persistent_disk_type": rc.persistent_disk_type,
            "static_ips": static_entries,
            "ips": ips,
            "first_ip": ips[0] if ips else None,
            "dns_names": [
                f"{i}.{_bosh_dns_label(name)}.{net_label}.{dep_label}.bosh"
                for i in range(instances)
            ],
            "subnet_cidrs": list(ctx.network.subnet_cidrs),
            "deployment_name": ctx.deployment_name,
            "vm_extensions": list(rc.vm_extensions),
        }
    return facts
