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
set_vm_metadata 1 plus one ``SetField`` per changed key. What the director
reads beyond the contract (``cpi.base.READS``: power states, health, the VMs
a director made) lives in ``cpi.vsphere.reads``.
"""

from __future__ import annotations

import functools
import http.client
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pyVmomi import vmodl

from cpi.base import API_VERSION, METHODS, READS, CloudError, Cpi, CpiError
from cpi.vsphere import stemcell as stemcells
from cpi.vsphere.client import KEEPALIVE_SECONDS, VSphereClient
from cpi.vsphere.config import ConfigError, CpiConfig, parse_config
from cpi.vsphere.disks import DiskOperations
from cpi.vsphere.inventory import Inventory
from cpi.vsphere.reads import VmReads
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
        self.reads = VmReads(self.client, self.inventory, self.config)

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

    # -- reads beyond the contract (``cpi.base.READS``; see ``cpi.vsphere.reads``) -------

    def vm_states(self, vm_cids: list[str]) -> dict[str, str]:
        return self.reads.vm_states(vm_cids)

    def vm_health(self, vm_cids: list[str] | None) -> dict[str, dict[str, Any]]:
        return self.reads.vm_health(vm_cids)

    def vms_of_director(self, director: str) -> dict[str, dict[str, Any]]:
        return self.reads.vms_of_director(director)

    def has_stemcell(self, stemcell_cid: str) -> bool:
        # one FindChild in the template folder; the template cache is not asked (it may be stale)
        return self.inventory.find_stemcell(stemcell_cid) is not None

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


for _name in (*METHODS, *READS):
    if _name in VSphereCloud.__dict__:
        setattr(VSphereCloud, _name, _guarded(VSphereCloud.__dict__[_name]))
