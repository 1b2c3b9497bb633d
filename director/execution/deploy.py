"""The ``update_deployment`` task: plan, then apply the plan through the CPI (BOSH §1.1, §1.8-§1.12).

Stages, as ``bosh task --event`` shows them:

1. *Preparing deployment*: take the deployment lock (a second deploy is
   refused naming the task that holds it), clean what an interrupted run
   left (``leftovers``), then ``prepare`` (manifest, variables, addons,
   cloud-config, stemcells, releases, job properties, plan).
2. *Deleting unneeded instances* of instance groups removed from the manifest.
3. *Creating missing vms*: new instances, instances whose VM is missing,
   and the new VMs of create-swap-delete recreates, in parallel.
4. Per run of instance groups (``serial`` one after another, else together),
   per group: *Deleting unneeded instances* ``[group]`` (``max_in_flight`` at
   a time), then *Updating instance* ``[group]`` batch by batch: canaries
   first, then ``max_in_flight`` instances at once in threads, AZ by AZ;
   the first failure stops the group and fails the task naming the
   instance and the cause.
5. The deployment row records the manifest, configs, stemcells and
   releases; the variable set is marked deployed.

Cancel is honoured between steps (``ctx.checkpoint()`` before every batch
and every instance). ``dry_run`` stops after the plan and writes it as the
task's result output.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from director import locks
from director.agent import agent_for
from director.cloud import cloud_for_director
from director.events import event_span
from director.manifest import dump_yaml
from director.models import Deployment, Instance, VariableSet, Vm
from director.planning import (
    InstanceGroupPlan,
    InstancePlan,
    PlanOptions,
    group_runs,
    schedule,
)
from director.runner import Stage, TaskContext, task_handler

from . import steps
from .leftovers import clean_leftovers
from .links import resolve_links
from .prepare import Prepared, prepare
from .run import DeployRun, parallel
from .state import applied_to_json
from .variables import DeployVariables, PreviewVariables


def plan_options(args: dict) -> PlanOptions:
    return PlanOptions(
        recreate=bool(args.get("recreate")),
        recreate_persistent_disks=bool(args.get("recreate_persistent_disks")),
        fix=bool(args.get("fix")),
        canaries=args.get("canaries"),
        max_in_flight=args.get("max_in_flight"),
    )


def label(plan: InstancePlan) -> str:
    return f"{plan.group}/{plan.uuid} ({plan.index})"


@task_handler("update_deployment")
def update_deployment(ctx: TaskContext) -> str:
    name = ctx.deployment_name
    args = ctx.args
    with locks.deployment_lock(name, ctx, timeout=10):
        deployment, _ = Deployment.objects.get_or_create(name=name)
        if args.get("dry_run"):
            return _dry_run(ctx, deployment)
        action = "update" if deployment.manifest else "create"
        with event_span(
            action, "deployment", name, user=ctx.username, task=ctx.task, deployment=name
        ) as span:
            variable_set = VariableSet.objects.create(deployment=deployment)
            try:
                before = _releases_and_stemcells(deployment)
                result = _deploy(ctx, deployment, variable_set)
                span.context = {"before": before, "after": _releases_and_stemcells(deployment)}
                return result
            finally:
                VariableSet.objects.filter(id=variable_set.id).update(writable=False)


def _releases_and_stemcells(deployment: Deployment) -> dict:
    return {
        "releases": sorted(str(rv) for rv in deployment.release_versions.select_related("release")),
        "stemcells": sorted(str(s) for s in deployment.stemcells.all()),
    }


def _dry_run(ctx: TaskContext, deployment: Deployment) -> str:
    stage = ctx.stage("Preparing deployment", total=1)
    with stage.track("Preparing deployment"):
        prepared = prepare(
            ctx.args["manifest_text"],
            PreviewVariables(deployment.name),
            deployment_name=deployment.name,
            options=plan_options(ctx.args),
        )
    for warning in prepared.warnings:
        ctx.warning(warning)
    from .preview import plan_to_dict

    ctx.write_result(plan_to_dict(prepared))
    return f"/deployments/{deployment.name} (dry run: nothing changed)"


def _deploy(ctx: TaskContext, deployment: Deployment, variable_set: VariableSet) -> str:
    stage = ctx.stage("Preparing deployment", total=1)
    with stage.track("Preparing deployment"):
        cloud = cloud_for_director(ctx)
        run = DeployRun(ctx, cloud, deployment, variable_set=variable_set)
        for line in clean_leftovers(run):
            ctx.warning(f"Cleaned up after an interrupted task: {line}")
        variables = DeployVariables(deployment.name, variable_set)
        prepared = prepare(
            ctx.args["manifest_text"],
            variables,
            deployment_name=deployment.name,
            options=plan_options(ctx.args),
        )
        variables.record()
        run.prepared = prepared
        run.links = resolve_links(prepared, prepared.plan)
    for warning in prepared.warnings:
        ctx.warning(warning)
    plan = prepared.plan
    ctx.debug(f"Plan: {plan.summary()}")
    for p in plan.all_instance_plans():
        if p.changed:
            ctx.debug(f"  {label(p)}: {p.change} ({'; '.join(p.reasons)})")
    ctx.checkpoint()

    # obsolete instance groups first (BOSH PreCleanupStage)
    for group in plan.obsolete_groups:
        _delete_obsolete(run, group)

    _create_missing_vms(run)
    ctx.checkpoint()

    for group_run in group_runs(plan):
        if group_run.serial:
            for group in group_run.groups:
                ctx.checkpoint()
                _update_group(run, group)
        else:
            parallel(list(group_run.groups), lambda g: _update_group(run, g), lambda g: g.name)

    _persist(run)
    return f"/deployments/{deployment.name}"


# --------------------------------------------------------------------------- stages


def _instance_row(run: DeployRun, plan: InstancePlan) -> Instance:
    instance, created = Instance.objects.get_or_create(
        uuid=plan.uuid,
        defaults={
            "deployment": run.deployment,
            "group": plan.group,
            "index": plan.index,
            "az": plan.az or "",
            "bootstrap": plan.bootstrap,
            "state": plan.desired.state if plan.desired else "started",
        },
    )
    if not created and (
        instance.index != plan.index
        or (instance.az or None) != plan.az
        or instance.bootstrap != plan.bootstrap
    ):
        Instance.objects.filter(id=instance.id).update(
            index=plan.index, az=plan.az or "", bootstrap=plan.bootstrap
        )
        instance.refresh_from_db()
    return instance


def _create_missing_vms(run: DeployRun) -> None:
    todo = [
        p
        for g in run.prepared.plan.instance_groups
        for p in g.instance_plans
        if not p.ignored and (p.change == "create" or p.needs_duplicate_vm)
    ]
    if not todo:
        return
    stage = run.ctx.stage("Creating missing vms", total=len(todo))

    def create(p: InstancePlan) -> None:
        with stage.track(label(p)):
            run.ctx.checkpoint()
            instance = _instance_row(run, p)
            steps.create_vm(run, instance, p, active=not p.needs_duplicate_vm)

    parallel(todo, create, label)


def _delete_obsolete(run: DeployRun, group: InstanceGroupPlan) -> None:
    plans = [p for p in group.obsolete_plans if not p.ignored]
    if not plans:
        return
    stage = run.ctx.stage("Deleting unneeded instances", tags=[group.name], total=len(plans))

    def delete(p: InstancePlan) -> None:
        with stage.track(label(p)):
            run.ctx.checkpoint()
            instance = Instance.objects.filter(uuid=p.uuid).first()
            if instance is not None:
                steps.delete_instance(run, instance)

    parallel(plans, delete, label, limit=group.update.max_in_flight_for(len(plans)))


def _update_group(run: DeployRun, group: InstanceGroupPlan) -> None:
    _delete_obsolete(run, group)
    batches = schedule(
        group.instance_plans, group.update, initial_deploy=run.prepared.plan.initial_deploy
    )
    total = sum(len(b.plans) for b in batches)
    if total:
        stage = run.ctx.stage("Updating instance", tags=[group.name], total=total)
        for batch in batches:
            run.ctx.checkpoint()
            watch = getattr(group.update, batch.watch_time_key)
            parallel(
                list(batch.plans),
                lambda p, canary=batch.canary, watch=watch: _update_instance(
                    run, stage, p, canary, watch
                ),
                label,
                limit=len(batch.plans),
            )
    for p in group.instance_plans:
        if p.change == "none" and p.existing is not None and not p.ignored:
            Instance.objects.filter(uuid=p.uuid).update(
                variable_set=run.variable_set, bootstrap=p.bootstrap
            )


def _update_instance(run: DeployRun, stage: Stage, plan: InstancePlan, canary: bool, watch) -> None:
    name = label(plan) + (" (canary)" if canary else "")
    with stage.track(name) as step:
        run.ctx.checkpoint()
        InstanceUpdater(run, plan, step, watch).update()


class InstanceUpdater:
    """Brings one instance to its desired state (BOSH ``InstanceUpdater``/``UpdateProcedure``).

    ``create``: its VM was made in *Creating missing vms*; attach/create the
    disk, apply, start. ``recreate``: stop, then with delete-create detach
    disks, delete the VM and create a new one; with create-swap-delete
    detach disks, orphan the old VM and elect the new one made up front.
    ``update``: stop, converge the disk, apply, start. Every case waits for
    the jobs to run (canary or update watch time) and records the applied
    state last, so an interrupted update is redone by the next deploy.
    """

    ACTIONS = {"create": "create", "recreate": "recreate", "update": "update"}

    def __init__(self, run: DeployRun, plan: InstancePlan, step: Any, watch: Any):
        self.run = run
        self.plan = plan
        self.step = step
        self.watch = watch

    def update(self) -> None:
        run, plan = self.run, self.plan
        desired = plan.desired
        assert desired is not None
        instance = _instance_row(run, plan)
        Instance.objects.filter(id=instance.id).update(update_completed=False)
        context = {"az": plan.az, "changes": sorted(plan.changes), "reasons": list(plan.reasons)}
        with run.span(
            self.ACTIONS[plan.change], "instance", instance.name, instance=instance, context=context
        ):
            vm = self._converge_vm(instance)
            run.ctx.checkpoint()
            steps.update_persistent_disk(run, instance, vm, desired, self.step)
            self._apply_and_start(instance, vm)
            steps.release_ips_not_in(instance, desired)
            instance.refresh_from_db(fields=["spec_json"])
            spec = dict(instance.spec_json or {})
            spec["applied"] = applied_to_json(desired.to_applied())
            Instance.objects.filter(id=instance.id).update(
                spec_json=spec,
                update_completed=True,
                variable_set=run.variable_set,
                state=desired.state,
                cloud_properties=dict(desired.cloud_properties),
                updated_at=timezone.now(),
            )

    def _converge_vm(self, instance: Instance) -> Vm:
        run, plan = self.run, self.plan
        vms = list(Vm.objects.filter(instance=instance).order_by("id"))
        old = next((v for v in vms if v.active), None)
        if plan.change == "create":
            if old is None:  # its creation was skipped or lost: make it now
                return steps.create_vm(run, instance, plan, active=True)
            return old
        if plan.change == "update":
            if old is None:
                return steps.create_vm(run, instance, plan, active=True)
            self._stop(old, "update")
            return old
        # recreate
        if old is not None:
            self._stop(old, "shutdown")
        if plan.needs_duplicate_vm:
            new = next((v for v in vms if not v.active), None)
            if new is None:
                raise RuntimeError(f"{instance}: the new VM of create-swap-delete is missing")
            self.step.advance(20, status="swapping VMs")
            if old is not None:
                steps.orphan_vm(run, old)
            steps.elect_active(instance, new)
            steps.record_vm_applied(instance, plan.desired)
            return new
        if old is not None:
            self.step.advance(10, status="deleting VM")
            steps.delete_vm(run, old)
        self.step.advance(10, status="creating VM")
        return steps.create_vm(run, instance, plan, active=True)

    def _stop(self, vm: Vm, drain_type: str) -> None:
        agent = agent_for(vm, self.run.cloud)
        self.step.advance(5, status="executing pre-stop")
        agent.run_script("pre-stop", {})
        self.step.advance(5, status="executing drain")
        agent.drain(drain_type)
        self.step.advance(10, status="stopping jobs")
        agent.stop()
        agent.run_script("post-stop", {})

    def _apply_and_start(self, instance: Instance, vm: Vm) -> None:
        run, plan = self.run, self.plan
        desired = plan.desired
        agent = agent_for(vm, run.cloud)
        self.step.advance(10, status="installing packages")
        agent.apply(apply_spec(run, plan, instance))
        if desired.state != "started":
            agent.stop()
            return
        self.step.advance(10, status="executing pre-start")
        agent.run_script("pre-start", {})
        self.step.advance(10, status="starting jobs")
        agent.start()
        agent.wait_until_running(self.watch.min_ms, self.watch.max_ms)
        self.step.advance(10, status="executing post-start")
        agent.run_script("post-start", {})


def apply_spec(run: DeployRun, plan: InstancePlan, instance: Instance) -> dict:
    """What the agent is told to run (BOSH ``ApplySpec`` + template spec).

    Job properties are kept with their ``((placeholders))``: the apply spec
    is stored in the database, and secrets live only in the variable store.
    """
    desired = plan.desired
    prepared: Prepared = run.prepared
    group = next(ig for ig in prepared.manifest["instance_groups"] if ig["name"] == plan.group)
    jobs = group.get("jobs") or []
    links = getattr(run, "links", {}).get(plan.group, {})
    return {
        "deployment": run.name,
        "job": {
            "name": plan.group,
            "templates": [{"name": j["name"], "release": j.get("release")} for j in jobs],
        },
        "index": plan.index,
        "id": plan.uuid,
        "name": f"{plan.group}/{plan.uuid}",
        "az": plan.az,
        "bootstrap": plan.bootstrap,
        "networks": steps.network_settings(desired),
        "address": next((n.ip for n in desired.networks if n.ip), None),
        "persistent_disk": desired.persistent_disk_size,
        "stemcell": {"name": desired.stemcell.name, "version": desired.stemcell.version},
        "vm_type": desired.vm_type,
        "properties": {j["name"]: j.get("properties") or {} for j in jobs},
        "links": links,
        "configuration_hash": desired.jobs_fingerprint,
    }


def _persist(run: DeployRun) -> None:
    """Record what was deployed (BOSH ``PersistDeploymentStage``)."""
    prepared: Prepared = run.prepared
    deployment = run.deployment
    Deployment.objects.filter(id=deployment.id).update(
        manifest_text=prepared.manifest_text,
        manifest=dump_yaml(prepared.raw_manifest),
        updated_at=timezone.now(),
    )
    deployment.configs.set(prepared.configs)
    deployment.stemcells.set(prepared.stemcell_rows)
    deployment.release_versions.set(prepared.release_versions)
    if run.variable_set is not None:
        VariableSet.objects.filter(id=run.variable_set.id).update(deployed_successfully=True)
