"""The small steps a deploy is made of: VMs, disks and IPs through the CPI.

Each step records what it is about to do and what it did, so that a run
killed between any two lines leaves rows a re-run converges from:

* IPs are reserved (``IpAddress`` rows, unique) before ``create_vm`` and
  released when the create fails;
* a ``Vm`` row is written right after ``create_vm`` returns; a VM created by
  a run that died before that row is found by ``leftovers`` in vCenter
  (its settings carry ``bosh.groups`` naming this director and deployment)
  and deleted;
* a ``PersistentDisk`` row is written right after ``create_disk`` returns,
  inactive until attached;
* VMs are deleted only after their persistent disks are unmounted (agent)
  and detached (CPI), and disks are orphaned (``OrphanDisk``), never
  deleted, when their instance goes;
* a new VM's agent is let onto the message bus with a bootstrap certificate
  in its settings (``agent.mbus_env``) and must answer (``agent.greet``)
  before the VM counts as created; an attached disk is announced to the
  agent (``add_persistent_disk``) and mounted (``mount_disk``).

Events: ``vm`` create/delete/orphan, ``disk`` create/orphan/delete.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from cpi.base import (
    CpiError,
    DiskNotAttached,
    NotImplemented,
    NotSupported,
    VMCreationFailed,
    VMNotFound,
)
from director import vm_security
from director.agents.errors import AgentError
from director.models import (
    Instance,
    IpAddress,
    OrphanDisk,
    OrphanedVm,
    PersistentDisk,
    Vm,
)
from director.planning import DesiredInstance, InstancePlan

from .agent import NEXT_STATE_DELETE, agent_for, cancel_requested, greet, mbus_env
from .run import DeployRun
from .state import applied_to_json

#: ``create_vm`` attempts on a retriable ``VMCreationFailed`` (BOSH ``max_vm_create_tries``: 5).
MAX_VM_CREATE_TRIES = 3
#: Seconds to wait for a new VM's agent (BOSH ``agent_wait_timeout``: 600).
AGENT_WAIT_TIMEOUT = 600


def agent_wait_timeout() -> float:
    return float(getattr(settings, "DIRECTOR_AGENT_WAIT_TIMEOUT", AGENT_WAIT_TIMEOUT))


class IpConflict(Exception):
    """An address the plan picked was taken in the meantime (a parallel deploy)."""


# --------------------------------------------------------------------------- shapes


def network_settings(desired: DesiredInstance) -> dict[str, dict]:
    """The CPI's network spec: name -> {type, ip, netmask, gateway, dns, default, cloud_properties}."""
    out: dict[str, dict] = {}
    for n in desired.networks:
        spec: dict[str, Any] = {"type": n.type}
        if n.ip is not None:
            spec["ip"] = n.ip
        if n.subnet is not None:
            if n.subnet.netmask:
                spec["netmask"] = n.subnet.netmask
            if n.subnet.gateway:
                spec["gateway"] = n.subnet.gateway
            if n.subnet.dns:
                spec["dns"] = list(n.subnet.dns)
            spec["cloud_properties"] = dict(n.subnet.cloud_properties)
        else:
            spec["cloud_properties"] = {}
        if n.default:
            spec["default"] = list(n.default)
        out[n.network] = spec
    return out


def bosh_groups(deployment: str, group: str) -> list[str]:
    """BOSH's ``env.bosh.groups``: director, deployment, group and their combinations."""
    director = settings.DIRECTOR_NAME
    return [
        director,
        deployment,
        group,
        f"{director}-{deployment}",
        f"{deployment}-{group}",
        f"{director}-{deployment}-{group}",
    ]


