"""Cloud check's scan (the ``cck_scan`` task): what is broken in a deployment, as problems.

Under the deployment lock (timeout 0), the deployment's open problems are
closed, then each finding is registered as an open ``DeploymentProblem``
(one row per type and resource, counted up when seen again):

* VMs: every instance that expects one, against one ``vm_health`` read of
  vCenter: ``missing_vm``; ``unresponsive_agent`` (heartbeat older than the
  agent timeout, or no answer to a ping); then each answering agent's
  ``list_disk``. VMs tagged with this director and deployment that the
  database does not know: ``unknown_vm``.
* Persistent disks (BOSH's disk scan): ``missing_disk`` (vCenter has no
  such disk), ``inactive_disk``, ``mount_info_mismatch`` (an active disk not
  mounted exactly once, on its instance's VM, per ``list_disk``; ``data``
  names the VMs that have it mounted, ``owner_vms``); a disk of the
  director's disk folder that vCenter has attached to one of the
  deployment's VMs but that is neither a persistent nor an orphaned disk
  of the director: ``unknown_disk`` (a VMDK holds no tags; being attached to
  a VM tagged as ours is what makes it ours).
* Stemcells the instances run on whose template is gone: ``missing_stemcell``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from cpi.base import NotImplemented as CpiNotImplemented
from cpi.base import NotSupported, VMNotFound
from director import locks
from director.agent import agent_for
from director.cloud import cloud_for_director
from director.health.monitor import _errand_groups, agent_timeout, heartbeats_for
from director.models import (
    Deployment,
    DeploymentProblem,
    Instance,
    InstanceState,
    OrphanDisk,
    PersistentDisk,
    ProblemState,
    Stemcell,
    Vm,
)
from director.runner import TaskContext, task_handler

from .problems import PING_TIMEOUT, SCAN_TASK, mount_mismatch_description


def lock_deployment(ctx: TaskContext) -> None:
    """The deployment lock with timeout 0: a deploy in progress is never raced (BOSH)."""
    try:
        locks.acquire(locks.deployment_lock_name(ctx.deployment_name), ctx, timeout=0)
    except locks.LockHeld as exc:
        raise locks.LockHeld(
            exc.name,
            exc.task_id,
            f"Unable to get deployment lock, maybe a deployment is in progress ({exc.message})",
        ) from None


def _expects_vm(deployment: Deployment) -> list[Instance]:

    errands = _errand_groups(deployment)
    return [
        i
        for i in Instance.objects.filter(deployment=deployment, compilation=False, ignore=False)
        .exclude(state=InstanceState.DETACHED)
        .order_by("group", "index")
        if i.group not in errands
    ]


def _ask_agent(vm: Vm) -> tuple[bool, list[str] | None]:
    """Whether the VM's agent answers a ping, and the disks it has mounted (``list_disk``).

    The disks are ``None`` when the agent answered the ping but could not
    list them (an old agent, or an error): its mounts are then not judged.
    """
    agent = agent_for(vm)
    try:
        agent.ping(timeout=PING_TIMEOUT)
    except Exception:
        return False, None
    try:
        return True, [str(cid) for cid in agent.list_disk()]
    except Exception:
        return True, None


@task_handler(SCAN_TASK)
def scan_task(ctx: TaskContext) -> str:

    lock_deployment(ctx)
    deployment = Deployment.objects.filter(name=ctx.deployment_name).first()
    if deployment is None:
        return f"deployment '{ctx.deployment_name}' no longer exists"
    DeploymentProblem.objects.filter(deployment=deployment, state=ProblemState.OPEN).update(
        state=ProblemState.CLOSED
    )
    cloud = cloud_for_director(ctx)
    found: list[tuple[str, int, dict]] = []

    instances = _expects_vm(deployment)
    stage = ctx.stage("Scanning VMs", total=2)
    with stage.track(f"Checking VM states of {len(instances)} instances"):
        vms = {i.id: Vm.objects.filter(instance=i, active=True).first() for i in instances}
        # every VM vCenter has, in one round trip: ours to check, and tagged ones we do not know
        everything = cloud.vm_health(None)
        beats = heartbeats_for([v.agent_id for v in vms.values() if v])
        now = timezone.now()
        counts = {"ok": 0, "unresponsive": 0, "missing": 0}
        #: vm cid -> the disk cids its agent lists as mounted (agents that answered)
        mounted: dict[str, list[str]] = {}
        #: vm cid -> the persistent disks (of the director's disk folder) vCenter has attached
        attached: dict[str, list[str]] = {}
        for i in instances:
            vm = vms[i.id]
            data = {"instance": i.name, "instance_group": i.group, "index": i.index}
            if vm is None or vm.cid not in everything:
                cid = vm.cid if vm else None
                found.append(
                    ("missing_vm", i.id, {**data, "vm_cid": cid, "description": _missing(i, cid)})
                )
                counts["missing"] += 1
                continue
            try:
                attached[vm.cid] = list(cloud.get_disks(vm.cid))
            except (CpiNotImplemented, NotSupported, VMNotFound):
                pass
            answers, disks = (False, None) if _silent(vm, beats, now) else _ask_agent(vm)
            if not answers:
                found.append(
                    (
                        "unresponsive_agent",
                        i.id,
                        {
                            **data,
                            "vm_cid": vm.cid,
                            "description": f"VM for '{i.name} ({i.index})' with cloud ID "
                            f"'{vm.cid}' is not responding.",
                        },
                    )
                )
                counts["unresponsive"] += 1
                continue
            if disks is not None:
                mounted[vm.cid] = disks
            counts["ok"] += 1
        ctx.debug(
            f"{counts['ok']} OK, {counts['unresponsive']} unresponsive, {counts['missing']} missing"
        )
    with stage.track("Looking for VMs tagged as this deployment's that it does not know"):
        known = set(Vm.objects.values_list("cid", flat=True))
        for cid, seen in sorted(everything.items()):
            meta = seen.get("metadata") or {}
            if (
                meta.get("director") == settings.DIRECTOR_NAME
                and meta.get("deployment") == deployment.name
                and cid not in known
            ):
                found.append(
                    (
                        "unknown_vm",
                        0,
                        {
                            "vm_cid": cid,
                            "instance_group": meta.get("instance_group"),
                            "description": f"VM '{cid}' is tagged as "
                            f"'{meta.get('name', '?')}' of '{deployment.name}' "
                            "but the director does not know it.",
                        },
                    )
                )

    disks = list(
        PersistentDisk.objects.filter(instance__deployment=deployment).select_related("instance")
    )
    stage = ctx.stage("Scanning persistent disks", total=2)
    with stage.track(f"Checking {len(disks)} persistent disks"):
        counts = {"ok": 0, "missing_disk": 0, "inactive_disk": 0, "mount_info_mismatch": 0}
        for d in disks:
            problem = _disk_problem(d, cloud, vms, mounted)
            if problem is None:
                counts["ok"] += 1
                continue
            counts[problem[0]] += 1
            found.append((problem[0], d.id, problem[1]))
        ctx.debug(
            f"{counts['ok']} OK, {counts['missing_disk']} missing, {counts['inactive_disk']} "
            f"inactive, {counts['mount_info_mismatch']} mount-info mismatch"
        )
    with stage.track("Looking for disks attached to its VMs that the director does not know"):
        known = set(PersistentDisk.objects.values_list("disk_cid", flat=True))
        known |= set(OrphanDisk.objects.values_list("disk_cid", flat=True))
        for vm_cid, cids in sorted(attached.items()):
            for cid in cids:
                if cid not in known:
                    description = (
                        f"Disk '{cid}' is attached to VM '{vm_cid}' of '{deployment.name}' "
                        "but the director does not know it."
                    )
                    data = {"disk_cid": cid, "vm_cid": vm_cid, "description": description}
                    found.append(("unknown_disk", 0, data))
    stemcells = _stemcells_of(deployment, instances)
    stage = ctx.stage("Scanning stemcells", total=1)
    with stage.track(f"Checking {len(stemcells)} stemcells"):
        for sc in stemcells:
            try:
                present = cloud.has_stemcell(sc.cid)
            except CpiNotImplemented:
                ctx.debug("the CPI cannot tell whether a stemcell exists; stemcells not checked")
                break
            if not present:
                found.append(
                    (
                        "missing_stemcell",
                        sc.id,
                        {
                            "stemcell": f"{sc.name}/{sc.version}",
                            "stemcell_cid": sc.cid,
                            "description": f"Stemcell '{sc.name}/{sc.version}' with cloud ID "
                            f"'{sc.cid}' is missing from vCenter.",
                        },
                    )
                )
    for type_, resource_id, data in found:
        _register(deployment, type_, resource_id, data)
    return f"{len(found)} problem(s) found"


def _disk_problem(
    d: PersistentDisk, cloud: Any, vms: dict[int, Vm | None], mounted: dict[str, list[str]]
) -> tuple[str, dict] | None:
    """``missing_disk``, ``inactive_disk``, ``mount_info_mismatch`` (BOSH's disk scan) or none.

    The mount check is BOSH's: an active disk must be mounted exactly once,
    on its instance's VM, as the agents' ``list_disk`` answers say. Only an
    instance whose agent answered is judged (a missing VM or a silent agent
    is its own problem).
    """
    data = {
        "disk_cid": d.disk_cid,
        "instance": d.instance.name,
        "instance_group": d.instance.group,
        "size": d.size,
    }
    label = f"Disk '{d.disk_cid}' ({d.instance.name}, {d.size}M)"
    if not cloud.has_disk(d.disk_cid):
        return "missing_disk", {**data, "description": f"{label} is missing"}
    if not d.active:
        return "inactive_disk", {**data, "description": f"{label} is inactive"}
    vm = vms.get(d.instance_id)
    if vm is None or vm.cid not in mounted:
        return None
    owners = sorted(cid for cid, listed in mounted.items() if d.disk_cid in listed)
    if owners == [vm.cid]:
        return None
    return "mount_info_mismatch", {
        **data,
        "vm_cid": vm.cid,
        "owner_vms": owners,
        "description": mount_mismatch_description(d.disk_cid, vm.cid, owners),
    }


def _stemcells_of(deployment: Deployment, instances: list[Instance]) -> list[Stemcell]:
    """The stemcells the deployment uses, and those its instances were last applied with."""
    ids = set(deployment.stemcells.values_list("id", flat=True))
    for i in instances:
        applied = (i.spec_json or {}).get("applied") or {}
        pair = applied.get("stemcell") if isinstance(applied, dict) else None
        if isinstance(pair, list | tuple) and len(pair) >= 2:
            ids.update(
                Stemcell.objects.filter(name=pair[0], version=pair[1]).values_list("id", flat=True)
            )
    return list(Stemcell.objects.filter(id__in=ids).order_by("name", "version"))


def _missing(i: Instance, cid: str | None) -> str:
    if cid is None:
        return f"VM for '{i.name} ({i.index})' missing."
    return f"VM for '{i.name} ({i.index})' with cloud ID '{cid}' missing."


def _silent(vm: Vm, beats: dict, now) -> bool:

    beat = beats.get(vm.agent_id)
    timeout = timedelta(seconds=agent_timeout())
    if beat is None or beat.at is None:
        return False
    return now - beat.at > timeout and now - vm.created_at > timeout


def _register(deployment: Deployment, type_: str, resource_id: int, data: dict) -> None:
    """One problem row per (type, resource); a problem seen again counts up (BOSH register)."""
    key = {"deployment": deployment, "type": type_, "resource_id": resource_id}
    if resource_id == 0:
        key["data__vm_cid"] = data.get("vm_cid")
        if type_ == "unknown_disk":
            key["data__disk_cid"] = data.get("disk_cid")
    row = DeploymentProblem.objects.filter(**key).exclude(state=ProblemState.RESOLVED).first()
    if row is None:
        DeploymentProblem.objects.create(
            deployment=deployment, type=type_, resource_id=resource_id, data=data
        )
    else:
        DeploymentProblem.objects.filter(id=row.id).update(
            state=ProblemState.OPEN, data=data, counter=row.counter + 1, last_seen_at=timezone.now()
        )
