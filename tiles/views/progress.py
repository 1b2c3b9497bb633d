"""An installation's progress, read from its steps' director event logs (pure: no I/O).

The installation page is the one place to watch an Apply Changes. What it
shows is folded here from the steps (``InstallationStep``) and the event
logs of their director tasks (BOSH's event format, ``director.runner``):

- per step, a percent: a finished step is full, a pending one empty, a
  running or failed one has the share of its task's tracked steps done (a
  failed step keeps the progress it reached, so its bar is never drawn
  full);
- per task, its stages with their instance steps (``web/<uuid> (0)
  (canary)``) and their progress;
- the timeline: one bar per instance step of the deploy, delete and errand
  tasks, from its start to its end (or now), canaries marked, failures red;
- the failure summary: which step failed, on which instance, the message,
  and the event line of the task that says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Step kinds whose tasks act on instances (their steps go on the timeline).
INSTANCE_KINDS = ("deploy", "delete", "errand")
#: Step states after which a step never changes again.
DONE_STATES = ("succeeded", "skipped")

CANARY_SUFFIX = " (canary)"


def duration_text(seconds: float | None) -> str:
    """``45s``, ``3m 05s``, ``1h 02m 03s``."""
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


@dataclass
class InstanceStep:
    """One tracked step of a stage: an instance being created, updated, deleted..."""

    stage: str
    tags: tuple[str, ...]
    index: int
    name: str
    state: str = "started"
    #: Progress reached: 100 when finished; a failed step keeps what it had reached.
    progress: int = 0
    status: str = ""
    error: str = ""
    started: float | None = None
    ended: float | None = None
    #: The event line (``TaskEvent.seq``) that failed it.
    failed_seq: int | None = None
    #: From its start to its end, or to the time the events were folded.
    elapsed_text: str = ""

    @property
    def canary(self) -> bool:
        return self.name.endswith(CANARY_SUFFIX)

    @property
    def instance(self) -> str:
        """The name without the canary mark: ``web/<uuid> (0)``."""
        return self.name[: -len(CANARY_SUFFIX)] if self.canary else self.name

    @property
    def failed(self) -> bool:
        return self.state == "failed"

    @property
    def finished(self) -> bool:
        return self.state == "finished"

    def elapsed(self, now: float) -> str:
        if self.started is None:
            return ""
        return duration_text((self.ended if self.ended is not None else now) - self.started)


@dataclass
class StageProgress:
    name: str
    tags: tuple[str, ...]
    total: int = 0
    steps: list[InstanceStep] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.name} {', '.join(self.tags)}".strip()

    @property
    def finished(self) -> int:
        return sum(1 for s in self.steps if s.finished)

    @property
    def failed(self) -> bool:
        return any(s.failed for s in self.steps)

    @property
    def total_steps(self) -> int:
        return max(self.total, len(self.steps), 1)

    @property
    def percent(self) -> int:
        return min(100, int(sum(s.progress for s in self.steps) / self.total_steps))

    @property
    def state(self) -> str:
        if self.failed:
            return "failed"
        return "finished" if self.finished >= self.total_steps else "in_progress"


@dataclass
class TaskProgress:
    """A director task's event log, folded."""

    task_id: int
    stages: list[StageProgress]
    errors: list[tuple[int, str]]  # (seq, message) of the task's error lines
    warnings: list[str]

    @property
    def percent(self) -> int:
        total = sum(st.total_steps for st in self.stages)
        if not total:
            return 0
        return min(100, int(sum(s.progress for st in self.stages for s in st.steps) / total))

    @property
    def steps(self) -> list[InstanceStep]:
        return [s for st in self.stages for s in st.steps]


def fold_events(
    task_id: int, events: Iterable[tuple[int, Mapping[str, Any]]], now: float | None = None
) -> TaskProgress:
    """Fold ``(seq, event)`` lines of one task into stages and their steps."""
    stages: dict[tuple, StageProgress] = {}
    steps: dict[tuple, InstanceStep] = {}
    errors: list[tuple[int, str]] = []
    warnings: list[str] = []
    for seq, e in events:
        if isinstance(e.get("error"), Mapping):
            errors.append((seq, str(e["error"].get("message", ""))))
            continue
        if e.get("type") in ("warning", "deprecation"):
            warnings.append(str(e.get("message", "")))
            continue
        if "stage" not in e:
            continue
        tags = tuple(str(t) for t in e.get("tags") or [])
        key = (e["stage"], tags)
        stage = stages.get(key)
        if stage is None:
            stage = stages[key] = StageProgress(str(e["stage"]), tags)
        try:
            stage.total = max(stage.total, int(e.get("total") or 0))
            index = int(e.get("index") or 0)
            progress = int(e.get("progress") or 0)
        except (TypeError, ValueError):
            continue
        step = steps.get((key, index))
        if step is None:
            step = steps[(key, index)] = InstanceStep(
                stage.name, tags, index, str(e.get("task") or "")
            )
            stage.steps.append(step)
        state = str(e.get("state") or step.state)
        when = e.get("time") if isinstance(e.get("time"), int | float) else None
        data = e.get("data") if isinstance(e.get("data"), Mapping) else {}
        if state == "failed":
            step.failed_seq = seq
            step.error = str(data.get("error") or "")
        elif state == "finished":
            step.progress = 100
        else:
            step.progress = max(step.progress, min(99, progress))
        step.state = state
        if when is not None:
            if step.started is None:
                step.started = when
            if state in ("finished", "failed"):
                step.ended = when
        if data.get("status"):
            step.status = str(data["status"])
    for step in steps.values():
        step.elapsed_text = step.elapsed(now if now is not None else (step.ended or 0))
    return TaskProgress(task_id, list(stages.values()), errors, warnings)


