"""Stemcells: OVF import into the template folder as ``sc-<uuid>``.

``create_stemcell(image_path, ...)`` follows the vSphere CPI:

1. unpack the stemcell's ``image`` (a tarball, gzipped or not) and find the
   ``.ovf``; an image that would unpack to more than ``max_bytes`` or hold
   more than ``max_files`` members is refused before anything is written
   (the director checks uploads the same way; the CPI also runs alone);
2. place it: a cluster of the CPI config and a datastore matching the global
   ``datastore_pattern`` with room for the disk;
3. ``OvfManager.CreateImportSpec`` (thin disks when ``default_disk_type`` is
   thin), ``ResourcePool.ImportVApp`` into the template folder, wait for the
   ``HttpNfcLease``, PUT each VMDK to its device URL (streamOptimized),
   reporting progress on the lease, then complete it;
4. remove every NIC (create_vm adds its own), and take the snapshot
   ``initial`` that linked clones grow from.

On any failure the lease is aborted and a half-imported VM destroyed, so a
retried upload starts clean. ``delete_stemcell`` removes the template and any
per-datastore replica (``sc-<uuid> / <datastore>``).
"""

from __future__ import annotations

import logging
import os
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

from pyVmomi import vim, vmodl

from cpi.base import CloudError
from cpi.vsphere.client import VSphereClient
from cpi.vsphere.config import CpiConfig
from cpi.vsphere.inventory import Inventory
from cpi.vsphere.placement import DiskRequest, place_vm
from cpi.vsphere.tasks import map_fault, run_task, vsphere_call

log = logging.getLogger(__name__)

LEASE_READY_TIMEOUT = 300.0
PROGRESS_INTERVAL = 2.0
CHUNK = 1024 * 1024
#: What one stemcell image may unpack to (the settings the director reads, same defaults).
MAX_IMAGE_BYTES = int(os.environ.get("OPSCONSOLE_MAX_UPLOAD_EXPANDED_BYTES", str(32 << 30)))
MAX_IMAGE_FILES = int(os.environ.get("OPSCONSOLE_MAX_ARCHIVE_FILES", "100000"))


