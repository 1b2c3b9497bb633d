"""Cloud check (BOSH ``bosh cck``): find what is broken in a deployment, then fix what was chosen.

This module holds the services the API, the pages and ``manage.py cck``
call; the scan task is ``cck_scan``, the resolutions ``cck_resolve``, the
problem types with their resolutions ``problems``.

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
  ``mount_info_mismatch`` an active persistent disk its instance's agent does
                          not list as mounted (``list_disk``), or that another
                          VM's agent lists too (``data["owner_vms"]``)
  ``unknown_vm``          a VM tagged with this director and deployment that
                          the database does not know (``resource_id`` 0, the
                          cid in ``data``)
  ``unknown_disk``        a disk of the director's disk folder attached to one
                          of the deployment's VMs that is neither a persistent
                          nor an orphaned disk of the director (``resource_id``
                          0; ``delete_disk`` detaches and deletes it)
  ``missing_stemcell``    a stemcell the deployment's instances run on whose
                          template vCenter no longer has (``has_stemcell``);
                          ``resource_id`` is the stemcell row

* ``cck_apply_resolutions`` (``resolve_problems``): applies one resolution
  per chosen problem (BOSH's names, ``RESOLUTIONS``); ``auto`` picks BOSH's
  automatic one for every open problem. ``reattach_disk`` attaches a
  mismatched disk to its instance's VM again if vCenter shows it detached
  and has the agent mount it (``reattach_disk_and_reboot`` reboots the VM
  in between). A VM is recreated through the
  resurrector's ``recreate_vm`` (the deploy's own steps, from the last
  applied state: same IPs, persistent disk reattached). An applied
  resolution marks the problem ``resolved``. Resolutions run stemcells
  first, then disks, then VMs, whatever the problem ids: a VM is recreated
  from a stemcell re-uploaded in the same task, onto disks already settled.

``missing_stemcell`` is ours, not BOSH's (a BOSH operator runs ``bosh
upload-stemcell --fix``): after vCenter lost everything (a vcsim restarted
empty), every ``recreate_vm`` needs the stemcell back first, and one
``cck --auto --resolution delete_disk_reference`` brings the deployment back
(plain ``--auto`` keeps the lost disks, and ``manage.py cck`` then prints
that command). ``reupload_stemcell``
imports the tarball the director kept when the stemcell was uploaded
(``director.uploads.stored_stemcell``) under a new cid, the automatic
resolution. A persistent disk vCenter lost stays ``ignore`` under ``auto``,
as in BOSH: forgetting it (``delete_disk_reference``; the instance then gets
a new empty disk) is the operator's explicit choice, and a ``recreate_vm``
of an instance whose disk is still referenced but missing fails saying so.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from director import runner
from director.models import Deployment, DeploymentProblem, ProblemState, Task
from opsconsole.errors import Conflict, NotFound, ServiceError

# The task handlers register when this module is imported (DirectorConfig.ready()).
from . import cck_resolve, cck_scan  # noqa: F401
from .problems import APPLY_TASK, AUTO, RESOLUTIONS, SCAN_TASK

__all__ = [
    "AUTO",
    "RESOLUTIONS",
    "open_problems",
    "problem_dict",
    "resolve_problems",
    "scan_deployment",
]


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
