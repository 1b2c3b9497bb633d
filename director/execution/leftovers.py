"""What a run that died left behind, found and cleaned before the next run plans.

A worker killed mid-deploy can leave:

* VMs in vCenter that no ``Vm`` row knows: ``create_vm`` returned but the
  row was never written. They are recognised by what the director put on
  them: custom attributes ``director``/``deployment`` (``set_vm_metadata``)
  or, before those were set, the agent settings whose ``env.bosh.groups``
  name this director and deployment (the CPI's ``vms_of_director``). They are
  deleted (persistent disks detached first, so no data goes with them);
* inactive ``Vm`` rows (a create-swap-delete that never elected its new
  VM): deleted, their IPs released;
* compilation instances (``Instance.compilation``) of a compile that never
  finished: their VMs deleted, their IPs released, their rows dropped;
* IP reservations of instances that have no VM (a create that failed or
  never happened): released, as BOSH's ``cleanup_orphaned_ips`` does; a
  detached instance (``stop --hard``) keeps its IPs for when it starts again.

Nothing leaks: every VM the director ever created for a deployment is in
the database or is deleted here.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from cpi.base import CpiError, NotImplemented, VMNotFound
from director.models import Instance, IpAddress, OrphanedVm, Vm

from .compile import delete_compilation_instance
from .run import DeployRun
from .steps import delete_vm


def tagged_vms(cloud: Any) -> dict[str, dict[str, Any]]:
    """VMs this director made -> ``{"director", "deployment", "groups", "agent_id"}``.

    Read through the CPI (``Cpi.vms_of_director``); empty when the cloud
    cannot list them (nothing to scan).
    """
    try:
        return cloud.vms_of_director(settings.DIRECTOR_NAME)
    except NotImplemented:
        return {}


def belongs_to(facts: dict[str, Any], deployment: str) -> bool:
    director = settings.DIRECTOR_NAME
    if facts.get("director") == director and facts.get("deployment") == deployment:
        return True
    return f"{director}-{deployment}" in facts.get("groups", [])


def untracked_vms(cloud: Any, deployment: str) -> list[str]:
    """cids of VMs tagged for ``deployment`` by this director that the database does not know."""
    known = set(Vm.objects.values_list("cid", flat=True)) | set(
        OrphanedVm.objects.values_list("cid", flat=True)
    )
    return sorted(
        cid
        for cid, facts in tagged_vms(cloud).items()
        if belongs_to(facts, deployment) and cid not in known
    )


def clean_leftovers(run: DeployRun) -> list[str]:
    """Delete untracked and inactive VMs of the deployment, release IPs without a VM.

    Returns a line per thing cleaned (for the debug log and a warning).
    """
    done: list[str] = []
    for cid in untracked_vms(run.cloud, run.name):
        try:
            run.cloud.delete_vm(cid)
        except VMNotFound:
            pass
        except CpiError as exc:
            if not run.force:
                raise
            run.ctx.warning(f"could not delete leftover VM {cid} (force): {exc}")
            continue
        run.event("delete", "vm", cid, context={"reason": "VM left by an interrupted task"})
        done.append(f"deleted VM {cid} that a previous task created but did not record")

    for instance in Instance.objects.filter(deployment=run.deployment, compilation=True):
        delete_compilation_instance(run, instance)
        done.append(f"deleted compilation VM of {instance.group} left by an interrupted task")

    for vm in Vm.objects.filter(instance__deployment=run.deployment, active=False).select_related(
        "instance"
    ):
        delete_vm(run, vm)
        done.append(f"deleted inactive VM {vm.cid} of {vm.instance}")

    instances = Instance.objects.filter(deployment=run.deployment).exclude(state="detached")
    released = IpAddress.objects.filter(
        instance__in=instances, vm__isnull=True, orphaned_vm__isnull=True
    )
    addresses = list(released.values_list("address", flat=True))
    if addresses:
        released.delete()
        done.append(f"released IPs of instances without a VM: {', '.join(addresses)}")
    for line in done:
        run.ctx.debug(line)
    return done
