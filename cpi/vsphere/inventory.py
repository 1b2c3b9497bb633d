"""Finding things in the configured datacenter, and reading state for placement.

Every SOAP call is a round trip (and pyVmomi serialisation is most of the
CPI's CPU), so this module reads what it needs in as few calls as it can
and remembers what does not change while a cloud object lives:

* **cached references** (``invalidate()`` forgets them all): the datacenter
  and its folders, VM folders (created on first use), clusters by name,
  datastores by name, networks with what a NIC backing needs of them
  (portgroup key, switch uuid, opaque id), a stemcell's devices and
  snapshot (a template never changes), and the VMs this object created or
  found (``vm_cid -> moref``). A reference that has gone stale surfaces as
  ``ManagedObjectNotFound`` from the next call that uses it; callers then
  ``invalidate()`` and look again, so a cache can cost a retry but never a
  wrong answer. A name that is not in a cache is always looked up again.
* **never cached**: anything placement weighs (hosts' free memory,
  datastores' free space, host groups) is read fresh by
  ``cluster_snapshots`` in one ``RetrievePropertiesEx`` for all candidate
  clusters (traversing cluster -> hosts, datastores, resource pools).
  ``cpi.vsphere.capacity`` turns the answer into placement state; how a
  network name is resolved is in ``cpi.vsphere.networks``.

Lookups by name are one call: a VM or stemcell with ``SearchIndex.FindChild``
in its (cached) folder, never a scan of the inventory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim, vmodl

from cpi.base import CloudError
from cpi.vsphere.capacity import (
    HOST_PROPERTIES,
    ClusterSnapshot,
    cluster_snapshot,
    datastore_state,
)
from cpi.vsphere.client import VSphereClient, object_spec, traverse
from cpi.vsphere.config import DatacenterConfig
from cpi.vsphere.networks import NetworkRef, resolve_network
from cpi.vsphere.placement import DatastoreState
from cpi.vsphere.tasks import vsphere_call

#: VM references remembered at most (a director deletes what it creates; this bounds the rest).
VM_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class StemcellRef:
    """A stemcell template with its devices and the snapshot clones grow from."""

    ref: vim.VirtualMachine
    devices: tuple[Any, ...]
    snapshot: Any = None  # vim.vm.Snapshot, the template's current snapshot


@dataclass(frozen=True)
class VmView:
    """A VM with properties read in one call (and its cluster's, when asked for)."""

    ref: vim.VirtualMachine
    props: Mapping[str, Any]
    cluster: vim.ClusterComputeResource | None = None
    cluster_props: Mapping[str, Any] = field(default_factory=dict)


class Inventory:
    def __init__(self, client: VSphereClient, dc: DatacenterConfig):
        self.client = client
        self.config = dc
        self._lock = threading.Lock()
        self._datacenter: vim.Datacenter | None = None
        self._dc_folders: dict[str, Any] = {}
        self._folders: dict[str, vim.Folder] = {}
        self._clusters: dict[str, vim.ClusterComputeResource] = {}
        self._datastores: dict[str, vim.Datastore] = {}
        self._networks: dict[str, NetworkRef] = {}
        self._stemcells: dict[str, StemcellRef] = {}
        self._vms: OrderedDict[str, vim.VirtualMachine] = OrderedDict()

    def invalidate(self) -> None:
        """Forget every cached reference (after a ``ManagedObjectNotFound``)."""
        with self._lock:
            self._datacenter = None
            self._dc_folders = {}
            self._folders = {}
            self._clusters = {}
            self._datastores = {}
            self._networks = {}
            self._stemcells = {}
            self._vms.clear()

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

    def _dc_folder(self, prop: str) -> vim.Folder:
        """``vmFolder``/``hostFolder`` of the datacenter (both read in one call, then cached)."""
        folders = self._dc_folders
        if prop not in folders:
            folders = self.client.properties(self.datacenter, ["vmFolder", "hostFolder"])
            self._dc_folders = folders
        return folders[prop]

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
            current = self._dc_folder("vmFolder")
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

    def cached_folder(self, path: str) -> vim.Folder | None:
        """The folder at ``path`` if it was looked up before (no call, nothing created)."""
        return self._folders.get(path)

    @property
    def vm_folder(self) -> vim.Folder:
        return self.folder(self.config.vm_folder)

    @property
    def template_folder(self) -> vim.Folder:
        return self.folder(self.config.template_folder)

    def find_vm(self, name: str, folder: vim.Folder | None = None) -> vim.VirtualMachine | None:
        """The VM named ``name`` in ``folder`` (default: vm_folder), one ``FindChild``."""
        found = vsphere_call(
            f"Looking up VM '{name}'",
            self.client.content.searchIndex.FindChild,
            folder or self.vm_folder,
            name,
        )
        return found if isinstance(found, vim.VirtualMachine) else None

    # -- VM references ------------------------------------------------------------

    def cached_vm(self, cid: str) -> vim.VirtualMachine | None:
        """The remembered reference of VM ``cid`` (may be stale: see ``vm_properties``)."""
        return self._vms.get(cid)

    def remember_vm(self, cid: str, vm: vim.VirtualMachine) -> None:
        with self._lock:
            self._vms[cid] = vm
            self._vms.move_to_end(cid)
            while len(self._vms) > VM_CACHE_SIZE:
                self._vms.popitem(last=False)

    def forget_vm(self, cid: str) -> None:
        with self._lock:
            self._vms.pop(cid, None)

    def vm_properties(
        self, cid: str, properties: Iterable[str], *, cluster_properties: Iterable[str] = ()
    ) -> VmView | None:
        """VM ``cid`` with its ``properties``, in one call; None when it is not in vm_folder.

        With ``cluster_properties`` the same call also reads those properties
        of the VM's cluster (VM -> resource pool -> owner). A remembered
        reference costs no look-up; a stale one (the VM was deleted or
        re-registered) is forgotten and the VM looked up by name.
        """
        paths, cluster_paths = list(properties), list(cluster_properties)
        vm = self.cached_vm(cid)
        if vm is not None:
            try:
                return self._read_vm(vm, paths, cluster_paths)
            except vmodl.fault.ManagedObjectNotFound:
                self.forget_vm(cid)
        vm = self.find_vm(cid)
        if vm is None:
            return None
        try:
            view = self._read_vm(vm, paths, cluster_paths)
        except vmodl.fault.ManagedObjectNotFound:
            return None  # deleted between the two calls
        self.remember_vm(cid, vm)
        return view

    def _read_vm(
        self, vm: vim.VirtualMachine, paths: list[str], cluster_paths: list[str]
    ) -> VmView:
        if not cluster_paths:
            return VmView(vm, self.client.properties(vm, paths))
        to_cluster = traverse(
            vim.VirtualMachine, "resourcePool", traverse(vim.ResourcePool, "owner")
        )
        found = self.client.collect(
            [object_spec(vm, to_cluster)],
            {vim.VirtualMachine: paths, vim.ClusterComputeResource: cluster_paths},
        )
        props = next((p for obj, p in found if obj._moId == vm._moId), None)
        if props is None:
            raise vmodl.fault.ManagedObjectNotFound(obj=vm, msg=f"{vm._moId} is gone")
        cluster = next(
            ((obj, p) for obj, p in found if isinstance(obj, vim.ClusterComputeResource)),
            (None, {}),
        )
        return VmView(vm, props, cluster[0], cluster[1])

    # -- stemcells -------------------------------------------------------------

    def find_stemcell(self, cid: str) -> vim.VirtualMachine | None:
        return self.find_vm(cid, self.template_folder)

    def stemcell(self, cid: str) -> StemcellRef | None:
        """The stemcell template ``cid`` with its devices and snapshot (cached: templates are immutable)."""
        cached = self._stemcells.get(cid)
        if cached is not None:
            return cached
        vm = self.find_stemcell(cid)
        if vm is None:
            return None
        try:
            props = self.client.properties(vm, ["config.hardware.device", "snapshot"])
        except vmodl.fault.ManagedObjectNotFound:
            return None
        snapshot = props.get("snapshot")
        found = StemcellRef(
            ref=vm,
            devices=tuple(props.get("config.hardware.device") or ()),
            snapshot=snapshot.currentSnapshot if snapshot is not None else None,
        )
        with self._lock:
            self._stemcells[cid] = found
        return found

    def forget_stemcell(self, cid: str) -> None:
        with self._lock:
            self._stemcells.pop(cid, None)

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
        cached = self._clusters.get(name)
        if cached is not None:
            return cached
        host_folder = self._dc_folder("hostFolder")
        found = self.client.content.searchIndex.FindChild(host_folder, name)
        if not isinstance(found, vim.ClusterComputeResource):
            found = next(
                (
                    obj
                    for obj, props in self.client.retrieve(
                        host_folder, vim.ClusterComputeResource, ["name"]
                    )
                    if props.get("name") == name
                ),
                None,
            )
        if found is not None:
            with self._lock:
                self._clusters[name] = found
        return found

    def require_cluster(self, name: str) -> vim.ClusterComputeResource:
        found = self.cluster(name)
        if found is None:
            raise CloudError(f"Cluster '{name}' was not found in datacenter '{self.config.name}'")
        return found

    def cluster_snapshots(
        self, names: Iterable[str], *, host_groups: bool = False
    ) -> dict[str, ClusterSnapshot]:
        """Placement state of the named clusters, all in one ``RetrievePropertiesEx``.

        Hosts (free memory, connection, maintenance), datastores (free space),
        resource pools and, with ``host_groups``, the clusters' host groups:
        read fresh on every call. A cluster reference gone stale is looked up
        again once.
        """
        wanted = list(dict.fromkeys(names))
        try:
            return self._cluster_snapshots(wanted, host_groups)
        except vmodl.fault.ManagedObjectNotFound:
            self.invalidate()
            return self._cluster_snapshots(wanted, host_groups)

    def _cluster_snapshots(self, names: list[str], host_groups: bool) -> dict[str, ClusterSnapshot]:
        refs = {name: self.require_cluster(name) for name in names}
        child_pools = traverse(
            vim.ResourcePool, "resourcePool", vim_selection("child_pools"), name="child_pools"
        )
        select = (
            traverse(vim.ComputeResource, "host"),
            traverse(vim.ComputeResource, "datastore"),
            traverse(vim.ComputeResource, "resourcePool", child_pools),
        )
        cluster_props = ["name", "host", "datastore", "resourcePool"]
        if host_groups:
            cluster_props.append("configurationEx")
        found = self.client.collect(
            [object_spec(ref, *select) for ref in refs.values()],
            {
                vim.ClusterComputeResource: cluster_props,
                vim.HostSystem: HOST_PROPERTIES,
                vim.Datastore: ["summary"],
                vim.ResourcePool: ["name", "owner"],
            },
        )
        by_id = {obj._moId: (obj, props) for obj, props in found}
        out = {}
        for name, ref in refs.items():
            if ref._moId not in by_id:
                raise vmodl.fault.ManagedObjectNotFound(obj=ref, msg=f"cluster '{name}' is gone")
            snapshot = cluster_snapshot(ref, by_id, found)
            with self._lock:
                self._datastores.update(snapshot.datastores)
            out[name] = snapshot
        return out

    def datastore_states(self, datastores: list[Any]) -> list[DatastoreState]:
        """Free space etc. of the given datastores, read now (one call)."""
        return [
            datastore_state(dp["summary"])
            for _, dp in self.client.properties_of(datastores, vim.Datastore, ["summary"])
        ]

    def host_datastores(
        self, host: vim.HostSystem
    ) -> dict[str, tuple[vim.Datastore, DatastoreState]]:
        """The datastores a host sees, by name, with their state read now (one call)."""
        found = self.client.collect(
            [object_spec(host, traverse(vim.HostSystem, "datastore"), skip=True)],
            {vim.Datastore: ["summary"]},
        )
        out = {}
        for obj, props in found:
            state = datastore_state(props["summary"])
            out[state.name] = (obj, state)
        with self._lock:
            self._datastores.update({name: ref for name, (ref, _) in out.items()})
        return out

    def datacenter_datastore_states(self) -> list[DatastoreState]:
        """Free space etc. of every datastore of the datacenter, read now (one call)."""
        found = self.client.collect(
            [object_spec(self.datacenter, traverse(vim.Datacenter, "datastore"), skip=True)],
            {vim.Datastore: ["summary"]},
        )
        return [datastore_state(props["summary"]) for _, props in found]

    # -- storage ---------------------------------------------------------------

    def datastore_browsers(self) -> dict[str, vim.host.DatastoreBrowser]:
        """The datastore browser of each datastore of the datacenter, by name (one call)."""
        found = self.client.collect(
            [object_spec(self.datacenter, traverse(vim.Datacenter, "datastore"), skip=True)],
            {vim.Datastore: ["name", "browser"]},
        )
        with self._lock:
            self._datastores.update({props["name"]: obj for obj, props in found})
        return {props["name"]: props["browser"] for _, props in found}

    def datastores(self) -> dict[str, vim.Datastore]:
        """Datastores of the datacenter by name (read now, and remembered for ``datastore``)."""
        found = self.client.collect(
            [object_spec(self.datacenter, traverse(vim.Datacenter, "datastore"), skip=True)],
            {vim.Datastore: ["name"]},
        )
        by_name = {props["name"]: obj for obj, props in found}
        with self._lock:
            self._datastores = dict(by_name)
        return by_name

    def datastore(self, name: str) -> vim.Datastore:
        """The datastore named ``name``: remembered, else looked up (one call)."""
        found = self._datastores.get(name) or self.datastores().get(name)
        if found is None:
            raise CloudError(f"Datastore '{name}' was not found in datacenter '{self.config.name}'")
        return found

    # -- networks --------------------------------------------------------------

    def network(self, name: str) -> NetworkRef:
        """The network (standard portgroup, DVPG or opaque network) named ``name``.

        ``name`` may be ``switch/portgroup`` to pick a DVPG of one switch when
        several switches have a portgroup of that name. Resolved once per name
        (a couple of calls), then remembered.
        """
        cached = self._networks.get(name)
        if cached is not None:
            return cached
        found = resolve_network(self.client, self.datacenter, self.config.name, name)
        with self._lock:
            self._networks[name] = found
        return found


def vim_selection(name: str) -> Any:
    """A reference to a named ``TraversalSpec`` (for recursion, e.g. pools within pools)."""
    return vmodl.query.PropertyCollector.SelectionSpec(name=name)
