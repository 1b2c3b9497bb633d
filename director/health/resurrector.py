"""The ``scan_and_fix`` task: recreate the VMs of unhealthy instances (BOSH ``ScanAndFix``).

Queued by the health monitor (``director.health.monitor``) with
``args = {"jobs": {group: [instance uuid, ...]}}``, description ``scan and
fix``, one at a time per deployment. The task:

1. refuses to run while resurrection is paused globally (BOSH:
   ``CloudcheckResurrectionPaused``);
2. takes the deployment lock with timeout 0, so it never races a deploy,
   delete, errand or another fix of the same deployment: "Unable to get
   deployment lock, maybe a deployment is in progress" ends it in error and
   the next scan tries again once the deployment is free;
3. scans again, under the lock, in one vCenter read: an instance that is
   healthy by now is left alone;
4. recreates each affected instance's VM from what was **last applied** to
   it (``Instance.spec_json["applied"]`` and ``["apply_spec"]``: stemcell,
   cloud properties, env, networks and IPs, persistent disk), not from the
   manifest, through the deploy's own steps (``director.execution.steps``):
   the old VM is deleted (its disks detached first; a VM already gone is
   fine), a new one is created on the same IP reservations, its persistent
   disk is reattached, the apply spec is applied again and the jobs started;
5. runs ``post-deploy`` on every instance of the deployment (errors
   ignored, as BOSH does after a resurrection).

Each outcome is a ``ResurrectionEvent`` (``recreated`` with the new cid and
the seconds from the first detection, or ``failed`` with why).

Agents: today ``director.agent.agent_for`` gives the vCenter-backed agent;
when the NATS agents land, the same calls (``wait_until_ready``, ``apply``,
``start``, ``run_script``) go to the VM's real agent. The apply spec replayed
is the one stored at the last deploy; a real agent also needs its rendered
templates, which the agents plane stores with the spec.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from director.agent import agent_for
from director.cloud import cloud_for_director
from director.execution import steps
from director.execution.run import DeployRun, describe
from director.execution.state import applied_to_json  # noqa: F401  (documented shape)
from director.execution.variables import absolute_name
from director.manifest import MISSING, interpolate, load_yaml
from director.models import (
    Alert,
    Credential,
    Decision,
    Deployment,
    Instance,
    IpAddress,
    PersistentDisk,
    ResurrectionEvent,
    Stemcell,
    Variable,
    Vm,
)
from director.planning import (
    DesiredInstance,
    InstancePlan,
    NetworkReservation,
    StemcellRef,
)
from director.planning.model import JobRef, SubnetSpec
from director.runner import TaskContext, task_handler
from director.services.resurrection import resurrection_enabled

from .cck_scan import lock_deployment
from .monitor import (
    RESURRECTABLE,
    RESURRECTION_DESCRIPTION,
    RESURRECTION_TASK,
    classify,
    heartbeats_for,
    vcenter_view,
    vm_health_key,
)

log = logging.getLogger(__name__)

TASK_TYPE = RESURRECTION_TASK
#: BOSH's description of the resurrector's task; the monitor finds running ones by it too.
DESCRIPTION = RESURRECTION_DESCRIPTION
#: How long the recreated instance's jobs may take to run (ms): BOSH's default update watch.
WATCH_MS = (0, 60_000)


class ResurrectionPaused(Exception):
    """Resurrection is switched off globally (``bosh update-resurrection off``)."""


class NotRecreatable(Exception):
    """The instance lacks what a recreate needs (no applied state, stemcell gone...)."""


# --------------------------------------------------------------------------- last applied state


class SetVariables:
    """``((name))`` lookups pinned to an instance's variable set, else the latest value."""

    def __init__(self, deployment: str, variable_set_id: int | None):
        self._absolute = lambda name: absolute_name(name, deployment)
        self._pinned: dict[str, Any] = {}
        if variable_set_id is not None:
            for v in Variable.objects.filter(variable_set_id=variable_set_id).select_related(
                "credential"
            ):
                if v.credential is not None:
                    self._pinned[v.name] = v.credential.value

    def lookup(self, name: str) -> Any:
        full = self._absolute(name)
        if full in self._pinned:
            return self._pinned[full]
        row = Credential.latest(full)
        return MISSING if row is None else row.value


@dataclass
class LastApplied:
    """What ``steps.create_vm`` reads from ``run.prepared``: the manifest and rendered env."""

    manifest: dict
    rendered: dict[str, dict] = field(default_factory=dict)


