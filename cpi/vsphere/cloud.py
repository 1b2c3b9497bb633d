"""``VSphereCloud``: the BOSH CPI v2 contract on one vCenter datacenter.

Build it from ``cloud.properties`` of a cpi.json (see ``cpi.vsphere.config``).
Nothing talks to vCenter until the first method that needs it (``info``
never does). One object serves many threads: the vCenter session and SOAP
stub are shared; the inventory references it remembers (datacenter,
folders, clusters, datastores, networks, stemcells, VMs: see
``cpi.vsphere.inventory``) are guarded by a lock and forgotten when vCenter
says one is gone; and the few read-modify-write updates (a cluster's DRS
groups, a VM's device list during attach/detach, custom attribute
definitions, folder creation) are serialised by locks.

Each method keeps its round trips to vCenter few (``python -m
benchmarks.soap_calls`` counts them; ``tests/cpi/test_round_trips.py``
bounds them): create_vm 8 SOAP calls (and one HTTP PUT of env.iso),
delete_vm 7 (the VM's folder is deleted with env.iso), has_vm 1,
set_vm_metadata 1 plus one ``SetField`` per changed key; ``vm_states`` (not
a CPI method: the director's VMs page) 2 for any number of VMs; ``vm_health``
(not a CPI method: the health monitor's scan) 1 for any number of VMs.
"""

from __future__ import annotations

import functools
import http.client
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pyVmomi import vim, vmodl

from cpi.base import API_VERSION, METHODS, CloudError, Cpi, CpiError
from cpi.vsphere import stemcell as stemcells
from cpi.vsphere.client import KEEPALIVE_SECONDS, VSphereClient, object_spec, traverse
from cpi.vsphere.config import ConfigError, CpiConfig, parse_config
from cpi.vsphere.disks import DiskOperations
from cpi.vsphere.inventory import Inventory
from cpi.vsphere.tasks import map_fault
from cpi.vsphere.vm import VmOperations

STEMCELL_FORMATS = ["vsphere-ovf", "vsphere-ova"]


