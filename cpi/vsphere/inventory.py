"""Finding things in the configured datacenter, and reading state for placement.

Lookups are by name and cheap: a VM or stemcell is found with
``SearchIndex.FindChild`` in its folder (never a scan of the inventory), a
cluster with ``FindChild`` in the host folder, networks and datastores from
the datacenter's own lists. Folders (vm_folder, template_folder) are created
on first use; their references are cached. ``cluster_states`` reads what
``placement`` needs for a set of clusters in a few PropertyCollector round
trips.
"""

from __future__ import annotations

import threading
from typing import Any

from pyVmomi import vim

from cpi.base import CloudError, NetworkNotFound
from cpi.vsphere.client import VSphereClient
from cpi.vsphere.config import DatacenterConfig
from cpi.vsphere.placement import ClusterState, DatastoreState, HostState
from cpi.vsphere.tasks import vsphere_call

MB = 1024 * 1024


class Inventory:
    def __init__(self, client: VSphereClient, dc: DatacenterConfig):
        self.client = client
        self.config = dc
        self._lock = threading.Lock()
        self._datacenter: vim.Datacenter | None = None
        self._folders: dict[str, vim.Folder] = {}

    @property
    def datacenter(self) -> vim.Datacenter:
        if self._datacenter is None:
            found = self.client.content.searchIndex.FindByInventoryPath(self.config.name)
            if not isinstance(found, vim.Datacenter):
                found = self._find_datacenter_anywhere()
            if found is None:
                raise CloudError(
                    f"Datacenter '{self.config.name}' was not found in vCenter {self.client.config.address}"
                )
            self._datacenter = found
        return self._datacenter

    def _find_datacenter_anywhere(self) -> vim.Datacenter | None:
        root = self.client.content.rootFolder
        for obj, props in self.client.retrieve(root, vim.Datacenter, ["name"]):
            if props.get("name") == self.config.name:
                return obj
        return None

    # -- folders ---------------------------------------------------------------

    def folder(self, path: str) -> vim.Folder:
        """The VM folder at ``path`` (relative to the datacenter's VM folder), created if missing."""
        cached = self._folders.get(path)
        if cached is not None:
            return cached
        with self._lock:
            if path in self._folders:
                return self._folders[path]
            index = self.client.content.searchIndex
            current = self.datacenter.vmFolder
            for part in path.split("/"):
                child = index.FindChild(current, part)
                if child is None:
                    try:
                        child = current.CreateFolder(part)
                    except vim.fault.DuplicateName:
                        child = index.FindChild(current, part)
                if not isinstance(child, vim.Folder):
                    raise CloudError(f"'{part}' in folder path '{path}' exists but is not a folder")
                current = child
            self._folders[path] = current
            return current

    @property
    def vm_folder(self) -> vim.Folder:
        return self.folder(self.config.vm_folder)

    @property
    def template_folder(self) -> vim.Folder:
        return self.folder(self.config.template_folder)

    def find_vm(self, name: str, folder: vim.Folder | None = None) -> vim.VirtualMachine | None:
        found = vsphere_call(
            f"Looking up VM '{name}'",
            self.client.content.searchIndex.FindChild,
            folder or self.vm_folder,
            name,
        )
        return found if isinstance(found, vim.VirtualMachine) else None

    def find_stemcell(self, cid: str) -> vim.VirtualMachine | None:
        return self.find_vm(cid, self.template_folder)

    def children_named(self, folder: vim.Folder, prefix: str) -> list[vim.VirtualMachine]:
        """VMs directly in ``folder`` whose name starts with ``prefix`` (one round trip)."""
        out = []
        for obj, props in self.client.retrieve(
            folder, vim.VirtualMachine, ["name"], recursive=False
        ):
            if str(props.get("name", "")).startswith(prefix):
                out.append(obj)
        return out

    # -- compute ---------------------------------------------------------------

    def cluster(self, name: str) -> vim.ClusterComputeResource | None:
        host_folder = self.datacenter.hostFolder
        found = self.client.content.searchIndex.FindChild(host_folder, name)
        if isinstance(found, vim.ClusterComputeResource):
            return found
        for obj, props in self.client.retrieve(host_folder, vim.ClusterComputeResource, ["name"]):
            if props.get("name") == name:
                return obj
        return None

    def require_cluster(self, name: str) -> vim.ClusterComputeResource:
        found = self.cluster(name)
        if found is None:
            raise CloudError(f"Cluster '{name}' was not found in datacenter '{self.config.name}'")
        return found

    def resource_pool(
        self, cluster: vim.ClusterComputeResource, name: str | None
    ) -> vim.ResourcePool:
        """The cluster's root pool, or the pool named ``name`` anywhere below it."""
        root = cluster.resourcePool
        if not name:
            return root
        for obj, props in self.client.retrieve(root, vim.ResourcePool, ["name"]):
            if props.get("name") == name:
                return obj
        raise CloudError(f"Resource pool '{name}' was not found in cluster '{cluster.name}'")

    def cluster_state(self, cluster: vim.ClusterComputeResource) -> ClusterState:
        """Hosts, datastores, pools and host groups of one cluster, for ``placement``."""
        props = dict(
            self.client.properties_of(
                [cluster],
                vim.ClusterComputeResource,
                ["name", "host", "datastore", "configurationEx"],
            )[0][1]
        )
        hosts = []
        for _, hp in self.client.properties_of(
            props.get("host") or [],
            vim.HostSystem,
            [
                "name",
                "hardware.memorySize",
                "summary.quickStats.overallMemoryUsage",
                "runtime.connectionState",
                "runtime.inMaintenanceMode",
            ],
        ):
            total = int(hp.get("hardware.memorySize") or 0) // MB
            used = int(hp.get("summary.quickStats.overallMemoryUsage") or 0)
            hosts.append(
                HostState(
                    name=hp["name"],
                    free_memory_mb=max(total - used, 0),
                    connected=hp.get("runtime.connectionState") == "connected",
                    maintenance=bool(hp.get("runtime.inMaintenanceMode")),
                )
            )
        datastores = self.datastore_states(props.get("datastore") or [])
        pools = frozenset(
            p.get("name", "") for _, p in self.client.retrieve(cluster, vim.ResourcePool, ["name"])
        )
        groups: dict[str, tuple[str, ...]] = {}
        config_ex = props.get("configurationEx")
        for group in getattr(config_ex, "group", None) or []:
            if isinstance(group, vim.cluster.HostGroup):
                groups[group.name] = tuple(h.name for h in group.host or [])
        return ClusterState(
            name=props["name"],
            hosts=tuple(hosts),
            datastores=tuple(datastores),
            resource_pools=pools,
            host_groups=groups,
        )

    def datastore_states(self, datastores: list[Any]) -> list[DatastoreState]:
        out = []
        for _, dp in self.client.properties_of(datastores, vim.Datastore, ["summary"]):
            s = dp["summary"]
            out.append(
                DatastoreState(
                    name=s.name,
                    free_mb=int(s.freeSpace or 0) // MB,
                    capacity_mb=int(s.capacity or 0) // MB,
                    maintenance=(s.maintenanceMode or "normal") != "normal",
                    accessible=bool(s.accessible),
                )
            )
        return out

    # -- storage ---------------------------------------------------------------

    def datastores(self) -> dict[str, vim.Datastore]:
        """Datastores of the datacenter by name."""
        return {
            props["name"]: obj
            for obj, props in self.client.properties_of(
                self.datacenter.datastore or [], vim.Datastore, ["name"]
            )
        }

    def datastore(self, name: str) -> vim.Datastore:
        found = self.datastores().get(name)
        if found is None:
            raise CloudError(f"Datastore '{name}' was not found in datacenter '{self.config.name}'")
        return found

    # -- networks --------------------------------------------------------------

    def network(self, name: str) -> vim.Network:
        """The network (standard portgroup, DVPG or opaque network) named ``name``.

        ``name`` may be ``switch/portgroup`` to pick a DVPG of one switch when
        several switches have a portgroup of that name.
        """
        switch = None
        pg_name = name
        if "/" in name:
            switch, pg_name = name.rsplit("/", 1)
        matches: dict[str, vim.Network] = {}
        wanted = ["name"] + (["config.distributedVirtualSwitch"] if switch else [])
        for obj, props in self.client.properties_of(
            self.datacenter.network or [], vim.Network, ["name"]
        ):
            if props.get("name") == pg_name:
                matches[obj._moId] = obj
        if switch is not None:
            keep = {}
            for obj, props in self.client.properties_of(
                [o for o in matches.values() if isinstance(o, vim.dvs.DistributedVirtualPortgroup)],
                vim.dvs.DistributedVirtualPortgroup,
                wanted,
            ):
                dvs = props.get("config.distributedVirtualSwitch")
                if dvs is not None and dvs.name == switch:
                    keep[obj._moId] = obj
            matches = keep
        if not matches:
            raise NetworkNotFound(
                f"Unable to find network '{name}' in datacenter '{self.config.name}'. "
                "Verify that the portgroup exists."
            )
        if len(matches) > 1:
            raise CloudError(
                f"Network name '{name}' is ambiguous in datacenter '{self.config.name}' "
                f"({len(matches)} networks); name it as '<switch>/{pg_name}'"
            )
        return next(iter(matches.values()))
