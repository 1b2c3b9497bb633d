"""The ``run_errand`` task: an errand's run on a deployment (BOSH ``bosh run-errand``).

What an errand is, how a manifest names one and when ``when_changed`` skips
a run: ``director.errands``. ``run_errand`` (``director.services.errands``)
checks the request and queues this task.

The task's stages, as ``bosh task --event`` shows them: *Preparing
deployment* (the deployment lock, the last deployed manifest prepared and
planned again with the variable versions it was deployed with), *Creating
missing vms*, *Updating instance* ``[group]`` (disk, apply, start: the
deploy's ``InstanceUpdater``), *Running errand* (one step per instance),
*Deleting errand instances* ``[group]``. VMs, disks and IPs go through the
deploy's own steps (``director.execution.steps``), so an interrupted run
leaves what a deploy knows how to converge from.

Running means the agent's ``run_errand``: the VM's agent runs the errand
job's ``bin/run`` and answers its real exit code, stdout and stderr (a
cancel of the task is passed on as ``cancel_task``; the agent still answers
what the script printed). A group with several errand jobs runs each in turn
on the instance; the instance's exit code is the first non-zero one.

The result output holds one BOSH-shaped JSON line per instance:
``{"instance": {"group", "id"}, "errand_name", "exit_code", "stdout",
"stderr", "logs": {"blobstore_id": null}}``; a non-zero exit code fails the
task naming the errand, the instance and the code. Audit events: ``run
errand`` (start and end, the end carrying the exit code).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from director import locks
from director.agents.errors import AgentError
from director.cloud import cloud_for_director
from director.errands import (
    TASK_TYPE,
    Errand,
    ErrandError,
    ErrandFailed,
    ErrandGroup,
    _deployed_manifest,
    _deployed_variable_set,
    _DeployedVariables,
    _runnable,
    _unknown,
    deployment_fingerprint,
    errands_of,
    find_errand,
    last_successful_run,
)
from director.events import event_span
from director.models import Deployment, Instance, PersistentDisk, Vm
from director.runner import TaskContext, task_handler

from . import deploy, steps
from .agent import agent_for, cancel_requested
from .compile import compile_packages
from .deploy import InstanceUpdater, render
from .prepare import prepare
from .run import DeployRun, parallel


@dataclass(frozen=True)
class _Target:
    """One instance the errand runs on, with the plan that places it."""

    plan: Any  # director.planning.InstancePlan
    group: ErrandGroup

    @property
    def label(self) -> str:
        return f"{self.plan.group}/{self.plan.uuid} ({self.plan.index})"


def _selected(plan: Any, filters: list[str]) -> bool:
    if not filters:
        return True
    for f in filters:
        group, _, ident = f.partition("/")
        if plan.group == group and ident in ("", plan.uuid, str(plan.index)):
            return True
    return False


def _targets(prepared: Any, errand: Errand, filters: list[str]) -> list[_Target]:
    targets = []
    for group in errand.groups:
        try:
            group_plan = prepared.plan.instance_group(group.name)
        except KeyError:
            raise ErrandError(
                f"Errand '{errand.name}': instance group '{group.name}' is not in the deployment"
            ) from None
        for p in group_plan.instance_plans:
            if not p.ignored and _selected(p, filters):
                targets.append(_Target(p, group))
    unmatched = [
        f for f in filters if not any(_selected(t.plan, [f]) for t in targets)
    ]  # a filter naming no instance is a mistake worth naming
    if unmatched:
        raise ErrandError(f"Errand '{errand.name}': no instance matches {', '.join(unmatched)}")
    if not targets:
        raise ErrandError(f"Errand '{errand.name}' has no instances to run on")
    return targets


@task_handler(TASK_TYPE)
def run_errand_task(ctx: TaskContext) -> str:
    """Run an errand (see the module docstring); the result is BOSH's CLI summary line."""

    name = ctx.deployment_name
    args = ctx.args
    errand_name = str(args.get("errand") or "")
    keep_alive = bool(args.get("keep_alive"))
    with locks.deployment_lock(name, ctx, timeout=10):
        stage = ctx.stage("Preparing deployment", total=1)
        with stage.track("Preparing deployment"):
            deployment = Deployment.objects.filter(name=name).exclude(manifest_text="").first()
            if deployment is None:
                raise ErrandError(f"Deployment '{name}' doesn't exist")
            runnable = _runnable(deployment)
            manifest = _deployed_manifest(deployment)
            errand = find_errand(manifest, errand_name, runnable)
            if errand is None:
                raise ErrandError(_unknown(errand_name, deployment, errands_of(manifest, runnable)))
            fingerprint = deployment_fingerprint(deployment)
            last = last_successful_run(name, errand_name)
            skip = bool(
                args.get("when_changed")
                and last is not None
                and (last.context or {}).get("fingerprint") == fingerprint
            )
            if not skip:
                variable_set = _deployed_variable_set(deployment)
                prepared = prepare(
                    deployment.manifest_text,
                    _DeployedVariables(name, variable_set),
                    deployment_name=name,
                )
                run = DeployRun(ctx, cloud_for_director(ctx), deployment, variable_set=variable_set)
                run.prepared = prepared
                render(run)
                targets = _targets(prepared, errand, list(args.get("instances") or []))
        if not skip:
            run.packages = compile_packages(run)
        if skip:
            message = (
                f"Errand '{errand_name}' skipped: the deployment has not changed since its "
                f"last successful run (task {last.task})"
            )
            ctx.warning(message)
            return message
        for warning in prepared.warnings:
            ctx.warning(warning)
        context = {"instances": [f"{t.plan.group}/{t.plan.uuid}" for t in targets]}
        with event_span(
            "run",
            "errand",
            errand_name,
            user=ctx.username,
            task=ctx.task,
            deployment=name,
            context=context,
        ) as span:
            results = ErrandRunner(run, errand, targets, keep_alive).run()
            codes = [r["exit_code"] for r in results]
            span.context = {**context, "exit_code": max(codes, key=abs)}
            failed = [r for r in results if r["exit_code"] != 0]
            if failed:
                raise ErrandFailed(
                    f"Errand '{errand_name}' completed with error (exit code "
                    f"{failed[0]['exit_code']}) on "
                    + ", ".join(
                        f"{r['instance']['group']}/{r['instance']['id']}: "
                        f"{(r['stderr'] or '').strip() or 'exit code ' + str(r['exit_code'])}"
                        for r in failed
                    )
                )
            span.context["fingerprint"] = fingerprint
    return f"Errand '{errand_name}' completed successfully (exit code 0)"


