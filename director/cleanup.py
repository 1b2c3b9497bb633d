"""Periodic cleanup of orphaned VMs and orphaned disks (BOSH's scheduled jobs).

* ``scheduled_orphaned_vm_cleanup`` (every 5 minutes, BOSH
  ``director.vms.cleanup_schedule``): deletes each ``OrphanedVm`` (left by
  create-swap-delete) from the IaaS, then its row and the IPs it still held.
* ``scheduled_orphaned_disk_cleanup`` (every 30 minutes): deletes orphaned
  disks older than ``ORPHANED_DISK_MAX_AGE_DAYS`` (BOSH
  ``director.disks.max_orphaned_age_in_days``: 5).

Both run as director tasks (event log, CPI log, audit events) under a lock
of their own, so two beats never clean at once; a cleanup that finds the
lock held is skipped. Celery beat starts them (``director.schedule``);
``enqueue_orphaned_vm_cleanup()`` starts one now.
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from cpi.base import DiskNotFound, VMNotFound

from . import locks, runner
from .cloud import cloud_for_director
from .events import record_event
from .models import IpAddress, OrphanDisk, OrphanedVm, Task
from .runner import TaskContext, task_handler

VM_CLEANUP = "scheduled_orphaned_vm_cleanup"
DISK_CLEANUP = "scheduled_orphaned_disk_cleanup"
SCHEDULER_USER = "scheduler"


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


@shared_task(name="director.cleanup.orphaned_vms", ignore_result=True)
def orphaned_vms_beat() -> None:
    enqueue_orphaned_vm_cleanup()


@shared_task(name="director.cleanup.orphaned_disks", ignore_result=True)
def orphaned_disks_beat() -> None:
    enqueue_orphaned_disk_cleanup()
