"""The resurrection timeline: resurrection events folded into outages, laid out as an SVG.

A ``ResurrectionEvent`` is one line (detected, resurrect, meltdown,
recreated, failed...); an operator wants to see the outages those lines
describe: when each instance's VM went down, when it came back, or why it
did not. ``outages`` folds the events of each instance, oldest first, into
``Outage`` spans:

* a ``detected`` event opens one (the health monitor raised the vm_health
  alert at that instant);
* ``recreated`` closes it as **recovered**; its start is the detection, read
  back from ``seconds_to_recover`` when the detection is older than the
  events shown;
* ``failed`` marks it **failed** at that instant; a later ``resurrect`` (the
  retry) makes it in progress again;
* an outage still open whose vm_health alert has been resolved (the VM came
  back by itself, someone deployed) ends **cleared** at the resolution;
* anything else is **in progress**: drawn up to now.

``timeline`` lays them out, one lane per instance (lanes of a deployment
together), with the deployment's meltdown periods (its ``meltdown`` alerts,
raised to resolved) shaded behind its lanes and a time axis with local
times. The page's template draws it as plain SVG (no script, CSP-safe);
every bar carries a ``<title>`` and the same outages are listed in a table.
Nothing here writes; two queries read the alerts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from director.models import Alert, AlertCategory, Decision, ResurrectionEvent

#: Geometry of the picture, in SVG user units.
LABEL_WIDTH = 230
PLOT_WIDTH = 620
RIGHT = 40
LANE_HEIGHT = 22
BAR_HEIGHT = 14
TOP = 26
BOTTOM = 8
MIN_BAR = 3.0
MAX_LABEL = 34
#: At most this many lanes: the instances with the latest outages.
MAX_LANES = 40
#: The axis never spans less than this: a 3 s outage is not drawn page-wide.
MIN_SPAN = timedelta(seconds=60)
#: Tick steps the axis may use, in seconds (it takes the smallest giving at most 8 ticks).
TICK_STEPS = (
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
    86400, 172800, 604800,
)  # fmt: skip

RECOVERED, FAILED, IN_PROGRESS, CLEARED = "recovered", "failed", "in-progress", "cleared"


@dataclass
class Outage:
    """One instance down, from detection to recovery (``ended`` None while in progress)."""

    deployment: str
    instance: str
    started: datetime
    ended: datetime | None = None
    state: str = IN_PROGRESS
    cause: str = ""
    #: The resurrector's latest decision about it (resurrect, meltdown, disabled...).
    decision: str = ""
    old_cid: str = ""
    new_cid: str = ""
    task_id: int | None = None
    seconds_to_recover: float | None = None
    message: str = ""
    #: How long it was down, as the table shows it (set by ``timeline``).
    down_text: str = ""

    def seconds(self, now: datetime) -> float:
        return max(0.0, ((self.ended or now) - self.started).total_seconds())


def outages(events: Iterable[ResurrectionEvent], now: datetime) -> list[Outage]:
    """The outages ``events`` describe, oldest first (see the module docstring)."""
    ordered = sorted((e for e in events if e.instance), key=lambda e: (e.created_at, e.id or 0))
    found: list[Outage] = []
    current: dict[tuple[str, str], Outage] = {}
    #: Outages still open when a new detection of their instance came: they ended unseen.
    superseded: list[tuple[Outage, datetime]] = []
    for e in ordered:
        key = (e.deployment, e.instance)
        outage = current.get(key)
        if outage is not None and e.decision == Decision.DETECTED:
            if outage.state == IN_PROGRESS:
                superseded.append((outage, e.created_at))
            outage = None
        if outage is None:
            outage = Outage(e.deployment, e.instance, started=e.created_at)
            current[key] = outage
            found.append(outage)
        outage.cause = outage.cause or e.cause
        outage.old_cid = outage.old_cid or e.old_cid
        outage.task_id = e.task_id or outage.task_id
        if e.message:
            outage.message = e.message
        if e.decision == Decision.DETECTED:
            continue
        outage.decision = e.decision
        if e.decision == Decision.RECREATED:
            outage.ended, outage.state, outage.new_cid = e.created_at, RECOVERED, e.new_cid
            outage.seconds_to_recover = e.seconds_to_recover
            if e.seconds_to_recover is not None:
                outage.started = min(
                    outage.started, e.created_at - timedelta(seconds=e.seconds_to_recover)
                )
            del current[key]
        elif e.decision == Decision.FAILED:
            outage.ended, outage.state = e.created_at, FAILED
        else:  # resurrect (a retry after a failure too), meltdown, disabled, skipped
            outage.ended, outage.state = None, IN_PROGRESS
    _close_resolved(
        [o for o in current.values() if o.state == IN_PROGRESS] + [o for o, _ in superseded]
    )
    for o, next_detection in superseded:
        if o.ended is None:  # no resolved alert found: it ended by the next detection at the latest
            o.ended, o.state = next_detection, CLEARED
    return found


def _close_resolved(open_outages: list[Outage]) -> None:
    """End as cleared the open outages whose vm_health alert has been resolved (one query)."""
    if not open_outages:
        return
    rows = Alert.objects.filter(
        category=AlertCategory.VM_HEALTH,
        instance__in={o.instance for o in open_outages},
        created_at__lte=max(o.started for o in open_outages) + timedelta(seconds=1),
    ).values_list("deployment", "instance", "created_at", "resolved_at")
    alerts: dict[tuple[str, str], list[tuple[datetime, datetime | None]]] = {}
    for deployment, instance, created, resolved in rows:
        alerts.setdefault((deployment, instance), []).append((created, resolved))
    for o in open_outages:
        # The alert the detection raised: the latest one raised by then.
        raised = [
            a
            for a in alerts.get((o.deployment, o.instance), [])
            if a[0] <= o.started + timedelta(seconds=1)
        ]
        if raised:
            _, resolved = max(raised, key=lambda a: a[0])
            if resolved is not None and resolved >= o.started:
                o.ended, o.state = resolved, CLEARED


def meltdowns(
    deployments: set[str], since: datetime
) -> dict[str, list[tuple[datetime, datetime | None]]]:
    """Each deployment's meltdown periods (``meltdown`` alerts) that reach past ``since``."""
    periods: dict[str, list[tuple[datetime, datetime | None]]] = {}
    if not deployments:
        return periods
    rows = (
        Alert.objects.filter(cause="meltdown", deployment__in=deployments)
        .exclude(resolved_at__lt=since)
        .order_by("created_at")
        .values_list("deployment", "created_at", "resolved_at")
    )
    for deployment, created, resolved in rows:
        periods.setdefault(deployment, []).append((created, resolved))
    return periods


