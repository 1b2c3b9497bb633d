"""Cloud check's problem types: their resolutions, the automatic one, the order they run in.

Pure data shared by the scan (``cck_scan``), the resolutions
(``cck_resolve``) and the services, pages and ``manage.py cck``
(``cck``). BOSH's names and plans (``problem_handlers``), plus
``missing_stemcell``, ``unknown_vm`` and ``unknown_disk`` (see
``director.health.cck``).
"""

from __future__ import annotations

SCAN_TASK = "cck_scan"
APPLY_TASK = "cck_apply_resolutions"
#: How long a ping may take before the agent counts as unresponsive (BOSH: 10 s, no retries).
PING_TIMEOUT = 10.0

#: type -> ((resolution, plan), ...), the first being "ignore" (BOSH ``problem_handlers``).
RESOLUTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "missing_vm": (
        ("ignore", "Skip for now"),
        ("recreate_vm_without_wait", "Recreate VM without waiting for processes to start"),
        ("recreate_vm", "Recreate VM and wait for processes to start"),
        ("delete_vm_reference", "Delete VM reference"),
    ),
    "unresponsive_agent": (
        ("ignore", "Skip for now"),
        ("reboot_vm", "Reboot VM"),
        ("recreate_vm_without_wait", "Recreate VM without waiting for processes to start"),
        ("recreate_vm", "Recreate VM and wait for processes to start"),
        ("delete_vm", "Delete VM"),
        ("delete_vm_reference", "Delete VM reference (forceful; may need to manually delete VM)"),
    ),
    "missing_disk": (
        ("ignore", "Skip for now"),
        ("delete_disk_reference", "Delete disk reference (DANGEROUS!)"),
    ),
    "inactive_disk": (
        ("ignore", "Skip for now"),
        ("delete_disk", "Delete disk"),
        ("activate_disk", "Activate disk"),
    ),
    "mount_info_mismatch": (
        ("ignore", "Skip for now"),
        ("reattach_disk", "Reattach disk to instance"),
        ("reattach_disk_and_reboot", "Reattach disk and reboot instance"),
    ),
    "unknown_vm": (
        ("ignore", "Skip for now"),
        ("delete_vm", "Delete VM from the IaaS"),
    ),
    "unknown_disk": (
        ("ignore", "Skip for now"),
        ("delete_disk", "Detach the disk from its VM and delete it from the IaaS"),
    ),
    "missing_stemcell": (
        ("ignore", "Skip for now"),
        ("reupload_stemcell", "Upload the stemcell to vCenter again from the director's copy"),
    ),
}
#: What ``--auto`` applies (BOSH ``auto_resolution``).
AUTO = {
    "missing_vm": "recreate_vm_without_wait",
    "unresponsive_agent": "ignore",
    "missing_disk": "ignore",
    "inactive_disk": "ignore",
    "mount_info_mismatch": "ignore",
    "unknown_vm": "ignore",
    "unknown_disk": "ignore",
    "missing_stemcell": "reupload_stemcell",
}
#: The order resolutions run in: a VM is recreated from its stemcell onto its disks.
PHASE = {
    "missing_stemcell": 0,
    "missing_disk": 1,
    "inactive_disk": 1,
    "unknown_disk": 1,
    "mount_info_mismatch": 2,
    "unknown_vm": 2,
}


def mount_mismatch_description(disk_cid: str, vm_cid: str, owners: list[str]) -> str:
    """BOSH's words for a disk not mounted exactly once, on its instance's VM."""
    where = f"Mounted in: {', '.join(owners)}" if owners else "Not mounted in any VM"
    return (
        "Inconsistent mount information:\n"
        f"Record shows that disk '{disk_cid}' should be mounted on {vm_cid}.\n"
        f"However it is currently :\n\t{where}"
    )