def vm_env(run: DeployRun, group: str, rendered_env: dict) -> dict:
    """The VM env: the group's (interpolated) env, with ``bosh.group(s)``, tags, tmpfs, and
    the director's trusted certificates and generated password (``director.vm_security``)."""
    env = {k: v for k, v in (rendered_env or {}).items()}
    bosh = dict(env.get("bosh") or {})
    manifest = run.prepared.manifest if run.prepared else {}
    features = manifest.get("features") or {}
    if features.get("use_tmpfs_config"):
        job_dir = dict(bosh.get("job_dir") or {})
        job_dir.setdefault("tmpfs", True)
        bosh["job_dir"] = job_dir
        agent = dict(bosh.get("agent") or {})
        agent_settings = dict(agent.get("settings") or {})
        agent_settings.setdefault("tmpfs", True)
        agent["settings"] = agent_settings
        bosh["agent"] = agent
    bosh["group"] = f"{settings.DIRECTOR_NAME}-{run.name}-{group}"
    bosh["groups"] = bosh_groups(run.name, group)
    tags = manifest.get("tags") or {}
    if tags:
        bosh["tags"] = dict(tags)
    vm_security.apply_to_env(bosh)  # trusted certs, a generated password (Security pane)
    env["bosh"] = bosh
    return env


def vm_metadata(run: DeployRun, instance: Instance, vm_created_at: str) -> dict[str, str]:
    """What ``set_vm_metadata`` tags the VM with (BOSH ``MetadataUpdater``)."""
    tags = (run.prepared.manifest.get("tags") if run.prepared else None) or {}
    return {
        **{str(k): str(v) for k, v in tags.items()},
        "director": settings.DIRECTOR_NAME,
        "deployment": run.name,
        "instance_group": instance.group,
        "job": instance.group,
        "index": str(instance.index),
        "id": instance.uuid,
        "name": instance.name,
        "created_at": vm_created_at,
    }


# --------------------------------------------------------------------------- IPs


def reserve_ips(run: DeployRun, instance: Instance, desired: DesiredInstance) -> None:
    """Make sure every address of ``desired`` has an ``IpAddress`` row for this instance."""
    for n in desired.networks:
        if n.ip is None:
            continue
        row = IpAddress.objects.filter(address=n.ip).first()
        if row is not None:
            if row.instance_id == instance.id and row.orphaned_vm_id is None:
                continue
            holder = (
                f"instance {row.instance}" if row.instance_id else f"VM {row.orphaned_vm or ''}"
            )
            raise IpConflict(f"IP {n.ip} on network '{n.network}' is already reserved by {holder}")
        try:
            with transaction.atomic():
                IpAddress.objects.create(
                    address=n.ip,
                    network_name=n.network,
                    static=n.static,
                    instance=instance,
                    task_id=run.ctx.task_id,
                )
        except IntegrityError:
            raise IpConflict(
                f"IP {n.ip} on network '{n.network}' was reserved by another deploy; deploy again"
            ) from None


def release_unused_ips(instance: Instance, keep: set[str] | None = None) -> int:
    """Release the instance's addresses that no VM uses (and that are not in ``keep``)."""
    qs = IpAddress.objects.filter(instance=instance, vm__isnull=True, orphaned_vm__isnull=True)
    if keep:
        qs = qs.exclude(address__in=keep)
    deleted, _ = qs.delete()
    return deleted


def release_ips_not_in(instance: Instance, desired: DesiredInstance | None) -> int:
    """After an update: addresses the instance holds that the desired state does not use."""
    wanted = {n.ip for n in desired.networks if n.ip} if desired else set()
    deleted, _ = (
        IpAddress.objects.filter(instance=instance, orphaned_vm__isnull=True)
        .exclude(address__in=wanted)
        .delete()
    )
    return deleted


# --------------------------------------------------------------------------- VMs


