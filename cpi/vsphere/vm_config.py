"""What a VM is made of: vm_type cloud properties, and the devices of its clone spec.

Pure: nothing here calls vCenter. ``vm_resources``, ``ephemeral_pattern``
and ``network_names`` validate what the director passes ``create_vm`` (so
bad input fails before anything is created); the rest builds or reads
pyVmomi device objects (SCSI units, the system disk, NIC backings for
standard, distributed and opaque networks, disk backings, the persistent
disks of a VM, the MAC vCenter gave each NIC). Used by ``cpi.vsphere.vm``
and ``cpi.vsphere.disks``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from cpi.base import CloudError
from cpi.vsphere.config import ConfigError
from cpi.vsphere.networks import NetworkRef

SCSI_RESERVED_UNIT = 7
PERSISTENT_MODE = "independent_persistent"


# -- vm_type cloud properties ---------------------------------------------------------


@dataclass(frozen=True)
class VmResources:
    cpu: int
    ram_mb: int
    disk_mb: int


def vm_resources(cloud_properties: Mapping[str, Any]) -> VmResources:
    """``cpu``, ``ram`` (MB) and ``disk`` (ephemeral MB) from vm_type cloud_properties."""
    values = {}
    for key in ("cpu", "ram", "disk"):
        value = cloud_properties.get(key)
        if value is None:
            raise ConfigError(f"cloud_properties/{key}: is required (vm_type cpu, ram and disk)")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"cloud_properties/{key}: must be a positive integer, got {value!r}")
        values[key] = value
    return VmResources(cpu=values["cpu"], ram_mb=values["ram"], disk_mb=values["disk"])


def ephemeral_pattern(cloud_properties: Mapping[str, Any], default: str) -> str:
    """vm_type ``datastores`` (exact names) narrow the ephemeral disk; else the global pattern."""
    names = cloud_properties.get("datastores")
    if names is None:
        return default
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(
            "cloud_properties/datastores: must be a non-empty list of datastore names"
        )
    return "^(" + "|".join(re.escape(n) for n in names) + ")$"


def network_names(networks: Mapping[str, Any]) -> dict[str, str]:
    """BOSH network name -> vSphere network name (``cloud_properties.name``), validated."""
    if not isinstance(networks, Mapping) or not networks:
        raise ConfigError("networks: at least one network is required")
    out = {}
    for name, spec in networks.items():
        cp = (spec or {}).get("cloud_properties") if isinstance(spec, Mapping) else None
        pg = cp.get("name") if isinstance(cp, Mapping) else None
        if not isinstance(pg, str) or not pg:
            raise ConfigError(
                f"networks/{name}/cloud_properties/name: is required (the vSphere port group)"
            )
        out[name] = pg
    return out


# -- devices --------------------------------------------------------------------------


def next_unit_number(devices: list[Any], controller_key: int, taken: set[int] | None = None) -> int:
    """First free SCSI unit on the controller (unit 7 is the controller's own)."""
    used = {
        d.unitNumber
        for d in devices
        if d.controllerKey == controller_key and d.unitNumber is not None
    }
    used |= taken or set()
    for unit in range(0, 16):
        if unit != SCSI_RESERVED_UNIT and unit not in used:
            return unit
    raise CloudError(f"No free unit number left on SCSI controller {controller_key}")


def system_disk(devices: list[Any]) -> vim.vm.device.VirtualDisk:
    disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
    if not disks:
        raise CloudError("The stemcell VM has no disk")
    return min(disks, key=lambda d: (d.controllerKey, d.unitNumber or 0))


def nic_backing(network: NetworkRef) -> vim.vm.device.VirtualDevice.BackingInfo:
    if network.distributed:
        return vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
            port=vim.dvs.PortConnection(switchUuid=network.switch_uuid, portgroupKey=network.key)
        )
    if network.opaque:
        return vim.vm.device.VirtualEthernetCard.OpaqueNetworkBackingInfo(
            opaqueNetworkId=network.key, opaqueNetworkType=network.opaque_type
        )
    return vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
        deviceName=network.name, network=network.ref
    )


def nic_add(network: NetworkRef, key: int) -> vim.vm.device.VirtualDeviceSpec:
    nic = vim.vm.device.VirtualVmxnet3(
        key=key,
        backing=nic_backing(network),
        addressType="generated",
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(
            startConnected=True, connected=True, allowGuestControl=False
        ),
    )
    return vim.vm.device.VirtualDeviceSpec(
        operation=vim.vm.device.VirtualDeviceSpec.Operation.add, device=nic
    )


def nic_network_key(nic: vim.vm.device.VirtualEthernetCard) -> str:
    """What a NIC is plugged into: a portgroup key, opaque network id or network name."""
    b = nic.backing
    if isinstance(b, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
        return b.port.portgroupKey
    if isinstance(b, vim.vm.device.VirtualEthernetCard.OpaqueNetworkBackingInfo):
        return b.opaqueNetworkId
    return getattr(b, "deviceName", "")


def disk_backing(path: str, mode: str, disk_type: str, datastore: vim.Datastore | None = None):
    backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
        fileName=path, diskMode=mode, datastore=datastore
    )
    if disk_type == "thin":
        backing.thinProvisioned = True
    elif disk_type == "eagerZeroedThick":
        backing.thinProvisioned = False
        backing.eagerlyScrub = True
    else:
        backing.thinProvisioned = False
    return backing


def persistent_disks_of(devices: list[Any], disk_path: str) -> dict[str, vim.vm.device.VirtualDisk]:
    """Attached BOSH persistent disks by cid: independent disks with a ``disk-*.vmdk`` file."""
    out = {}
    for d in devices:
        if not isinstance(d, vim.vm.device.VirtualDisk):
            continue
        b = d.backing
        name = getattr(b, "fileName", "") or ""
        if getattr(b, "diskMode", "") != PERSISTENT_MODE:
            continue
        base = name.rsplit("/", 1)[-1].rsplit("] ", 1)[-1]
        if base.startswith("disk-") and base.endswith(".vmdk"):
            out[base[: -len(".vmdk")]] = d
    return out


def match_macs(nics: list[Any], vsphere_nets: Mapping[str, NetworkRef]) -> dict[str, str]:
    """MAC per BOSH network: NICs were added in network order, check each is on its network."""
    if len(nics) != len(vsphere_nets):
        raise CloudError(f"expected {len(vsphere_nets)} NIC(s) after cloning, found {len(nics)}")
    macs = {}
    for nic, (name, net) in zip(nics, vsphere_nets.items(), strict=True):
        if nic_network_key(nic) != net.key:
            raise CloudError(
                f"NIC {nic.key} is not on network '{net.name}' as requested for '{name}'"
            )
        if not nic.macAddress:
            raise CloudError(f"vCenter assigned no MAC address to the NIC of network '{name}'")
        macs[name] = nic.macAddress
    return macs
