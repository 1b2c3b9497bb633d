"""VMs: linked clones of a stemcell, their devices, agent settings and DRS groups.

``create_vm`` (the vSphere CPI's VmCreator, simplified):

1. validate ``cpu``, ``ram``, ``disk``; find the stemcell and every network
   *before* anything is created, so bad input fails with a precise error
   (``NetworkNotFound``, ``CloudError`` for an unknown stemcell) and leaves
   nothing behind;
2. place it (``placement.place_vm``): cluster, resource pool, host (MUST host
   group), datastore of the ephemeral disk;
3. ``CloneVM_Task`` of the stemcell's ``initial`` snapshot with
   ``diskMoveType = createNewChildDiskBacking`` (a linked clone) into
   ``vm_folder`` as ``vm-<uuid>``, with CPU, RAM, the ephemeral disk and one
   NIC per network (standard portgroup, distributed portgroup or opaque
   network) in the clone spec;
4. write the agent settings (agent_id, vm name/id, networks with the MACs
   vCenter assigned, disks, env, and mbus/ntp/blobstore from the CPI config)
   where the stemcell's agent reads them (``cpi.vsphere.agent_env``): an
   ``env.iso`` uploaded to the VM's folder on its datastore and set as its
   CD-ROM, and base64 JSON in ``guestinfo.userdata``, in one reconfigure;
5. put the VM in the host group's DRS VM group and make sure the VM/Host
   rule exists (hard for MUST, soft for SHOULD);
6. power on.

Any failure after the clone exists destroys it (and its folder, with the
ISO) and raises ``VMCreationFailed``, retriable unless vSphere said the
request itself was wrong.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyVmomi import vim, vmodl

from cpi.base import CloudError, CpiError, VMCreationFailed, VMNotFound
from cpi.vsphere.agent_env import (
    ENV_ISO,
    cdrom_change,
    env_iso,
    settings_json,
    upload,
    vm_directory,
)
from cpi.vsphere.config import ConfigError, CpiConfig, DrsRule, HostGroup
from cpi.vsphere.inventory import ClusterSnapshot, Inventory, NetworkRef, VmView
from cpi.vsphere.placement import (
    DiskRequest,
    Placement,
    candidate_clusters,
    place_vm,
    vm_group_name,
    vm_host_rule_name,
)
from cpi.vsphere.tasks import map_fault, run_task, vsphere_call, wait_raw

log = logging.getLogger(__name__)

USERDATA_KEY = "guestinfo.userdata"
USERDATA_ENCODING_KEY = "guestinfo.userdata.encoding"
SCSI_RESERVED_UNIT = 7
PERSISTENT_MODE = "independent_persistent"


# -- pure helpers -----------------------------------------------------------------


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


def check_env(env: Any) -> None:
    """``env`` as the director passes it: a map; ``bosh.mbus`` (the agent's own message bus
    URLs and client certificate, which the agent prefers to the CPI's ``agent.mbus``) well formed.
    """
    if env is None:
        return
    if not isinstance(env, Mapping):
        raise ConfigError(f"env: must be a map, got {type(env).__name__}")
    bosh = env.get("bosh")
    if bosh is None:
        return
    if not isinstance(bosh, Mapping):
        raise ConfigError("env/bosh: must be a map")
    mbus = bosh.get("mbus")
    if mbus is None:
        return
    if not isinstance(mbus, Mapping):
        raise ConfigError("env/bosh/mbus: must be a map with urls and cert")
    urls = mbus.get("urls")
    if urls is not None and (
        not isinstance(urls, list) or not all(isinstance(u, str) and u for u in urls)
    ):
        raise ConfigError("env/bosh/mbus/urls: must be a list of message bus URLs")
    cert = mbus.get("cert")
    if cert is None:
        return
    if not isinstance(cert, Mapping):
        raise ConfigError("env/bosh/mbus/cert: must be a map with ca, certificate and private_key")
    for key in ("ca", "certificate", "private_key"):
        if not isinstance(cert.get(key, ""), str):
            raise ConfigError(f"env/bosh/mbus/cert/{key}: must be a PEM string")


def agent_settings(
    *,
    agent_id: str,
    vm_name: str,
    vm_id: str,
    networks: Mapping[str, Any],
    macs: Mapping[str, str],
    system_disk: str,
    ephemeral_disk: str,
    persistent_disks: Mapping[str, Any] | None,
    env: Mapping[str, Any] | None,
    agent_config: Mapping[str, Any],
) -> dict[str, Any]:
    """The registry-less agent settings (CPI API v2): what the agent reads from its CD-ROM
    (``env.iso``) or from guestinfo. The CPI's ``agent`` properties (ntp, mbus,
    blobstore) are copied in; ``env`` (with ``bosh.mbus`` and ``bosh.blobstores``
    when the director sends them, which the agent prefers) is kept as given."""
    nets = {}
    for name, spec in networks.items():
        nets[name] = {**dict(spec), "mac": macs[name]}
    settings: dict[str, Any] = {
        "agent_id": agent_id,
        "vm": {"name": vm_name, "id": vm_id},
        "networks": nets,
        "disks": {
            "system": system_disk,
            "ephemeral": ephemeral_disk,
            "persistent": dict(persistent_disks or {}),
        },
        "env": dict(env or {}),
    }
    for key in ("ntp", "mbus", "blobstore"):
        if key in agent_config:
            settings[key] = agent_config[key]
    for key, value in agent_config.items():
        settings.setdefault(key, value)
    return settings


def encode_userdata(settings: Mapping[str, Any]) -> str:
    return base64.b64encode(settings_json(settings)).decode()


def decode_userdata(value: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(value))


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


# -- vSphere objects ----------------------------------------------------------------


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


def read_settings(vm: vim.VirtualMachine) -> dict[str, Any] | None:
    """The agent settings of ``vm``, or None (reads its whole ``config``: one call).

    Callers that read other properties too should read ``config.extraConfig``
    with them and use ``settings_in``.
    """
    return settings_in(vm.config.extraConfig)


def settings_in(extra_config: list[Any] | None) -> dict[str, Any] | None:
    """The agent settings in a VM's ``config.extraConfig``, or None."""
    for opt in extra_config or []:
        if opt.key == USERDATA_KEY and opt.value:
            try:
                return decode_userdata(opt.value)
            except ValueError:
                return None
    return None