def create_vm(
    run: DeployRun,
    instance: Instance,
    plan: InstancePlan,
    *,
    active: bool,
) -> Vm:
    """Reserve IPs, ``create_vm``, record the ``Vm`` row, tag it, wait for its agent.

    ``active=False`` for create-swap-delete: the new VM waits next to the old
    one until it is elected. On failure the IPs reserved for it are released
    and a VM that was created is deleted again.
    """
    desired = plan.desired
    assert desired is not None
    reserve_ips(run, instance, desired)
    rendered = run.prepared.rendered.get(instance.group, {})
    networks = network_settings(desired)
    env = vm_env(run, instance.group, rendered.get("env") or {})
    disk = active_disk(instance)
    disk_cids = [disk.disk_cid] if disk else []
    agent_id = str(uuid.uuid4())
    env["bosh"]["mbus"] = mbus_env(agent_id)
    stemcell = desired.stemcell
    vm: Vm | None = None
    with run.span("create", "vm", instance=instance, context={"az": instance.az}) as end:
        try:
            cid = _create_vm_with_retries(
                run,
                agent_id,
                stemcell.cid,
                dict(desired.cloud_properties),
                networks,
                disk_cids,
                env,
            )
            vm = Vm.objects.create(
                instance=instance,
                cid=cid,
                agent_id=agent_id,
                active=active,
                cpi=getattr(run.cloud, "cpi_name", "") or "",
                network_spec=networks,
                env=dict(desired.env),
                cloud_properties=dict(desired.cloud_properties),
                stemcell_name=stemcell.name,
                stemcell_version=stemcell.version,
            )
            end["object_name"] = cid
            wanted = {n.ip for n in desired.networks if n.ip}
            IpAddress.objects.filter(
                instance=instance, address__in=wanted, orphaned_vm__isnull=True
            ).update(vm=vm)
            run.ctx.debug(f"created VM {cid} for {instance} (agent {agent_id})")
            run.cloud.set_vm_metadata(cid, vm_metadata(run, instance, vm.created_at.isoformat()))
            greet(agent_for(vm, instance.name), agent_wait_timeout())
        except BaseException:
            if vm is not None:
                _delete_quietly(run, vm)
            release_unused_ips(instance)
            raise
    if active:
        record_vm_applied(instance, desired)
    return vm


def record_vm_applied(instance: Instance, desired: DesiredInstance) -> None:
    """Record what the new VM was created with (jobs not applied yet).

    A re-run after a crash then sees an ``update`` (jobs and disk still to
    do) rather than recreating a VM that is already right.
    """
    applied = applied_to_json(desired.to_applied())
    applied["jobs_fingerprint"] = ""
    disk = active_disk(instance)
    applied["persistent_disk_size"] = disk.size if disk else 0
    applied["persistent_disk_cloud_properties"] = disk.cloud_properties if disk else {}
    instance.refresh_from_db(fields=["spec_json"])
    spec = dict(instance.spec_json or {})
    spec["applied"] = applied
    spec.pop("configuration_hash", None)  # the new VM's agent has no jobs yet
    Instance.objects.filter(id=instance.id).update(spec_json=spec, update_completed=False)
    instance.spec_json = spec


def _create_vm_with_retries(run: DeployRun, *args: Any) -> str:
    for attempt in range(1, MAX_VM_CREATE_TRIES + 1):
        try:
            result = run.cloud.create_vm(*args)
            return result[0] if isinstance(result, list | tuple) else result
        except VMCreationFailed as exc:
            if not exc.ok_to_retry or attempt == MAX_VM_CREATE_TRIES:
                raise
            run.ctx.debug(f"create_vm failed (attempt {attempt}), retrying: {exc.message}")
    raise AssertionError("unreachable")


def _delete_quietly(run: DeployRun, vm: Vm) -> None:
    try:
        delete_vm(run, vm)
    except Exception as exc:
        run.ctx.debug(f"could not delete VM {vm.cid} after a failed create: {exc}")


def detach_disks(run: DeployRun, vm: Vm, agent: bool = True) -> None:
    """Detach the instance's persistent disks from ``vm`` (so deleting it keeps them).

    ``agent=False``: through the CPI alone, for a VM whose agent is known not to
    answer (asking it to unmount would only wait for timeouts; BOSH deletes an
    unresponsive agent's VM the same way).
    """
    try:
        attached = set(run.cloud.get_disks(vm.cid))
    except (NotImplemented, NotSupported):
        attached = None
    except VMNotFound:
        return
    for disk in PersistentDisk.objects.filter(instance_id=vm.instance_id):
        if attached is not None and disk.disk_cid not in attached:
            continue
        if agent:
            _quietly(run, vm, "unmount_disk", disk.disk_cid)
        try:
            run.cloud.detach_disk(vm.cid, disk.disk_cid)
        except (DiskNotAttached, VMNotFound):
            pass
        if agent:
            _quietly(run, vm, "remove_persistent_disk", disk.disk_cid)


def _quietly(run: DeployRun, vm: Vm, method: str, *args: Any) -> None:
    """An agent call on a VM that is about to lose a disk or go: an agent that does not
    answer (a VM already broken) must not keep the director from cleaning up."""
    try:
        getattr(agent_for(vm), method)(*args)
    except AgentError as exc:
        run.ctx.debug(f"{method} on VM {vm.cid} failed, going on: {exc}")