class VSphereCloud(Cpi):
    def __init__(
        self,
        properties: Mapping[str, Any] | CpiConfig,
        *,
        logger: logging.Logger | None = None,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
    ):
        self.config = properties if isinstance(properties, CpiConfig) else parse_config(properties)
        self.logger = logger or logging.getLogger("cpi.vsphere")
        self.client = VSphereClient(self.config.vcenter, keepalive_seconds=keepalive_seconds)
        self.inventory = Inventory(self.client, self.config.datacenter)
        self.vms = VmOperations(self.inventory, self.config)
        self.disks = DiskOperations(self.inventory, self.config, self.vms)

    def close(self) -> None:
        """Log out of vCenter and stop the keep-alive thread."""
        self.client.close()

    def __enter__(self) -> VSphereCloud:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<VSphereCloud {self.config.vcenter.address} datacenter={self.config.datacenter.name}>"
        )

    # -- info, stemcells -------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return {"stemcell_formats": list(STEMCELL_FORMATS), "api_version": API_VERSION}

    def create_stemcell(
        self, image_path: str, cloud_properties: dict[str, Any], env: dict[str, Any] | None = None
    ) -> str:
        return stemcells.create_stemcell(self.client, self.inventory, self.config, image_path)

    def delete_stemcell(self, stemcell_cid: str) -> None:
        stemcells.delete_stemcell(self.inventory, stemcell_cid)

    # -- VMs ----------------------------------------------------------------------------

    def create_vm(
        self,
        agent_id: str,
        stemcell_cid: str,
        cloud_properties: dict[str, Any],
        networks: dict[str, Any],
        disk_cids: list[str] | None,
        env: dict[str, Any] | None,
    ) -> list[Any]:
        locations = {}
        for cid in disk_cids or []:
            found = self.disks.find(cid)
            if found is not None:
                locations[cid] = (found.datastore, found.size_mb or 0)
        return self.vms.create(
            agent_id, stemcell_cid, cloud_properties, networks, disk_cids, env, locations
        )

    def delete_vm(self, vm_cid: str) -> None:
        self.vms.delete(vm_cid)

    def has_vm(self, vm_cid: str) -> bool:
        return self.inventory.find_vm(vm_cid) is not None

    def vm_states(self, vm_cids: list[str]) -> dict[str, str]:
        """``{vm_cid: power state}`` ("poweredOn", "poweredOff", "suspended") as vCenter has it now.

        Not a CPI method: what the director's VMs page shows beside each
        instance, the way ``bosh vms`` shows what the agent reports. A cid
        missing from the answer has no VM in vm_folder (``has_vm`` would say
        False). Two round trips whatever the number of VMs: the folder by
        inventory path, then one ``RetrievePropertiesEx`` reading name and
        power state of the folder's VMs. Nothing is created: a missing
        folder means no VMs.
        """
        wanted = set(vm_cids)
        if not wanted:
            return {}
        folder = self._existing_vm_folder()
        if folder is None:
            return {}
        try:
            found = self.client.collect(
                [object_spec(folder, traverse(vim.Folder, "childEntity"), skip=True)],
                {vim.VirtualMachine: ["name", "runtime.powerState"]},
            )
        except vmodl.fault.ManagedObjectNotFound:
            return {}  # the folder went away between the two calls
        return {
            props["name"]: str(props.get("runtime.powerState", "unknown"))
            for _, props in found
            if props.get("name") in wanted
        }

    def vm_health(self, vm_cids: list[str] | None) -> dict[str, dict[str, Any]]:
        """``{vm_cid: {"power_state": ..., "metadata": {name: value}}}`` in ONE round trip.

        ``vm_cids=None`` answers for every VM found (cloud check looks for VMs
        tagged as the director's that it does not know).

        Not a CPI method: what the director's health monitor reads every
        interval for every VM it manages (BOSH's health monitor asks the
        agents; we also ask vCenter). A cid missing from the answer has no VM
        in vCenter. One ``RetrievePropertiesEx`` whatever the number of VMs
        and whatever was looked up before: it starts at vm_folder when this
        cloud already knows it (no other VMs are read), else at the root
        folder, following folders and datacenters down to every VM; the same
        call reads the custom attribute definitions, so ``customValue`` keys
        become the metadata names ``set_vm_metadata`` wrote. vCenter pages
        very large answers (``ContinueRetrievePropertiesEx``); vcsim and a
        vCenter's default page hold far more than a thousand VMs' few
        properties. Nothing is created.
        """
        wanted = None if vm_cids is None else set(vm_cids)
        if wanted is not None and not wanted:
            return {}
        content = self.client.content
        children = "healthFolderChildren"
        folder_children = traverse(
            vim.Folder,
            "childEntity",
            vmodl.query.PropertyCollector.SelectionSpec(name=children),
            traverse(
                vim.Datacenter,
                "vmFolder",
                vmodl.query.PropertyCollector.SelectionSpec(name=children),
            ),
            name=children,
        )
        start = self.inventory.cached_folder(self.config.datacenter.vm_folder)
        specs = [
            object_spec(start or content.rootFolder, folder_children, skip=True),
            object_spec(content.customFieldsManager),
        ]
        try:
            found = self.client.collect(
                specs,
                {
                    vim.VirtualMachine: ["name", "runtime.powerState", "customValue"],
                    vim.CustomFieldsManager: ["field"],
                },
            )
        except vmodl.fault.ManagedObjectNotFound:
            if start is None:
                raise
            self.inventory.invalidate()  # the folder went away: start at the root next time
            return self.vm_health(vm_cids)
        names: dict[int, str] = {}
        for obj, props in found:
            if isinstance(obj, vim.CustomFieldsManager):
                names = {f.key: f.name for f in props.get("field") or []}
        out: dict[str, dict[str, Any]] = {}
        for obj, props in found:
            name = props.get("name")
            if not isinstance(obj, vim.VirtualMachine) or (wanted is not None and name not in wanted):
                continue
            out[name] = {
                "power_state": str(props.get("runtime.powerState", "unknown")),
                "metadata": {
                    names.get(cv.key, str(cv.key)): getattr(cv, "value", "")
                    for cv in props.get("customValue") or []
                },
            }
        return out

    def _existing_vm_folder(self) -> vim.Folder | None:
        """vm_folder without creating it (one ``FindByInventoryPath``, more for a nested datacenter)."""
        dc = self.config.datacenter
        index = self.client.content.searchIndex
        folder = index.FindByInventoryPath(f"{dc.name}/vm/{dc.vm_folder}")
        if isinstance(folder, vim.Folder):
            return folder
        # The datacenter may sit in a folder of its own: find it as the CPI does, then walk.
        current = self.client.properties(self.inventory.datacenter, ["vmFolder"])["vmFolder"]
        for part in dc.vm_folder.split("/"):
            current = index.FindChild(current, part)
            if not isinstance(current, vim.Folder):
                return None
        return current

    def reboot_vm(self, vm_cid: str) -> None:
        self.vms.reboot(vm_cid)

    def set_vm_metadata(self, vm_cid: str, metadata: dict[str, Any]) -> None:
        self.vms.set_metadata(vm_cid, metadata)

    def calculate_vm_cloud_properties(self, vm_resources: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(vm_resources, Mapping):
            raise ConfigError("vm_resources: must be a map with cpu, ram and ephemeral_disk_size")
        out = {}
        for key, target in (("cpu", "cpu"), ("ram", "ram"), ("ephemeral_disk_size", "disk")):
            value = vm_resources.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"vm_resources/{key}: must be a positive integer, got {value!r}")
            out[target] = value
        return out

    # -- disks --------------------------------------------------------------------------

    def create_disk(
        self, size: int, cloud_properties: dict[str, Any], vm_cid: str | None = None
    ) -> str:
        return self.disks.create(size, cloud_properties, vm_cid)

    def delete_disk(self, disk_cid: str) -> None:
        self.disks.delete(disk_cid)

    def has_disk(self, disk_cid: str) -> bool:
        return self.disks.has(disk_cid)

    def attach_disk(self, vm_cid: str, disk_cid: str) -> str:
        return self.disks.attach(vm_cid, disk_cid)

    def detach_disk(self, vm_cid: str, disk_cid: str) -> None:
        self.disks.detach(vm_cid, disk_cid)

    def get_disks(self, vm_cid: str) -> list[str]:
        return self.disks.list_attached(vm_cid)

    def resize_disk(self, disk_cid: str, new_size: int) -> None:
        self.disks.resize(disk_cid, new_size)

    def set_disk_metadata(self, disk_cid: str, metadata: dict[str, Any]) -> None:
        """A no-op, as in the vSphere CPI: a VMDK file has no place for metadata."""


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """Only typed CPI errors leave the cloud: stray faults and lost connections become CloudError."""

    @functools.wraps(method)
    def call(self: VSphereCloud, *args: Any) -> Any:
        try:
            return method(self, *args)
        except CpiError:
            raise
        except (vmodl.MethodFault, vmodl.RuntimeFault) as fault:
            raise map_fault(
                fault, f"{method.__name__} on vCenter {self.config.vcenter.address}"
            ) from fault
        except (OSError, http.client.HTTPException) as exc:
            raise CloudError(
                f"{method.__name__}: lost the connection to vCenter {self.config.vcenter.address}: {exc}",
                ok_to_retry=True,
            ) from exc

    return call


for _name in (*METHODS, "vm_states", "vm_health"):
    if _name in VSphereCloud.__dict__:
        setattr(VSphereCloud, _name, _guarded(VSphereCloud.__dict__[_name]))