def settings_options(settings: Mapping[str, Any]) -> list[vim.option.OptionValue]:
    """The ``extraConfig`` entries that carry the agent settings."""
    return [
        vim.option.OptionValue(key=USERDATA_KEY, value=encode_userdata(settings)),
        vim.option.OptionValue(key=USERDATA_ENCODING_KEY, value="base64"),
    ]


def write_settings(
    vm: vim.VirtualMachine,
    settings: Mapping[str, Any],
    action: str,
    device_change: list[vim.vm.device.VirtualDeviceSpec],
) -> None:
    """One reconfigure: the settings in ``extraConfig`` and ``device_change`` (the CD-ROM)."""
    spec = vim.vm.ConfigSpec(extraConfig=settings_options(settings), deviceChange=device_change)
    run_task(action, vm.ReconfigVM_Task, spec)


def metadata_changes(
    metadata: Mapping[str, Any], field_keys: Mapping[str, int], current: list[Any] | None
) -> list[tuple[str, int, str]]:
    """``(name, field key, text)`` for each metadata key whose custom value differs from ``current``."""
    have = {v.key: getattr(v, "value", None) for v in current or []}
    out = []
    for name, value in metadata.items():
        text = value if isinstance(value, str) else json.dumps(value)
        key = field_keys[str(name)]
        if have.get(key) != text:
            out.append((str(name), key, text))
    return out


# -- operations ---------------------------------------------------------------------