def delete_vm(run: DeployRun, vm: Vm, agent: bool = True) -> None:
    """Detach disks, ``delete_vm`` (a VM already gone is fine), drop the row and its IP links.

    ``agent=False``: the disks are detached without asking the VM's agent.
    """
    with run.span("delete", "vm", vm.cid, instance=vm.instance):
        try:
            detach_disks(run, vm, agent=agent)
            run.cloud.delete_vm(vm.cid)
        except VMNotFound:
            run.ctx.debug(f"VM {vm.cid} was already gone")
        except CpiError as exc:
            if not run.force:
                raise
            run.ctx.warning(f"ignoring CPI error deleting VM {vm.cid} (force): {exc}")
        IpAddress.objects.filter(vm=vm).update(vm=None)
        Vm.objects.filter(id=vm.id).delete()


def orphan_vm(run: DeployRun, vm: Vm) -> OrphanedVm:
    """Create-swap-delete: detach disks, move the old VM to ``OrphanedVm`` with its IPs.

    The periodic cleanup deletes it from the IaaS and releases its IPs.
    """
    instance = vm.instance
    detach_disks(run, vm)
    agent_for(vm).shutdown()
    with transaction.atomic():
        orphan = OrphanedVm.objects.create(
            cid=vm.cid,
            az=instance.az,
            cpi=vm.cpi,
            cloud_properties=vm.cloud_properties,
            stemcell_api_version=vm.stemcell_api_version,
            deployment_name=run.name,
            instance_name=instance.name,
        )
        IpAddress.objects.filter(vm=vm).update(vm=None, instance=None, orphaned_vm=orphan)
        Vm.objects.filter(id=vm.id).delete()
    run.event("orphan", "vm", vm.cid, instance=instance, context={"az": instance.az})
    return orphan


def elect_active(instance: Instance, vm: Vm) -> None:
    with transaction.atomic():
        Vm.objects.filter(instance=instance).exclude(id=vm.id).update(active=False)
        Vm.objects.filter(id=vm.id).update(active=True)
    vm.active = True


# --------------------------------------------------------------------------- disks


def active_disk(instance: Instance) -> PersistentDisk | None:
    return PersistentDisk.objects.filter(instance=instance, name="", active=True).first()


def orphan_disk(run: DeployRun, disk: PersistentDisk, instance: Instance) -> OrphanDisk:
    with transaction.atomic():
        orphan = OrphanDisk.objects.create(
            disk_cid=disk.disk_cid,
            size=disk.size,
            az=instance.az,
            cpi=disk.cpi,
            deployment_name=run.name,
            instance_name=instance.name,
            cloud_properties=disk.cloud_properties,
        )
        PersistentDisk.objects.filter(id=disk.id).delete()
    run.event("orphan", "disk", disk.disk_cid, instance=instance, context={"size": disk.size})
    return orphan


def _attached(run: DeployRun, vm: Vm) -> set[str] | None:
    try:
        return set(run.cloud.get_disks(vm.cid))
    except (NotImplemented, NotSupported):
        return None


def attach_disk(run: DeployRun, vm: Vm, disk: PersistentDisk, attached: set[str] | None) -> None:
    if attached is not None and disk.disk_cid in attached:
        return
    hint = run.cloud.attach_disk(vm.cid, disk.disk_cid)
    agent = agent_for(vm)
    agent.add_persistent_disk(disk.disk_cid, hint)
    agent.mount_disk(disk.disk_cid)


def _create_disk(
    run: DeployRun, instance: Instance, vm: Vm, size: int, cloud_properties: dict
) -> PersistentDisk:
    with run.span("create", "disk", instance=instance, context={"size": size}) as end:
        cid = run.cloud.create_disk(size, cloud_properties, vm.cid)
        end["object_name"] = cid
        return PersistentDisk.objects.create(
            instance=instance,
            disk_cid=cid,
            size=size,
            active=False,
            cloud_properties=cloud_properties,
            cpi=vm.cpi,
        )


