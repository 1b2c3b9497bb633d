"""``DeploymentPlanner``: manifest + cloud-config + current state -> ``DeploymentPlan``.

The manifest arrives interpolated and validated by ``director.manifest``
(BOSH v2 shape, plain dicts); the cloud-configs arrive consolidated into one
dict. The planner still checks every key it relies on, so a bad value gives
a ``PlanError`` naming its path rather than a traceback.

Steps, as in BOSH's ``Assembler#bind_models``:

1. Parse the cloud-config: AZs, vm_types, vm_extensions, disk_types,
   networks (subnets with reserved/static ranges, see ``ips.py``).
2. Per instance group, in manifest order: place instances in AZs, keep or
   create instances, assign indexes, elect the bootstrap (``azs.py``).
3. Reserve IPs for the whole deployment: first existing instances keep their
   still-valid dynamic IPs (every group), then static IPs are reserved, then
   the remaining dynamic IPs are handed out lowest first (``ips.py``).
4. Build each instance's desired state (merged cloud properties AZ <- vm_type
   <- vm_extensions, stemcell, networks, disk, env, jobs) and compare it
   with what was applied (``changes.py``).
5. With ``vm_strategy: create-swap-delete``, instances that are recreated get
   fresh dynamic IPs for the duplicate VM; their old IPs are released later.
6. Instances no longer needed and groups removed from the manifest get
   ``delete`` plans; their IPs, and IPs that changed, are listed in
   ``ip_reservations_to_release``.

Errands (``lifecycle: errand``) are planned like service groups and reserve
their IPs, but their instances without a VM get ``change == "none"``: their
VM is created when the errand runs. ``migrated_from`` and ``persistent_disks``
(plural) are refused for now with a clear error.

No I/O: ``uuid_factory`` (default ``uuid4``) names new instances, and
``jobs_fingerprint`` (default: a digest of job names, releases and
properties) summarises a group's jobs, so tests are deterministic.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from director.manifest.parse import MAX_INSTANCES
from director.planning.azs import Placement, StaticIpPool, place_instances, tie_breaker
from director.planning.changes import classify, detect_changes
from director.planning.errors import (
    NetworkReservationIpOutsideSubnet,
    PlanError,
    UnresponsiveInstance,
    UpdateConfigError,
)
from director.planning.ips import Holder, IpAllocator, Network, expand_ips, parse_ip, parse_networks
from director.planning.model import (
    DeploymentPlan,
    DesiredInstance,
    ExistingInstance,
    InstanceGroupPlan,
    InstancePlan,
    JobRef,
    NetworkReservation,
    PlanOptions,
    ReleasedIp,
    StemcellRef,
)
from director.planning.update import UpdateConfig, WatchTime, resolve_update_config

LIFECYCLES = ("service", "errand")
DEFAULTABLE = ("dns", "gateway")


def default_jobs_fingerprint(group: Mapping[str, Any]) -> str:
    """A digest of the group's job names, releases and properties (and the
    group-level ``properties``). Stands in for the rendered templates' digest
    until templates are rendered; equal inputs give equal fingerprints."""
    payload = {
        "jobs": [
            {
                "name": job.get("name"),
                "release": job.get("release"),
                "properties": job.get("properties"),
                "consumes": job.get("consumes"),
                "provides": job.get("provides"),
            }
            for job in group.get("jobs") or []
            if isinstance(job, Mapping)
        ],
        "properties": group.get("properties"),
    }
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------
# cloud-config


@dataclass(frozen=True)
class _DiskType:
    size: int
    cloud_properties: Mapping[str, Any]


@dataclass(frozen=True)
class _CloudConfig:
    azs: Mapping[str, Mapping[str, Any]]
    vm_types: Mapping[str, Mapping[str, Any]]
    vm_extensions: Mapping[str, Mapping[str, Any]]
    disk_types: Mapping[str, _DiskType]
    networks: Mapping[str, Network]


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PlanError(path, "must be a mapping")
    return value


def _named_list(raw: Mapping[str, Any], key: str, path: str) -> dict[str, Mapping[str, Any]]:
    items = raw.get(key)
    if items is None:
        return {}
    if not isinstance(items, list):
        raise PlanError(f"{path}/{key}", "must be a list")
    result: dict[str, Mapping[str, Any]] = {}
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise PlanError(f"{path}/{key}/{i}", "must be a mapping with a 'name'")
        if item["name"] in result:
            raise PlanError(f"{path}/{key}/{item['name']}", "name is used twice")
        result[item["name"]] = item
    return result


def parse_cloud_config(raw: Mapping[str, Any], path: str = "cloud_config") -> _CloudConfig:
    raw = _mapping(raw, path)

    def props(items: dict[str, Mapping[str, Any]], key: str) -> dict[str, Mapping[str, Any]]:
        return {
            name: _mapping(item.get("cloud_properties"), f"{path}/{key}/{name}/cloud_properties")
            for name, item in items.items()
        }

    azs = props(_named_list(raw, "azs", path), "azs")
    disk_types = {}
    for name, item in _named_list(raw, "disk_types", path).items():
        size = item.get("disk_size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise PlanError(f"{path}/disk_types/{name}/disk_size", "must be a size in MiB")
        disk_types[name] = _DiskType(
            size,
            _mapping(item.get("cloud_properties"), f"{path}/disk_types/{name}/cloud_properties"),
        )
    return _CloudConfig(
        azs=azs,
        vm_types=props(_named_list(raw, "vm_types", path), "vm_types"),
        vm_extensions=props(_named_list(raw, "vm_extensions", path), "vm_extensions"),
        disk_types=disk_types,
        networks=parse_networks(raw.get("networks"), f"{path}/networks", known_azs=list(azs)),
    )


# --------------------------------------------------------------------------
# instance groups


@dataclass(frozen=True)
class _GroupNetwork:
    name: str
    network: Network
    static_ips: tuple[str, ...]
    default: tuple[str, ...]

    @property
    def is_static(self) -> bool:
        return bool(self.static_ips)


@dataclass(frozen=True)
class _Group:
    """One instance group as the planner needs it."""

    name: str
    path: str
    raw: Mapping[str, Any]
    lifecycle: str
    instances: int
    azs: tuple[str, ...]
    networks: tuple[_GroupNetwork, ...]
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


class DeploymentPlanner:
    """Plans one deployment. Construct, then call ``plan()``."""

    def __init__(
        self,
        manifest: Mapping[str, Any],
        cloud_config: Mapping[str, Any],
        existing: Sequence[ExistingInstance] = (),
        stemcells: Mapping[str, StemcellRef] | None = None,
        ips_in_use: Mapping[str, str] | None = None,
        options: PlanOptions | None = None,
        jobs_fingerprint: Callable[[Mapping[str, Any]], str] | None = None,
        uuid_factory: Callable[[], str] | None = None,
    ) -> None:
        self.manifest = manifest
        self.cloud_config = cloud_config
        self.existing = tuple(existing)
        self.stemcells = dict(stemcells or {})
        self.ips_in_use = dict(ips_in_use or {})
        self.options = options or PlanOptions()
        self.jobs_fingerprint = jobs_fingerprint or default_jobs_fingerprint
        self.uuid_factory = uuid_factory or (lambda: str(uuidlib.uuid4()))
        self._taken_uuids = {e.uuid for e in self.existing}

    # -- parsing ---------------------------------------------------------

    def _parse_group(
        self, raw: Mapping[str, Any], cloud: _CloudConfig, deployment_update: object
    ) -> _Group:
        name = raw["name"]
        path = f"instance_groups/{name}"
        for unsupported in ("migrated_from", "persistent_disks"):
            if raw.get(unsupported):
                raise PlanError(f"{path}/{unsupported}", "is not supported yet")
        lifecycle = raw.get("lifecycle") or "service"
        if lifecycle not in LIFECYCLES:
            raise PlanError(f"{path}/lifecycle", f"'{lifecycle}' is not one of service, errand")
        instances = raw.get("instances")
        if isinstance(instances, bool) or not isinstance(instances, int) or instances < 0:
            raise PlanError(f"{path}/instances", "must be a whole number, 0 or more")
        if instances > MAX_INSTANCES:
            raise PlanError(f"{path}/instances", f"must be at most {MAX_INSTANCES}")

        azs = raw.get("azs") or []
        if not isinstance(azs, list) or not all(isinstance(a, str) for a in azs):
            raise PlanError(f"{path}/azs", "must be a list of AZ names")
        for az in azs:
            if az not in cloud.azs:
                raise PlanError(f"{path}/azs", f"unknown AZ '{az}' (not in the cloud-config)")
        if len(set(azs)) != len(azs):
            raise PlanError(f"{path}/azs", "lists an AZ twice")

        stemcell_alias = raw.get("stemcell")
        if not isinstance(stemcell_alias, str):
            raise PlanError(f"{path}/stemcell", "is required (a stemcell alias)")
        stemcell = self.stemcells.get(stemcell_alias)
        if stemcell is None:
            raise PlanError(
                f"{path}/stemcell", f"stemcell '{stemcell_alias}' is not declared or not uploaded"
            )

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
            vm_resources = _mapping(vm_resources, f"{path}/vm_resources")
            for key in ("cpu", "ram", "ephemeral_disk_size"):
                value = vm_resources.get(key)
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise PlanError(f"{path}/vm_resources/{key}", "must be a positive integer")
        extensions = raw.get("vm_extensions") or []
        if not isinstance(extensions, list) or not all(isinstance(x, str) for x in extensions):
            raise PlanError(f"{path}/vm_extensions", "must be a list of vm_extension names")
        for ext in extensions:
            if ext not in cloud.vm_extensions:
                raise PlanError(
                    f"{path}/vm_extensions", f"unknown vm_extension '{ext}' (not in cloud-config)"
                )

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

        networks = self._parse_group_networks(raw.get("networks"), path, azs, cloud)
        env = _mapping(raw.get("env"), f"{path}/env")
        group_update = raw.get("update")
        update = resolve_update_config(
            deployment_update,  # type: ignore[arg-type]
            group_update,
            group_path=path,
            default_vm_strategy=self.options.default_vm_strategy,
            canaries=self.options.canaries,
            max_in_flight=self.options.max_in_flight,
        )
        return _Group(
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
            jobs_fingerprint=self.jobs_fingerprint(raw),
            update=update,
        )

    def _parse_group_networks(
        self, raw: object, path: str, azs: list[str], cloud: _CloudConfig
    ) -> tuple[_GroupNetwork, ...]:
        if not isinstance(raw, list) or not raw:
            raise PlanError(f"{path}/networks", "at least one network is required")
        result: list[_GroupNetwork] = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                raise PlanError(f"{path}/networks/{i}", "must be a mapping with a 'name'")
            name = entry["name"]
            net_path = f"{path}/networks/{name}"
            if any(n.name == name for n in result):
                raise PlanError(net_path, "network is listed twice")
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
            result.append(_GroupNetwork(name, network, static_ips, tuple(default)))
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

    def _static_pools(self, group: _Group) -> list[StaticIpPool]:
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

    # -- planning --------------------------------------------------------

    def plan(self) -> DeploymentPlan:
        manifest = _mapping(self.manifest, "")
        name = manifest.get("name")
        if not isinstance(name, str) or not name:
            raise PlanError("name", "is required")
        cloud = parse_cloud_config(self.cloud_config)
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
        deployment_update = manifest.get("update")
        groups = [self._parse_group(raw, cloud, deployment_update) for raw in raw_groups]

        by_group: dict[str, list[ExistingInstance]] = {}
        for instance in self.existing:
            by_group.setdefault(instance.group, []).append(instance)
        for instance in self.existing:
            if instance.unresponsive and not self.options.fix and instance.group in seen:
                raise UnresponsiveInstance(
                    f"instance_groups/{instance.group}",
                    f"instance {instance.label} is not responding; run cloud check, or deploy "
                    "with fix to recreate it",
                )

        # 1. placement and identity
        placed: list[tuple[_Group, list[tuple[Placement, str]], tuple[ExistingInstance, ...]]] = []
        for group in groups:
            rng = None
            if self.options.randomize_az_placement:
                rng = random.Random(f"{self.options.random_seed}:{name}:{group.name}")
            result = place_instances(
                group.name,
                group.instances,
                group.azs,
                by_group.get(group.name, []),
                static_pools=self._static_pools(group),
                pick=tie_breaker(rng),
                path=group.path,
            )
            with_uuid = [
                (p, p.existing.uuid if p.existing else self._new_uuid(group))
                for p in result.placements
            ]
            placed.append((group, with_uuid, result.obsolete))

        # 2. IP reservations
        own = {}
        for instance in self.existing:
            holder = Holder(instance.uuid, instance.label)
            for _network, ip, _static in instance.reservations:
                try:
                    own[str(parse_ip(ip))] = holder
                except PlanError:
                    continue
        allocator = IpAllocator(
            cloud.networks,
            deployment=name,
            ips_in_use=self.ips_in_use,
            own=own,
            director_ips=self.options.director_ips,
        )
        reservations: dict[str, dict[str, NetworkReservation]] = {}

        def label(group: _Group, placement: Placement, uuid: str) -> Holder:
            return Holder(uuid, f"{group.name}/{uuid} ({placement.index})")

        for group, items, _ in placed:  # existing instances keep valid dynamic IPs
            for placement, uuid in items:
                if placement.existing is None:
                    continue
                for gn in group.networks:
                    if gn.is_static or gn.network.type != "manual":
                        continue
                    for network, ip, _static in placement.existing.reservations:
                        if network != gn.name:
                            continue
                        kept = allocator.keep_dynamic(
                            gn.name, ip, label(group, placement, uuid), placement.az
                        )
                        if kept:
                            reservations.setdefault(uuid, {})[gn.name] = kept
                            break
        for group, items, _ in placed:  # static IPs
            vip_index = {gn.name: 0 for gn in group.networks}
            for placement, uuid in items:
                for gn in group.networks:
                    if not gn.is_static:
                        continue
                    if gn.network.type == "vip":
                        ip = (
                            gn.static_ips[vip_index[gn.name]]
                            if vip_index[gn.name] < len(gn.static_ips)
                            else None
                        )
                        vip_index[gn.name] += 1
                        if ip is None:
                            raise PlanError(
                                f"{group.path}/networks/{gn.name}/static_ips",
                                f"instance group '{group.name}' has {group.instances} "
                                f"instance(s) but {len(gn.static_ips)} static IP(s)",
                            )
                    else:
                        ip = placement.static_ips[gn.name]
                    reservations.setdefault(uuid, {})[gn.name] = allocator.reserve_static(
                        gn.name,
                        ip,
                        label(group, placement, uuid),
                        f"{group.path}/networks/{gn.name}/static_ips",
                    )
        for group, items, _ in placed:  # dynamic IPs, lowest first
            self._allocate_dynamic(allocator, group, items, reservations, lambda p, u: True)

        # 3. desired state and changes
        group_plans: list[InstanceGroupPlan] = []
        for group, items, obsolete in placed:
            plans = []
            for placement, uuid in items:
                desired = self._desired(group, placement, cloud, reservations.get(uuid, {}))
                plans.append(self._instance_plan(group, placement, uuid, desired))
            group_plans.append(
                InstanceGroupPlan(
                    name=group.name,
                    lifecycle=group.lifecycle,
                    update=group.update,
                    instance_plans=tuple(plans),
                    obsolete_plans=tuple(
                        self._delete_plan(e, self._obsolete_reason(group, e, by_group))
                        for e in obsolete
                    ),
                    azs=group.azs,
                )
            )

        # 4. create-swap-delete: fresh dynamic IPs for the duplicate VMs
        duplicates = {p.uuid for g in group_plans for p in g.instance_plans if p.needs_duplicate_vm}
        if duplicates:
            fresh: dict[str, dict[str, NetworkReservation]] = {}
            for group, items, _ in placed:
                self._allocate_dynamic(allocator, group, items, fresh, lambda p, u: u in duplicates)
            group_plans = [
                replace(
                    g,
                    instance_plans=tuple(
                        self._with_networks(p, fresh.get(p.uuid, {})) for p in g.instance_plans
                    ),
                )
                for g in group_plans
            ]

        # 5. groups removed from the manifest
        obsolete_groups = []
        for group_name, instances in by_group.items():
            if group_name in seen:
                continue
            for instance in instances:
                if instance.ignore:
                    raise PlanError(
                        "instance_groups",
                        f"instance group '{group_name}' was removed but contains ignored "
                        f"instance {instance.label}; deleting it is not allowed",
                    )
            obsolete_groups.append(
                InstanceGroupPlan(
                    name=group_name,
                    lifecycle="service",
                    update=self._obsolete_group_update(deployment_update),
                    instance_plans=(),
                    obsolete_plans=tuple(
                        self._delete_plan(e, "instance group removed from the manifest")
                        for e in sorted(instances, key=lambda e: -e.index)
                    ),
                )
            )

        plan = DeploymentPlan(
            name=name,
            instance_groups=tuple(group_plans),
            obsolete_groups=tuple(obsolete_groups),
            initial_deploy=(
                self.options.initial_deploy
                if self.options.initial_deploy is not None
                else not self.existing
            ),
            warnings=tuple(
                f"instance {e.label} is ignored: the deploy leaves it as it is"
                for e in self.existing
                if e.ignore
            ),
        )
        return replace(plan, ip_reservations_to_release=self._releases(plan))

    def _new_uuid(self, group: _Group) -> str:
        uuid = self.uuid_factory()
        if uuid in self._taken_uuids:
            raise PlanError(group.path, f"uuid_factory returned uuid '{uuid}', already in use")
        self._taken_uuids.add(uuid)
        return uuid

    def _allocate_dynamic(
        self,
        allocator: IpAllocator,
        group: _Group,
        items: list[tuple[Placement, str]],
        reservations: dict[str, dict[str, NetworkReservation]],
        wanted: Callable[[Placement, str], bool],
    ) -> None:
        for gn in group.networks:
            if gn.is_static:
                continue
            by_az: dict[str | None, list[tuple[Placement, str]]] = {}
            for placement, uuid in items:
                if wanted(placement, uuid) and gn.name not in reservations.get(uuid, {}):
                    by_az.setdefault(placement.az, []).append((placement, uuid))
            path = f"{group.path}/networks/{gn.name}"
            for az, members in by_az.items():
                allocator.check_capacity(gn.name, az, len(members), group=group.name, path=path)
            # lowest addresses to lowest indexes, whatever their AZ
            for placement, uuid in sorted(
                (m for members in by_az.values() for m in members), key=lambda m: m[0].index
            ):
                holder = Holder(uuid, f"{group.name}/{uuid} ({placement.index})")
                [reservation] = allocator.allocate_dynamic_many(
                    gn.name, placement.az, [holder], group=group.name, path=path
                )
                reservations.setdefault(uuid, {})[gn.name] = reservation

    def _desired(
        self,
        group: _Group,
        placement: Placement,
        cloud: _CloudConfig,
        reservations: Mapping[str, NetworkReservation],
    ) -> DesiredInstance:
        merged: dict[str, Any] = dict(cloud.azs.get(placement.az, {})) if placement.az else {}
        if group.vm_type is not None:
            merged.update(cloud.vm_types[group.vm_type])
        elif group.vm_resources is not None:
            # What the vSphere CPI's calculate_vm_cloud_properties answers.
            merged.update(
                {
                    "cpu": group.vm_resources["cpu"],
                    "ram": group.vm_resources["ram"],
                    "disk": group.vm_resources["ephemeral_disk_size"],
                }
            )
        for ext in group.vm_extensions:
            merged.update(cloud.vm_extensions[ext])
        networks = tuple(
            replace(reservations[gn.name], default=gn.default) for gn in group.networks
        )
        return DesiredInstance(
            stemcell=group.stemcell,
            vm_type=group.vm_type,
            vm_extensions=group.vm_extensions,
            cloud_properties=copy.deepcopy(merged),
            env=group.env,
            networks=networks,
            persistent_disk_size=group.persistent_disk_size,
            persistent_disk_type=group.persistent_disk_type,
            persistent_disk_cloud_properties=group.persistent_disk_cloud_properties,
            jobs=group.jobs,
            jobs_fingerprint=group.jobs_fingerprint,
            state=placement.existing.state if placement.existing else "started",
        )

    def _instance_plan(
        self, group: _Group, placement: Placement, uuid: str, desired: DesiredInstance
    ) -> InstancePlan:
        existing = placement.existing
        errand = group.lifecycle == "errand"
        if existing is None:
            changes: frozenset[str] = frozenset()
            reasons: tuple[str, ...] = (
                ("errand: VM is created when the errand runs",) if errand else ("new instance",)
            )
        elif existing.ignore:
            changes, reasons = frozenset(), ("ignored",)
        else:
            changes, reasons = detect_changes(existing, desired, self.options)
            if existing.vm_cid is None and existing.state != "detached":
                reasons = (
                    ("errand: VM is created when the errand runs",)
                    if errand
                    else ("vm missing", *reasons)
                )
        change = classify(existing, changes, errand=errand)
        if change == "none":
            changes = frozenset()
        static = any(n.static for n in desired.networks)
        needs_duplicate = (
            change == "recreate"
            and group.update.vm_strategy == "create-swap-delete"
            and existing is not None
            and existing.vm_cid is not None
            and existing.state != "detached"
            and not static
        )
        return InstancePlan(
            group=group.name,
            uuid=uuid,
            index=placement.index,
            az=placement.az,
            bootstrap=placement.bootstrap,
            change=change,
            reasons=reasons,
            changes=changes,
            needs_shutting_down=change == "recreate",
            needs_duplicate_vm=needs_duplicate,
            desired=desired,
            existing=existing,
            lifecycle=group.lifecycle,
        )

    @staticmethod
    def _with_networks(plan: InstancePlan, fresh: Mapping[str, NetworkReservation]) -> InstancePlan:
        if not fresh or plan.desired is None:
            return plan
        networks = tuple(
            replace(fresh[n.network], default=n.default) if n.network in fresh else n
            for n in plan.desired.networks
        )
        return replace(plan, desired=replace(plan.desired, networks=networks))

    @staticmethod
    def _delete_plan(existing: ExistingInstance, reason: str) -> InstancePlan:
        return InstancePlan(
            group=existing.group,
            uuid=existing.uuid,
            index=existing.index,
            az=existing.az,
            bootstrap=existing.bootstrap,
            change="delete",
            reasons=(reason,),
            changes=frozenset(),
            needs_shutting_down=existing.vm_cid is not None,
            needs_duplicate_vm=False,
            desired=None,
            existing=existing,
        )

    @staticmethod
    def _obsolete_reason(
        group: _Group, existing: ExistingInstance, by_group: Mapping[str, list[ExistingInstance]]
    ) -> str:
        if group.azs and existing.az not in group.azs:
            return f"az '{existing.az}' is no longer used by the instance group"
        if not group.azs and existing.az is not None:
            return "the instance group no longer uses AZs"
        count = len(by_group.get(group.name, []))
        if group.instances < count:
            return f"instances scaled down {count} -> {group.instances}"
        return "replaced to balance instances across AZs or static IPs"

    def _obsolete_group_update(self, deployment_update: object) -> UpdateConfig:
        try:
            return resolve_update_config(
                deployment_update,  # type: ignore[arg-type]
                default_vm_strategy=self.options.default_vm_strategy,
                canaries=self.options.canaries,
                max_in_flight=self.options.max_in_flight,
            )
        except UpdateConfigError:
            # The deployment-level block may be incomplete when every group
            # brought its own; deleting needs only max_in_flight.
            return UpdateConfig("0", "1", WatchTime(0, 0), WatchTime(0, 0))

    @staticmethod
    def _releases(plan: DeploymentPlan) -> tuple[ReleasedIp, ...]:
        released = []
        for p in plan.all_instance_plans():
            if p.existing is None:
                continue
            keep = (
                {n.ip for n in p.desired.networks if n.ip}
                if p.desired is not None and not p.needs_duplicate_vm
                else set()
            )
            if p.ignored:
                continue
            for network, ip, _static in p.existing.reservations:
                try:
                    normalized = str(parse_ip(ip))
                except PlanError:
                    normalized = ip
                if normalized not in keep:
                    released.append(ReleasedIp(network, normalized, p.existing.label, p.uuid))
        return tuple(released)


def plan_deployment(
    manifest: Mapping[str, Any],
    cloud_config: Mapping[str, Any],
    existing: Sequence[ExistingInstance] = (),
    stemcells: Mapping[str, StemcellRef] | None = None,
    ips_in_use: Mapping[str, str] | None = None,
    options: PlanOptions | None = None,
    jobs_fingerprint: Callable[[Mapping[str, Any]], str] | None = None,
    uuid_factory: Callable[[], str] | None = None,
) -> DeploymentPlan:
    """Plan a deployment in one call (see ``DeploymentPlanner``)."""
    return DeploymentPlanner(
        manifest,
        cloud_config,
        existing,
        stemcells,
        ips_in_use,
        options,
        jobs_fingerprint,
        uuid_factory,
    ).plan()
