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
   rule exists (hard for MUST, soft for SHOULD) (``cpi.vsphere.drs``);
6. power on.

Any failure after the clone exists destroys it (and its folder, with the
ISO) and raises ``VMCreationFailed``, retriable unless vSphere said the
request itself was wrong.

What a VM is made of (vm_type properties, devices) is in
``cpi.vsphere.vm_config``; the agent settings in ``cpi.vsphere.agent_env``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from pyVmomi import vim, vmodl

from cpi.base import CloudError, CpiError, VMCreationFailed, VMNotFound
from cpi.vsphere.agent_env import (
    ENV_ISO,
    agent_settings,
    cdrom_change,
    check_env,
    env_iso,
    settings_options,
    upload,
    vm_directory,
    write_settings,
)
from cpi.vsphere.capacity import ClusterSnapshot
from cpi.vsphere.config import ConfigError, CpiConfig
from cpi.vsphere.drs import DrsGroups, in_vm_groups
from cpi.vsphere.inventory import Inventory, VmView
from cpi.vsphere.metadata import CustomAttributes
from cpi.vsphere.networks import NetworkRef
from cpi.vsphere.placement import DiskRequest, Placement, candidate_clusters, place_vm
from cpi.vsphere.tasks import map_fault, run_task, vsphere_call, wait_raw
from cpi.vsphere.vm_config import (
    VmResources,
    disk_backing,
    ephemeral_pattern,
    match_macs,
    network_names,
    next_unit_number,
    nic_add,
    persistent_disks_of,
    system_disk,
    vm_resources,
)

log = logging.getLogger(__name__)


# -- operations ---------------------------------------------------------------------


class VmOperations:
    """VM methods of the cloud; safe to call from several threads at once."""

    def __init__(self, inventory: Inventory, config: CpiConfig):
        self.inventory = inventory
        self.client = inventory.client
        self.config = config
        self.drs = DrsGroups()
        self.attributes = CustomAttributes(self.client)

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
        macs = match_macs(nics, vsphere_nets)
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
            self.drs.add_to_host_group(
                cluster.ref, cluster.state.name, placement.host_group, vm, name
            )
        for rule in placement.cluster.drs_rules:
            self.drs.add_to_drs_rule(cluster.ref, cluster.state.name, rule, vm, name)
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
                self.drs.remove_vm(cluster, view.cluster_props.get("name", ""), moid)
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
        self.attributes.write(view.ref, vm_cid, metadata, view.props.get("customValue"))


class _FolderGone(CloudError):
    """The VM's folder was not there (internal: nothing left to delete)."""


class _StaleInventory(Exception):
    """A cached reference was gone when the clone used it (internal: create retries once)."""
