"""Instance groups as the planner reads them (the planner's second step).

``parse_groups`` checks the manifest's ``instance_groups`` against the
cloud-config and the uploaded stemcells and returns one ``GroupSpec`` per
group, in manifest order: lifecycle, instance count, AZs, stemcell, VM shape
(``vm_type`` or ``vm_resources``, ``vm_extensions``), persistent disk,
networks (with their static IPs and defaults), env, jobs and the effective
``update`` block. Each section is checked by its own function, in that
order, and the first problem is raised as a ``PlanError`` naming its path.

``migrated_from`` and ``persistent_disks`` (plural) are refused for now.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from director.manifest.parse import LIFECYCLES, MAX_INSTANCES
from director.planning.addresses import expand_ips, parse_ip
from director.planning.azs import StaticIpPool
from director.planning.cloud_config import CloudConfig, mapping
from director.planning.errors import NetworkReservationIpOutsideSubnet, PlanError
from director.planning.inputs import PlanOptions, StemcellRef
from director.planning.model import JobRef
from director.planning.networks import Network
from director.planning.update import UpdateConfig, resolve_update_config

DEFAULTABLE = ("dns", "gateway")


@dataclass(frozen=True)
class GroupNetwork:
    name: str
    network: Network
    static_ips: tuple[str, ...]
    default: tuple[str, ...]

    @property
    def is_static(self) -> bool:
        return bool(self.static_ips)


@dataclass(frozen=True)
class GroupSpec:
    """One instance group as the planner needs it."""

    name: str
    path: str
    raw: Mapping[str, Any]
    lifecycle: str
    instances: int
    azs: tuple[str, ...]
    networks: tuple[GroupNetwork, ...]
    stemcell: StemcellRef
    vm_type: str | None
    vm_extensions: tuple[str, ...]
    vm_resources: Mapping[str, Any] | None
    persistent_disk_size: int
    persistent_disk_type: str | None
    persistent_disk_cloud_properties: Mapping[str, Any]
    env: Mapping[str, Any]
    jobs: tuple[JobRef, ...]
    jobs_fingerprint: str
    update: UpdateConfig


def group_names(manifest: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], set[str]]:
    """The manifest's raw instance groups and their names (each a mapping
    with a unique ``name``)."""
    raw_groups = manifest.get("instance_groups") or []
    if not isinstance(raw_groups, list):
        raise PlanError("instance_groups", "must be a list")
    seen: set[str] = set()
    for i, raw in enumerate(raw_groups):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
            raise PlanError(f"instance_groups/{i}", "must be a mapping with a 'name'")
        if raw["name"] in seen:
            raise PlanError(f"instance_groups/{raw['name']}", "name is used twice")
        seen.add(raw["name"])
    return raw_groups, seen


def parse_group(
    raw: Mapping[str, Any],
    cloud: CloudConfig,
    deployment_update: object,
    *,
    stemcells: Mapping[str, StemcellRef],
    options: PlanOptions,
    jobs_fingerprint: Callable[[Mapping[str, Any]], str],
) -> GroupSpec:
    name = raw["name"]
    path = f"instance_groups/{name}"
    for unsupported in ("migrated_from", "persistent_disks"):
        if raw.get(unsupported):
            raise PlanError(f"{path}/{unsupported}", "is not supported yet")
    lifecycle = _lifecycle(raw, path)
    instances = _instances(raw, path)
    azs = _azs(raw, path, cloud)
    stemcell = _stemcell(raw, path, stemcells)
    vm_type, vm_resources = _vm_shape(raw, path, cloud)
    extensions = _vm_extensions(raw, path, cloud)
    disk_size, disk_type, disk_props = _persistent_disk(raw, path, cloud)
    networks = parse_group_networks(raw.get("networks"), path, azs, cloud)
    env = mapping(raw.get("env"), f"{path}/env")
    update = _update(raw, path, deployment_update, options)
    return GroupSpec(
        name=name,
        path=path,
        raw=raw,
        lifecycle=lifecycle,
        instances=instances,
        azs=tuple(azs),
        networks=networks,
        stemcell=stemcell,
        vm_type=vm_type,
        vm_extensions=tuple(extensions),
        vm_resources=vm_resources,
        persistent_disk_size=disk_size,
        persistent_disk_type=disk_type,
        persistent_disk_cloud_properties=disk_props,
        env=copy.deepcopy(dict(env)),
        jobs=_parse_jobs(raw.get("jobs"), f"{path}/jobs"),
        jobs_fingerprint=jobs_fingerprint(raw),
        update=update,
    )


def _update(
    raw: Mapping[str, Any], path: str, deployment_update: object, options: PlanOptions
) -> UpdateConfig:
    """The deployment's ``update`` overridden by the group's, then by the
    operator's deploy options."""
    return resolve_update_config(
        deployment_update,  # type: ignore[arg-type]
        raw.get("update"),
        group_path=path,
        default_vm_strategy=options.default_vm_strategy,
        canaries=options.canaries,
        max_in_flight=options.max_in_flight,
    )


