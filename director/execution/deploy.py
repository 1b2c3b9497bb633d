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

With ``fix`` (``deploy --fix``), *Preparing deployment* first finds the
instances whose VM vCenter no longer has or whose agent does not answer
(``fix.unreachable_instances``); the plan recreates them ("missing VM",
"unresponsive agent") in place, without asking their agents to stop or
unmount, even when nothing else changed.

Cancel is honoured between steps (``ctx.checkpoint()`` before every batch
and every instance). ``dry_run`` stops after the plan and writes it as the
task's result output.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from director import locks
from director.agents.errors import AgentError
from director.cleanup import UNAPPLIED_ARCHIVES, delete_unapplied_archives
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
from director.runner import TaskContext, task_handler
from director.tasklog import Stage

from . import steps
from .agent import agent_for, cancel_requested
from .compile import compile_packages
from .fix import unreachable_instances
from .leftovers import clean_leftovers
from .prepare import Prepared, prepare
from .preview import plan_to_dict
from .run import DeployRun, parallel
from .state import applied_to_json
from .templates import render_plan, store_archive, with_configuration_changes
from .variables import DeployVariables, PreviewVariables


def plan_options(args: dict, unreachable: dict[str, str] | None = None) -> PlanOptions:
    return PlanOptions(
        recreate=bool(args.get("recreate")),
        recreate_persistent_disks=bool(args.get("recreate_persistent_disks")),
        fix=bool(args.get("fix")),
        canaries=args.get("canaries"),
        max_in_flight=args.get("max_in_flight"),
        unreachable=unreachable or {},
    )


def _unreachable(ctx: TaskContext, deployment: Deployment) -> dict[str, str]:
    """With ``fix``, the instances whose VM is missing or whose agent is silent (else none;
    a dry run without fix needs no vCenter)."""
    if not ctx.args.get("fix"):
        return {}
    found = unreachable_instances(cloud_for_director(ctx), deployment)
    for uuid, why in sorted(found.items()):
        ctx.debug(f"fix: instance {uuid}: {why}, to be recreated")
    return found


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
        unreachable = _unreachable(ctx, deployment)
        prepared = prepare(
            ctx.args["manifest_text"],
            PreviewVariables(deployment.name),
            deployment_name=deployment.name,
            options=plan_options(ctx.args, unreachable),
        )
    for warning in prepared.warnings:
        ctx.warning(warning)

    ctx.write_result(plan_to_dict(prepared))
    return f"/deployments/{deployment.name} (dry run: nothing changed)"


def _deploy(ctx: TaskContext, deployment: Deployment, variable_set: VariableSet) -> str:
    stage = ctx.stage("Preparing deployment", total=1)
    with stage.track("Preparing deployment"):
        cloud = cloud_for_director(ctx)
        run = DeployRun(ctx, cloud, deployment, variable_set=variable_set)
        for line in clean_leftovers(run):
            ctx.warning(f"Cleaned up after an interrupted task: {line}")
        for blob in delete_unapplied_archives(Instance.objects.filter(deployment=deployment)):
            ctx.debug(f"deleted rendered templates archive {blob}: no apply refers to it")
        variables = DeployVariables(deployment.name, variable_set)
        prepared = prepare(
            ctx.args["manifest_text"],
            variables,
            deployment_name=deployment.name,
            options=plan_options(ctx.args, _unreachable(ctx, deployment)),
        )
        variables.record()
        run.prepared = prepared
        render(run)
    for warning in prepared.warnings:
        ctx.warning(warning)
    plan = prepared.plan
    ctx.debug(f"Plan: {plan.summary()}")
    for p in plan.all_instance_plans():
        if p.changed:
            ctx.debug(f"  {label(p)}: {p.change} ({'; '.join(p.reasons)})")
    ctx.checkpoint()
    run.packages = compile_packages(run)
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

    if plan.changed:
        _post_deploy(run)
    _persist(run)
    return f"/deployments/{deployment.name}"


