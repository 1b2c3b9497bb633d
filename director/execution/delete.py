"""The ``delete_deployment`` task: every VM deleted, every disk orphaned, the rows gone.

Stages: *Deleting instances* (one step per instance, ``max_threads`` at a
time: stop, detach disks, delete VMs, orphan disks, release IPs), then
*Removing deployment artifacts* (VMs of the deployment still waiting in
``OrphanedVm``, VMs tagged for it that the database does not know, the
variable sets, the deployment row). With ``force`` CPI errors are logged
and ignored, so a deployment whose VMs are already gone can still be
deleted. What stays in vCenter: the orphaned persistent disks only (deleted
by the periodic disk cleanup once old enough).
"""

from __future__ import annotations

from cpi.base import CpiError, VMNotFound
from director import locks
from director.cloud import cloud_for_director
from director.events import event_span
from director.models import Deployment, Instance, IpAddress, OrphanedVm
from director.runner import TaskContext, task_handler

from . import steps
from .compile import delete_compilation_instance
from .leftovers import untracked_vms
from .run import DeployRun, parallel
from .state import instances_of


class DeploymentNotFound(Exception):
    pass


@task_handler("delete_deployment")
def delete_deployment(ctx: TaskContext) -> str:
    name = ctx.deployment_name
    force = bool(ctx.args.get("force"))
    with locks.deployment_lock(name, ctx, timeout=10):
        deployment = Deployment.objects.filter(name=name).first()
        if deployment is None:
            raise DeploymentNotFound(f"Deployment '{name}' doesn't exist")
        with event_span(
            "delete", "deployment", name, user=ctx.username, task=ctx.task, deployment=name
        ):
            cloud = cloud_for_director(ctx)
            run = DeployRun(ctx, cloud, deployment, force=force)
            instances = instances_of(deployment)
            if instances:
                stage = ctx.stage("Deleting instances", total=len(instances))

                def delete(instance) -> None:
                    with stage.track(str(instance)):
                        ctx.checkpoint()
                        steps.delete_instance(run, instance)

                parallel(instances, delete, str)
            ctx.checkpoint()
            stage = ctx.stage("Removing deployment artifacts", total=1)
            with stage.track("Removing deployment artifacts"):
                for instance in Instance.objects.filter(deployment=deployment, compilation=True):
                    delete_compilation_instance(run, instance)
                for orphan in OrphanedVm.objects.filter(deployment_name=name):
                    _delete_cid(run, orphan.cid)
                    IpAddress.objects.filter(orphaned_vm=orphan).delete()
                    orphan.delete()
                for cid in untracked_vms(cloud, name):
                    _delete_cid(run, cid)
                deployment.delete()
    return f"/deployments/{name}"


def _delete_cid(run: DeployRun, cid: str) -> None:
    with run.span("delete", "vm", cid):
        try:
            run.cloud.delete_vm(cid)
        except VMNotFound:
            pass
        except CpiError as exc:
            if not run.force:
                raise
            run.ctx.warning(f"ignoring CPI error deleting VM {cid} (force): {exc}")
