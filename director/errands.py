"""Errands (BOSH ``bosh run-errand``): one-off jobs run on a deployment, as a ``run_errand`` task.

An errand is a job whose spec renders ``bin/run``. A deployment names it two
ways, and ``run_errand(deployment, name)`` (``director.services.errands``, which
queues this task) looks for them in this order:

1. an instance group with ``lifecycle: errand`` called ``name``: its
   instances have no VM between runs (the planner gives them change
   ``none``), so a run creates their VMs, applies the group's jobs, runs the
   errand jobs on them and deletes the VMs again (``keep_alive`` keeps them;
   their persistent disks are orphaned as a deploy orphans them, their IPs
   released; the instance rows stay, so ``bosh instances`` lists them);
2. a job called ``name`` that renders ``bin/run`` (BOSH 2 "colocated"
   errand): it runs on the existing VMs of every service group that has the
   job, and on new VMs of every errand group that has it.

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

``when_changed`` skips the run when nothing it depends on changed since the
last successful run of the same errand: the deployment's manifest, its
cloud/runtime configs, releases, stemcells and variable versions (the
fingerprint is kept in the context of that run's end event).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from opsconsole.errors import NotFound

from . import locks
from .agents.errors import AgentError
from .cloud import cloud_for_director
from .events import event_span
from .execution import deploy, prepare, steps
from .execution.agent import agent_for, cancel_requested
from .execution.compile import compile_packages
from .execution.deploy import InstanceUpdater, render
from .execution.run import DeployRun, parallel
from .execution.variables import DeployVariables, absolute_name
from .manifest import ManifestError, load_yaml
from .models import (
    Deployment,
    Event,
    Instance,
    PersistentDisk,
    ReleaseJob,
    Variable,
    VariableSet,
    Vm,
)
from .runner import TaskContext, task_handler

TASK_TYPE = "run_errand"


class ErrandError(Exception):
    """An errand cannot run (unknown errand, instance without a VM, ...)."""


class ErrandFailed(ErrandError):
    """The errand ran and exited non-zero on at least one instance."""


# --------------------------------------------------------------------------- finding errands


@dataclass(frozen=True)
class ErrandGroup:
    """An instance group the errand runs on, and which of its jobs it runs."""

    name: str
    lifecycle: str
    jobs: tuple[str, ...]

    @property
    def is_errand(self) -> bool:
        return self.lifecycle == "errand"


@dataclass(frozen=True)
class Errand:
    """An errand of a deployment: ``kind`` ``instance_group`` (lifecycle errand) or ``job``."""

    name: str
    kind: str
    groups: tuple[ErrandGroup, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "instance_groups": [
                {"name": g.name, "lifecycle": g.lifecycle, "jobs": list(g.jobs)}
                for g in self.groups
            ],
        }


Runnable = Callable[[str | None, str], bool]


def _groups(manifest: dict) -> list[dict]:
    return [g for g in manifest.get("instance_groups") or [] if isinstance(g, dict)]


def _jobs(group: dict) -> list[dict]:
    return [j for j in group.get("jobs") or [] if isinstance(j, dict) and j.get("name")]


def find_errand(manifest: dict, name: str, runnable: Runnable) -> Errand | None:
    """The errand ``name`` of a manifest (see the module docstring), or None."""
    for group in _groups(manifest):
        if group.get("name") == name and group.get("lifecycle") == "errand":
            jobs = _jobs(group)
            chosen = [j["name"] for j in jobs if runnable(j.get("release"), j["name"])]
            return Errand(
                name,
                "instance_group",
                (ErrandGroup(name, "errand", tuple(chosen or (j["name"] for j in jobs))),),
            )
    groups = tuple(
        ErrandGroup(str(g.get("name")), str(g.get("lifecycle") or "service"), (name,))
        for g in _groups(manifest)
        if any(j["name"] == name and runnable(j.get("release"), name) for j in _jobs(g))
    )
    return Errand(name, "job", groups) if groups else None


def errands_of(manifest: dict, runnable: Runnable) -> list[Errand]:
    """Every errand of a manifest: lifecycle errand groups, then ``bin/run`` jobs, by name."""
    names: list[str] = []
    for group in _groups(manifest):
        if group.get("lifecycle") == "errand" and group.get("name"):
            names.append(str(group["name"]))
    for group in _groups(manifest):
        for job in _jobs(group):
            if job["name"] not in names and runnable(job.get("release"), job["name"]):
                names.append(job["name"])
    return [e for e in (find_errand(manifest, n, runnable) for n in names) if e is not None]


def _runnable(deployment: Deployment) -> Runnable:
    """``(release, job) -> bool``: the job of the deployed release version renders ``bin/run``."""
    specs: dict[tuple[str, str], dict] = {}
    for job in ReleaseJob.objects.filter(
        release_version__in=deployment.release_versions.all()
    ).select_related("release_version__release"):
        specs[(job.release_version.release.name, job.name)] = job.spec or {}

    def runnable(release: str | None, job: str) -> bool:
        templates = (specs.get((str(release), job)) or {}).get("templates") or {}
        return "bin/run" in (templates.values() if isinstance(templates, dict) else templates)

    return runnable


def _deployed_manifest(deployment: Deployment) -> dict:
    try:
        doc = load_yaml(deployment.manifest or deployment.manifest_text)
    except ManifestError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _deployed(name: str) -> Deployment:
    deployment = Deployment.objects.filter(name=name).exclude(manifest_text="").first()
    if deployment is None:
        raise NotFound({"deployment": [f"Deployment '{name}' does not exist"]})
    return deployment


def _unknown(errand: str, deployment: Deployment, known: Iterable[Errand]) -> str:
    names = ", ".join(e.name for e in known)
    have = f"its errands: {names}" if names else "it has no errands"
    return f"Errand '{errand}' does not exist in deployment '{deployment.name}' ({have})"


# --------------------------------------------------------------------------- when_changed


def deployment_fingerprint(deployment: Deployment) -> str:
    """What an errand run depends on: manifest, configs, releases, stemcells, variables."""
    variable_set = _deployed_variable_set(deployment)
    variables = (
        sorted(
            Variable.objects.filter(variable_set=variable_set).values_list("name", "credential_id")
        )
        if variable_set
        else []
    )
    data = {
        "deployment": [deployment.id, deployment.created_at.isoformat()],
        "manifest": deployment.manifest_text,
        "configs": sorted(deployment.configs.values_list("id", flat=True)),
        "releases": sorted(deployment.release_versions.values_list("id", flat=True)),
        "stemcells": sorted(deployment.stemcells.values_list("id", flat=True)),
        "variables": variables,
    }
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def last_successful_run(deployment_name: str, errand_name: str) -> Event | None:
    """The end event of the errand's last run that exited 0 on every instance."""
    return (
        Event.objects.filter(
            action="run",
            object_type="errand",
            object_name=errand_name,
            deployment=deployment_name,
            parent__isnull=False,
            error="",
        )
        .order_by("-id")
        .first()
    )


def _deployed_variable_set(deployment: Deployment) -> VariableSet | None:
    return (
        VariableSet.objects.filter(deployment=deployment, deployed_successfully=True)
        .order_by("-id")
        .first()
    )


class _DeployedVariables:
    """Lookups with the versions the deployment was deployed with (the latest for others)."""

    def __init__(self, deployment: str, variable_set: VariableSet | None):
        self._latest = DeployVariables(deployment, None)
        self._absolute = lambda name: absolute_name(name, deployment)
        self._pinned = {
            v.name: v.credential
            for v in Variable.objects.filter(variable_set=variable_set).select_related("credential")
            if v.credential is not None
        }
        self.generated = self._latest.generated

    def generate(self, definitions: list[dict]) -> list[str]:
        return self._latest.generate(definitions)

    def lookup(self, name: str) -> Any:
        row = self._pinned.get(self._absolute(name))
        return row.value if row is not None else self._latest.lookup(name)

    def record(self) -> None:
        pass


# --------------------------------------------------------------------------- the task


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


__all__ = [
    "Errand",
    "ErrandError",
    "ErrandFailed",
    "ErrandGroup",
    "deployment_fingerprint",
    "errands_of",
    "find_errand",
]
