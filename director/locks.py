"""Database locks between tasks: one deploy (or delete, or cck) per deployment at a time.

A lock is a ``Lock`` row with a unique ``name``; inserting it takes the lock.
Its holder gets a random ``uid`` and keeps ``expired_at`` in the future by
renewing it: the checkpoint thread of the holding task renews every lock the
task holds (``TaskContext.locks``). A holder that dies stops renewing, the
row expires, and the next task takes it over with a conditional UPDATE
(``expired_at < now``), so a killed worker never blocks a deployment for
longer than the expiry.

Trying to take a lock someone holds raises ``LockHeld`` naming the holder
(``Deployment 'zk' is being changed by task 42``), after waiting up to
``timeout`` seconds (BOSH: 10 s for deployments, 0 for cloud check).
If renewing fails (the lock expired and was taken over), the holding task
is asked to stop (``cancelling``) and a ``lost`` lock event is recorded.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .events import record_event
from .models import Lock, Task, TaskState

#: How often a waiting acquire retries.
RETRY_INTERVAL = 0.5


def expiration() -> timedelta:
    """Lock lifetime without renewal: 8 checkpoint intervals (BOSH: 240 s at 30 s)."""
    return timedelta(seconds=8 * settings.TASK_CHECKPOINT_INTERVAL)


class LockHeld(Exception):
    """The lock is held by another task (or, with ``task_id`` None, by a non-task caller)."""

    def __init__(self, name: str, task_id: int | None, message: str):
        super().__init__(message)
        self.name = name
        self.task_id = task_id
        self.message = message


def deployment_lock_name(deployment: str) -> str:
    return f"lock:deployment:{deployment}"


def _describe_holder(name: str, row: Lock | None) -> LockHeld:
    task_id = row.task_id if row else None
    if name.startswith("lock:deployment:"):
        what = f"Deployment '{name.removeprefix('lock:deployment:')}' is being changed"
    else:
        what = f"Lock '{name}' is held"
    holder = f"by task {task_id}" if task_id else "by another operation"
    return LockHeld(name, task_id, f"{what} {holder}")


def _task_of(ctx_or_task) -> tuple[Task | None, object | None]:
    """(task row, TaskContext or None) from either."""
    if ctx_or_task is None:
        return None, None
    if isinstance(ctx_or_task, Task):
        return ctx_or_task, None
    return ctx_or_task.task, ctx_or_task


def acquire(name: str, ctx_or_task=None, timeout: float = 0) -> Lock:
    """Take the lock ``name`` for a task (a ``TaskContext`` also gets it renewed).

    Raises ``LockHeld`` if another holder keeps it for ``timeout`` seconds.
    """
    task, ctx = _task_of(ctx_or_task)
    deadline = time.monotonic() + timeout
    while True:
        uid = uuid.uuid4().hex
        now = timezone.now()
        try:
            with transaction.atomic():
                lock = Lock.objects.create(
                    name=name, uid=uid, expired_at=now + expiration(), task=task
                )
            break
        except IntegrityError:
            taken = Lock.objects.filter(name=name, expired_at__lt=now).update(
                uid=uid, expired_at=now + expiration(), task=task
            )
            if taken:
                lock = Lock.objects.get(name=name)
                break
        if time.monotonic() >= deadline:
            raise _describe_holder(name, Lock.objects.filter(name=name).first())
        time.sleep(RETRY_INTERVAL)
    if ctx is not None:
        ctx._hold(lock, name)
    _lock_event("acquire", lock, task)
    return lock


def renew(lock: Lock) -> bool:
    """Push ``expired_at`` forward; False if the lock is no longer ours."""
    return bool(
        Lock.objects.filter(name=lock.name, uid=lock.uid).update(
            expired_at=timezone.now() + expiration()
        )
    )


def release(lock: Lock, ctx=None) -> None:
    """Give the lock up (no-op if it was already taken over)."""
    deleted, _ = Lock.objects.filter(name=lock.name, uid=lock.uid).delete()
    if ctx is not None:
        ctx._drop(lock)
    if deleted:
        _lock_event("release", lock, lock.task)


def lock_lost(lock: Lock, ctx) -> None:
    """Renewal failed: another task took the lock over; stop ours at its next checkpoint."""
    Task.objects.filter(id=ctx.task_id, state=TaskState.PROCESSING).update(
        state=TaskState.CANCELLING
    )
    _lock_event("lost", lock, ctx.task)


@contextmanager
def lock(name: str, ctx_or_task=None, timeout: float = 0) -> Iterator[Lock]:
    """``with lock(name, ctx): ...`` — acquire, and release on the way out."""
    task, ctx = _task_of(ctx_or_task)
    held = acquire(name, ctx_or_task, timeout=timeout)
    try:
        yield held
    finally:
        release(held, ctx)


def deployment_lock(deployment: str, ctx_or_task=None, timeout: float = 10) -> Iterator[Lock]:
    """The lock of a deployment (``lock:deployment:<name>``), as a context manager."""
    return lock(deployment_lock_name(deployment), ctx_or_task, timeout=timeout)


def holder_of(deployment: str) -> int | None:
    """The id of the task holding a deployment's lock (unexpired), if any."""
    row = (
        Lock.objects.filter(name=deployment_lock_name(deployment), expired_at__gte=timezone.now())
        .values_list("task_id", flat=True)
        .first()
    )
    return row


def _lock_event(action: str, lock: Lock, task: Task | None) -> None:
    record_event(
        action,
        "lock",
        lock.name,
        user=task.username if task else "",
        task=task,
        deployment=lock.name.removeprefix("lock:deployment:")
        if lock.name.startswith("lock:deployment:")
        else "",
    )
