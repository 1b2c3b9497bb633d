"""Where a VM or disk goes: pure placement over a snapshot of the inventory.

No vCenter calls here. ``cpi.vsphere.inventory`` reads the state of the
candidate clusters (hosts' free memory, datastores' free space, resource
pools, host groups) into the frozen ``ClusterState`` values below; these
functions choose, and can be tested with plain tables.

The rules follow the vSphere CPI's placement pipeline:

* Candidates are the clusters of the AZ / vm_type ``datacenters`` cloud
  property (shallow-merged by the director), else the global clusters of the
  CPI config. A cluster entry may narrow placement to a resource pool and a
  host group (``MUST`` pins the VM to a host of the group, ``SHOULD`` leaves it
  to DRS).
* A cluster qualifies when its usable hosts (connected, not in maintenance,
  in the host group if any) have more than ``ram + 128`` MB free, and every
  disk finds a datastore: an existing persistent disk stays where it is if
  that datastore is visible from the cluster and matches its pattern;
  otherwise a datastore matching the pattern, not in maintenance, with more
  than ``size + 1024`` MB free (the ephemeral disk also reserves the VM's
  swap, ``ram`` MB).
* Among qualifying clusters: least persistent data to migrate, then most
  free memory, then name. Among datastores: most free space, then name.
  (BOSH draws datastores at random weighted by free space; we choose the
  emptiest deterministically, so that a plan can be reproduced.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cpi.base import CloudError, NoDiskSpace
from cpi.vsphere.config import ClusterSpec, ConfigError, DatacenterConfig, HostGroup, parse_clusters

#: Memory kept free on a cluster beyond the VM's RAM (vSphere CPI: 128 MB).
MEMORY_HEADROOM_MB = 128
#: Space kept free on a datastore beyond the disk (vSphere CPI: 1024 MB).
DISK_HEADROOM_MB = 1024


@dataclass(frozen=True)
class DatastoreState:
    name: str
    free_mb: int
    capacity_mb: int = 0
    maintenance: bool = False
    accessible: bool = True


@dataclass(frozen=True)
class HostState:
    name: str
    free_memory_mb: int
    connected: bool = True
    maintenance: bool = False

    @property
    def usable(self) -> bool:
        return self.connected and not self.maintenance


@dataclass(frozen=True)
class ClusterState:
    """What placement needs to know about one cluster."""

    name: str
    hosts: tuple[HostState, ...] = ()
    datastores: tuple[DatastoreState, ...] = ()
    resource_pools: frozenset[str] = frozenset()
    host_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def hosts_in(self, host_group: HostGroup | None) -> tuple[HostState, ...]:
        if host_group is None:
            return tuple(h for h in self.hosts if h.usable)
        members = set(self.host_groups.get(host_group.name, ()))
        return tuple(h for h in self.hosts if h.usable and h.name in members)

    def free_memory_mb(self, host_group: HostGroup | None = None) -> int:
        return sum(h.free_memory_mb for h in self.hosts_in(host_group))


@dataclass(frozen=True)
class DiskRequest:
    """A disk the VM needs: the ephemeral disk, or an existing persistent one (a hint)."""

    label: str
    size_mb: int
    pattern: str
    current_datastore: str | None = None
    extra_mb: int = 0  # swap reserved next to the ephemeral disk


@dataclass(frozen=True)
class Placement:
    cluster: ClusterSpec
    host: str | None
    datastores: Mapping[str, str]  # disk label -> datastore name
    migration_mb: int = 0

    @property
    def resource_pool(self) -> str | None:
        return self.cluster.resource_pool

    @property
    def host_group(self) -> HostGroup | None:
        return self.cluster.host_group


def candidate_clusters(
    cloud_properties: Mapping[str, Any], dc: DatacenterConfig
) -> tuple[ClusterSpec, ...]:
    """Clusters named by ``cloud_properties.datacenters`` (AZ / vm_type), else the global ones."""
    datacenters = cloud_properties.get("datacenters")
    if datacenters is None:
        return dc.clusters
    path = "cloud_properties/datacenters"
    if not isinstance(datacenters, list) or not datacenters:
        raise ConfigError(f"{path}: must be a non-empty list of {{name, clusters}}")
    clusters: list[ClusterSpec] = []
    for i, entry in enumerate(datacenters):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}/{i}: must be a map with name and clusters")
        name = entry.get("name")
        if name != dc.name:
            raise ConfigError(
                f"{path}/{i}/name: {name!r} is not the datacenter this CPI manages ({dc.name!r})"
            )
        if "clusters" not in entry:
            clusters.extend(dc.clusters)
            continue
        clusters.extend(parse_clusters(entry["clusters"], f"{path}/{i}/clusters"))
    if not clusters:
        raise ConfigError(f"{path}: names no cluster")
    return tuple(clusters)


def datastore_fits(ds: DatastoreState, pattern: str, size_mb: int, extra_mb: int = 0) -> bool:
    return (
        re.search(pattern, ds.name) is not None
        and ds.accessible
        and not ds.maintenance
        and ds.free_mb > size_mb + extra_mb + DISK_HEADROOM_MB
    )


def pick_datastore(
    datastores: Sequence[DatastoreState], pattern: str, size_mb: int, extra_mb: int = 0
) -> DatastoreState | None:
    """The emptiest datastore that matches ``pattern`` and has room, or None."""
    fitting = [ds for ds in datastores if datastore_fits(ds, pattern, size_mb, extra_mb)]
    if not fitting:
        return None
    return min(fitting, key=lambda ds: (-ds.free_mb, ds.name))


def pick_persistent_datastore(
    datastores: Sequence[DatastoreState], pattern: str, size_mb: int
) -> DatastoreState:
    """Datastore for a new persistent disk; ``NoDiskSpace`` when none fits."""
    ds = pick_datastore(datastores, pattern, size_mb)
    if ds is None:
        raise NoDiskSpace(
            f"No datastore matching /{pattern}/ has {size_mb} MB free "
            f"(+{DISK_HEADROOM_MB} MB headroom): {_describe_datastores(datastores, pattern)}"
        )
    return ds


def _describe_datastores(datastores: Sequence[DatastoreState], pattern: str) -> str:
    matching = [ds for ds in datastores if re.search(pattern, ds.name)]
    if not matching:
        names = ", ".join(sorted(ds.name for ds in datastores)) or "none"
        return f"no datastore matches (available: {names})"
    return ", ".join(
        f"{ds.name} {ds.free_mb} MB free" + (" (maintenance)" if ds.maintenance else "")
        for ds in sorted(matching, key=lambda d: d.name)
    )


def place_vm(
    candidates: Sequence[ClusterSpec],
    states: Mapping[str, ClusterState],
    ram_mb: int,
    disks: Sequence[DiskRequest],
) -> Placement:
    """Choose cluster, host (for a MUST host group) and a datastore per disk.

    Raises ``CloudError`` naming each rejected cluster and why; ``NoDiskSpace``
    when memory was never the problem, only storage.
    """
    options: list[tuple[tuple[int, int, str], Placement]] = []
    reasons: list[str] = []
    only_disk_reasons = True
    for spec in candidates:
        label = spec.name + (f"/{spec.host_group.name}" if spec.host_group else "")
        state = states.get(spec.name)
        if state is None:
            raise CloudError(f"Cluster '{spec.name}' was not found in the datacenter")
        if spec.resource_pool and spec.resource_pool not in state.resource_pools:
            raise CloudError(
                f"Resource pool '{spec.resource_pool}' was not found in cluster '{spec.name}'"
            )
        if spec.host_group and spec.host_group.name not in state.host_groups:
            raise CloudError(
                f"Host group '{spec.host_group.name}' was not found in cluster '{spec.name}'"
            )
        free = state.free_memory_mb(spec.host_group)
        if free <= ram_mb + MEMORY_HEADROOM_MB:
            reasons.append(
                f"{label}: {free} MB free memory, needs more than {ram_mb + MEMORY_HEADROOM_MB}"
            )
            only_disk_reasons = False
            continue
        host = None
        if spec.host_group and spec.host_group.drs_rule == "MUST":
            hosts = state.hosts_in(spec.host_group)
            host = min(hosts, key=lambda h: (-h.free_memory_mb, h.name)).name
        chosen, migration, problem = _place_disks(state, disks)
        if problem:
            reasons.append(f"{label}: {problem}")
            continue
        options.append(
            (
                (migration, -free, spec.name),
                Placement(cluster=spec, host=host, datastores=chosen, migration_mb=migration),
            )
        )
    if options:
        return min(options, key=lambda o: o[0])[1]
    detail = "; ".join(reasons) or "no candidate cluster"
    if only_disk_reasons and reasons:
        raise NoDiskSpace(f"No valid placement found for disks: {detail}")
    raise CloudError(f"No valid placement found for requested memory: {ram_mb} MB: {detail}")


def _place_disks(
    state: ClusterState, disks: Sequence[DiskRequest]
) -> tuple[dict[str, str], int, str | None]:
    """Datastore per disk in this cluster, space already claimed by earlier disks counted."""
    free = {ds.name: ds.free_mb for ds in state.datastores}
    by_name = {ds.name: ds for ds in state.datastores}
    chosen: dict[str, str] = {}
    migration = 0
    for disk in disks:
        current = by_name.get(disk.current_datastore or "")
        if current is not None and current.accessible and re.search(disk.pattern, current.name):
            chosen[disk.label] = current.name
            continue
        adjusted = [
            DatastoreState(ds.name, free[ds.name], ds.capacity_mb, ds.maintenance, ds.accessible)
            for ds in state.datastores
        ]
        ds = pick_datastore(adjusted, disk.pattern, disk.size_mb, disk.extra_mb)
        if ds is None:
            return (
                {},
                0,
                (
                    f"no datastore for {disk.label} ({disk.size_mb} MB) matching /{disk.pattern}/: "
                    + _describe_datastores(adjusted, disk.pattern)
                ),
            )
        chosen[disk.label] = ds.name
        free[ds.name] -= disk.size_mb + disk.extra_mb
        if disk.current_datastore is not None:
            migration += disk.size_mb
    return chosen, migration, None


def vm_group_name(host_group: HostGroup) -> str:
    """DRS VM group the CPI keeps for VMs bound to ``host_group`` (vSphere CPI naming)."""
    return f"{host_group.name}{host_group.drs_rule}_vm_group"


def vm_host_rule_name(host_group: HostGroup) -> str:
    return f"{vm_group_name(host_group)}_rule"