# --------------------------------------------------------------------------- layout


@dataclass
class Bar:
    outage: Outage
    x: float
    y: float
    width: float
    title: str

    @property
    def end_x(self) -> float:
        return self.x + self.width


@dataclass
class Lane:
    deployment: str
    instance: str
    label: str
    y: float
    text_y: float
    bars: list[Bar] = field(default_factory=list)


@dataclass
class Shade:
    """A meltdown period behind a deployment's lanes."""

    deployment: str
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass
class Timeline:
    lanes: list[Lane]
    shades: list[Shade]
    ticks: list[tuple[float, str]]
    outages: list[Outage]
    width: int
    height: int
    label_width: int
    plot_end: float
    summary: str
    #: Instances left out (beyond ``MAX_LANES``).
    hidden: int = 0

    @property
    def bars(self) -> list[Bar]:
        return [b for lane in self.lanes for b in lane.bars]


def timeline(events: Iterable[ResurrectionEvent], now: datetime | None = None) -> Timeline | None:
    """The picture of ``events``' outages, or None when there is no outage to draw."""
    now = now or timezone.now()
    found = outages(events, now)
    if not found:
        return None
    latest: dict[tuple[str, str], datetime] = {}
    for o in found:
        key = (o.deployment, o.instance)
        latest[key] = max(latest.get(key, o.started), o.ended or now)
    keys = sorted(latest, key=lambda k: latest[k], reverse=True)
    hidden = max(0, len(keys) - MAX_LANES)
    shown = set(keys[:MAX_LANES])
    found = [o for o in found if (o.deployment, o.instance) in shown]

    t0 = min(o.started for o in found)
    t1 = max(o.ended or now for o in found)
    melt = meltdowns({o.deployment for o in found}, t0)
    for periods in melt.values():
        for start, end in periods:
            t0, t1 = min(t0, start), max(t1, end or now)
    if t1 - t0 < MIN_SPAN:
        t1 = t0 + MIN_SPAN
    pad = (t1 - t0) * 0.03
    t0, t1 = t0 - pad, t1 + pad
    scale = PLOT_WIDTH / (t1 - t0).total_seconds()

    def x_of(t: datetime) -> float:
        return LABEL_WIDTH + (t - t0).total_seconds() * scale

    lanes: list[Lane] = []
    by_key: dict[tuple[str, str], Lane] = {}
    for row, (deployment, instance) in enumerate(sorted(shown)):
        y = TOP + row * LANE_HEIGHT
        lane = Lane(deployment, instance, _label(deployment, instance), y, y + 15)
        lanes.append(lane)
        by_key[(deployment, instance)] = lane
    for o in found:
        o.down_text = _duration(
            o.seconds_to_recover if o.seconds_to_recover is not None else o.seconds(now)
        )
        lane = by_key[(o.deployment, o.instance)]
        x = x_of(o.started)
        width = max(MIN_BAR, x_of(o.ended or now) - x)
        lane.bars.append(Bar(o, x, lane.y + (LANE_HEIGHT - BAR_HEIGHT) / 2, width, _title(o, now)))

    shades = []
    for deployment, periods in sorted(melt.items()):
        rows = [lane for lane in lanes if lane.deployment == deployment]
        for start, end in periods:
            x = x_of(start)
            shades.append(
                Shade(
                    deployment,
                    x,
                    rows[0].y,
                    max(MIN_BAR, x_of(end or now) - x),
                    len(rows) * LANE_HEIGHT,
                    f"{deployment} in meltdown from {_when(start)} "
                    + (f"to {_when(end)}" if end else "until now: nothing is recreated"),
                )
            )

    down = sum(1 for o in found if o.state == IN_PROGRESS)
    summary = (
        f"{len(found)} outage{'s' if len(found) != 1 else ''} of {len(lanes)} "
        f"instance{'s' if len(lanes) != 1 else ''} from {_when(t0 + pad)} to "
        f"{_when(t1 - pad)}" + (f"; {down} still down" if down else "")
    )
    return Timeline(
        lanes=lanes,
        shades=shades,
        ticks=_ticks(t0, t1, x_of),
        outages=sorted(found, key=lambda o: o.started, reverse=True),
        width=LABEL_WIDTH + PLOT_WIDTH + RIGHT,
        height=TOP + len(lanes) * LANE_HEIGHT + BOTTOM,
        label_width=LABEL_WIDTH,
        plot_end=LABEL_WIDTH + PLOT_WIDTH,
        summary=summary,
        hidden=hidden,
    )