def _networks(instance: Instance, applied: dict, old_vm: Vm | None) -> tuple:
    """Network reservations as last applied, on the instance's own IP rows."""
    ips = {
        ip.address: ip
        for ip in IpAddress.objects.filter(instance=instance, orphaned_vm__isnull=True)
    }
    spec_types = {
        name: (spec or {}).get("type")
        for name, spec in ((old_vm.network_spec or {}) if old_vm else {}).items()
    }
    out = []
    for n in applied.get("networks") or []:
        ip = n.get("ip")
        if ip and ip not in ips:
            raise NotRecreatable(
                f"IP {ip} on network '{n['name']}' is no longer reserved for {instance.name}"
            )
        subnet = None
        if n.get("range") is not None or n.get("cloud_properties") is not None:
            subnet = SubnetSpec(
                range=n.get("range") or "",
                gateway=n.get("gateway"),
                dns=tuple(n.get("dns") or ()),
                cloud_properties=dict(n.get("cloud_properties") or {}),
            )
        kind = spec_types.get(n["name"]) or ("manual" if ip and n.get("range") else "dynamic")
        out.append(
            NetworkReservation(
                network=n["name"],
                ip=ip,
                static=bool(ip and ips[ip].static),
                subnet=subnet,
                default=tuple(n.get("default") or ()),
                type=kind,
            )
        )
    return tuple(out)


def desired_from_applied(instance: Instance, old_vm: Vm | None) -> DesiredInstance:
    """The instance as last applied, in the shape the deploy steps take."""
    spec = instance.spec_json or {}
    applied = spec.get("applied")
    if not isinstance(applied, dict) or "stemcell" not in applied:
        raise NotRecreatable(f"{instance.name} has no applied state (it was never deployed)")
    name, version = applied["stemcell"][0], applied["stemcell"][1]
    stemcell = Stemcell.objects.filter(name=name, version=version).first()
    if stemcell is None:
        raise NotRecreatable(f"stemcell {name}/{version} of {instance.name} is no longer uploaded")
    disk = PersistentDisk.objects.filter(instance=instance, name="", active=True).first()
    apply_spec = spec.get("apply_spec") or {}
    templates = (apply_spec.get("job") or {}).get("templates") or []
    return DesiredInstance(
        stemcell=StemcellRef(alias="", name=name, version=version, cid=stemcell.cid),
        vm_type=applied.get("vm_type"),
        vm_extensions=(),
        cloud_properties=dict(
            (old_vm.cloud_properties if old_vm else None) or applied.get("cloud_properties") or {}
        ),
        env=dict((old_vm.env if old_vm else None) or applied.get("env") or {}),
        networks=_networks(instance, applied, old_vm),
        # no disk row (cloud check's delete_disk_reference after vCenter lost it): a new disk
        # as last applied, as the next deploy would make
        persistent_disk_size=disk.size if disk else int(applied.get("persistent_disk_size") or 0),
        persistent_disk_type=None,
        persistent_disk_cloud_properties=dict(
            disk.cloud_properties if disk else applied.get("persistent_disk_cloud_properties") or {}
        ),
        jobs=tuple(
            JobRef(t.get("name", ""), t.get("release") or "")
            for t in templates
            if isinstance(t, dict)
        ),
        jobs_fingerprint=applied.get("jobs_fingerprint") or "",
        state=instance.state,
    )


# --------------------------------------------------------------------------- the task


@task_handler(TASK_TYPE)
def scan_and_fix(ctx: TaskContext) -> str:
    name = ctx.deployment_name
    if not resurrection_enabled():
        raise ResurrectionPaused("Resurrection is paused: the director's resurrection is off")
    lock_deployment(ctx)
    deployment = Deployment.objects.filter(name=name).first()
    if deployment is None:
        return f"deployment '{name}' no longer exists: nothing to fix"
    wanted = {
        uuid: group for group, uuids in (ctx.args.get("jobs") or {}).items() for uuid in uuids or []
    }
    instances = list(
        Instance.objects.filter(deployment=deployment, uuid__in=list(wanted)).order_by(
            "group", "index"
        )
    )
    cloud = cloud_for_director(ctx)

    stage = ctx.stage("Scanning VMs", total=1)
    with stage.track(f"Checking {len(instances)} VMs"):
        vms = {i.id: Vm.objects.filter(instance=i, active=True).first() for i in instances}
        facts = vcenter_view(cloud, [vm.cid for vm in vms.values() if vm])
        beats = heartbeats_for([vm.agent_id for vm in vms.values() if vm])
        now = timezone.now()
        todo = []
        for i in instances:
            cause = classify(i, vms[i.id], facts, beats, now)
            if cause not in RESURRECTABLE:
                why = "healthy again" if cause is None else f"{cause}: not a cause to recreate"
                ctx.debug(f"{i.name}: {why}; left alone")
                _record(deployment.name, i, cause or "", Decision.SKIPPED, ctx, message=why)
            else:
                todo.append((i, cause))
    if not todo:
        return "nothing to fix"

    run = _run(ctx, cloud, deployment)
    fixed, failed = 0, []
    stage = ctx.stage("Applying problem resolutions", total=len(todo))
    for instance, cause in todo:
        ctx.checkpoint()
        label = f"{instance.name} ({instance.index})"
        try:
            with stage.track(f"{cause} {label}: recreate_vm") as step:  # "failed" on error
                new = recreate_vm(run, instance, step)
        except Exception as exc:
            failed.append(f"{label}: {describe(exc)}")
            _record(deployment.name, instance, cause, Decision.FAILED, ctx, message=describe(exc))
            ctx.warning(f"could not recreate {label}: {describe(exc)}")
            continue
        fixed += 1
        _record(
            deployment.name,
            instance,
            cause,
            Decision.RECREATED,
            ctx,
            new_cid=new.cid,
            recovered=True,
        )
    if fixed:
        _post_deploy(run, deployment)
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(todo)} instance(s) not recreated: " + "; ".join(failed)
        )
    return f"recreated {fixed} VM(s) of {deployment.name}"