def _lifecycle(raw: Mapping[str, Any], path: str) -> str:
    lifecycle = raw.get("lifecycle") or "service"
    if lifecycle not in LIFECYCLES:
        raise PlanError(f"{path}/lifecycle", f"'{lifecycle}' is not one of service, errand")
    return lifecycle


def _instances(raw: Mapping[str, Any], path: str) -> int:
    instances = raw.get("instances")
    if isinstance(instances, bool) or not isinstance(instances, int) or instances < 0:
        raise PlanError(f"{path}/instances", "must be a whole number, 0 or more")
    if instances > MAX_INSTANCES:
        raise PlanError(f"{path}/instances", f"must be at most {MAX_INSTANCES}")
    return instances


def _azs(raw: Mapping[str, Any], path: str, cloud: CloudConfig) -> list[str]:
    azs = raw.get("azs") or []
    if not isinstance(azs, list) or not all(isinstance(a, str) for a in azs):
        raise PlanError(f"{path}/azs", "must be a list of AZ names")
    for az in azs:
        if az not in cloud.azs:
            raise PlanError(f"{path}/azs", f"unknown AZ '{az}' (not in the cloud-config)")
    if len(set(azs)) != len(azs):
        raise PlanError(f"{path}/azs", "lists an AZ twice")
    return azs


def _stemcell(
    raw: Mapping[str, Any], path: str, stemcells: Mapping[str, StemcellRef]
) -> StemcellRef:
    stemcell_alias = raw.get("stemcell")
    if not isinstance(stemcell_alias, str):
        raise PlanError(f"{path}/stemcell", "is required (a stemcell alias)")
    stemcell = stemcells.get(stemcell_alias)
    if stemcell is None:
        raise PlanError(
            f"{path}/stemcell", f"stemcell '{stemcell_alias}' is not declared or not uploaded"
        )
    return stemcell


def _vm_shape(
    raw: Mapping[str, Any], path: str, cloud: CloudConfig
) -> tuple[str | None, Mapping[str, Any] | None]:
    """``vm_type`` or ``vm_resources`` (exactly one of them)."""
    vm_type = raw.get("vm_type")
    vm_resources = raw.get("vm_resources")
    if vm_type is not None and vm_resources is not None:
        raise PlanError(path, "use either vm_type or vm_resources, not both")
    if vm_type is None and vm_resources is None:
        raise PlanError(f"{path}/vm_type", "is required (or vm_resources)")
    if vm_type is not None and not isinstance(vm_type, str):
        raise PlanError(f"{path}/vm_type", "must be the name of a vm_type")
    if vm_type is not None and vm_type not in cloud.vm_types:
        raise PlanError(f"{path}/vm_type", f"unknown vm_type '{vm_type}' (not in cloud-config)")
    if vm_resources is not None:
        vm_resources = mapping(vm_resources, f"{path}/vm_resources")
        for key in ("cpu", "ram", "ephemeral_disk_size"):
            value = vm_resources.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise PlanError(f"{path}/vm_resources/{key}", "must be a positive integer")
    return vm_type, vm_resources


def _vm_extensions(raw: Mapping[str, Any], path: str, cloud: CloudConfig) -> list[str]:
    extensions = raw.get("vm_extensions") or []
    if not isinstance(extensions, list) or not all(isinstance(x, str) for x in extensions):
        raise PlanError(f"{path}/vm_extensions", "must be a list of vm_extension names")
    for ext in extensions:
        if ext not in cloud.vm_extensions:
            raise PlanError(
                f"{path}/vm_extensions", f"unknown vm_extension '{ext}' (not in cloud-config)"
            )
    return extensions


def _persistent_disk(
    raw: Mapping[str, Any], path: str, cloud: CloudConfig
) -> tuple[int, str | None, Mapping[str, Any]]:
    """``(size in MiB, disk_type name, cloud_properties)``; size 0 for no disk."""
    disk_size, disk_type, disk_props = 0, None, {}
    if raw.get("persistent_disk") is not None and raw.get("persistent_disk_type") is not None:
        raise PlanError(path, "use either persistent_disk or persistent_disk_type, not both")
    if raw.get("persistent_disk") is not None:
        disk_size = raw["persistent_disk"]
        if isinstance(disk_size, bool) or not isinstance(disk_size, int) or disk_size < 0:
            raise PlanError(f"{path}/persistent_disk", "must be a size in MiB")
    elif raw.get("persistent_disk_type") is not None:
        disk_type = raw["persistent_disk_type"]
        if not isinstance(disk_type, str):
            raise PlanError(f"{path}/persistent_disk_type", "must be the name of a disk_type")
        if disk_type not in cloud.disk_types:
            raise PlanError(
                f"{path}/persistent_disk_type",
                f"unknown disk_type '{disk_type}' (not in cloud-config)",
            )
        disk_size = cloud.disk_types[disk_type].size
        disk_props = dict(cloud.disk_types[disk_type].cloud_properties)
    return disk_size, disk_type, disk_props