@dataclass
class StepProgress:
    """An installation step with its task's progress."""

    step: Any  # tiles.models.InstallationStep
    task: TaskProgress | None
    percent: int

    @property
    def state(self) -> str:
        return self.step.state


def step_progress(
    steps: list, events: Mapping[int, list], now: float | None = None
) -> list[StepProgress]:
    out = []
    for st in steps:
        task = fold_events(st.task_id, events.get(st.task_id, []), now) if st.task_id else None
        if st.state in DONE_STATES:
            percent = 100
        elif st.state == "pending":
            percent = 0
        else:  # running, failed: what its task reached
            percent = task.percent if task is not None else 0
        out.append(StepProgress(st, task, percent))
    return out


def overall_percent(progress: list[StepProgress]) -> int:
    if not progress:
        return 0
    return int(sum(p.percent for p in progress) / len(progress))


@dataclass
class Failure:
    """What the "changes not applied" box says."""

    step: Any
    instance: str = ""
    stage: str = ""
    message: str = ""
    task_id: int | None = None
    seq: int | None = None


def failure_of(progress: list[StepProgress], installation_message: str = "") -> Failure | None:
    """The first failed step, and the instance step of its task that failed (if one did)."""
    for p in progress:
        if p.state != "failed":
            continue
        failure = Failure(p.step, message=p.step.message or installation_message)
        if p.task is not None:
            failure.task_id = p.task.task_id
            failed = [s for s in p.task.steps if s.failed]
            if failed:
                first = min(failed, key=lambda s: s.failed_seq or 0)
                failure.instance = first.instance
                failure.stage = StageProgress(first.stage, first.tags).title
                failure.seq = first.failed_seq
                failure.message = first.error or failure.message
            elif p.task.errors:
                failure.seq, text = p.task.errors[0]
                failure.message = failure.message or text
        return failure
    return None


# --------------------------------------------------------------------------- timeline

#: Geometry of the timeline picture, in SVG user units.
LABEL_WIDTH = 300
BAR_WIDTH = 560
ROW_HEIGHT = 20
TOP = 24
MAX_LABEL = 46
#: At most this many bars; the failed ones are always among them.
MAX_BARS = 200


@dataclass
class TimelineBar:
    label: str
    title: str
    x: float
    y: float
    width: float
    state: str
    canary: bool
    text_y: float


@dataclass
class Timeline:
    bars: list[TimelineBar]
    width: int
    height: int
    label_width: int
    end_x: float
    span_text: str
    ticks: list[tuple[float, str]]
    #: Instance steps left out (beyond ``MAX_BARS``).
    hidden: int = 0


def timeline(progress: list[StepProgress], now: float) -> Timeline | None:
    """One bar per instance step of the deploy, delete and errand tasks, on a common clock."""
    items: list[tuple[StepProgress, InstanceStep]] = [
        (p, s)
        for p in progress
        if p.task is not None and p.step.kind in INSTANCE_KINDS
        for s in p.task.steps
        if s.started is not None and s.stage != "Preparing deployment"
    ]
    if not items:
        return None
    hidden = max(0, len(items) - MAX_BARS)
    if hidden:  # a big deploy: the failures and the latest steps, not a page-long picture
        items.sort(key=lambda i: (i[1].failed, i[1].started), reverse=True)
        items = items[:MAX_BARS]
    t0 = min(s.started for _, s in items)
    t1 = max(max((s.ended if s.ended is not None else now) for _, s in items), t0 + 1)
    scale = BAR_WIDTH / (t1 - t0)
    bars = []
    for row, (p, s) in enumerate(sorted(items, key=lambda i: (i[1].started, i[1].index))):
        end = s.ended if s.ended is not None else now
        label = f"{s.stage}: {s.instance}"
        if len(label) > MAX_LABEL:
            label = label[: MAX_LABEL - 1] + "…"
        state = "failed" if s.failed else ("finished" if s.finished else "running")
        title = (
            f"{p.step.product_name or p.step.label} · {s.stage} {', '.join(s.tags)}: {s.name}"
            f" · {state} · {s.elapsed(now)}" + (f" · {s.error}" if s.error else "")
        )
        y = TOP + row * ROW_HEIGHT
        bars.append(
            TimelineBar(
                label=label,
                title=title,
                x=LABEL_WIDTH + (s.started - t0) * scale,
                y=y + 3,
                width=max(2.0, (end - s.started) * scale),
                state=state,
                canary=s.canary,
                text_y=y + 14,
            )
        )
    ticks = [(LABEL_WIDTH + BAR_WIDTH * f, duration_text((t1 - t0) * f)) for f in (0, 0.5, 1)]
    return Timeline(
        bars=bars,
        width=LABEL_WIDTH + BAR_WIDTH + 50,
        height=TOP + len(bars) * ROW_HEIGHT + 8,
        label_width=LABEL_WIDTH,
        end_x=LABEL_WIDTH + BAR_WIDTH,
        span_text=duration_text(t1 - t0),
        ticks=ticks,
        hidden=hidden,
    )


def elapsed(started: datetime | None, finished: datetime | None, now: datetime) -> str:
    if started is None:
        return ""
    return duration_text(((finished or now) - started).total_seconds())