def _label(deployment: str, instance: str) -> str:
    """``deployment group/uuid``, the uuid cut to 8 characters (the title has it all)."""
    group, _, uuid = instance.partition("/")
    label = f"{deployment} {group}/{uuid[:8]}" if uuid else f"{deployment} {instance}"
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def _when(t: datetime) -> str:
    return timezone.localtime(t).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _title(o: Outage, now: datetime) -> str:
    what = f"{o.deployment} {o.instance}: {o.cause or 'down'} at {_when(o.started)}"
    took = _duration(o.seconds(now))
    if o.state == RECOVERED:
        vm = f", new VM {o.new_cid}" if o.new_cid else ""
        return f"{what}; recreated after {took}{vm}"
    if o.state == FAILED:
        return f"{what}; resurrection failed after {took}: {o.message or 'see the task'}"
    if o.state == CLEARED:
        return f"{what}; healthy again after {took} without a resurrection"
    decision = f" ({o.decision.replace('_', ' ')})" if o.decision else ""
    return f"{what}; still down after {took}{decision}"


def _ticks(t0: datetime, t1: datetime, x_of) -> list[tuple[float, str]]:
    """Ticks at round multiples of the step, labelled in local time."""
    span = (t1 - t0).total_seconds()
    step = next((s for s in TICK_STEPS if span / s <= 8), TICK_STEPS[-1])
    fmt = "%H:%M:%S" if step < 60 else "%H:%M"
    if step >= 86400 or timezone.localtime(t0).date() != timezone.localtime(t1).date():
        fmt = "%m-%d " + fmt if step < 86400 else "%m-%d"
    first = int(t0.timestamp() // step + 1) * step
    ticks = []
    at = first
    while at <= t1.timestamp():
        t = datetime.fromtimestamp(at, tz=t0.tzinfo)
        ticks.append((x_of(t), timezone.localtime(t).strftime(fmt)))
        at += step
    return ticks