class VmOperations:
    """VM methods of the cloud; safe to call from several threads at once."""

    def __init__(self, inventory: Inventory, config: CpiConfig):
        self.inventory = inventory
        self.client = inventory.client
        self.config = config
        self._drs_locks: dict[str, threading.Lock] = {}
        self._drs_locks_guard = threading.Lock()
        self._fields: dict[str, int] = {}
        self._fields_lock = threading.Lock()

    def find(self, vm_cid: str) -> vim.VirtualMachine:
        """VM ``vm_cid`` looked up by name in vm_folder (one ``FindChild``)."""
        vm = self.inventory.find_vm(vm_cid)
        if vm is None:
            raise self.not_found(vm_cid)
        return vm

    def view(
        self, vm_cid: str, properties: list[str], *, cluster_properties: tuple[str, ...] = ()
    ) -> VmView:
        """VM ``vm_cid`` with ``properties`` read in one call (see ``Inventory.vm_properties``)."""
        found = vsphere_call(
            f"Reading VM '{vm_cid}'",
            self.inventory.vm_properties,
            vm_cid,
            properties,
            cluster_properties=cluster_properties,
        )
        if found is None:
            raise self.not_found(vm_cid)
        return found

    def not_found(self, vm_cid: str) -> VMNotFound:
        return VMNotFound(f"VM '{vm_cid}' not found in folder '{self.config.datacenter.vm_folder}'")

    # -- create -------------------------------------------------------------------

    def create(
        self,
        agent_id: str,
        stemcell_cid: str,
        cloud_properties: Mapping[str, Any],
        networks: Mapping[str, Any],
        disk_cids: list[str] | None,
        env: Mapping[str, Any] | None,
        disk_locations: Mapping[str, tuple[str, int]] | None = None,
    ) -> list[Any]:
        cloud_properties = cloud_properties or {}
        resources = vm_resources(cloud_properties)
        pg_names = network_names(networks)
        check_env(env)
        request = (
            agent_id,
            stemcell_cid,
            cloud_properties,
            networks,
            pg_names,
            resources,
            disk_cids,
            env,
            disk_locations or {},
        )
        try:
            return self._create(*request)
        except _StaleInventory:
            # A cached reference (stemcell, folder, network, pool...) is gone: look again, once.
            self.inventory.invalidate()
            return self._create(*request, retry=False)

    def _create(
        self,
        agent_id: str,
        stemcell_cid: str,
        cloud_properties: Mapping[str, Any],
        networks: Mapping[str, Any],
        pg_names: Mapping[str, str],
        resources: VmResources,
        disk_cids: list[str] | None,
        env: Mapping[str, Any] | None,
        disk_locations: Mapping[str, tuple[str, int]],
        retry: bool = True,
    ) -> list[Any]:
        dc = self.config.datacenter
        stemcell = self.inventory.stemcell(stemcell_cid)
        if stemcell is None:
            raise CloudError(
                f"Could not find stemcell '{stemcell_cid}' in folder '{dc.template_folder}' "
                f"of datacenter '{dc.name}'"
            )
        vsphere_nets = {name: self.inventory.network(pg) for name, pg in pg_names.items()}

        placement, snapshot = self._place(cloud_properties, resources, disk_cids, disk_locations)
        pool = snapshot.pool(placement.resource_pool)
        ds_name = placement.datastores["ephemeral"]
        datastore = snapshot.datastores[ds_name]
        host = snapshot.hosts.get(placement.host) if placement.host else None

        name = f"vm-{uuid.uuid4()}"
        devices = list(stemcell.devices)
        sys_disk = system_disk(devices)
        changes = [
            vim.vm.device.VirtualDeviceSpec(
                operation=vim.vm.device.VirtualDeviceSpec.Operation.remove, device=d
            )
            for d in devices
            if isinstance(d, vim.vm.device.VirtualEthernetCard)
        ]
        eph_unit = next_unit_number(devices, sys_disk.controllerKey)
        disk_type = cloud_properties.get("disk_type") or self.config.vcenter.default_disk_type
        ephemeral = vim.vm.device.VirtualDisk(
            key=-1,
            controllerKey=sys_disk.controllerKey,
            unitNumber=eph_unit,
            capacityInKB=resources.disk_mb * 1024,
            backing=disk_backing(f"[{ds_name}]", "persistent", disk_type, datastore),
        )
        changes.append(
            vim.vm.device.VirtualDeviceSpec(
                operation=vim.vm.device.VirtualDeviceSpec.Operation.add,
                fileOperation=vim.vm.device.VirtualDeviceSpec.FileOperation.create,
                device=ephemeral,
            )
        )
        for i, net in enumerate(vsphere_nets.values()):
            changes.append(nic_add(net, -100 - i))

        relocate = vim.vm.RelocateSpec(datastore=datastore, pool=pool, host=host)
        if stemcell.snapshot is not None:
            relocate.diskMoveType = "createNewChildDiskBacking"
        # CPU, RAM, NICs and the ephemeral disk ride in the clone itself. The agent
        # settings cannot: they carry the MACs vCenter assigns while cloning. Until they
        # are written, guestinfo holds who the VM is for (agent id, env.bosh.groups): a
        # director killed in between finds it and deletes it (director.execution.leftovers).
        marker = {"agent_id": agent_id, "vm": {"name": name}, "env": dict(env or {})}
        clone_spec = vim.vm.CloneSpec(
            location=relocate,
            config=vim.vm.ConfigSpec(
                numCPUs=resources.cpu,
                memoryMB=resources.ram_mb,
                deviceChange=changes,
                extraConfig=settings_options(marker),
            ),
            powerOn=False,
            template=False,
            snapshot=stemcell.snapshot,
        )
        folder = self.inventory.vm_folder
        action = f"Cloning stemcell {stemcell_cid} to {name}"
        try:
            task = stemcell.ref.CloneVM_Task(folder, name, clone_spec)
            vm = wait_raw(task, action)
        except (vmodl.MethodFault, vmodl.RuntimeFault) as fault:
            self._destroy_leftover(name)
            if retry and isinstance(fault, vmodl.fault.ManagedObjectNotFound):
                raise _StaleInventory from None
            # Whatever failed may be a reference we hold: the director's retry looks afresh.
            self.inventory.invalidate()
            raise VMCreationFailed(str(map_fault(fault, action)), ok_to_retry=True) from None
        except CpiError as exc:
            self._destroy_leftover(name)
            raise VMCreationFailed(str(exc), ok_to_retry=True) from None
        self.inventory.remember_vm(name, vm)

        try:
            self._configure_new_vm(
                vm, name, agent_id, networks, vsphere_nets, env, placement, snapshot, resources
            )
        except Exception as exc:
            self._destroy_quietly(vm, name)
            self.inventory.forget_vm(name)
            if isinstance(exc, VMCreationFailed):
                raise
            message = exc.message if isinstance(exc, CpiError) else f"{type(exc).__name__}: {exc}"
            raise VMCreationFailed(f"Creating {name} failed: {message}", ok_to_retry=True) from exc
        log.info("created %s on %s/%s (%s)", name, placement.cluster.name, ds_name, agent_id)
        return [name, dict(networks)]

    def _place(
        self,
        cloud_properties: Mapping[str, Any],
        resources: VmResources,
        disk_cids: list[str] | None,
        disk_locations: Mapping[str, tuple[str, int]],
    ) -> tuple[Placement, ClusterSnapshot]:
        """Placement over state read now (one call for every candidate cluster)."""
        dc = self.config.datacenter
        candidates = candidate_clusters(cloud_properties, dc)
        snapshots = self.inventory.cluster_snapshots(
            (spec.name for spec in candidates),
            host_groups=any(spec.host_group for spec in candidates),
        )
        disks = [
            DiskRequest(
                "ephemeral",
                resources.disk_mb,
                ephemeral_pattern(cloud_properties, dc.datastore_pattern),
                extra_mb=resources.ram_mb,
            )
        ]
        for cid in disk_cids or []:
            location = disk_locations.get(cid)
            if location is not None:
                ds_name, size_mb = location
                disks.append(
                    DiskRequest(
                        cid, size_mb, dc.persistent_datastore_pattern, current_datastore=ds_name
                    )
                )
        states = {name: snap.state for name, snap in snapshots.items()}
        placement = place_vm(candidates, states, resources.ram_mb, disks)
        return placement, snapshots[placement.cluster.name]

    def _configure_new_vm(
        self,
        vm: vim.VirtualMachine,
        name: str,
        agent_id: str,
        networks: Mapping[str, Any],
        vsphere_nets: Mapping[str, NetworkRef],
        env: Mapping[str, Any] | None,
        placement: Placement,
        cluster: ClusterSnapshot,
        resources: VmResources,
    ) -> None:
        props = self.client.properties(vm, ["config.hardware.device", "config.files.vmPathName"])
        devices = list(props["config.hardware.device"])
        nics = sorted(
            (d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)),
            key=lambda d: d.key,
        )
        macs = _match_macs(nics, vsphere_nets)
        disks = sorted(
            (d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)),
            key=lambda d: (d.controllerKey, d.unitNumber or 0),
        )
        if len(disks) < 2:
            raise CloudError(
                f"{name} has {len(disks)} disk(s) after cloning; expected system and ephemeral"
            )
        sys_disk = disks[0]
        ephemeral = next(
            (d for d in disks[1:] if d.capacityInKB == resources.disk_mb * 1024), disks[-1]
        )
        settings = agent_settings(
            agent_id=agent_id,
            vm_name=name,
            vm_id=vm._moId,
            networks=networks,
            macs=macs,
            system_disk=str(sys_disk.unitNumber),
            ephemeral_disk=str(ephemeral.unitNumber),
            persistent_disks={},
            env=env,
            agent_config=self.config.agent,
        )
        iso = vm_directory(props.get("config.files.vmPathName", "")).child(ENV_ISO)
        upload(self.client, self.config.datacenter.name, iso, env_iso(settings))
        write_settings(
            vm,
            settings,
            f"Writing agent settings of {name}",
            [cdrom_change(devices, iso, cluster.datastores.get(iso.datastore))],
        )
        if placement.host_group is not None:
            self._add_to_host_group(cluster.ref, cluster.state.name, placement.host_group, vm, name)
        for rule in placement.cluster.drs_rules:
            self._add_to_drs_rule(cluster.ref, cluster.state.name, rule, vm, name)
        run_task(f"Powering on {name}", vm.PowerOnVM_Task)

    def _destroy_leftover(self, name: str) -> None:
        try:
            vm = self.inventory.find_vm(name)
        except CpiError as exc:  # e.g. the cached folder is gone: nothing was made in it
            log.warning("could not look for half-made VM %s: %s", name, exc)
            return
        if vm is not None:
            self._destroy_quietly(vm, name)

    def _destroy_quietly(self, vm: vim.VirtualMachine, name: str) -> None:
        try:
            vm_path = self.client.properties(vm, ["config.files.vmPathName"]).get(
                "config.files.vmPathName"
            )
            self._power_off(vm, name)
            run_task(f"Deleting half-made {name}", vm.Destroy_Task)
            self._delete_vm_folder(vm_path, name)
        except Exception as exc:  # noqa: BLE001 - the creation error is the one to report
            log.warning("could not delete half-made VM %s: %s", name, exc)

    def _delete_vm_folder(self, vm_path: str | None, vm_cid: str) -> None:
        """Remove what the destroy left in the VM's folder: ``env.iso`` and the folder itself.

        vSphere deletes the files it made for the VM, not the ones uploaded
        beside them, and keeps a folder that is not empty; the folder is the
        VM's own (named after it when it was cloned), so all of it goes.
        A folder already gone is fine.
        """
        if not vm_path:
            return
        try:
            folder = vm_directory(vm_path)
        except CloudError as exc:
            log.warning("not removing the folder of %s: %s", vm_cid, exc)
            return
        try:
            run_task(
                f"Deleting {folder} of {vm_cid}",
                self.client.content.fileManager.DeleteDatastoreFile_Task,
                name=str(folder),
                datacenter=self.inventory.datacenter,
                not_found=_FolderGone,
            )
        except _FolderGone:
            pass

    # -- DRS ------------------------------------------------------------------------

    def _drs_lock(self, cluster_name: str) -> threading.Lock:
        with self._drs_locks_guard:
            return self._drs_locks.setdefault(cluster_name, threading.Lock())

    def _add_to_host_group(
        self,
        cluster: vim.ClusterComputeResource,
        cluster_name: str,
        host_group: HostGroup,
        vm: vim.VirtualMachine,
        vm_name: str,
    ) -> None:
        """VM into ``<hg><RULE>_vm_group``; VM/Host rule to the host group (hard for MUST)."""
        group_name = vm_group_name(host_group)
        rule_name = vm_host_rule_name(host_group)
        # Read-modify-write of the cluster's group list: serialised per cluster in this process.
        with self._drs_lock(cluster_name):
            config = cluster.configurationEx  # read under the lock: the write depends on it
            group = next(
                (
                    g
                    for g in config.group or []
                    if isinstance(g, vim.cluster.VmGroup) and g.name == group_name
                ),
                None,
            )
            if group is None:
                group_spec = vim.cluster.GroupSpec(
                    operation="add", info=vim.cluster.VmGroup(name=group_name, vm=[vm])
                )
            else:
                members = [v for v in group.vm or [] if v._moId != vm._moId] + [vm]
                group_spec = vim.cluster.GroupSpec(
                    operation="edit", info=vim.cluster.VmGroup(name=group_name, vm=members)
                )
            spec = vim.cluster.ConfigSpecEx(groupSpec=[group_spec])
            if not any(r.name == rule_name for r in config.rule or []):
                spec.rulesSpec = [
                    vim.cluster.RuleSpec(
                        operation="add",
                        info=vim.cluster.VmHostRuleInfo(
                            name=rule_name,
                            enabled=True,
                            mandatory=host_group.drs_rule == "MUST",
                            vmGroupName=group_name,
                            affineHostGroupName=host_group.name,
                        ),
                    )
                ]
            run_task(
                f"Adding {vm_name} to DRS group {group_name} of {cluster_name}",
                cluster.ReconfigureComputeResource_Task,
                spec,
                True,
            )

    def _add_to_drs_rule(
        self,
        cluster: vim.ClusterComputeResource,
        cluster_name: str,
        rule: DrsRule,
        vm: vim.VirtualMachine,
        vm_name: str,
    ) -> None:
        """VM into the anti-affinity rule ``rule.name`` (``separate_vms``), made on first use."""
        with self._drs_lock(cluster_name):
            config = cluster.configurationEx  # read under the lock: the write depends on it
            current = next((r for r in config.rule or [] if r.name == rule.name), None)
            if current is not None and not isinstance(current, vim.cluster.AntiAffinityRuleSpec):
                raise ConfigError(
                    f"drs_rules: cluster {cluster_name} already has a rule named {rule.name!r} "
                    f"that is not an anti-affinity (separate_vms) rule"
                )
            if current is None:
                spec = vim.cluster.RuleSpec(
                    operation="add",
                    info=vim.cluster.AntiAffinityRuleSpec(
                        name=rule.name, enabled=True, mandatory=False, vm=[vm]
                    ),
                )
            else:
                members = [v for v in current.vm or [] if v._moId != vm._moId] + [vm]
                spec = vim.cluster.RuleSpec(
                    operation="edit",
                    info=vim.cluster.AntiAffinityRuleSpec(
                        key=current.key,
                        name=rule.name,
                        enabled=current.enabled,
                        mandatory=current.mandatory,
                        vm=members,
                    ),
                )
            run_task(
                f"Adding {vm_name} to DRS rule {rule.name} of {cluster_name}",
                cluster.ReconfigureComputeResource_Task,
                vim.cluster.ConfigSpecEx(rulesSpec=[spec]),
                True,
            )

    def _remove_from_drs_groups(
        self, cluster: vim.ClusterComputeResource, cluster_name: str, vm_moid: str
    ) -> None:
        """Drop a deleted VM from our VM groups and anti-affinity rules; remove groups (and
        their rules) and anti-affinity rules left empty."""
        with self._drs_lock(cluster_name):
            config = cluster.configurationEx  # read again under the lock: the write depends on it
            group_specs, rule_specs = [], []
            for r in config.rule or []:
                if not isinstance(r, vim.cluster.AntiAffinityRuleSpec):
                    continue
                members = [v for v in r.vm or [] if v._moId != vm_moid]
                if len(members) == len(r.vm or []):
                    continue
                if members:
                    info = vim.cluster.AntiAffinityRuleSpec(
                        key=r.key, name=r.name, enabled=r.enabled, mandatory=r.mandatory, vm=members
                    )
                    rule_specs.append(vim.cluster.RuleSpec(operation="edit", info=info))
                else:
                    rule_specs.append(vim.cluster.RuleSpec(operation="remove", removeKey=r.key))
            for g in config.group or []:
                if not isinstance(g, vim.cluster.VmGroup) or not g.name.endswith("_vm_group"):
                    continue
                members = [v for v in g.vm or [] if v._moId != vm_moid]
                if len(members) == len(g.vm or []):
                    continue
                if members:
                    group_specs.append(
                        vim.cluster.GroupSpec(
                            operation="edit", info=vim.cluster.VmGroup(name=g.name, vm=members)
                        )
                    )
                    continue
                for r in config.rule or []:
                    if isinstance(r, vim.cluster.VmHostRuleInfo) and r.vmGroupName == g.name:
                        rule_specs.append(vim.cluster.RuleSpec(operation="remove", removeKey=r.key))
                group_specs.append(vim.cluster.GroupSpec(operation="remove", removeKey=g.name))
            if group_specs or rule_specs:
                spec = vim.cluster.ConfigSpecEx(
                    groupSpec=group_specs or None, rulesSpec=rule_specs or None
                )
                run_task(
                    f"Cleaning DRS groups of {cluster_name}",
                    cluster.ReconfigureComputeResource_Task,
                    spec,
                    True,
                )

    # -- delete, reboot -----------------------------------------------------------------

    def _power_off(self, vm: vim.VirtualMachine, name: str, power_state: str | None = None) -> None:
        """Power off unless ``power_state`` (read earlier, else now) says it already is."""
        off = vim.VirtualMachine.PowerState.poweredOff
        if power_state is None:
            power_state = vm.runtime.powerState
        if power_state != off:
            try:
                run_task(f"Powering off {name}", vm.PowerOffVM_Task)
            except CloudError:
                if vm.runtime.powerState != off:
                    raise

    def delete(self, vm_cid: str) -> None:
        """Power off, detach persistent disks (so they survive), destroy, tidy DRS groups.

        One read gets the devices, the power state and the cluster's DRS
        groups; the groups are read again (under the lock) only when the VM
        was in one of ours.
        """
        view = self.view(
            vm_cid,
            ["config.hardware.device", "runtime.powerState", "config.files.vmPathName"],
            cluster_properties=("name", "configurationEx"),
        )
        vm = view.ref
        self._power_off(vm, vm_cid, view.props.get("runtime.powerState"))
        attached = persistent_disks_of(
            list(view.props.get("config.hardware.device") or []), self.config.datacenter.disk_path
        )
        if attached:
            spec = vim.vm.ConfigSpec(
                deviceChange=[
                    vim.vm.device.VirtualDeviceSpec(
                        operation=vim.vm.device.VirtualDeviceSpec.Operation.remove, device=d
                    )
                    for d in attached.values()
                ]
            )
            run_task(
                f"Detaching persistent disks of {vm_cid}",
                vm.ReconfigVM_Task,
                spec,
                not_found=VMNotFound,
            )
        moid = vm._moId
        run_task(f"Deleting {vm_cid}", vm.Destroy_Task, not_found=VMNotFound)
        self.inventory.forget_vm(vm_cid)
        self._delete_vm_folder(view.props.get("config.files.vmPathName"), vm_cid)
        cluster = view.cluster
        if cluster is not None and in_vm_groups(view.cluster_props.get("configurationEx"), moid):
            try:
                self._remove_from_drs_groups(cluster, view.cluster_props.get("name", ""), moid)
            except CpiError as exc:
                log.warning("could not tidy DRS groups after deleting %s: %s", vm_cid, exc)

    def reboot(self, vm_cid: str) -> None:
        """Guest reboot through VMware Tools; a hard reset when the tools cannot."""
        vm = self.find(vm_cid)
        try:
            vm.RebootGuest()
            return
        except (
            vim.fault.ToolsUnavailable,
            vim.fault.InvalidState,
            vmodl.fault.NotSupported,
            vmodl.fault.NotImplemented,
            vmodl.fault.MethodNotFound,
        ) as exc:
            log.info("guest reboot of %s not possible (%s); resetting", vm_cid, type(exc).__name__)
        except vmodl.MethodFault as exc:
            raise map_fault(exc, f"Rebooting {vm_cid}", not_found=VMNotFound) from None
        run_task(f"Resetting {vm_cid}", vm.ResetVM_Task, not_found=VMNotFound)

    # -- metadata -----------------------------------------------------------------------

    def set_metadata(self, vm_cid: str, metadata: Mapping[str, Any]) -> None:
        """Each key becomes a vCenter custom attribute of the VM (defined on first use).

        The VM's current custom values are read first (one call) and only the
        keys whose value differs are written: vSphere has no call that sets
        several custom values at once, so each write is a ``SetField``.
        """
        if not isinstance(metadata, Mapping):
            raise ConfigError("metadata: must be a map")
        view = self.view(vm_cid, ["customValue"])
        manager = self.client.content.customFieldsManager
        keys = self._field_keys([str(name) for name in metadata])
        for name, field_key, text in metadata_changes(
            metadata, keys, view.props.get("customValue")
        ):
            vsphere_call(
                f"Setting custom attribute '{name}' on {vm_cid}",
                manager.SetField,
                view.ref,
                field_key,
                text,
                not_found=VMNotFound,
            )

    def _field_keys(self, names: list[str]) -> dict[str, int]:
        """Custom attribute keys by name: remembered, else the definitions read once for all
        missing names, and a definition added for each name vCenter does not have."""
        missing = [n for n in names if n not in self._fields]
        if missing:
            with self._fields_lock:
                manager = self.client.content.customFieldsManager
                defined = {
                    f.name: f.key
                    for f in manager.field or []
                    if f.managedObjectType in (None, vim.VirtualMachine)
                }
                for name in missing:
                    if name in self._fields:
                        continue
                    if name not in defined:
                        defined[name] = self._add_field(manager, name)
                    self._fields[name] = defined[name]
        return {n: self._fields[n] for n in names}

    @staticmethod
    def _add_field(manager: vim.CustomFieldsManager, name: str) -> int:
        try:
            return manager.AddCustomFieldDef(name=name, moType=vim.VirtualMachine).key
        except vim.fault.DuplicateName:  # defined meanwhile by another client
            return next(f.key for f in manager.field or [] if f.name == name)
        except vmodl.MethodFault as exc:
            raise map_fault(exc, f"Defining custom attribute '{name}'") from None


def in_vm_groups(config_ex: Any, vm_moid: str) -> bool:
    """Whether the VM is a member of one of our DRS VM groups (``*_vm_group``) or of an
    anti-affinity rule (``drs_rules``) in ``config_ex``."""
    return any(
        isinstance(g, vim.cluster.VmGroup)
        and g.name.endswith("_vm_group")
        and any(v._moId == vm_moid for v in g.vm or [])
        for g in getattr(config_ex, "group", None) or []
    ) or any(
        isinstance(r, vim.cluster.AntiAffinityRuleSpec)
        and any(v._moId == vm_moid for v in r.vm or [])
        for r in getattr(config_ex, "rule", None) or []
    )


class _FolderGone(CloudError):
    """The VM's folder was not there (internal: nothing left to delete)."""


class _StaleInventory(Exception):
    """A cached reference was gone when the clone used it (internal: create retries once)."""


def _match_macs(nics: list[Any], vsphere_nets: Mapping[str, NetworkRef]) -> dict[str, str]:
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
