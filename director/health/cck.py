"""Cloud check (BOSH ``bosh cck``): find what is broken in a deployment, then fix what was chosen.

Two director tasks, each under the deployment lock taken with timeout 0
(a deploy in progress is never raced):

* ``cck_scan`` (``scan_deployment``): closes the deployment's open
  problems, then scans again and stores each finding as an open
  ``DeploymentProblem``:

  ``missing_vm``          an instance that expects a VM has none, or its VM is
                          not in vCenter (one ``VSphereCloud.vm_health`` read)
  ``unresponsive_agent``  its VM is there but its agent's last heartbeat is
                          older than the health monitor's agent timeout, or
                          it does not answer a ping
  ``missing_disk``        a persistent disk vCenter does not have
  ``inactive_disk``       a persistent disk row marked inactive
  ``unknown_vm``          a VM tagged with this director and deployment that
                          the database does not know (``resource_id`` 0, the
                          cid in ``data``)
  ``missing_stemcell``    a stemcell the deployment's instances run on whose
                          template vCenter no longer has (``has_stemcell``);
                          ``resource_id`` is the stemcell row

* ``cck_apply_resolutions`` (``resolve_problems``): applies one resolution
  per chosen problem (BOSH's names, ``RESOLUTIONS``); ``auto`` picks BOSH's
  automatic one for every open problem. A VM is recreated through the
  resurrector's ``recreate_vm`` (the deploy's own steps, from the last
  applied state: same IPs, persistent disk reattached). An applied
  resolution marks the problem ``resolved``. Resolutions run stemcells
  first, then disks, then VMs, whatever the problem ids: a VM is recreated
  from a stemcell re-uploaded in the same task, onto disks already settled.

``missing_stemcell`` is ours, not BOSH's (a BOSH operator runs ``bosh
upload-stemcell --fix``): after vCenter lost everything (a vcsim restarted
empty), every ``recreate_vm`` needs the stemcell back first, and one
``cck --auto`` should bring the deployment back. ``reupload_stemcell``
imports the tarball the director kept when the stemcell was uploaded
(``director.uploads.stored_stemcell``) under a new cid, the automatic
resolution. A persistent disk vCenter lost stays ``ignore`` under ``auto``,
as in BOSH: forgetting it (``delete_disk_reference``; the instance then gets
a new empty disk) is the operator's explicit choice, and a ``recreate_vm``
of an instance whose disk is still referenced but missing fails saying so.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cpi.base import NotImplemented as CpiNotImplemented
from cpi.base import VMNotFound
from director import locks, runner
from director.agent import agent_for
from director.cloud import cloud_for_director
from director.execution import steps
from director.execution.run import describe
from director.health.monitor import _errand_groups, agent_timeout, heartbeats_for
from director.health.resurrector import _detach_without_agent, _post_deploy, _run, recreate_vm
from director.models import (
    Deployment,
    DeploymentProblem,
    Instance,
    InstanceState,
    IpAddress,
    PersistentDisk,
    ProblemState,
    Stemcell,
    Task,
    Vm,
)
from director.runner import TaskContext, task_handler
from director.tarballs import extract_stemcell_image
from director.uploads import stored_stemcell
from opsconsole.errors import Conflict, NotFound, ServiceError

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
    ),
    "unknown_vm": (
        ("ignore", "Skip for now"),
        ("delete_vm", "Delete VM from the IaaS"),
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
    "unknown_vm": "ignore",
    "missing_stemcell": "reupload_stemcell",
}
#: The order resolutions run in: a VM is recreated from its stemcell onto its disks.
PHASE = {"missing_stemcell": 0, "missing_disk": 1, "inactive_disk": 1, "unknown_vm": 2}


# --------------------------------------------------------------------------- services


def _deployment(name: str) -> Deployment:
    deployment = Deployment.objects.filter(name=name).first()
    if deployment is None:
        raise NotFound({"deployment": [f"Deployment '{name}' does not exist"]})
    return deployment


def _queue(name: str, type_: str, description: str, user: str, args: dict) -> Task:
    with transaction.atomic():
        busy = runner.changing_task(name)
        if busy is not None:
            raise Conflict(
                {"deployment": [f"Deployment '{name}' is being changed by task {busy.id}"]}
            )
        return runner.create_task(type_, description, user, deployment_name=name, args=args)


def scan_deployment(name: str, user: str) -> Task:
    """Queue a ``cck_scan`` task (404 unknown deployment, 409 while it is being changed)."""
    _deployment(name)
    return _queue(name, SCAN_TASK, "scan cloud", user, {})


def open_problems(name: str):
    return DeploymentProblem.objects.filter(
        deployment=_deployment(name), state=ProblemState.OPEN
    ).order_by("id")


def problem_dict(p: DeploymentProblem) -> dict:
    return {
        "id": p.id,
        "type": p.type,
        "data": p.data,
        "description": p.data.get("description", ""),
        "resolutions": [{"name": n, "plan": plan} for n, plan in RESOLUTIONS.get(p.type, ())],
        "instance_group": p.data.get("instance_group"),
    }


def resolve_problems(name: str, resolutions: Any, user: str, auto: Any = False) -> Task:
    """Queue ``cck_apply_resolutions`` for ``{problem id: resolution}`` (or ``auto``).

    422 naming the entry for a problem that is not open in this deployment
    or a resolution its type does not have; nothing is queued then.
    """
    if not isinstance(auto, bool):
        raise ServiceError({"auto": ["must be true or false"]})
    problems = {str(p.id): p for p in open_problems(name)}
    if auto:
        chosen = {pid: AUTO[p.type] for pid, p in problems.items()}
    else:
        if not isinstance(resolutions, dict) or not resolutions:
            raise ServiceError({"resolutions": ["must map problem ids to resolution names"]})
        chosen, errors = {}, {}
        for pid, res in resolutions.items():
            key = f"resolutions.{pid}"
            p = problems.get(str(pid))
            if p is None:
                errors[key] = [f"problem {pid} is not an open problem of deployment '{name}'"]
                continue
            names = [n for n, _ in RESOLUTIONS[p.type]]
            if res not in names:
                errors[key] = [
                    f"'{res}' is not a resolution of {p.type} (one of {', '.join(names)})"
                ]
                continue
            chosen[str(pid)] = res
        if errors:
            raise ServiceError(errors)
    return _queue(name, APPLY_TASK, "apply resolutions", user, {"resolutions": chosen})


# --------------------------------------------------------------------------- tasks


def _lock(ctx: TaskContext) -> None:
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


def _agent_answers(vm: Vm) -> bool:

    try:
        agent_for(vm).ping(timeout=PING_TIMEOUT)
    except Exception:
        return False
    return True


@task_handler(SCAN_TASK)
def scan_task(ctx: TaskContext) -> str:

    _lock(ctx)
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
            if _silent(vm, beats, now) or not _agent_answers(vm):
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
    stage = ctx.stage("Scanning persistent disks", total=1)
    with stage.track(f"Checking {len(disks)} persistent disks"):
        for d in disks:
            data = {
                "disk_cid": d.disk_cid,
                "instance": d.instance.name,
                "instance_group": d.instance.group,
                "size": d.size,
            }
            if not cloud.has_disk(d.disk_cid):
                found.append(
                    (
                        "missing_disk",
                        d.id,
                        {
                            **data,
                            "description": f"Disk '{d.disk_cid}' ({d.instance.name}, "
                            f"{d.size}M) is missing",
                        },
                    )
                )
            elif not d.active:
                found.append(
                    (
                        "inactive_disk",
                        d.id,
                        {
                            **data,
                            "description": f"Disk '{d.disk_cid}' ({d.instance.name}, "
                            f"{d.size}M) is inactive",
                        },
                    )
                )
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
    row = DeploymentProblem.objects.filter(**key).exclude(state=ProblemState.RESOLVED).first()
    if row is None:
        DeploymentProblem.objects.create(
            deployment=deployment, type=type_, resource_id=resource_id, data=data
        )
    else:
        DeploymentProblem.objects.filter(id=row.id).update(
            state=ProblemState.OPEN, data=data, counter=row.counter + 1, last_seen_at=timezone.now()
        )


@task_handler(APPLY_TASK)
def apply_task(ctx: TaskContext) -> str:

    _lock(ctx)
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
    if p.type in ("missing_disk", "inactive_disk"):
        disk = PersistentDisk.objects.filter(id=p.resource_id).first()
        if disk is None:
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
        _detach_without_agent(run, vm)
        steps.delete_vm(run, vm)
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
