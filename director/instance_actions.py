"""Instance actions (BOSH ``bosh start/stop/restart/recreate``), as a ``change_instance_state`` task.

One instance (``group/id``, id being the uuid or the index) or every
instance of a group is acted on; the other instances of the deployment are
left alone. As in BOSH, the action is carried out against the deployment
as last deployed: the task takes the deployment lock, prepares the
deployed manifest again with the variable versions it was deployed with
(*Preparing deployment*), and acts on each chosen instance in the stage
*Updating instance* ``[group]``, one at a time:

- ``stop``: BOSH's Stopper (``pre-stop`` with the next states, ``drain``
  shutdown, ``stop``, ``post-stop``); the VM stays, the instance's desired
  state becomes ``stopped`` (a later deploy applies its changes to it and
  leaves its jobs stopped). ``hard``: then its VM is deleted (disks
  detached first), keeping its persistent disk and IPs; the state becomes
  ``detached``.
- ``start``: ``pre-start``, ``start``, wait until the jobs run (the group's
  ``update_watch_time``), ``post-start``; a detached instance first gets a
  new VM through the deploy's ``InstanceUpdater`` (disk attached, spec
  applied). The state becomes ``started``.
- ``restart``: stop then start (the VM stays).
- ``recreate``: the executor's recreate path (``InstanceUpdater`` with
  change ``recreate``, delete-create): the VM is replaced, its IPs and
  persistent disk kept and the jobs brought back to the instance's state.

Events: ``start``/``stop``/``restart`` ``instance`` (start and end), and the
executor's own (``recreate instance``, ``delete vm``, ``create vm``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db import transaction

from opsconsole.errors import Conflict, NotFound, ServiceError

from . import locks, runner
from .cloud import cloud_for_director
from .errands import _deployed_manifest, _deployed_variable_set, _DeployedVariables
from .execution import prepare, steps
from .execution.agent import agent_for, cancel_requested
from .execution.compile import compile_packages
from .execution.deploy import InstanceUpdater, render
from .execution.leftovers import clean_leftovers
from .execution.run import DeployRun
from .models import Deployment, Instance, InstanceState, Task, Vm
from .runner import TaskContext, task_handler

TASK_TYPE = "change_instance_state"
ACTIONS = ("start", "stop", "restart", "recreate")


class InstanceActionError(Exception):
    """An action that cannot be carried out (instance gone, ignored, ...)."""


# --------------------------------------------------------------------------- the service


def _deployed(name: str) -> Deployment:
    deployment = Deployment.objects.filter(name=name).exclude(manifest_text="").first()
    if deployment is None:
        raise NotFound({"deployment": [f"Deployment '{name}' does not exist"]})
    return deployment


def find_instances(deployment: Deployment, group: str, ident: str | None) -> list[Instance]:
    """The instances ``group`` (all of it) or ``group/ident`` (uuid or index) names; 404 if none."""
    rows = Instance.objects.filter(deployment=deployment, group=group, compilation=False)
    if not rows.exists():
        groups = sorted(
            set(
                Instance.objects.filter(deployment=deployment, compilation=False).values_list(
                    "group", flat=True
                )
            )
        )
        raise NotFound(
            {
                "instance": [
                    f"Deployment '{deployment.name}' has no instance group '{group}' "
                    f"(its groups: {', '.join(groups) or 'none'})"
                ]
            }
        )
    if ident in (None, ""):
        return list(rows.order_by("index"))
    found = rows.filter(uuid=ident) if not str(ident).isdigit() else rows.filter(index=int(ident))
    instance = found.first()
    if instance is None:
        raise NotFound(
            {"instance": [f"Deployment '{deployment.name}' has no instance '{group}/{ident}'"]}
        )
    return [instance]


def change_instance_state(
    deployment_name: str,
    group: str,
    ident: str | None,
    action: Any,
    user: str,
    hard: Any = False,
) -> Task:
    """Queue a ``change_instance_state`` task (``bosh -d D <action> group[/id] [--hard]``).

    422 for an unknown action or a ``hard`` that is not a boolean or not
    with ``stop``; 404 for an unknown deployment, group or instance; 422
    for an ignored instance or an errand group (no VMs between runs); 409
    while a deploy, delete, errand or other action of the deployment is
    queued or running.
    """
    if action not in ACTIONS:
        raise ServiceError({"action": [f"must be one of {', '.join(ACTIONS)}"]})
    if hard is None:
        hard = False
    if not isinstance(hard, bool):
        raise ServiceError({"hard": ["must be true or false"]})
    if hard and action != "stop":
        raise ServiceError({"hard": [f"only 'stop' takes hard (not '{action}')"]})
    deployment = _deployed(deployment_name)
    instances = find_instances(deployment, group, ident)
    ignored = [i for i in instances if i.ignore]
    if ignored and ident not in (None, ""):
        raise ServiceError(
            {"instance": [f"Instance '{ignored[0].name}' is ignored: unignore it first"]}
        )
    if _is_errand_group(deployment, group):
        raise ServiceError(
            {"instance": [f"Instance group '{group}' is an errand: it has VMs only while it runs"]}
        )
    target = f"{group}/{ident}" if ident not in (None, "") else group
    with transaction.atomic():
        busy = runner.changing_task(deployment_name)
        if busy is not None:
            raise Conflict(
                {
                    "deployment": [
                        f"Deployment '{deployment_name}' is being changed by task {busy.id}"
                    ]
                }
            )
        verb = f"{action} --hard" if hard else action
        return runner.create_task(
            TASK_TYPE,
            f"{verb} instance {target}",
            user,
            deployment_name=deployment_name,
            args={
                "action": action,
                "hard": hard,
                "group": group,
                "instances": [i.uuid for i in instances if not i.ignore],
            },
        )


def _is_errand_group(deployment: Deployment, group: str) -> bool:
    for g in _deployed_manifest(deployment).get("instance_groups") or []:
        if isinstance(g, dict) and g.get("name") == group:
            return g.get("lifecycle") == "errand"
    return False


# --------------------------------------------------------------------------- the task


@task_handler(TASK_TYPE)
def change_instance_state_task(ctx: TaskContext) -> str:
    """Act on the chosen instances (see the module docstring)."""

    name = ctx.deployment_name
    args = ctx.args
    action = str(args.get("action") or "")
    hard = bool(args.get("hard"))
    if action not in ACTIONS:
        raise InstanceActionError(f"unknown instance action '{action}'")
    with locks.deployment_lock(name, ctx, timeout=10):
        stage = ctx.stage("Preparing deployment", total=1)
        with stage.track("Preparing deployment"):
            run = prepare_deployed(ctx, name)
            plans = _plans(run, [str(u) for u in args.get("instances") or []])
        for warning in run.prepared.warnings:
            ctx.warning(warning)
        ctx.checkpoint()
        if action in ("start", "restart", "recreate"):
            run.packages = compile_packages(run)  # cached: a re-apply needs their refs
        ctx.checkpoint()
        by_group: dict[str, list[Any]] = {}
        for p in plans:
            by_group.setdefault(p.group, []).append(p)
        for group, group_plans in by_group.items():
            stage = ctx.stage("Updating instance", tags=[group], total=len(group_plans))
            watch = run.prepared.plan.instance_group(group).update.update_watch_time
            for p in group_plans:
                with stage.track(p.label) as step:
                    ctx.checkpoint()
                    InstanceAction(run, p, step, watch).perform(action, hard)
    return f"/deployments/{name}"


def prepare_deployed(ctx: TaskContext, name: str) -> Any:
    """A ``DeployRun`` of the deployment as last deployed: its manifest prepared and
    planned again with its deployed variable versions, templates rendered. What an
    interrupted run left is cleaned first, as a deploy does."""

    deployment = Deployment.objects.filter(name=name).exclude(manifest_text="").first()
    if deployment is None:
        raise InstanceActionError(f"Deployment '{name}' doesn't exist")
    variable_set = _deployed_variable_set(deployment)
    run = DeployRun(ctx, cloud_for_director(ctx), deployment, variable_set=variable_set)
    for line in clean_leftovers(run):
        ctx.warning(f"Cleaned up after an interrupted task: {line}")
    run.prepared = prepare(
        deployment.manifest_text,
        _DeployedVariables(name, variable_set),
        deployment_name=name,
    )
    render(run)
    return run


def _plans(run: Any, uuids: list[str]) -> list[Any]:
    by_uuid = {p.uuid: p for p in run.prepared.plan.all_instance_plans()}
    missing = [u for u in uuids if u not in by_uuid]
    if missing:
        raise InstanceActionError(
            f"Instance {', '.join(missing)} is not in deployment '{run.name}' any more"
        )
    plans = [by_uuid[u] for u in uuids]
    ignored = [p.label for p in plans if p.ignored]
    if ignored:
        raise InstanceActionError(f"Instance {', '.join(ignored)} is ignored: unignore it first")
    return plans


class InstanceAction:
    """One action on one instance; the other instances are not touched."""

    def __init__(self, run: Any, plan: Any, step: Any, watch: Any):
        self.run = run
        self.plan = plan
        self.step = step
        self.watch = watch
        self.instance = Instance.objects.get(uuid=plan.uuid)

    @property
    def vm(self) -> Vm | None:
        return Vm.objects.filter(instance=self.instance, active=True).first()

    def perform(self, action: str, hard: bool) -> None:
        if action == "recreate":
            return self.recreate()
        context = {"az": self.plan.az, "hard": hard} if hard else {"az": self.plan.az}
        with self.run.span(action, "instance", self.instance.name, self.instance, context):
            if action == "stop":
                self.stop(hard)
            elif action == "start":
                self.start()
            else:
                self.stop(False)
                self.start()

    def _set_state(self, state: str) -> None:
        Instance.objects.filter(id=self.instance.id).update(state=state)
        self.instance.state = state

    def stop(self, hard: bool) -> None:
        """BOSH's Stopper; ``hard`` deletes the VM after (disks detached, kept with the IPs)."""

        vm = self.vm
        if vm is None:
            if not hard and self.instance.state == InstanceState.DETACHED:
                # ``stop`` on a detached instance: BOSH brings its VM back, jobs stopped
                return self._recreate_vm(InstanceState.STOPPED)
            self._set_state(InstanceState.DETACHED if hard else InstanceState.STOPPED)
            return
        agent = agent_for(vm, self.plan.label)
        next_vm = "delete" if hard else "keep"
        self.step.advance(5, status="executing pre-stop")
        agent.run_script(
            "pre-stop",
            {
                "env": {
                    "BOSH_VM_NEXT_STATE": next_vm,
                    "BOSH_INSTANCE_NEXT_STATE": "keep",
                    "BOSH_DEPLOYMENT_NEXT_STATE": "keep",
                }
            },
        )
        self.step.advance(5, status="executing drain")
        agent.drain("shutdown", should_cancel=cancel_requested(self.run.ctx))
        self.step.advance(20, status="stopping jobs")
        agent.stop()
        agent.run_script("post-stop", {})
        self._set_state(InstanceState.STOPPED)
        if hard:
            self.step.advance(20, status="deleting VM")
            steps.delete_vm(self.run, vm)
            self._set_state(InstanceState.DETACHED)

    def start(self) -> None:
        """Start the jobs on the VM (a detached instance gets its VM back first)."""

        vm = self.vm
        if vm is None:
            return self._recreate_vm(InstanceState.STARTED)
        agent = agent_for(vm, self.plan.label)
        self.step.advance(10, status="executing pre-start")
        agent.run_script("pre-start", {})
        self.step.advance(10, status="starting jobs")
        agent.start()
        agent.wait_until_running((self.watch.min_ms, self.watch.max_ms))
        self.step.advance(10, status="executing post-start")
        agent.run_script("post-start", {})
        self._set_state(InstanceState.STARTED)

    def _recreate_vm(self, state: str) -> None:
        """A VM for an instance without one, through the deploy's ``InstanceUpdater``."""

        plan = self.plan
        desired = dataclasses.replace(plan.desired, state=state)
        plan = dataclasses.replace(plan, change="update", desired=desired, needs_duplicate_vm=False)
        self._set_state(state)
        InstanceUpdater(self.run, plan, self.step, self.watch).update()

    def recreate(self) -> None:
        """The executor's recreate (delete-create): same IPs, same persistent disk."""

        if self.vm is None and self.instance.state == InstanceState.DETACHED:
            self.run.ctx.warning(
                f"{self.plan.label} is detached (stopped --hard): it has no VM to recreate; "
                "start it to give it one"
            )
            return
        plan = dataclasses.replace(
            self.plan,
            change="recreate",
            changes=self.plan.changes | {"recreate"},
            reasons=(*self.plan.reasons, "recreate requested"),
            needs_shutting_down=True,
            needs_duplicate_vm=False,
        )
        InstanceUpdater(self.run, plan, self.step, self.watch).update()


__all__ = ["ACTIONS", "InstanceActionError", "change_instance_state", "find_instances"]