def update_persistent_disk(
    run: DeployRun, instance: Instance, vm: Vm, desired: DesiredInstance, step=None
) -> None:
    """Converge the instance's managed disk with ``desired`` on ``vm`` (BOSH ``DiskManager``).

    No disk wanted: detach and orphan. None yet: create, attach, activate.
    Size changed: CPI ``resize_disk`` when it grows and the CPI can, else a
    copy (create new, attach, agent ``migrate_disk``, switch, orphan old).
    Leftover inactive disks (a migration that died) are detached and orphaned.
    """
    size = desired.persistent_disk_size
    cloud_properties = dict(desired.persistent_disk_cloud_properties)
    attached = _attached(run, vm)
    agent = agent_for(vm)

    for leftover in PersistentDisk.objects.filter(instance=instance, active=False):
        if attached is None or leftover.disk_cid in attached:
            _quietly(run, vm, "unmount_disk", leftover.disk_cid)
            try:
                run.cloud.detach_disk(vm.cid, leftover.disk_cid)
            except DiskNotAttached:
                pass
        orphan_disk(run, leftover, instance)

    current = active_disk(instance)
    if size == 0:
        if current is not None:
            if attached is None or current.disk_cid in attached:
                _quietly(run, vm, "unmount_disk", current.disk_cid)
                try:
                    run.cloud.detach_disk(vm.cid, current.disk_cid)
                except DiskNotAttached:
                    pass
            orphan_disk(run, current, instance)
        return

    if current is None:
        if step:
            step.advance(10, status="creating persistent disk")
        disk = _create_disk(run, instance, vm, size, cloud_properties)
        attach_disk(run, vm, disk, set())
        PersistentDisk.objects.filter(id=disk.id).update(active=True)
        return

    attach_disk(run, vm, current, attached)
    if current.size == size and current.cloud_properties == cloud_properties:
        return
    if size > current.size and current.cloud_properties == cloud_properties and _cpi_resize():
        if step:
            step.advance(10, status="resizing persistent disk")
        try:
            agent.unmount_disk(current.disk_cid)
            run.cloud.detach_disk(vm.cid, current.disk_cid)
            run.cloud.resize_disk(current.disk_cid, size)
            PersistentDisk.objects.filter(id=current.id).update(size=size)
            attach_disk(run, vm, current, set())
            return
        except (NotImplemented, NotSupported) as exc:
            run.ctx.debug(f"resize_disk not possible ({exc}); migrating by copy")
            attach_disk(run, vm, current, _attached(run, vm))
    if step:
        step.advance(10, status="migrating persistent disk")
    new = _create_disk(run, instance, vm, size, cloud_properties)
    attach_disk(run, vm, new, set())
    agent.migrate_disk(current.disk_cid, new.disk_cid)
    with transaction.atomic():
        PersistentDisk.objects.filter(id=new.id).update(active=True)
        PersistentDisk.objects.filter(id=current.id).update(active=False)
    try:
        run.cloud.detach_disk(vm.cid, current.disk_cid)
    except DiskNotAttached:
        pass
    agent.remove_persistent_disk(current.disk_cid)
    current.refresh_from_db()
    orphan_disk(run, current, instance)


def _cpi_resize() -> bool:
    return bool(getattr(settings, "DIRECTOR_ENABLE_CPI_RESIZE_DISK", True))


# --------------------------------------------------------------------------- instances


def delete_instance(run: DeployRun, instance: Instance) -> None:
    """Stop, delete every VM (disks detached first), orphan disks, release IPs, drop the row."""
    with run.span(
        "delete", "instance", instance.name, instance=instance, context={"az": instance.az}
    ):
        for vm in list(Vm.objects.filter(instance=instance).order_by("-active", "id")):
            if vm.active:
                agent = agent_for(vm, instance.name)
                try:
                    agent.run_script("pre-stop", {"env": NEXT_STATE_DELETE})
                    agent.drain("shutdown", should_cancel=cancel_requested(run.ctx))
                    agent.stop()
                    agent.run_script("post-stop", {})
                except AgentError as exc:
                    run.ctx.debug(f"stopping {instance} failed, deleting anyway: {exc}")
            delete_vm(run, vm)
        for disk in PersistentDisk.objects.filter(instance=instance):
            orphan_disk(run, disk, instance)
        IpAddress.objects.filter(instance=instance, orphaned_vm__isnull=True).delete()
        Instance.objects.filter(id=instance.id).delete()


def now_iso() -> str:
    return timezone.now().isoformat()