class ErrandRunner:
    """Creates the errand group's VMs, runs the errand on every target, deletes the VMs.

    The VMs are deleted whatever happened (a failed create, a non-zero exit,
    a cancel) unless ``keep_alive``; a failure to delete is reported, after
    the failure that came first if there was one.
    """

    def __init__(self, run: Any, errand: Errand, targets: list[_Target], keep_alive: bool):
        self.deploy_run = run
        self.ctx: TaskContext = run.ctx
        self.errand = errand
        self.targets = targets
        self.keep_alive = keep_alive
        self.on_new_vms = [t for t in targets if t.group.is_errand]

    def run(self) -> list[dict[str, Any]]:
        first: BaseException | None = None
        try:
            self._create_missing_vms()
            self.ctx.checkpoint()
            self._update_instances()
            self.ctx.checkpoint()
            results = self._run_errand()
            for r in results:
                self.ctx.write_result(r)
            return results
        except BaseException as exc:
            first = exc
            raise
        finally:
            if not self.keep_alive:
                try:
                    self._delete_errand_vms()
                except Exception as exc:
                    if first is None:
                        raise
                    self.ctx.warning(f"could not delete the errand VMs: {exc}")

    # -- stages ------------------------------------------------------------------------

    @staticmethod
    def _has_vm(t: _Target) -> bool:
        return bool(t.plan.existing is not None and t.plan.existing.vm_cid)

    def _create_missing_vms(self) -> None:
        todo = [t for t in self.on_new_vms if not self._has_vm(t) or t.plan.needs_duplicate_vm]
        if not todo:
            return
        stage = self.ctx.stage("Creating missing vms", total=len(todo))

        def create(t: _Target) -> None:
            with stage.track(t.label):
                self.ctx.checkpoint()
                instance = deploy._instance_row(self.deploy_run, t.plan)
                steps.create_vm(
                    self.deploy_run, instance, t.plan, active=not t.plan.needs_duplicate_vm
                )

        parallel(todo, create, lambda t: t.label)

    def _update_instances(self) -> None:
        """Disk, apply and start on the errand VMs, with the deploy's ``InstanceUpdater``.

        A VM made for this run is brought up as a ``create``; a VM kept alive
        by an earlier run is updated or recreated as the plan says.
        """

        by_group: dict[str, list[tuple[_Target, Any]]] = {}
        for t in self.on_new_vms:
            if not self._has_vm(t):
                plan = dataclasses.replace(t.plan, change="create")
            elif t.plan.change in ("update", "recreate"):
                plan = t.plan
            else:
                continue
            by_group.setdefault(t.plan.group, []).append((t, plan))
        for group, items in by_group.items():
            update = self.deploy_run.prepared.plan.instance_group(group).update
            stage = self.ctx.stage("Updating instance", tags=[group], total=len(items))

            def one(item: tuple[_Target, Any], stage=stage, update=update) -> None:
                t, plan = item
                with stage.track(t.label) as step:
                    self.ctx.checkpoint()
                    InstanceUpdater(self.deploy_run, plan, step, update.update_watch_time).update()

            parallel(
                items,
                one,
                lambda item: item[0].label,
                limit=update.max_in_flight_for(len(items)),
            )

    def _run_errand(self) -> list[dict[str, Any]]:
        stage = self.ctx.stage("Running errand", total=len(self.targets))

        def one(t: _Target) -> dict[str, Any]:
            with stage.track(t.label) as step:
                self.ctx.checkpoint()
                instance = Instance.objects.filter(uuid=t.plan.uuid).first()
                vm = (
                    Vm.objects.filter(instance=instance, active=True).first()
                    if instance is not None
                    else None
                )
                if vm is None:
                    raise ErrandError(f"{t.label} has no VM to run errand '{self.errand.name}' on")
                step.advance(10, status=f"running {', '.join(t.group.jobs)}")
                agent = agent_for(vm, t.label)
                code, stdout, stderr = 0, "", ""
                for job in t.group.jobs:
                    out = agent.run_errand(job, should_cancel=cancel_requested(self.ctx)) or {}
                    job_code = int(out.get("exit_code", 1))
                    stdout += str(out.get("stdout") or "")
                    stderr += str(out.get("stderr") or "")
                    self.ctx.debug(
                        f"errand {self.errand.name} job {job} on {t.label} (VM {vm.cid}): "
                        f"exit {job_code}"
                    )
                    if job_code != 0 and code == 0:
                        code = job_code
                self.ctx.checkpoint()
                return {
                    "instance": {"group": t.plan.group, "id": t.plan.uuid},
                    "errand_name": self.errand.name,
                    "exit_code": code,
                    "stdout": stdout,
                    "stderr": stderr,
                    "logs": {"blobstore_id": None},
                }

        return parallel(self.targets, one, lambda t: t.label)

    def _delete_errand_vms(self) -> None:
        """Delete the errand group's VMs, orphan their disks, release their IPs; keep the rows.

        The instance rows stay (``bosh instances`` lists them without a VM, and
        the next run reuses their ids); their addresses are released, since
        the deploy reserves none for errand instances either.
        """

        by_group: dict[str, list[Instance]] = {}
        for t in self.on_new_vms:
            instance = Instance.objects.filter(uuid=t.plan.uuid).first()
            if instance is not None and Vm.objects.filter(instance=instance).exists():
                by_group.setdefault(instance.group, []).append(instance)
        for group, instances in by_group.items():
            stage = self.ctx.stage("Deleting errand instances", tags=[group], total=len(instances))

            def one(instance: Instance, stage=stage) -> None:
                with stage.track(f"{instance.name} ({instance.index})"):
                    for vm in Vm.objects.filter(instance=instance).order_by("-active", "id"):
                        if vm.active:
                            try:
                                agent_for(vm, instance.name).stop()
                            except AgentError as exc:
                                self.ctx.debug(
                                    f"stopping {instance} failed, deleting anyway: {exc}"
                                )
                        steps.delete_vm(self.deploy_run, vm)
                    for disk in PersistentDisk.objects.filter(instance=instance):
                        steps.orphan_disk(self.deploy_run, disk, instance)
                    steps.release_unused_ips(instance)

            parallel(instances, one, lambda i: f"{i.name} ({i.index})")
