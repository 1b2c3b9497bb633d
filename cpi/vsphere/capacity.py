"""Placement state read from vCenter: clusters, their hosts, datastores and pools.

Pure: turns what one ``RetrievePropertiesEx`` answered (``Inventory.
cluster_snapshots`` makes the call) into the ``ClusterState`` that
``cpi.vsphere.placement`` weighs, with the references to act on what it
chose. Nothing here is cached: free memory and free space change all the
time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim

from cpi.base import CloudError
from cpi.vsphere.placement import ClusterState, DatastoreState, HostState

MB = 1024 * 1024


HOST_PROPERTIES = (
    "name",
    "hardware.memorySize",
    "summary.quickStats.overallMemoryUsage",
    "runtime.connectionState",
    "runtime.inMaintenanceMode",
)


@dataclass(frozen=True)
class ClusterSnapshot:
    """``ClusterState`` for placement plus the references to act on what placement chose."""

    state: ClusterState
    ref: vim.ClusterComputeResource
    root_pool: vim.ResourcePool
    pools: Mapping[str, vim.ResourcePool] = field(default_factory=dict)
    hosts: Mapping[str, vim.HostSystem] = field(default_factory=dict)
    datastores: Mapping[str, vim.Datastore] = field(default_factory=dict)

    def pool(self, name: str | None) -> vim.ResourcePool:
        """The cluster's root pool, or the pool named ``name`` anywhere below it."""
        if not name:
            return self.root_pool
        found = self.pools.get(name)
        if found is None:
            raise CloudError(f"Resource pool '{name}' was not found in cluster '{self.state.name}'")
        return found


def host_state(hp: Mapping[str, Any]) -> HostState:
    total = int(hp.get("hardware.memorySize") or 0) // MB
    used = int(hp.get("summary.quickStats.overallMemoryUsage") or 0)
    return HostState(
        name=hp["name"],
        free_memory_mb=max(total - used, 0),
        connected=hp.get("runtime.connectionState") == "connected",
        maintenance=bool(hp.get("runtime.inMaintenanceMode")),
    )


def datastore_state(s: Any) -> DatastoreState:
    return DatastoreState(
        name=s.name,
        free_mb=int(s.freeSpace or 0) // MB,
        capacity_mb=int(s.capacity or 0) // MB,
        maintenance=(s.maintenanceMode or "normal") != "normal",
        accessible=bool(s.accessible),
    )


def cluster_snapshot(
    ref: vim.ClusterComputeResource,
    by_id: Mapping[str, tuple[Any, Mapping[str, Any]]],
    found: list[tuple[Any, Mapping[str, Any]]],
) -> ClusterSnapshot:
    """The snapshot of cluster ``ref`` from the objects read with it (``by_id``: moid -> them)."""
    props = by_id[ref._moId][1]
    hosts, host_refs = [], {}
    for h in props.get("host") or []:
        if h._moId in by_id:
            host_refs[by_id[h._moId][1]["name"]] = h
            hosts.append(host_state(by_id[h._moId][1]))
    datastores, ds_refs = [], {}
    for d in props.get("datastore") or []:
        if d._moId in by_id and "summary" in by_id[d._moId][1]:
            state = datastore_state(by_id[d._moId][1]["summary"])
            ds_refs[state.name] = d
            datastores.append(state)
    pools: dict[str, vim.ResourcePool] = {}
    for obj, p in found:
        owner = p.get("owner")
        if isinstance(obj, vim.ResourcePool) and owner is not None and owner._moId == ref._moId:
            pools.setdefault(p.get("name", ""), obj)
    groups: dict[str, tuple[str, ...]] = {}
    for group in getattr(props.get("configurationEx"), "group", None) or []:
        if isinstance(group, vim.cluster.HostGroup):
            groups[group.name] = tuple(
                by_id[h._moId][1]["name"] if h._moId in by_id else h.name for h in group.host or []
            )
    return ClusterSnapshot(
        state=ClusterState(
            name=props["name"],
            hosts=tuple(hosts),
            datastores=tuple(datastores),
            resource_pools=frozenset(pools),
            host_groups=groups,
        ),
        ref=ref,
        root_pool=props["resourcePool"],
        pools=pools,
        hosts=host_refs,
        datastores=ds_refs,
    )