def _run(ctx: TaskContext, cloud: Any, deployment: Deployment):
    try:
        manifest = load_yaml(deployment.manifest) if deployment.manifest else {}
    except Exception:  # a stored manifest is ours; should it not parse, tag with less
        manifest = {}
    if not isinstance(manifest, dict):
        manifest = {}
    return DeployRun(ctx, cloud, deployment, prepared=LastApplied(manifest=manifest))


def recreate_vm(run, instance: Instance, step=None, wait: bool = True) -> Vm:
    """Replace the instance's VM from its last applied state; returns the new ``Vm``.

    ``wait=False`` (cloud check's ``recreate_vm_without_wait``) starts the
    jobs without waiting for them to run.
    """
    old = Vm.objects.filter(instance=instance, active=True).first()
    desired = desired_from_applied(instance, old)
    lookup = SetVariables(run.name, instance.variable_set_id)
    run.prepared.rendered[instance.group] = {"env": interpolate(dict(desired.env), lookup.lookup)}
    run.variable_set = instance.variable_set
    applied_before = dict((instance.spec_json or {}).get("applied") or {})
    plan = InstancePlan(
        group=instance.group,
        uuid=instance.uuid,
        index=instance.index,
        az=instance.az or None,
        bootstrap=instance.bootstrap,
        change="recreate",
        reasons=("resurrection",),
        changes=frozenset({"recreate"}),
        needs_shutting_down=False,
        needs_duplicate_vm=False,
        desired=desired,
        existing=None,
    )
    context = {"az": instance.az, "changes": ["recreate"], "reasons": ["resurrection"]}
    with run.span("recreate", "instance", instance.name, instance=instance, context=context):
        if old is not None:
            if step:
                step.advance(10, status="deleting VM")
            # its agent is gone (VM missing, powered off, silent): disks through the CPI alone
            steps.delete_vm(run, old, agent=False)
        if step:
            step.advance(10, status="creating VM")
        vm = steps.create_vm(run, instance, plan, active=True)
        if step:
            step.advance(20, status="attaching persistent disk")
        steps.update_persistent_disk(run, instance, vm, desired)
        agent = agent_for(vm, run.cloud)
        apply_spec = (Instance.objects.get(id=instance.id).spec_json or {}).get("apply_spec")
        if apply_spec:
            if step:
                step.advance(10, status="installing packages")
            agent.apply(apply_spec)
        if instance.state == "started":
            if step:
                step.advance(10, status="starting jobs")
            agent.run_script("pre-start", {})
            agent.start()
            if wait:
                agent.wait_until_running(*WATCH_MS)
            agent.run_script("post-start", {})
        else:
            agent.stop()
        # create_vm recorded a half-done state (jobs not applied); restore what is applied now.
        instance.refresh_from_db(fields=["spec_json"])
        spec = dict(instance.spec_json or {})
        spec["applied"] = applied_before
        Instance.objects.filter(id=instance.id).update(
            spec_json=spec, update_completed=True, updated_at=timezone.now()
        )
    return vm


def _post_deploy(run, deployment: Deployment) -> None:
    """``post-deploy`` on every instance with a VM; failures only logged (BOSH does the same)."""
    for vm in Vm.objects.filter(instance__deployment=deployment, active=True).select_related(
        "instance"
    ):
        try:
            agent_for(vm, run.cloud).run_script("post-deploy", {})
        except Exception as exc:
            run.ctx.debug(f"post-deploy on {vm.instance.name} failed (ignored): {exc}")


def _record(
    deployment: str,
    instance: Instance,
    cause: str,
    decision: str,
    ctx: TaskContext,
    *,
    new_cid: str = "",
    message: str = "",
    recovered: bool = False,
) -> ResurrectionEvent:
    now = timezone.now()
    seconds = None
    alert = (
        Alert.objects.filter(key=vm_health_key(deployment, instance.uuid)).order_by("-id").first()
    )
    if recovered and alert is not None:
        seconds = round((now - alert.created_at).total_seconds(), 3)
    if alert is not None and decision in (Decision.FAILED, Decision.RECREATED):
        Alert.objects.filter(id=alert.id).update(decision=decision)
    return ResurrectionEvent.objects.create(
        created_at=now,
        deployment=deployment,
        instance=instance.name,
        cause=cause or (alert.cause if alert else ""),
        decision=decision,
        task=ctx.task,
        old_cid=alert.vm_cid if alert else "",
        new_cid=new_cid,
        seconds_to_recover=seconds,
        message=message,
    )