def _extract(
    image_path: str,
    into: str,
    max_bytes: int | None = None,
    max_files: int | None = None,
) -> Path:
    """Unpack the image tarball safely and within bounds; return the .ovf path.

    The members are read header by header first (their sizes are what
    extraction writes, sparse files at full size), so a refused image
    writes nothing.
    """
    max_bytes = MAX_IMAGE_BYTES if max_bytes is None else max_bytes
    max_files = MAX_IMAGE_FILES if max_files is None else max_files
    try:
        with tarfile.open(image_path, "r:*") as tar:
            members, total = [], 0
            for info in tar:
                members.append(info)
                if len(members) > max_files:
                    raise CloudError(
                        f"Stemcell image '{image_path}' holds more than {max_files} files"
                    )
                if info.isfile():
                    total += info.size
                    if total > max_bytes:
                        raise CloudError(
                            f"Stemcell image '{image_path}' unpacks to more than {max_bytes} bytes"
                        )
            tar.extractall(into, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise CloudError(
            f"Stemcell image '{image_path}' is not a readable tarball: {exc}"
        ) from None
    ovfs = sorted(Path(into).rglob("*.ovf"))
    if not ovfs:
        raise CloudError(f"Stemcell image '{image_path}' has no .ovf descriptor")
    return ovfs[0]


class _Upload:
    """Counts uploaded bytes and reports total progress on the lease every couple of seconds."""

    def __init__(self, lease: vim.HttpNfcLease, total: int):
        self.lease = lease
        self.total = max(total, 1)
        self.sent = 0
        self._last = 0.0

    def reader(self, path: Path) -> _ProgressReader:
        return _ProgressReader(self, path)

    def advance(self, n: int) -> None:
        self.sent += n
        now = time.monotonic()
        if now - self._last < PROGRESS_INTERVAL:
            return
        self._last = now
        try:
            self.lease.HttpNfcLeaseProgress(min(99, self.sent * 100 // self.total))
        except vmodl.MethodFault as exc:  # progress is advisory
            log.debug("lease progress: %s", exc)


class _ProgressReader:
    """A file object with a length, so requests sends Content-Length, not chunks."""

    def __init__(self, upload: _Upload, path: Path):
        self._upload = upload
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._size = path.stat().st_size

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(CHUNK if size is None or size < 0 else size)
        self._upload.advance(len(data))
        return data

    def close(self) -> None:
        self._file.close()


def create_stemcell(
    client: VSphereClient, inventory: Inventory, config: CpiConfig, image_path: str
) -> str:
    cid = f"sc-{uuid.uuid4()}"
    with tempfile.TemporaryDirectory(prefix="stemcell-") as tmp:
        ovf_path = _extract(image_path, tmp)
        ovf_dir = ovf_path.parent
        disk_mb = sum(p.stat().st_size for p in ovf_dir.glob("*.vmdk")) // (1024 * 1024) + 1

        dc = config.datacenter
        snapshots = inventory.cluster_snapshots(
            (c.name for c in dc.clusters), host_groups=any(c.host_group for c in dc.clusters)
        )
        states = {name: snap.state for name, snap in snapshots.items()}
        placement = place_vm(
            dc.clusters, states, 0, [DiskRequest("system", disk_mb, dc.datastore_pattern)]
        )
        snapshot = snapshots[placement.cluster.name]
        pool = snapshot.pool(placement.resource_pool)
        datastore = snapshot.datastores[placement.datastores["system"]]

        params = vim.OvfManager.CreateImportSpecParams(entityName=cid, locale="US")
        if config.vcenter.default_disk_type == "thin":
            params.diskProvisioning = "thin"
        spec = vsphere_call(
            "Parsing the stemcell OVF",
            client.content.ovfManager.CreateImportSpec,
            ovf_path.read_text(),
            pool,
            datastore,
            params,
        )
        if spec.error:
            raise CloudError(
                "The stemcell OVF was refused: "
                + "; ".join(e.msg or type(e).__name__ for e in spec.error)
            )
        files = {item.deviceId: ovf_dir / item.path for item in spec.fileItem or []}
        for path in files.values():
            if not path.is_file():
                raise CloudError(
                    f"The stemcell OVF names '{path.name}', which the image does not contain"
                )

        lease = vsphere_call(
            f"Importing stemcell {cid}", pool.ImportVApp, spec.importSpec, inventory.template_folder
        )
        vm = None
        try:
            _wait_lease_ready(lease, cid)
            vm = lease.info.entity
            total = sum(p.stat().st_size for p in files.values())
            upload = _Upload(lease, total)
            for device in lease.info.deviceUrl or []:
                path = files.get(device.importKey)
                if path is None:
                    continue
                _put(client, upload, client.url_for(device.url), path, cid)
            lease.HttpNfcLeaseProgress(100)
            lease.HttpNfcLeaseComplete()
        except BaseException as exc:
            _abort(lease, exc)
            if vm is not None:
                _destroy_quietly(vm)
            if isinstance(exc, vmodl.MethodFault):
                raise map_fault(exc, f"Importing stemcell {cid}") from None
            raise

        try:
            nics = [
                d
                for d in vm.config.hardware.device
                if isinstance(d, vim.vm.device.VirtualEthernetCard)
            ]
            if nics:
                spec = vim.vm.ConfigSpec(
                    deviceChange=[
                        vim.vm.device.VirtualDeviceSpec(
                            operation=vim.vm.device.VirtualDeviceSpec.Operation.remove, device=nic
                        )
                        for nic in nics
                    ]
                )
                run_task(f"Removing the NICs of stemcell {cid}", vm.ReconfigVM_Task, spec)
            run_task(
                f"Snapshotting stemcell {cid}",
                vm.CreateSnapshot_Task,
                name="initial",
                description="BOSH stemcell: base of linked clones",
                memory=False,
                quiesce=False,
            )
        except BaseException:
            _destroy_quietly(vm)
            raise
    log.info("stemcell %s imported to %s on %s", cid, placement.cluster.name, datastore.name)
    return cid


def _wait_lease_ready(lease: vim.HttpNfcLease, cid: str) -> None:
    deadline = time.monotonic() + LEASE_READY_TIMEOUT
    while True:
        state = lease.state
        if state == vim.HttpNfcLease.State.ready:
            return
        if state == vim.HttpNfcLease.State.error:
            raise map_fault(
                lease.error or vmodl.MethodFault(msg="lease failed"), f"Importing stemcell {cid}"
            )
        if state == vim.HttpNfcLease.State.done:
            raise CloudError(f"Importing stemcell {cid}: the upload lease ended before it was used")
        if time.monotonic() > deadline:
            raise CloudError(
                f"Importing stemcell {cid}: vCenter did not get ready within {LEASE_READY_TIMEOUT:g} s"
            )
        time.sleep(0.1)


def _put(client: VSphereClient, upload: _Upload, url: str, path: Path, cid: str) -> None:
    headers = {
        "Content-Type": "application/x-vnd.vmware-streamVmdk",
        "Cookie": client.session_cookie(),
    }
    body = upload.reader(path)
    try:
        response = client.http().put(
            url,
            data=body,
            headers=headers,
            timeout=(client.config.connect_timeout, client.config.http_timeout),
        )
    except OSError as exc:  # requests' errors are OSErrors
        raise CloudError(f"Uploading {path.name} of stemcell {cid} failed: {exc}") from None
    finally:
        body.close()
    if response.status_code >= 300:
        raise CloudError(
            f"Uploading {path.name} of stemcell {cid} failed: HTTP {response.status_code} "
            f"{response.text[:200]}"
        )


def _abort(lease: vim.HttpNfcLease, exc: BaseException) -> None:
    try:
        fault = (
            exc
            if isinstance(exc, vmodl.MethodFault)
            else vmodl.fault.SystemError(reason=str(exc)[:200])
        )
        lease.HttpNfcLeaseAbort(fault)
    except Exception as abort_exc:  # noqa: BLE001 - best effort, the original error matters
        log.debug("aborting lease: %s", abort_exc)


def _destroy_quietly(vm: vim.VirtualMachine) -> None:
    try:
        run_task("Removing a half-made VM", vm.Destroy_Task)
    except Exception as exc:  # noqa: BLE001 - best effort cleanup
        log.warning("could not remove half-made VM %s: %s", vm, exc)


def delete_stemcell(inventory: Inventory, cid: str) -> None:
    """Destroy the stemcell VM and its replicas; a stemcell already gone is fine."""
    inventory.forget_stemcell(cid)
    for vm in inventory.children_named(inventory.template_folder, cid):
        name = vm.name
        if name == cid or name.startswith(f"{cid} "):
            run_task(f"Deleting stemcell {name}", vm.Destroy_Task)
