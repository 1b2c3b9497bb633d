"""Periodic cleanup of orphaned VMs and orphaned disks (BOSH's scheduled jobs).

* ``scheduled_orphaned_vm_cleanup`` (every 5 minutes, BOSH
  ``director.vms.cleanup_schedule``): deletes each ``OrphanedVm`` (left by
  create-swap-delete) from the IaaS, then its row and the IPs it still held.
* ``scheduled_orphaned_disk_cleanup`` (every 30 minutes): deletes orphaned
  disks older than ``ORPHANED_DISK_MAX_AGE_DAYS`` (BOSH
  ``director.disks.max_orphaned_age_in_days``: 5).

And, called by the deploy rather than on a schedule,
``delete_unapplied_archives``: rendered template archives stored for an
instance that no recorded apply refers to (stored by a worker killed before
the agent's ``apply`` was recorded, or replaced by a newer one) are deleted
from the blobstore (see ``director.execution.templates``).

The two scheduled cleanups run as director tasks (event log, CPI log, audit events) under a lock
of their own, so two beats never clean at once; a cleanup that finds the
lock held is skipped. Celery beat starts them (``director.schedule``);
``enqueue_orphaned_vm_cleanup()`` starts one now.
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cpi.base import DiskNotFound, VMNotFound

from . import locks, runner
from .blobstore import blobstore
from .cloud import cloud_for_director
from .events import record_event
from .models import (
    CompiledPackage,
    Instance,
    IpAddress,
    OrphanDisk,
    OrphanedVm,
    ReleaseJob,
    ReleasePackage,
    Task,
)
from .runner import TaskContext, task_handler

VM_CLEANUP = "scheduled_orphaned_vm_cleanup"
DISK_CLEANUP = "scheduled_orphaned_disk_cleanup"
SCHEDULER_USER = "scheduler"
#: ``Instance.spec_json`` key: ids of rendered template archives stored for the instance
#: that a recorded apply may not refer to (``director.execution.templates.store_archive``).
UNAPPLIED_ARCHIVES = "unapplied_templates_archives"


def max_disk_age() -> timedelta:
    return timedelta(days=float(getattr(settings, "ORPHANED_DISK_MAX_AGE_DAYS", 5)))


def _enqueue(type: str, description: str, user: str) -> Task | None:
    if Task.objects.active().filter(type=type).exists():
        return None  # one is queued or running already
    return runner.create_task(type, description, user)


def enqueue_orphaned_vm_cleanup(user: str = SCHEDULER_USER) -> Task | None:
    """Queue a cleanup of orphaned VMs (None if one is already queued or running)."""
    return _enqueue(VM_CLEANUP, "delete orphaned vms", user)


def enqueue_orphaned_disk_cleanup(user: str = SCHEDULER_USER) -> Task | None:
    return _enqueue(DISK_CLEANUP, "delete orphaned disks", user)


@task_handler(VM_CLEANUP)
def orphaned_vm_cleanup(ctx: TaskContext) -> str:
    with locks.lock("lock:orphaned_vm_cleanup", ctx, timeout=0):
        orphans = list(OrphanedVm.objects.order_by("orphaned_at"))
        if not orphans:
            return "no orphaned VMs"
        cloud = cloud_for_director(ctx)
        stage = ctx.stage("Deleting orphaned vms", total=len(orphans))
        for orphan in orphans:
            ctx.checkpoint()
            with stage.track(orphan.cid):
                try:
                    cloud.delete_vm(orphan.cid)
                except VMNotFound:
                    ctx.debug(f"orphaned VM {orphan.cid} was already gone")
                IpAddress.objects.filter(orphaned_vm=orphan).delete()
                orphan.delete()
                record_event(
                    "delete",
                    "vm",
                    orphan.cid,
                    user=ctx.username,
                    task=ctx.task,
                    deployment=orphan.deployment_name,
                    instance=orphan.instance_name,
                    context={"orphaned": True},
                )
        return f"deleted {len(orphans)} orphaned VM(s)"


@task_handler(DISK_CLEANUP)
def orphaned_disk_cleanup(ctx: TaskContext) -> str:
    with locks.lock("lock:orphaned_disk_cleanup", ctx, timeout=0):
        cutoff = timezone.now() - max_disk_age()
        disks = list(OrphanDisk.objects.filter(created_at__lt=cutoff).order_by("created_at"))
        if not disks:
            return "no orphaned disks old enough to delete"
        cloud = cloud_for_director(ctx)
        stage = ctx.stage("Deleting orphaned disks", total=len(disks))
        for disk in disks:
            ctx.checkpoint()
            with stage.track(disk.disk_cid):
                try:
                    cloud.delete_disk(disk.disk_cid)
                except DiskNotFound:
                    ctx.debug(f"orphaned disk {disk.disk_cid} was already gone")
                disk.delete()
                record_event(
                    "delete",
                    "disk",
                    disk.disk_cid,
                    user=ctx.username,
                    task=ctx.task,
                    deployment=disk.deployment_name,
                    instance=disk.instance_name,
                    context={"orphaned": True, "size": disk.size},
                )
        return f"deleted {len(disks)} orphaned disk(s)"


def _archive_id(spec: object) -> str:
    archive = (spec or {}).get("rendered_templates_archive") if isinstance(spec, dict) else None
    return str((archive or {}).get("blobstore_id") or "") if isinstance(archive, dict) else ""


def delete_unapplied_archives(instances) -> list[str]:
    """Delete the instances' ``UNAPPLIED_ARCHIVES`` that nothing refers to; what was deleted.

    An archive stays when it is the instance's recorded archive or the one its
    recorded apply spec names, or when a compiled package, a release job or a
    release package has its id; the list is emptied either way (after the
    deletes, so a crash in between leaves it to the next call). Call it with
    the deployment lock held, so no running deploy is between storing an
    archive and recording its apply. Answers ``"<blob id> (<instance>)"`` per
    deleted blob.
    """
    given = {i.id: i for i in instances}
    listing = Instance.objects.filter(id__in=list(given), spec_json__has_key=UNAPPLIED_ARCHIVES)
    deleted = []
    for instance_id in listing.values_list("id", flat=True):
        with transaction.atomic():
            instance = Instance.objects.select_for_update().get(id=instance_id)
            spec = dict(instance.spec_json or {})
            listed = [str(b) for b in spec.pop(UNAPPLIED_ARCHIVES, None) or [] if b]
            keep = {_archive_id(spec), _archive_id(spec.get("apply_spec"))}
            keep |= _blobs_of_releases(listed)
            for blob_id in listed:
                if blob_id not in keep and blobstore().delete(blob_id):
                    deleted.append(f"{blob_id} ({instance})")
            Instance.objects.filter(id=instance_id).update(spec_json=spec)
        given[instance_id].spec_json = spec
    return deleted


def _blobs_of_releases(blob_ids: list[str]) -> set[str]:
    """Which of ``blob_ids`` a compiled package, release job or release package holds."""
    if not blob_ids:
        return set()
    found = set()
    for model in (CompiledPackage, ReleaseJob, ReleasePackage):
        found |= set(
            model.objects.filter(blobstore_id__in=blob_ids).values_list("blobstore_id", flat=True)
        )
    return found


@shared_task(name="director.cleanup.orphaned_vms", ignore_result=True)
def orphaned_vms_beat() -> None:
    enqueue_orphaned_vm_cleanup()


@shared_task(name="director.cleanup.orphaned_disks", ignore_result=True)
def orphaned_disks_beat() -> None:
    enqueue_orphaned_disk_cleanup()