def _parse_jobs(raw: object, path: str) -> tuple[JobRef, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PlanError(path, "must be a list of jobs")
    jobs = []
    for i, job in enumerate(raw):
        if not isinstance(job, Mapping):
            raise PlanError(f"{path}/{i}", "must be a mapping with 'name' and 'release'")
        for key in ("name", "release"):
            if not isinstance(job.get(key), str):
                raise PlanError(f"{path}/{job.get('name') or i}/{key}", "is required")
        jobs.append(JobRef(job["name"], job["release"]))
    return tuple(jobs)


def parse_group_networks(
    raw: object, path: str, azs: list[str], cloud: CloudConfig
) -> tuple[GroupNetwork, ...]:
    """The group's ``networks``, each in the cloud-config and serving the
    group's AZs; with one network it is the default for dns and gateway,
    with several exactly one must claim each."""
    if not isinstance(raw, list) or not raw:
        raise PlanError(f"{path}/networks", "at least one network is required")
    result: list[GroupNetwork] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise PlanError(f"{path}/networks/{i}", "must be a mapping with a 'name'")
        if any(n.name == entry["name"] for n in result):
            raise PlanError(f"{path}/networks/{entry['name']}", "network is listed twice")
        result.append(_group_network(entry, f"{path}/networks/{entry['name']}", azs, cloud))
    if len(result) == 1:
        only = result[0]
        if not only.default:
            result[0] = replace(only, default=DEFAULTABLE)
    else:
        for key in DEFAULTABLE:
            owners = [n.name for n in result if key in n.default]
            if len(owners) != 1:
                raise PlanError(
                    f"{path}/networks",
                    f"with more than one network, exactly one must have '{key}' in its "
                    f"'default' (found {len(owners)})",
                )
    return tuple(result)


def _group_network(
    entry: Mapping[str, Any], net_path: str, azs: list[str], cloud: CloudConfig
) -> GroupNetwork:
    name = entry["name"]
    network = cloud.networks.get(name)
    if network is None:
        raise PlanError(net_path, f"network '{name}' is not in the cloud-config")
    if network.type != "vip":
        for az in azs:
            if not network.subnets_for_az(az):
                raise PlanError(net_path, f"no subnet of network '{name}' serves az '{az}'")
    default = entry.get("default") or []
    if not isinstance(default, list) or not all(
        d in (*DEFAULTABLE, "addressable") for d in default
    ):
        raise PlanError(f"{net_path}/default", "must be a list of: dns, gateway")
    version = None
    if network.subnets and network.type == "manual":
        version = network.subnets[0].version
    static_ips = tuple(
        str(parse_ip(ip, f"{net_path}/static_ips"))
        for ip in expand_ips(entry.get("static_ips"), version, f"{net_path}/static_ips")
    )
    if network.type == "vip" and not static_ips:
        raise PlanError(f"{net_path}/static_ips", "a vip network needs static_ips")
    if network.type == "dynamic" and static_ips:
        raise PlanError(f"{net_path}/static_ips", "a dynamic network has no static IPs")
    return GroupNetwork(name, network, static_ips, tuple(default))


def static_pools(group: GroupSpec) -> list[StaticIpPool]:
    """The group's static IPs on manual networks, each with the AZs its
    subnet serves (what AZ placement needs to honour them)."""
    pools = []
    for gn in group.networks:
        if not gn.is_static or gn.network.type != "manual":
            continue
        path = f"{group.path}/networks/{gn.name}/static_ips"
        ips = []
        for ip in gn.static_ips:
            subnet = gn.network.subnet_for(parse_ip(ip))
            if subnet is None:
                ranges = ", ".join(str(s.network) for s in gn.network.subnets)
                raise NetworkReservationIpOutsideSubnet(
                    path, f"{ip} is not in any subnet of network '{gn.name}' ({ranges})"
                )
            ips.append((ip, tuple(az for az in group.azs if subnet.serves(az))))
        pools.append(StaticIpPool(gn.name, tuple(ips)))
    return pools
