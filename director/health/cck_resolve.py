"""Cloud check's resolutions (the ``cck_apply_resolutions`` task): fix what was chosen.

Under the deployment lock (timeout 0), one resolution per chosen open
problem (BOSH's names, ``director.health.problems.RESOLUTIONS``), stemcells
first, then disks, then VMs (``PHASE``), whatever the problem ids: a VM is
recreated from a stemcell re-uploaded in the same task, onto disks already
settled. An applied resolution marks the problem ``resolved``; a failed one
leaves it open and fails the task naming it, after the others ran.

* VMs are recreated through the resurrector's ``recreate_vm`` (the deploy's
  own steps, from the last applied state: same IPs, persistent disk
  reattached); ``post-deploy`` runs once after any recreate.
* ``reattach_disk`` / ``reattach_disk_and_reboot`` (``mount_info_mismatch``):
  the CPI attaches the disk to its instance's VM if vCenter shows it
  detached, the VM is rebooted if asked, and the agent mounts the disk.
* ``activate_disk`` (``inactive_disk``) marks the disk active again if its
  instance's agent has it mounted and the instance has no other active disk.
* ``reupload_stemcell`` imports the director's copy of the stemcell's
  tarball under a new cid.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from cpi.base import DiskNotAttached, NotSupported, VMNotFound
from cpi.base import NotImplemented as CpiNotImplemented
from director.agent import agent_for
from director.agents.errors import AgentError
from director.cloud import cloud_for_director
from director.execution import steps
from director.execution.run import describe
from director.health.resurrector import _post_deploy, _run, recreate_vm
from director.models import (
    Deployment,
    DeploymentProblem,
    Instance,
    IpAddress,
    PersistentDisk,
    ProblemState,
    Stemcell,
    Vm,
)
from director.runner import TaskContext, task_handler
from director.tarballs import extract_stemcell_image
from director.uploads import stored_stemcell

from .cck_scan import lock_deployment
from .problems import APPLY_TASK, PHASE


@task_handler(APPLY_TASK)
def apply_task(ctx: TaskContext) -> str:

    lock_deployment(ctx)
    deployment = Deployment.objects.filter(name=ctx.deployment_name).first()
    if deployment is None:
        return f"deployment '{ctx.deployment_name}' no longer exists"
    chosen = ctx.args.get("resolutions") or {}
    problems = list(
        DeploymentProblem.objects.filter(
            deployment=deployment, state=ProblemState.OPEN, id__in=[int(k) for k in chosen]
        )
    )
    problems.sort(key=lambda p: (PHASE.get(p.type, 3), p.id))
    cloud = cloud_for_director(ctx)
    run = _run(ctx, cloud, deployment)
    stage = ctx.stage("Applying problem resolutions", total=len(problems))
    failed, recreated = [], 0
    for p in problems:
        ctx.checkpoint()
        resolution = chosen[str(p.id)]
        try:
            with stage.track(f"{p.type} {p.resource_id}: {resolution}"):
                recreated += _apply(run, p, resolution)
        except Exception as exc:
            failed.append(f"problem {p.id} ({p.type}): {describe(exc)}")
            continue
        data = {**p.data, "resolution": resolution}
        DeploymentProblem.objects.filter(id=p.id).update(state=ProblemState.RESOLVED, data=data)
    if recreated:
        _post_deploy(run, deployment)
    if failed:
        raise RuntimeError(f"{len(failed)} resolution(s) failed: " + "; ".join(failed))
    return f"{len(problems)} resolved"


def _apply(run: Any, p: DeploymentProblem, resolution: str) -> int:
    """Carry out one resolution; returns 1 when a VM was recreated."""

    if resolution == "ignore":
        return 0
    if p.type == "missing_stemcell":
        _reupload_stemcell(run, p.resource_id)
        return 0
    if p.type == "unknown_vm":
        try:
            run.cloud.delete_vm(p.data["vm_cid"])
        except VMNotFound:
            pass
        return 0
    if p.type == "unknown_disk":
        try:
            run.cloud.detach_disk(p.data["vm_cid"], p.data["disk_cid"])
        except (DiskNotAttached, VMNotFound):
            pass
        run.cloud.delete_disk(p.data["disk_cid"])
        return 0
    if p.type == "mount_info_mismatch":
        _reattach_disk(run, p.resource_id, reboot=resolution == "reattach_disk_and_reboot")
        return 0
    if p.type in ("missing_disk", "inactive_disk"):
        disk = PersistentDisk.objects.filter(id=p.resource_id).first()
        if disk is None:
            return 0
        if resolution == "activate_disk":
            _activate_disk(disk)
            return 0
        if resolution == "delete_disk":
            vm = Vm.objects.filter(instance_id=disk.instance_id, active=True).first()
            if vm is not None and disk.disk_cid in set(run.cloud.get_disks(vm.cid)):
                run.cloud.detach_disk(vm.cid, disk.disk_cid)
            run.cloud.delete_disk(disk.disk_cid)
        disk.delete()
        return 0
    instance = Instance.objects.get(id=p.resource_id)
    vm = Vm.objects.filter(instance=instance, active=True).first()
    if resolution in ("recreate_vm", "recreate_vm_without_wait"):
        disk = PersistentDisk.objects.filter(instance=instance, active=True).first()
        if disk is not None and not run.cloud.has_disk(disk.disk_cid):
            raise RuntimeError(
                f"persistent disk '{disk.disk_cid}' of {instance.name} is missing from vCenter: "
                "resolve its missing_disk problem first (delete_disk_reference gives the "
                "instance a new empty disk)"
            )
        recreate_vm(run, instance, wait=resolution == "recreate_vm")
        return 1
    if resolution == "reboot_vm":
        run.cloud.reboot_vm(vm.cid)
    elif resolution == "delete_vm" and vm is not None:
        steps.delete_vm(run, vm, agent=False)  # an unresponsive agent: disks through the CPI
    elif resolution == "delete_vm_reference" and vm is not None:
        IpAddress.objects.filter(vm=vm).update(vm=None)
        vm.delete()
    return 0


def _reupload_stemcell(run: Any, stemcell_id: int) -> None:
    """Import the stemcell again from the director's copy of its tarball; the row takes the new cid.

    Nothing to do when the stemcell is back (another task re-uploaded it).
    """
    stemcell = Stemcell.objects.filter(id=stemcell_id).first()
    if stemcell is None:
        return
    label = f"{stemcell.name}/{stemcell.version}"
    if run.cloud.has_stemcell(stemcell.cid):
        return
    tarball = stored_stemcell(stemcell.name, stemcell.version)
    if not tarball.is_file():
        raise RuntimeError(
            f"the director holds no copy of stemcell {label}'s tarball (uploaded before copies "
            "were kept): upload the tarball again (the director keeps it then), then run cck again"
        )
    with tempfile.TemporaryDirectory(prefix="stemcell-") as tmp:
        image = extract_stemcell_image(tarball, tmp)
        cid = run.cloud.create_stemcell(str(image), dict(stemcell.cloud_properties or {}))
    old = stemcell.cid
    Stemcell.objects.filter(id=stemcell.id).update(cid=cid)
    run.ctx.debug(f"Stemcell {label} uploaded again as {cid} (was {old})")


def _reattach_disk(run: Any, disk_id: int, reboot: bool) -> None:
    """Attach the disk to its instance's VM again and have the agent mount it (BOSH).

    The CPI attaches it unless vCenter shows it attached already (and the
    agent is told the hint); ``reattach_disk_and_reboot`` then reboots the
    VM and waits for its agent. Either way the agent is asked to mount the
    disk, so ``list_disk`` names it afterwards: its data is as it was.
    """
    disk = PersistentDisk.objects.filter(id=disk_id).select_related("instance").first()
    if disk is None:
        raise RuntimeError(f"disk {disk_id} is no longer in the database")
    vm = Vm.objects.filter(instance_id=disk.instance_id, active=True).first()
    if vm is None:
        raise RuntimeError(
            f"can't find the VM of {disk.instance.name} for disk '{disk.disk_cid}': "
            "recreate its VM first"
        )
    try:
        attached = set(run.cloud.get_disks(vm.cid))
    except (CpiNotImplemented, NotSupported):
        attached = None
    agent = agent_for(vm)
    if attached is None or disk.disk_cid not in attached:
        hint = run.cloud.attach_disk(vm.cid, disk.disk_cid)
        agent.add_persistent_disk(disk.disk_cid, hint)
        run.ctx.debug(f"Disk {disk.disk_cid} attached to {vm.cid} again")
    if not reboot:
        agent.mount_disk(disk.disk_cid)
        return
    run.cloud.reboot_vm(vm.cid)
    # The agent that answers first may be the one going down with the reboot, and a
    # mount it started is lost with it: mount (idempotent) until an agent has done it.
    deadline = time.monotonic() + steps.agent_wait_timeout()
    while True:
        try:
            agent.wait_until_ready(max(1.0, deadline - time.monotonic()))
            agent.mount_disk(disk.disk_cid)
            if disk.disk_cid in agent.list_disk():
                break
        except AgentError:
            if time.monotonic() >= deadline:
                raise
        if time.monotonic() >= deadline:
            raise RuntimeError(f"the agent of {vm.cid} did not mount disk '{disk.disk_cid}'")
        time.sleep(1.0)
    run.ctx.debug(f"VM {vm.cid} rebooted; its agent has disk {disk.disk_cid} mounted")


def _activate_disk(disk: PersistentDisk) -> None:
    """Mark an inactive disk active again (BOSH): only one its instance's agent has mounted,
    and only when the instance has no other active disk (one persistent disk per instance)."""
    instance = disk.instance
    vm = Vm.objects.filter(instance=instance, active=True).first()
    if vm is None:
        raise RuntimeError(f"{instance.name} has no VM: disk '{disk.disk_cid}' is not mounted")
    if disk.disk_cid not in agent_for(vm).list_disk():
        raise RuntimeError(
            f"disk '{disk.disk_cid}' is not mounted on {instance.name}'s VM {vm.cid}: "
            "only a mounted disk can be activated"
        )
    other = PersistentDisk.objects.filter(instance=instance, active=True).exclude(id=disk.id)
    if other.exists():
        raise RuntimeError(
            f"{instance.name} already has an active disk ('{other.first().disk_cid}')"
        )
    PersistentDisk.objects.filter(id=disk.id).update(active=True)