def render(run: DeployRun) -> None:
    """Render every instance's templates and let them decide ``configuration`` changes."""
    prepared = run.prepared
    run.rendered = render_plan(prepared, prepared.plan)
    prepared.plan = with_configuration_changes(prepared.plan, run.rendered)


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
            rendered = run.rendered.get(plan.uuid)
            if rendered is not None:
                spec["configuration_hash"] = rendered.configuration_hash
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
            # BOSH's drain type: shutdown when the jobs stay down or the disk changes
            shuts_down = (
                plan.desired.state in ("stopped", "detached") or "persistent_disk" in plan.changes
            )
            self._stop(old, "shutdown" if shuts_down else "update", vm_kept=True)
            return old
        # recreate; a VM that deploy --fix found missing or silent is not asked to stop
        reachable = plan.existing is None or not plan.existing.unresponsive
        if old is not None and reachable:
            self._stop(old, "shutdown", vm_kept=False)
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
            steps.delete_vm(run, old, agent=reachable)
        self.step.advance(10, status="creating VM")
        return steps.create_vm(run, instance, plan, active=True)

    def _stop(self, vm: Vm, drain_type: str, vm_kept: bool) -> None:
        """BOSH's Stopper: pre-stop, drain (with the next apply spec, whose persistent disk
        its scripts see as ``BOSH_JOB_NEXT_STATE``), stop, post-stop."""
        agent = agent_for(vm)
        keep = "keep" if vm_kept else "delete"
        self.step.advance(5, status="executing pre-stop")
        agent.run_script(
            "pre-stop",
            {
                "env": {
                    "BOSH_VM_NEXT_STATE": keep,
                    "BOSH_INSTANCE_NEXT_STATE": "keep",
                    "BOSH_DEPLOYMENT_NEXT_STATE": "keep",
                }
            },
        )
        self.step.advance(5, status="executing drain")
        instance = Instance.objects.get(id=vm.instance_id)
        spec = apply_spec(self.run, self.plan, instance, None)
        agent.drain(drain_type, spec, should_cancel=cancel_requested(self.run.ctx))
        self.step.advance(20, status="stopping jobs")
        agent.stop()
        agent.run_script("post-stop", {})

    def _apply_and_start(self, instance: Instance, vm: Vm) -> None:
        """BOSH's StateApplier: archive, apply, pre-start, start, watch, post-start."""
        run, plan = self.run, self.plan
        desired = plan.desired
        agent = agent_for(vm)
        rendered = run.rendered.get(plan.uuid)
        instance.refresh_from_db(fields=["spec_json"])
        archive = store_archive(instance, rendered) if rendered is not None else None
        spec = apply_spec(run, plan, instance, archive)
        self.step.advance(10, status="installing packages")
        agent.apply(spec)
        _record_applied_templates(instance, spec)
        if desired.state != "started":
            agent.stop()
            return
        self.step.advance(10, status="executing pre-start")
        agent.run_script("pre-start", {})
        self.step.advance(10, status="starting jobs")
        agent.start()
        agent.wait_until_running((self.watch.min_ms, self.watch.max_ms))
        self.step.advance(10, status="executing post-start")
        agent.run_script("post-start", {})


def _record_applied_templates(instance: Instance, spec: dict) -> None:
    """Keep the archive the agent now holds; the one it replaced, and any other stored for
    the instance and never applied, is deleted from the blobstore. (``configuration_hash`` is recorded only once the jobs run.) The spec
    itself is kept too (BOSH's ``instances.spec_json``): the resurrector applies it to
    a recreated VM (``director.health.resurrector``); it holds no job properties."""
    instance.refresh_from_db(fields=["spec_json"])
    record = dict(instance.spec_json or {})
    old = (record.get("rendered_templates_archive") or {}).get("blobstore_id")
    record["rendered_templates_archive"] = spec.get("rendered_templates_archive")
    record["apply_spec"] = spec
    if old:  # listed with the new record, so a crash before its delete leaves it known
        record[UNAPPLIED_ARCHIVES] = [*(record.get(UNAPPLIED_ARCHIVES) or []), old]
    Instance.objects.filter(id=instance.id).update(spec_json=record)
    instance.spec_json = record
    delete_unapplied_archives([instance])


def apply_spec(
    run: DeployRun, plan: InstancePlan, instance: Instance, archive: dict | None
) -> dict:
    """What the agent is told to run (BOSH ``ApplySpec``, reference §6.2).

    Jobs with their tarball's blob id and digest, the compiled packages of
    the group's jobs, the rendered templates archive with ``template_hashes``
    and ``configuration_hash``. Job properties stay out: the rendered files
    carry them, and the spec is kept by the agent and shown by ``get_state``.
    """
    desired = plan.desired
    prepared: Prepared = run.prepared
    group = next(ig for ig in prepared.manifest["instance_groups"] if ig["name"] == plan.group)
    stemcell = desired.stemcell
    templates = []
    packages: dict[str, dict] = {}
    for j in group.get("jobs") or []:
        job = prepared.job_specs[(j.get("release"), j["name"])]
        templates.append(
            {
                "name": j["name"],
                "version": job.version,
                "sha1": job.sha1,
                "blobstore_id": job.blobstore_id,
            }
        )
        for name in job.package_names:
            ref = run.packages.get((j["release"], name, stemcell.os, stemcell.version))
            if ref is not None:
                packages[name] = dict(ref)
    rendered = run.rendered.get(plan.uuid)
    spec = {
        "deployment": run.name,
        "job": {
            "name": plan.group,
            "templates": templates,
            "template": templates[0]["name"] if templates else None,
            "version": templates[0]["version"] if templates else None,
        },
        "index": plan.index,
        "id": plan.uuid,
        "name": plan.group,
        "az": plan.az,
        "bootstrap": plan.bootstrap,
        "networks": steps.network_settings(desired),
        "address": next((n.ip for n in desired.networks if n.ip), None),
        "dns_domain_name": "bosh",
        "persistent_disk": desired.persistent_disk_size,
        "packages": packages,
        "configuration_hash": rendered.configuration_hash if rendered else None,
        "template_hashes": rendered.template_hashes if rendered else {},
    }
    if archive is not None:
        spec["rendered_templates_archive"] = archive
    elif instance.spec_json and instance.spec_json.get("rendered_templates_archive"):
        spec["rendered_templates_archive"] = instance.spec_json["rendered_templates_archive"]
    return spec


def _post_deploy(run: DeployRun) -> None:
    """``post-deploy`` on every instance with a VM after a deploy that changed something."""
    vms = list(
        Vm.objects.filter(
            instance__deployment=run.deployment, instance__compilation=False, active=True
        ).select_related("instance")
    )
    if not vms:
        return

    def one(vm: Vm) -> None:
        try:
            agent_for(vm).run_script("post-deploy", {})
        except AgentError as exc:
            raise AgentError(exc.agent_id, "run_script", f"post-deploy: {exc.message}") from None

    parallel(vms, one, lambda vm: str(vm.instance))


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
