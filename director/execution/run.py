"""What every step of one deploy (or delete) shares: the task, the cloud, the deployment.

``DeployRun`` carries the task context, the director's CPI, the deployment
row and (for deploys) the prepared plan; steps take it as their first
argument. ``parallel`` runs steps in threads the way BOSH's ThreadPool does:
every thread closes its own database connection when it ends, the first
failure stops new work from starting, and all failures are reported together
with the instance they belong to.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection

from cpi.base import CpiError
from director.events import record_event
from director.models import Deployment, Event, VariableSet
from director.runner import TaskCancelled, TaskContext
from opsconsole.errors import ServiceError

#: How many VMs are created or deleted at once (BOSH ``director.max_threads``).
DEFAULT_MAX_THREADS = 32


log = logging.getLogger(__name__)


def max_threads() -> int:
    return int(getattr(settings, "DIRECTOR_MAX_THREADS", DEFAULT_MAX_THREADS))


class StepFailed(Exception):
    """One or more instances failed; the message names each with its cause.

    ``zookeeper/3f1c... (2): VMCreationFailed: no datastore fits``
    """

    def __init__(self, failures: list[tuple[str, BaseException]]):
        self.failures = failures
        super().__init__("; ".join(f"{label}: {describe(exc)}" for label, exc in failures))


def describe(exc: BaseException) -> str:
    """``Type: message`` with the CPI error's BOSH type name (``VMCreationFailed``)."""
    if isinstance(exc, StepFailed):
        return str(exc)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"


@dataclass
class DeployRun:
    ctx: TaskContext
    cloud: Any
    deployment: Deployment
    prepared: Any = None  # director.execution.prepare.Prepared (deploys only)
    variable_set: VariableSet | None = None
    force: bool = False
    #: instance uuid -> ``director.rendering.RenderedInstance`` (deploys and errands)
    rendered: dict = field(default_factory=dict)
    #: (release, package, stemcell os, version) -> compiled package ref for the agent
    packages: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.deployment.name

    @property
    def user(self) -> str:
        return self.ctx.username

    def event(
        self,
        action: str,
        object_type: str,
        object_name: str = "",
        instance: Any = "",
        context: dict | None = None,
        parent: Event | None = None,
        error: BaseException | str | None = None,
    ) -> Event:
        return record_event(
            action,
            object_type,
            object_name,
            user=self.user,
            task=self.ctx.task,
            deployment=self.name,
            instance=instance,
            context=context,
            parent=parent,
            error=describe(error) if isinstance(error, BaseException) else error,
        )

    @contextmanager
    def span(
        self,
        action: str,
        object_type: str,
        object_name: str = "",
        instance: Any = "",
        context: dict | None = None,
    ) -> Iterator[dict]:
        """A start event now and an end event (``parent`` = start) on the way out.

        The yielded dict may set ``object_name`` (known only at the end, like
        a new VM's cid) and ``context`` for the end event.
        """
        start = self.event(action, object_type, object_name, instance, context)
        end: dict = {"object_name": object_name, "context": dict(context or {})}
        try:
            yield end
        except BaseException as exc:
            self.event(
                action,
                object_type,
                end["object_name"],
                instance,
                end["context"],
                parent=start,
                error=exc if not isinstance(exc, TaskCancelled) else "task cancelled",
            )
            raise
        self.event(action, object_type, end["object_name"], instance, end["context"], parent=start)


def _in_thread(fn: Callable[[], Any]) -> Any:
    close_old_connections()
    try:
        return fn()
    finally:
        connection.close()


def parallel(
    items: Sequence[Any],
    work: Callable[[Any], Any],
    label: Callable[[Any], str],
    limit: int | None = None,
    stop: threading.Event | None = None,
) -> list[Any]:
    """Run ``work(item)`` for each item, ``limit`` at a time, each thread with its own DB
    connection. After the first failure no new item starts; the ones in flight finish.
    Raises ``StepFailed`` listing every failure (``TaskCancelled`` wins when asked).
    """
    if not items:
        return []
    stop = stop or threading.Event()
    failures: list[tuple[str, BaseException]] = []
    results: list[Any] = [None] * len(items)
    guard = threading.Lock()

    def one(i: int, item: Any) -> None:
        if stop.is_set():
            return
        try:
            results[i] = work(item)
        except BaseException as exc:
            if not isinstance(exc, TaskCancelled | CpiError | ServiceError):
                # A bug, not an operator error: keep its traceback in the worker log.
                log.exception("unexpected error in %s", label(item))
            stop.set()
            with guard:
                failures.append((label(item), exc))

    size = max(1, min(limit or max_threads(), len(items)))
    if size == 1:
        for i, item in enumerate(items):
            one(i, item)
    else:
        with ThreadPoolExecutor(max_workers=size, thread_name_prefix="deploy") as pool:
            futures = [
                pool.submit(_in_thread, lambda i=i, item=item: one(i, item))
                for i, item in enumerate(items)
            ]
            for f in futures:
                f.result()
    cancelled = [exc for _, exc in failures if isinstance(exc, TaskCancelled)]
    if cancelled:
        raise cancelled[0]
    if failures:
        raise StepFailed(failures)
    return results
