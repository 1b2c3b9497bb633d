"""A task's logs: the event log (``TaskEvent`` rows in stages and steps), the debug
and CPI log files, and reading them back (``read_output``).

The event log is written line by line as rows, never kept in memory; stage
trackers are thread-safe, so parallel steps (canaries, ``max_in_flight``
batches) may share a stage. The debug and CPI logs are append-only files
under ``TASK_LOG_DIR/<id>/``, flushed line by line (``tail -f`` works), with
secrets redacted. ``director.runner`` runs tasks and hands each handler
these logs in its ``TaskContext``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from opsconsole.redaction import redact, redact_text

from .models import Task, TaskEvent

#: Error codes in the event log's ``error`` entries (BOSH's director error codes).
ERROR_CODE_GENERIC = 100
ERROR_CODE_LOCK = 100100


class TaskCancelled(Exception):
    """Raised by ``TaskContext.checkpoint`` when the task was asked to stop."""


def error_message(exc: BaseException) -> str:
    message = str(exc).strip()
    if not message:
        message = type(exc).__name__
    return redact_text(message)


# --------------------------------------------------------------------------- paths


def task_dir(task_id: int) -> Path:
    return Path(settings.TASK_LOG_DIR) / str(task_id)


def log_path(task_id: int, kind: str) -> Path:
    return task_dir(task_id) / kind


def _now_ts() -> int:
    return int(time.time())


# --------------------------------------------------------------------------- event log


class EventLog:
    """Appends BOSH-format event lines to a task as ``TaskEvent`` rows, thread-safely."""

    def __init__(self, task: Task):
        self.task = task
        self._lock = threading.Lock()
        last = TaskEvent.objects.filter(task=task).order_by("-seq").values_list("seq", flat=True)
        self._seq = last.first() or 0

    def write(self, entry: dict) -> TaskEvent:
        entry = {"time": _now_ts(), **entry}
        with self._lock:
            self._seq += 1
            seq = self._seq
        return TaskEvent.objects.create(task_id=self.task.id, seq=seq, data=redact(entry))

    def stage(self, name: str, tags: list[str] | None = None, total: int | None = None) -> Stage:
        return Stage(self, name, tags or [], total)

    def warning(self, message: str) -> None:
        self.write({"type": "warning", "message": message})

    def error(self, message: str, code: int = ERROR_CODE_GENERIC) -> None:
        self.write({"error": {"code": code, "message": message}})


class Stage:
    """An event-log stage (``Updating instance`` with tags ``[zookeeper]``).

    Each ``track(name)`` is one task of the stage, numbered from 1 in the
    order they start; ``total`` is how many the stage will have (it can be
    raised later with ``set_total``). Progress of a step is 0 when it
    starts, 100 when it finishes, and what ``advance`` says in between.
    """

    def __init__(self, log: EventLog, name: str, tags: list[str], total: int | None):
        self.log = log
        self.name = name
        self.tags = list(tags)
        self.total = total
        self._index = 0
        self._lock = threading.Lock()

    def set_total(self, total: int) -> None:
        self.total = total

    def _next_index(self) -> int:
        with self._lock:
            self._index += 1
            if self.total is None or self._index > self.total:
                self.total = self._index if self.total is None else max(self.total, self._index)
            return self._index

    def _entry(self, task: str, index: int, state: str, progress: int, data=None) -> dict:
        entry = {
            "stage": self.name,
            "tags": self.tags,
            "total": self.total,
            "task": task,
            "index": index,
            "state": state,
            "progress": progress,
        }
        if data:
            entry["data"] = data
        return entry

    @contextmanager
    def track(self, task_name: str) -> Iterator[StepTracker]:
        """Emit ``started``, then ``finished`` or (on an exception, re-raised) ``failed``."""
        index = self._next_index()
        step = StepTracker(self, task_name, index)
        self.log.write(self._entry(task_name, index, "started", 0))
        try:
            yield step
        except BaseException as exc:
            message = error_message(exc) if not isinstance(exc, TaskCancelled) else "cancelled"
            self.log.write(
                self._entry(task_name, index, "failed", 100, {"error": message}),
            )
            raise
        self.log.write(self._entry(task_name, index, "finished", 100))


class StepTracker:
    """The handle of one tracked step: report progress within it."""

    def __init__(self, stage: Stage, name: str, index: int):
        self.stage = stage
        self.name = name
        self.index = index
        self.progress = 0

    def advance(self, percent: int, status: str | None = None) -> None:
        """Move this step's progress by ``percent`` (clamped to 99) with an optional status."""
        self.progress = max(0, min(99, self.progress + int(percent)))
        self.stage.log.write(
            self.stage._entry(
                self.name,
                self.index,
                "in_progress",
                self.progress,
                {"status": status} if status else None,
            )
        )


# --------------------------------------------------------------------------- log files


class LineFile:
    """An append-only log file of a task; every line is flushed at once (tail -f works)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, line: str) -> None:
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line if line.endswith("\n") else line + "\n")


class CpiLog:
    """The CPI log sink of a task: one JSON object per line, secrets redacted.

    Callable with a dict (the CPI wrapper logs each request/response as a
    dict) or a string; both end up as JSON lines in ``TASK_LOG_DIR/<id>/cpi``.
    """

    def __init__(self, path: Path):
        self._file = LineFile(path)

    def write(self, entry: Any) -> None:
        if isinstance(entry, str):
            entry = {"message": entry}
        entry = {"time": round(time.time(), 3), **dict(entry)}
        self._file.append(json.dumps(redact(entry), sort_keys=False, default=str))

    __call__ = write


def debug_line(message: str) -> str:
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    thread = threading.current_thread().name
    return f"{stamp} [{thread}] {redact_text(str(message))}"


# --------------------------------------------------------------------------- output


OUTPUT_TYPES = ("event", "debug", "cpi", "result")


@dataclass(frozen=True)
class Output:
    """A slice of a task log: ``events`` (for type=event) or ``text``; read on from ``next``."""

    type: str
    after: int
    next: int
    events: list[dict] | None = None
    text: str | None = None


def read_output(task: Task, type: str = "event", after: int = 0, limit: int = 1000) -> Output:
    """Read a task log after ``after``: event seq for ``event``, byte offset otherwise.

    ``event``: up to ``limit`` event lines with ``seq > after`` (each dict
    gets its ``seq``); ``debug``/``cpi``: the file's bytes from offset
    ``after`` (at most 1 MiB per call, cut at a line end); ``result``: the
    result output from character ``after``.
    """
    after = max(0, int(after or 0))
    if type == "event":
        rows = list(
            TaskEvent.objects.filter(task=task, seq__gt=after)
            .order_by("seq")
            .values_list("seq", "data")[:limit]
        )
        events = [{**data, "seq": seq} for seq, data in rows]
        return Output(type, after, rows[-1][0] if rows else after, events=events)
    if type == "result":
        text = task.result_output[after:]
        return Output(type, after, after + len(text), text=text)
    if type in ("debug", "cpi"):
        path = log_path(task.id, type)
        if not path.exists():
            return Output(type, after, after, text="")
        with open(path, "rb") as fh:
            fh.seek(after)
            chunk = fh.read(1 << 20)
        if len(chunk) == 1 << 20 and b"\n" in chunk:
            chunk = chunk[: chunk.rindex(b"\n") + 1]
        return Output(type, after, after + len(chunk), text=chunk.decode("utf-8", "replace"))
    raise ValueError(f"type: must be one of {', '.join(OUTPUT_TYPES)}")
