"""Persistent disks: VMDK files ``[<datastore>] <disk_path>/disk-<uuid>.vmdk``.

A disk lives on its own, outside any VM folder, so it outlives the VMs it is
attached to. ``create_disk`` picks a datastore matching
``persistent_datastore_pattern`` (or the disk_type's ``datastores``) with
room, near the VM when one is named, creates the folder and the disk.
``attach_disk`` adds it to the VM's system-disk SCSI controller in mode
``independent_persistent`` (excluded from snapshots, kept on VM deletion
when detached first) and returns the unit number as the disk hint (BOSH
vSphere's hint); if the VM's hosts cannot see the disk's datastore the disk
is moved first. ``detach_disk`` removes the device and keeps the file.
Attached disks are also recorded in the VM's agent settings
(``disks.persistent``), like the vSphere CPI does, so the agent finds them
after a reboot: ``env.iso`` is uploaded again first (``cpi.vsphere.agent_env``),
then one ``ReconfigVM_Task`` changes the disk, ``guestinfo.userdata`` and
the CD-ROM (pointed at the new ISO, connected, so the guest sees a new
medium) together, so device and settings cannot disagree and the attach is
one task. The VM's devices, settings, folder and host are read in one call.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyVmomi import vim, vmodl

from cpi.base import CloudError, DiskNotAttached, DiskNotFound, NotSupported, VMNotFound
from cpi.vsphere.agent_env import (
    ENV_ISO,
    DatastorePath,
    cdrom_change,
    cdrom_of,
    env_iso,
    settings_in,
    settings_options,
    upload,
    vm_directory,
)
from cpi.vsphere.config import ConfigError, CpiConfig
from cpi.vsphere.inventory import Inventory
from cpi.vsphere.placement import pick_persistent_datastore
from cpi.vsphere.tasks import run_task, wait_raw
from cpi.vsphere.vm import VmOperations
from cpi.vsphere.vm_config import (
    PERSISTENT_MODE,
    disk_backing,
    next_unit_number,
    persistent_disks_of,
    system_disk,
)

log = logging.getLogger(__name__)

DISK_CID_RE = re.compile(r"^disk-[0-9a-f-]{36}$")


@dataclass(frozen=True)
class DiskLocation:
    cid: str
    datastore: str
    path: str  # "[ds] BOSH_Disks/disk-<uuid>.vmdk"
    size_mb: int | None = None


class DiskOperations:
    def __init__(self, inventory: Inventory, config: CpiConfig, vms: VmOperations):
        self.inventory = inventory
        self.client = inventory.client
        self.config = config
        self.vms = vms
        # attach/detach rewrite a VM's device list and settings: one at a time per VM.
        self._vm_locks: dict[str, threading.Lock] = {}
        self._vm_locks_guard = threading.Lock()

    def _vm_lock(self, vm_cid: str) -> threading.Lock:
        with self._vm_locks_guard:
            return self._vm_locks.setdefault(vm_cid, threading.Lock())

    def path(self, datastore: str, cid: str) -> str:
        return f"[{datastore}] {self.config.datacenter.disk_path}/{cid}.vmdk"

    # -- lookup -------------------------------------------------------------------------

    def find(self, cid: str) -> DiskLocation | None:
        """Search the datastores for ``<disk_path>/<cid>.vmdk`` (persistent pattern first)."""
        if not DISK_CID_RE.match(cid or ""):
            return None
        browsers = self.inventory.datastore_browsers()
        pattern = self.config.datacenter.persistent_datastore_pattern
        ordered = sorted(browsers, key=lambda n: (re.search(pattern, n) is None, n))
        for name in ordered:
            size = self._search(browsers[name], name, cid)
            if size is not None:
                return DiskLocation(
                    cid=cid, datastore=name, path=self.path(name, cid), size_mb=size or None
                )
        return None

    def _search(self, browser: vim.host.DatastoreBrowser, name: str, cid: str) -> int | None:
        """Size in MB (0 if unknown) when the disk is on ``datastore``, else None."""
        spec = vim.host.DatastoreBrowser.SearchSpec(
            matchPattern=[f"{cid}.vmdk"],
            details=vim.host.DatastoreBrowser.FileInfo.Details(fileType=True, fileSize=True),
            query=[
                vim.host.DatastoreBrowser.VmDiskQuery(
                    details=vim.host.DatastoreBrowser.VmDiskQuery.Details(
                        capacityKb=True, diskType=True
                    )
                ),
                vim.host.DatastoreBrowser.Query(),
            ],
        )
        folder = f"[{name}] {self.config.datacenter.disk_path}"
        try:
            task = browser.SearchDatastore_Task(datastorePath=folder, searchSpec=spec)
            result = wait_raw(task, f"Searching {folder}")
        except (vim.fault.FileNotFound, vim.fault.CannotAccessFile):
            return None
        except vmodl.MethodFault as exc:
            raise CloudError(
                f"Searching {folder} for disk {cid} failed: {exc.msg or type(exc).__name__}"
            ) from None
        for f in getattr(result, "file", None) or []:
            if f.path == f"{cid}.vmdk":
                capacity = getattr(f, "capacityKb", None)
                return int(capacity) // 1024 if capacity else 0
        return None

    def require(self, cid: str) -> DiskLocation:
        found = self.find(cid)
        if found is None:
            raise DiskNotFound(f"Disk '{cid}' not found", ok_to_retry=False)
        return found

    # -- methods ------------------------------------------------------------------------

    def create(
        self, size_mb: int, cloud_properties: Mapping[str, Any] | None, vm_cid: str | None
    ) -> str:
        if isinstance(size_mb, bool) or not isinstance(size_mb, int) or size_mb <= 0:
            raise ConfigError(f"size: must be a positive number of MB, got {size_mb!r}")
        cloud_properties = cloud_properties or {}
        dc = self.config.datacenter
        pattern = dc.persistent_datastore_pattern
        names = cloud_properties.get("datastores")
        if names:
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ConfigError("cloud_properties/datastores: must be a list of datastore names")
            pattern = "^(" + "|".join(re.escape(n) for n in names) + ")$"
        disk_type = cloud_properties.get("type") or self.config.vcenter.default_disk_type
        if disk_type not in ("thin", "preallocated", "eagerZeroedThick"):
            raise ConfigError(
                f"cloud_properties/type: must be thin, preallocated or eagerZeroedThick, got {disk_type!r}"
            )

        if vm_cid:
            host = self.vms.view(vm_cid, ["runtime.host"]).props.get("runtime.host")
            if host is None:
                raise CloudError(f"VM '{vm_cid}' has no host; cannot place a disk near it")
            states = [state for _, state in self.inventory.host_datastores(host).values()]
        else:
            states = self.inventory.datacenter_datastore_states()
        ds = pick_persistent_datastore(states, pattern, size_mb)

        cid = f"disk-{uuid.uuid4()}"
        datacenter = self.inventory.datacenter
        try:
            self.client.content.fileManager.MakeDirectory(
                name=f"[{ds.name}] {dc.disk_path}",
                datacenter=datacenter,
                createParentDirectories=True,
            )
        except vim.fault.FileAlreadyExists:
            pass
        except vmodl.MethodFault as exc:
            raise CloudError(
                f"Creating folder [{ds.name}] {dc.disk_path} failed: {exc.msg or type(exc).__name__}"
            ) from None
        adapter = "lsiLogic"
        spec = vim.VirtualDiskManager.FileBackedVirtualDiskSpec(
            diskType="eagerZeroedThick" if disk_type == "eagerZeroedThick" else disk_type,
            adapterType=adapter,
            capacityKb=size_mb * 1024,
        )
        run_task(
            f"Creating disk {cid} on {ds.name}",
            self.client.content.virtualDiskManager.CreateVirtualDisk_Task,
            name=self.path(ds.name, cid),
            datacenter=datacenter,
            spec=spec,
        )
        log.info("created %s (%d MB) on %s", cid, size_mb, ds.name)
        return cid

    def delete(self, cid: str) -> None:
        disk = self.require(cid)
        run_task(
            f"Deleting disk {cid}",
            self.client.content.virtualDiskManager.DeleteVirtualDisk_Task,
            name=disk.path,
            datacenter=self.inventory.datacenter,
            not_found=DiskNotFound,
        )

    def has(self, cid: str) -> bool:
        return self.find(cid) is not None

    def attach(self, vm_cid: str, cid: str) -> str:
        """Add the disk and record it in the agent settings, in one reconfigure."""
        with self._vm_lock(vm_cid):
            view = self.vms.view(
                vm_cid,
                [
                    "config.hardware.device",
                    "config.extraConfig",
                    "config.files.vmPathName",
                    "runtime.host",
                ],
            )
            vm = view.ref
            devices = list(view.props.get("config.hardware.device") or [])
            attached = persistent_disks_of(devices, self.config.datacenter.disk_path)
            if cid in attached:
                return str(attached[cid].unitNumber)
            disk = self.require(cid)
            disk = self._ensure_reachable(view.props.get("runtime.host"), disk)
            sys_disk = system_disk(devices)
            unit = next_unit_number(devices, sys_disk.controllerKey)
            device = vim.vm.device.VirtualDisk(
                key=-1,
                controllerKey=sys_disk.controllerKey,
                unitNumber=unit,
                backing=disk_backing(
                    disk.path, PERSISTENT_MODE, "thin", self.inventory.datastore(disk.datastore)
                ),
            )
            hint = str(unit)
            # An existing file: no fileOperation, capacity comes from the file.
            change = vim.vm.device.VirtualDeviceSpec(
                operation=vim.vm.device.VirtualDeviceSpec.Operation.add, device=device
            )
            spec = self._settings_spec(vm, vm_cid, view.props, devices, cid, hint, change)
            run_task(f"Attaching {cid} to {vm_cid}", vm.ReconfigVM_Task, spec, not_found=VMNotFound)
            return hint

    def _ensure_reachable(self, host: vim.HostSystem | None, disk: DiskLocation) -> DiskLocation:
        """Move the disk when the VM's host cannot see its datastore (vSphere CPI does the same)."""
        if host is None:
            return disk
        seen = self.client.properties(host, ["datastore"]).get("datastore") or []
        current = self.inventory.datastore(disk.datastore)
        if any(ds._moId == current._moId for ds in seen):
            return disk
        visible = self.inventory.host_datastores(host)
        target = pick_persistent_datastore(
            [state for _, state in visible.values()],
            self.config.datacenter.persistent_datastore_pattern,
            disk.size_mb or 0,
        )
        dest = self.path(target.name, disk.cid)
        datacenter = self.inventory.datacenter
        try:
            self.client.content.fileManager.MakeDirectory(
                name=f"[{target.name}] {self.config.datacenter.disk_path}",
                datacenter=datacenter,
                createParentDirectories=True,
            )
        except vim.fault.FileAlreadyExists:
            pass
        run_task(
            f"Moving disk {disk.cid} to {target.name}",
            self.client.content.virtualDiskManager.MoveVirtualDisk_Task,
            sourceName=disk.path,
            sourceDatacenter=datacenter,
            destName=dest,
            destDatacenter=datacenter,
            force=False,
            not_found=DiskNotFound,
        )
        return DiskLocation(cid=disk.cid, datastore=target.name, path=dest, size_mb=disk.size_mb)

    def detach(self, vm_cid: str, cid: str) -> None:
        """Remove the disk (the file stays) and drop it from the agent settings, in one reconfigure."""
        with self._vm_lock(vm_cid):
            view = self.vms.view(
                vm_cid,
                ["config.hardware.device", "config.extraConfig", "config.files.vmPathName"],
            )
            devices = list(view.props.get("config.hardware.device") or [])
            attached = persistent_disks_of(devices, self.config.datacenter.disk_path)
            device = attached.get(cid)
            if device is None:
                raise DiskNotAttached(
                    f"Disk '{cid}' is not attached to VM '{vm_cid}'", ok_to_retry=True
                )
            change = vim.vm.device.VirtualDeviceSpec(
                operation=vim.vm.device.VirtualDeviceSpec.Operation.remove, device=device
            )
            spec = self._settings_spec(view.ref, vm_cid, view.props, devices, cid, None, change)
            run_task(
                f"Detaching {cid} from {vm_cid}",
                view.ref.ReconfigVM_Task,
                spec,
                not_found=VMNotFound,
            )

    def list_attached(self, vm_cid: str) -> list[str]:
        view = self.vms.view(vm_cid, ["config.hardware.device"])
        return sorted(
            persistent_disks_of(
                list(view.props.get("config.hardware.device") or []),
                self.config.datacenter.disk_path,
            )
        )

    def resize(self, cid: str, new_size_mb: int) -> None:
        if isinstance(new_size_mb, bool) or not isinstance(new_size_mb, int) or new_size_mb <= 0:
            raise ConfigError(f"new_size: must be a positive number of MB, got {new_size_mb!r}")
        disk = self.require(cid)
        if disk.size_mb and new_size_mb < disk.size_mb:
            raise NotSupported(
                f"Disk '{cid}' is {disk.size_mb} MB; shrinking to {new_size_mb} MB is not supported"
            )
        if disk.size_mb == new_size_mb:
            return
        run_task(
            f"Resizing disk {cid} to {new_size_mb} MB",
            self.client.content.virtualDiskManager.ExtendVirtualDisk_Task,
            name=disk.path,
            datacenter=self.inventory.datacenter,
            newCapacityKb=new_size_mb * 1024,
            eagerZero=False,
            not_found=DiskNotFound,
        )

    def _settings_spec(
        self,
        vm: vim.VirtualMachine,
        vm_cid: str,
        props: Mapping[str, Any],
        devices: list[Any],
        cid: str,
        hint: str | None,
        disk_change: vim.vm.device.VirtualDeviceSpec,
    ) -> vim.vm.ConfigSpec:
        """The reconfigure of an attach (``hint``) or detach (None): the disk change, and the
        agent settings with ``disks.persistent`` in step, in guestinfo and in a new ``env.iso``
        (uploaded here, before the reconfigure that points the CD-ROM at it).

        Only the disk changes when the VM carries no readable settings (nothing to keep in
        step); guestinfo alone when it has no CD-ROM (a VM made before the ISO was written:
        vSphere would refuse to add an IDE device to a running VM).
        """
        spec = vim.vm.ConfigSpec(deviceChange=[disk_change])
        settings = settings_in(props.get("config.extraConfig"))
        if settings is None:
            return spec
        persistent = dict(settings.get("disks", {}).get("persistent") or {})
        if hint is None:
            persistent.pop(cid, None)
        else:
            persistent[cid] = hint
        settings.setdefault("disks", {})["persistent"] = persistent
        spec.extraConfig = settings_options(settings)
        cdrom = cdrom_of(devices)
        if cdrom is None:
            log.info("%s has no CD-ROM: its agent settings are updated in guestinfo only", vm_cid)
            return spec
        iso = vm_directory(props.get("config.files.vmPathName", "")).child(ENV_ISO)
        self._upload_iso(vm, vm_cid, cdrom, iso, env_iso(settings))
        # Keep the datastore reference the CD-ROM has when the ISO stays on that datastore.
        datastore = getattr(cdrom.backing, "datastore", None)
        if not str(getattr(cdrom.backing, "fileName", "")).startswith(f"[{iso.datastore}]"):
            datastore = None
        spec.deviceChange.append(cdrom_change(devices, iso, datastore))
        return spec

    def _upload_iso(
        self,
        vm: vim.VirtualMachine,
        vm_cid: str,
        cdrom: vim.vm.device.VirtualCdrom,
        iso: DatastorePath,
        image: bytes,
    ) -> None:
        """Replace ``env.iso``; if the datastore refuses while the CD-ROM is connected (a
        running VM holds its medium open, and a VMFS datastore locks such a file), disconnect
        the CD-ROM and try once more, as the BOSH CPI disconnects before every upload. The
        reconfigure that follows connects it again, on the new image."""
        datacenter = self.config.datacenter.name
        try:
            upload(self.client, datacenter, iso, image)
            return
        except CloudError as exc:
            connectable = cdrom.connectable
            if connectable is None or not connectable.connected:
                raise
            log.warning("%s: %s; disconnecting its CD-ROM and uploading again", vm_cid, exc)
        cdrom.connectable.connected = False
        spec = vim.vm.ConfigSpec(
            deviceChange=[
                vim.vm.device.VirtualDeviceSpec(
                    operation=vim.vm.device.VirtualDeviceSpec.Operation.edit, device=cdrom
                )
            ]
        )
        run_task(
            f"Disconnecting the CD-ROM of {vm_cid}", vm.ReconfigVM_Task, spec, not_found=VMNotFound
        )
        upload(self.client, datacenter, iso, image)
