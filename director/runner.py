"""Task lifecycle: create, run, cancel, and read the output of director tasks.

A service creates the ``Task`` row with ``create_task``; the row is queued
to Celery only once the surrounding transaction commits (a worker must
never see a task whose row does not exist yet). The thin Celery task calls
``run_task``, which:

1. flips the row ``queued -> processing`` with a conditional UPDATE (a row
   in any other state is refused: a redelivered message never runs a task
   twice; a task cancelled while queued just ends ``cancelled``);
2. starts a checkpoint thread writing ``checkpoint_time`` every
   ``TASK_CHECKPOINT_INTERVAL`` seconds (on its task, and on the queued
   tasks waiting for a free worker) and renewing the task's locks, so a
   dead worker shows up as ``timeout`` and its locks expire;
3. calls the handler registered for ``task.type`` with a ``TaskContext``;
4. ends the row ``done`` (result = the handler's return value), ``cancelled``
   (the handler raised ``TaskCancelled`` at a checkpoint) or ``error`` (the
   message, and an error line in the event log). No exception leaves the
   row ``processing``. A row that was recorded ``timeout`` meanwhile stays so.

A worker that dies leaves its row unfinished: ``expire_timed_out_tasks``
(Celery beat every ``TASK_TIMEOUT_SCAN_INTERVAL`` seconds, and every read of
a task) ends it ``timeout``, says why in its event and debug logs, and
releases its locks.

Handlers::

    @task_handler("update_stemcell")
    def update_stemcell(ctx: TaskContext) -> str:
        stage = ctx.stage("Update stemcell", total=2)
        with stage.track("Extracting stemcell archive"):
            ...
        ctx.checkpoint()          # raises TaskCancelled if cancel was asked
        with stage.track("Uploading stemcell to the cloud") as step:
            step.advance(50, status="importing")
            ...
        return "/stemcells/ubuntu-jammy/1.0"

A handler registers when its module is imported; the apps import their
handler modules at start (``DirectorConfig.ready``, ``TilesConfig.ready``),
so every process (web, worker, command) knows them all.

The logs a handler writes (event log, debug and CPI logs) and reading them
back live in ``director.tasklog``.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Value
from django.db.models.functions import Concat
from django.utils import timezone

from opsconsole.redaction import redact_text

from . import locks
from .models import (
    ACTIVE_STATES,
    CANCELLABLE_STATES,
    RUNNING_STATES,
    TERMINAL_STATES,
    Lock,
    Task,
    TaskState,
)

# OUTPUT_TYPES, Output, read_output and task_dir are re-exported: director.views,
# director.management and tests read task logs as ``runner.read_output``; new
# code imports ``director.tasklog``.
from .tasklog import (  # noqa: F401
    ERROR_CODE_GENERIC,
    ERROR_CODE_LOCK,
    OUTPUT_TYPES,
    CpiLog,
    EventLog,
    LineFile,
    Output,
    Stage,
    TaskCancelled,
    debug_line,
    error_message,
    log_path,
    read_output,
    task_dir,
)

log = logging.getLogger(__name__)


class TaskNotCancellable(Exception):
    """Cancel was asked of a task that already finished (API: 409)."""


class TaskNotRunnable(Exception):
    """``run_task`` found the row in a state it does not start from."""


HandlerFn = Callable[["TaskContext"], Any]
_HANDLERS: dict[str, HandlerFn] = {}


def task_handler(task_type: str) -> Callable[[HandlerFn], HandlerFn]:
    """Register ``fn(ctx) -> result`` as the handler of tasks of ``task_type``."""

    def register(fn: HandlerFn) -> HandlerFn:
        if task_type in _HANDLERS and _HANDLERS[task_type] is not fn:
            raise RuntimeError(f"two handlers registered for task type {task_type!r}")
        _HANDLERS[task_type] = fn
        return fn

    return register


def handler_for(task_type: str) -> HandlerFn | None:
    """The handler registered for ``task_type``.

    Handlers register when their modules are imported, which the apps do
    at start (``DirectorConfig.ready``, ``TilesConfig.ready``).
    """
    return _HANDLERS.get(task_type)


# --------------------------------------------------------------------------- create


def create_task(
    type: str,
    description: str,
    username: str,
    deployment_name: str | None = None,
    args: dict | None = None,
    context_id: str = "",
    enqueue: bool = True,
) -> Task:
    """Create a queued task row; it is sent to a worker when the transaction commits.

    ``enqueue=False`` leaves it off the queue: the caller runs it itself
    (``run_task`` in the same worker, as an installation step does), so no
    other worker can race for it and refuse it as already running.
    """
    task = Task.objects.create(
        type=type,
        description=description,
        username=username or "",
        deployment_name=deployment_name or "",
        args=args or {},
        context_id=context_id or "",
        checkpoint_time=timezone.now(),
    )
    if enqueue:
        transaction.on_commit(lambda: _enqueue(task.id))
    return task


#: Sends a task id to the workers; ``director.tasks`` installs the Celery one
#: (it imports this module, so the runner cannot import it back).
_sender: Callable[[int], Any] | None = None


def set_sender(send: Callable[[int], Any]) -> None:
    """Install the function that hands a task id to the workers (``director.tasks``)."""
    global _sender
    _sender = send


def enqueue(task_id: int) -> None:
    """Send a task to the workers; if the broker is unreachable the task ends in error."""
    try:
        if _sender is None:
            raise RuntimeError("no task queue is installed (director.tasks was not loaded)")
        _sender(task_id)
    except Exception as exc:  # the broker is down: say so rather than stay queued forever
        log.error("could not queue task %s: %s", task_id, exc)
        Task.objects.filter(id=task_id, state=TaskState.QUEUED).update(
            state=TaskState.ERROR,
            finished_at=timezone.now(),
            result=f"could not queue the task (is the task queue running?): {exc}",
        )


def _enqueue(task_id: int) -> None:
    # ``create_task``'s ``enqueue`` argument shadows the function's name there.
    enqueue(task_id)


# --------------------------------------------------------------------------- context


@dataclass
class _HeldLock:
    lock: Any  # director.models.Lock
    description: str


class TaskContext:
    """What a handler gets: its task and arguments, the logs, and checkpoints.

    * ``task``, ``args``, ``username``, ``deployment_name``
    * ``stage(name, tags, total)`` -> ``Stage`` (``event_log`` for warnings/errors)
    * ``debug(message)`` -> the debug log (secrets redacted)
    * ``cpi_log`` -> sink for the CPI's request/response log
    * ``checkpoint()`` -> raises ``TaskCancelled`` when cancel was asked
    * ``write_result(obj)`` -> one JSON line of ``bosh task --result`` output
    * ``locks`` -> locks held by the task, renewed by the checkpoint thread
    * ``add_cleanup(fn)`` -> called when the task ends (the cloud's logout)
    """

    def __init__(self, task: Task):
        self.task = task
        self.args: dict = dict(task.args or {})
        self.username = task.username
        self.deployment_name = task.deployment_name
        self.event_log = EventLog(task)
        self._debug = LineFile(log_path(task.id, "debug"))
        self.cpi_log = CpiLog(log_path(task.id, "cpi"))
        self.locks: list[_HeldLock] = []
        self._locks_guard = threading.Lock()
        self._cleanups: list[Callable[[], Any]] = []
        self._cloud = None  # set by director.cloud.cloud_for_director

    @property
    def task_id(self) -> int:
        return self.task.id

    def stage(self, name: str, tags: list[str] | None = None, total: int | None = None) -> Stage:
        return self.event_log.stage(name, tags, total)

    def warning(self, message: str) -> None:
        self.debug(f"WARN {message}")
        self.event_log.warning(message)

    def debug(self, message: str) -> None:
        self._debug.append(debug_line(message))

    def add_cleanup(self, fn: Callable[[], Any]) -> None:
        """Call ``fn`` when the task ends, however it ends (last added, first called)."""
        self._cleanups.append(fn)

    def checkpoint(self) -> None:
        """A safe point to stop: raise ``TaskCancelled`` if the task is being cancelled."""
        state = Task.objects.filter(id=self.task.id).values_list("state", flat=True).first()
        if state in (TaskState.CANCELLING, TaskState.CANCELLED, TaskState.TIMEOUT):
            raise TaskCancelled(f"task {self.task.id} cancelled")

    def write_result(self, obj: Any) -> None:
        """Append one line to the result output (JSON unless given a string)."""
        line = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True, default=str)
        Task.objects.filter(id=self.task.id).update(
            result_output=Concat("result_output", Value(line + "\n"))
        )

    # locks are registered by director.locks when acquired for this task
    def _hold(self, lock, description: str) -> None:
        with self._locks_guard:
            self.locks.append(_HeldLock(lock, description))

    def _drop(self, lock) -> None:
        with self._locks_guard:
            self.locks = [h for h in self.locks if h.lock.uid != lock.uid]


# --------------------------------------------------------------------------- checkpoints


class _Checkpointer(threading.Thread):
    """Writes ``checkpoint_time`` and renews the task's locks until stopped."""

    def __init__(self, ctx: TaskContext, interval: float):
        super().__init__(name=f"task-{ctx.task_id}-checkpoint", daemon=True)
        self.ctx = ctx
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                self.beat()
        finally:
            connection.close()

    def beat(self) -> None:
        try:
            now = timezone.now()
            Task.objects.filter(id=self.ctx.task_id, state__in=RUNNING_STATES).update(
                checkpoint_time=now
            )
            # A busy worker vouches for the queue: tasks waiting for a free worker are not lost.
            Task.objects.waiting_for_a_worker(now).update(checkpoint_time=now)
            with self.ctx._locks_guard:
                held = list(self.ctx.locks)
            for h in held:
                if not locks.renew(h.lock):
                    self.ctx.debug(f"lost lock {h.lock.name}: asking the task to stop")
                    locks.lock_lost(h.lock, self.ctx)
                    self.ctx._drop(h.lock)
        except Exception as exc:  # a transient DB error must not kill the heartbeat
            log.warning("task %s checkpoint failed: %s", self.ctx.task_id, exc)


# --------------------------------------------------------------------------- run


def _finish(task_id: int, state: str, result: str) -> bool:
    """Write the end state; retried once on a fresh connection if the first write fails.

    False if the row had ended already: recorded ``timeout`` while this worker
    was silent (a finished task never changes again).
    """
    for attempt in (1, 2):
        try:
            return bool(
                Task.objects.filter(id=task_id, state__in=ACTIVE_STATES).update(
                    state=state, result=result, finished_at=timezone.now()
                )
            )
        except Exception:
            if attempt == 2:
                raise
            connection.close()


def run_task(task_id: int) -> str:
    """Run a queued task to its end; returns the end state. See the module docstring."""
    now = timezone.now()
    started = Task.objects.filter(id=task_id, state=TaskState.QUEUED).update(
        state=TaskState.PROCESSING, started_at=now, checkpoint_time=now
    )
    if not started:
        ended = Task.objects.filter(id=task_id, state=TaskState.CANCELLING).update(
            state=TaskState.CANCELLED, finished_at=now, result="task cancelled"
        )
        if ended:
            return TaskState.CANCELLED
        state = Task.objects.filter(id=task_id).values_list("state", flat=True).first()
        log.warning("task %s not run: its state is %s, not queued", task_id, state)
        raise TaskNotRunnable(f"task {task_id} is {state or 'missing'}, not queued")

    task = Task.objects.get(id=task_id)
    ctx = TaskContext(task)
    ctx.debug(f"Starting task {task.id}: {task.type} ({task.description}) by {task.username}")
    beat = _Checkpointer(ctx, settings.TASK_CHECKPOINT_INTERVAL)
    beat.start()
    state, result = TaskState.ERROR, "task ended unexpectedly"
    try:
        handler = handler_for(task.type)
        if handler is None:
            raise RuntimeError(f"no handler for task type {task.type!r}")
        ctx.checkpoint()
        value = handler(ctx)
        state, result = TaskState.DONE, "" if value is None else str(value)
    except TaskCancelled:
        state, result = TaskState.CANCELLED, "task cancelled"
        ctx.debug("Task cancelled")
    except BaseException as exc:
        result = error_message(exc)
        ctx.debug(f"Task failed: {result}\n{redact_text(traceback.format_exc())}")
        try:
            code = ERROR_CODE_LOCK if isinstance(exc, locks.LockHeld) else ERROR_CODE_GENERIC
            ctx.event_log.error(result, code=code)
        except Exception as log_exc:
            log.error("task %s: could not write the error event: %s", task_id, log_exc)
        if not isinstance(exc, Exception):
            _finish(task_id, TaskState.ERROR, result)
            raise
    finally:
        beat.stopped.set()
        beat.join(timeout=5)
        _release_all(ctx)
    if not _finish(task_id, state, result):
        state = Task.objects.filter(id=task_id).values_list("state", flat=True).first() or state
        ctx.debug(f"Task {task_id} had already ended {state}; its run ended after that")
        return state
    ctx.debug(f"Task {task_id} ended: {state}")
    return state


def _release_all(ctx: TaskContext) -> None:
    for fn in reversed(ctx._cleanups):
        try:
            fn()
        except Exception as exc:
            log.warning("task %s: cleanup %r failed: %s", ctx.task_id, fn, exc)

    for held in list(ctx.locks):
        try:
            locks.release(held.lock, ctx)
        except Exception as exc:
            log.warning("task %s: releasing %s failed: %s", ctx.task_id, held.lock.name, exc)


# --------------------------------------------------------------------------- timeouts


def expire_timed_out_tasks(tasks=None, now=None) -> list[int]:
    """End ``timeout`` every task of ``tasks`` (default: all) that ``Task.timeout_reason`` times out.

    Celery beat runs this every ``TASK_TIMEOUT_SCAN_INTERVAL`` seconds
    (``director.tasks.expire_timed_out_tasks``), so a task whose worker died
    is final within its timeout plus one interval, read or not; reading a
    task (``services.list_tasks``/``get_task``) runs it too. Each timed-out
    task gets the reason as its result, as an error in its event log and a
    line in its debug log, and its locks are released (the next deploy of
    its deployment need not wait for them to expire). The UPDATE is
    conditional on the row being unchanged since it was read, so a
    checkpoint that lands meanwhile wins, and of two concurrent scans only
    one records the timeout. Returns the ids of the tasks it ended.
    """
    now = now or timezone.now()
    candidates = (tasks if tasks is not None else Task.objects.all()).filter(
        state__in=ACTIVE_STATES
    )
    ended = []
    for task in candidates.only(
        "id", "state", "checkpoint_time", "started_at", "created_at", "username"
    ):
        reason = task.timeout_reason(now)
        if reason is None:
            continue
        if not Task.objects.filter(
            id=task.id, state=task.state, checkpoint_time=task.checkpoint_time
        ).update(state=TaskState.TIMEOUT, finished_at=now, result=reason):
            continue  # it moved on meanwhile (started, checkpointed, ended)
        ended.append(task.id)
        log.warning("task %s: %s", task.id, reason)
        _record_timeout(task, reason)
    return ended


def _record_timeout(task: Task, reason: str) -> None:
    """Say why in the task's logs and release its locks (best effort: the row is final)."""
    for attempt in (1, 2, 3):  # a worker still writing may take the next seq first
        try:
            with transaction.atomic():
                EventLog(task).error(reason)
            break
        except IntegrityError:
            if attempt == 3:
                log.warning("task %s: could not write the timeout event", task.id)
    try:
        LineFile(log_path(task.id, "debug")).append(debug_line(f"Task {task.id} {reason}"))
    except OSError as exc:
        log.warning("task %s: could not write the debug log: %s", task.id, exc)
    for lock in Lock.objects.filter(task_id=task.id).select_related("task"):
        locks.release(lock)


#: Task types that change a deployment: one at a time per deployment.
CHANGING_TYPES = (
    "update_deployment",
    "delete_deployment",
    "run_errand",
    "change_instance_state",
    "cck_scan",
    "cck_apply_resolutions",
)


def changing_task(deployment: str) -> Task | None:
    """The queued or running task that is changing ``deployment``, if any.

    Deploy, delete and errand runs ask this before queueing, so a second one
    is refused at once naming the task, instead of waiting for the lock.
    Timed-out tasks are recorded first, so a dead worker blocks nothing.
    """
    expire_timed_out_tasks(Task.objects.filter(deployment_name=deployment))
    return (
        Task.objects.active()
        .filter(deployment_name=deployment, type__in=CHANGING_TYPES)
        .order_by("id")
        .first()
    )


# --------------------------------------------------------------------------- cancel


def cancel_task(task_id: int) -> Task:
    """Cancel: ``queued`` ends ``cancelled`` at once, ``processing`` becomes ``cancelling``.

    Raises ``Task.DoesNotExist`` for an unknown id and ``TaskNotCancellable``
    (API 409) for a task in any other state.
    """
    now = timezone.now()
    if Task.objects.filter(id=task_id, state=TaskState.QUEUED).update(
        state=TaskState.CANCELLED, finished_at=now, result="task cancelled"
    ):
        return Task.objects.get(id=task_id)
    if Task.objects.filter(id=task_id, state=TaskState.PROCESSING).update(
        state=TaskState.CANCELLING
    ):
        return Task.objects.get(id=task_id)
    task = Task.objects.get(id=task_id)
    state = task.effective_state
    if state in CANCELLABLE_STATES:  # raced with a state change: try once more
        return cancel_task(task_id)
    raise TaskNotCancellable(f"Task {task_id} is {state} and cannot be cancelled")


def is_terminal(task: Task) -> bool:
    return task.effective_state in TERMINAL_STATES
