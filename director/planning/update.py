"""The ``update`` block, and the order in which instances are updated (BOSH §1.9).

``UpdateConfig`` is the deployment's ``update`` block overridden key by key
by the instance group's own ``update``, then by the operator's
``canaries``/``max_in_flight`` deploy options. ``canaries`` and
``max_in_flight`` are an integer or ``"N%"``; ``resolve_numeric`` turns them
into a count for a given number of instances with BOSH's rounding
(``min(floor(N * size / 100), size)``; ``max_in_flight`` at least 1,
canaries may be 0). Watch times are milliseconds, ``"ms"`` or ``"min-max"``.

``schedule(plans, update)`` cuts one instance group's changed instances
into ``Batch``es, as BOSH's ``InstanceGroupUpdater`` does:

* AZ by AZ, in order of first appearance. Plans are ordered bootstrap
  first, then the bootstrap's AZ, then the other AZs as they first appear
  by index; inside an AZ by index. (BOSH orders the other AZs by name and
  sorts inside an AZ by uuid; index order is as stable and easier to read.)
* Canaries only in the first AZ: ``min(canaries(n), n)`` of its plans,
  ``n`` being that AZ's plan count, flagged ``canary``; they run before the
  rest and the executor waits for them. More canaries than
  ``max_in_flight`` become several canary batches.
* Then the rest, ``max_in_flight(n)`` at a time, ``n`` per AZ.
* ``initial_deploy_az_update_strategy: parallel`` on a first deploy treats
  all AZs as one (canaries and max_in_flight computed on the whole group).

A batch is the set of instances allowed in flight together; the executor
must finish one batch before the next, and stop at the first failure.

``group_runs(plan)`` cuts the instance groups (manifest order) into
consecutive runs with the same ``serial`` value: a ``serial: true`` run
updates its groups one after another, a ``serial: false`` run updates all
its groups at the same time. Errand groups are left out unless one of their
instances already has a VM (BOSH updates those; others get a VM only when
the errand runs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from director.planning.errors import UpdateConfigError
from director.planning.model import VM_STRATEGIES, DeploymentPlan, InstanceGroupPlan, InstancePlan

AZ_UPDATE_STRATEGIES = ("serial", "parallel")

_PERCENT = re.compile(r"^\s*(\d+)%\s*$")
_INTEGER = re.compile(r"^\s*(\d+)\s*$")
_WATCH = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


@dataclass(frozen=True)
class WatchTime:
    """Milliseconds to wait for jobs to be running: at least ``min_ms``,
    polling until ``max_ms``."""

    min_ms: int
    max_ms: int

    def __str__(self) -> str:
        return str(self.min_ms) if self.min_ms == self.max_ms else f"{self.min_ms}-{self.max_ms}"


@dataclass(frozen=True)
class UpdateConfig:
    """A resolved update block. ``canaries``/``max_in_flight`` keep their
    manifest form (``"2"`` or ``"25%"``); use ``canaries_for``/
    ``max_in_flight_for`` to get a count."""

    canaries: str
    max_in_flight: str
    canary_watch_time: WatchTime
    update_watch_time: WatchTime
    serial: bool = True
    vm_strategy: str = "delete-create"
    initial_deploy_az_update_strategy: str = "serial"

    def canaries_for(self, size: int) -> int:
        return resolve_numeric(self.canaries, size)

    def max_in_flight_for(self, size: int) -> int:
        return max(1, resolve_numeric(self.max_in_flight, size))

    def to_dict(self) -> dict[str, Any]:
        return {
            "canaries": self.canaries,
            "max_in_flight": self.max_in_flight,
            "canary_watch_time": str(self.canary_watch_time),
            "update_watch_time": str(self.update_watch_time),
            "serial": self.serial,
            "vm_strategy": self.vm_strategy,
            "initial_deploy_az_update_strategy": self.initial_deploy_az_update_strategy,
        }


def resolve_numeric(value: int | str, size: int) -> int:
    """``canaries``/``max_in_flight`` as a count for ``size`` instances:
    ``"N%"`` -> ``min(floor(N * size / 100), size)``, an integer as is."""
    text = _numeric_text(value, "value")
    match = _PERCENT.match(text)
    if match:
        return min(int(match.group(1)) * size // 100, size)
    return int(text)


def _numeric_text(value: object, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UpdateConfigError(path, f"{value!r} must be an integer or a percentage like '25%'")
    text = str(value).strip()
    if not (_INTEGER.match(text) or _PERCENT.match(text)):
        raise UpdateConfigError(path, f"{value!r} must be an integer or a percentage like '25%'")
    return text


def parse_watch_time(value: object, path: str) -> WatchTime:
    """``1000`` or ``"1000-30000"`` (milliseconds; min <= max)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UpdateConfigError(path, "must be milliseconds or a 'min-max' range of milliseconds")
    match = _WATCH.match(str(value))
    if not match:
        raise UpdateConfigError(
            path, f"{value!r} must be milliseconds or a 'min-max' range of milliseconds"
        )
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) is not None else low
    if low > high:
        raise UpdateConfigError(path, f"{value!r}: min watch time is greater than max watch time")
    return WatchTime(low, high)


_KEYS = (
    "canaries",
    "max_in_flight",
    "canary_watch_time",
    "update_watch_time",
    "serial",
    "vm_strategy",
    "initial_deploy_az_update_strategy",
)


def resolve_update_config(
    deployment_update: Mapping[str, Any] | None,
    group_update: Mapping[str, Any] | None = None,
    *,
    group_path: str | None = None,
    default_vm_strategy: str = "delete-create",
    canaries: int | str | None = None,
    max_in_flight: int | str | None = None,
) -> UpdateConfig:
    """Merge the deployment's ``update`` with a group's, key by key, and
    validate. Errors name ``update/<key>`` or ``<group_path>/update/<key>``
    (whichever supplied the value)."""
    for where, block in (("update", deployment_update), (f"{group_path}/update", group_update)):
        if block is not None and not isinstance(block, Mapping):
            raise UpdateConfigError(where, "must be a mapping")
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for prefix, block in (("update", deployment_update), (f"{group_path}/update", group_update)):
        for key in _KEYS:
            if block and block.get(key) is not None:
                merged[key] = block[key]
                origin[key] = f"{prefix}/{key}"
    for key, override in (("canaries", canaries), ("max_in_flight", max_in_flight)):
        if override is not None:
            merged[key] = override
            origin[key] = f"options/{key}"

    def required(key: str) -> Any:
        if key not in merged:
            where = f"{group_path}/update/{key}" if group_path else f"update/{key}"
            raise UpdateConfigError(
                where, "is required (in the deployment's or the group's update)"
            )
        return merged[key]

    canaries_text = _numeric_text(required("canaries"), origin.get("canaries", ""))
    max_in_flight_text = _numeric_text(required("max_in_flight"), origin.get("max_in_flight", ""))
    canary_watch = parse_watch_time(required("canary_watch_time"), origin["canary_watch_time"])
    update_watch = parse_watch_time(required("update_watch_time"), origin["update_watch_time"])
    serial = merged.get("serial", True)
    if not isinstance(serial, bool):
        raise UpdateConfigError(origin["serial"], "must be true or false")
    vm_strategy = merged.get("vm_strategy", default_vm_strategy)
    if vm_strategy not in VM_STRATEGIES:
        raise UpdateConfigError(
            origin.get("vm_strategy", "options/default_vm_strategy"),
            f"'{vm_strategy}' is not one of {', '.join(VM_STRATEGIES)}",
        )
    az_strategy = merged.get("initial_deploy_az_update_strategy", "serial")
    if az_strategy not in AZ_UPDATE_STRATEGIES:
        raise UpdateConfigError(
            origin["initial_deploy_az_update_strategy"],
            f"'{az_strategy}' is not one of {', '.join(AZ_UPDATE_STRATEGIES)}",
        )
    return UpdateConfig(
        canaries=canaries_text,
        max_in_flight=max_in_flight_text,
        canary_watch_time=canary_watch,
        update_watch_time=update_watch,
        serial=serial,
        vm_strategy=vm_strategy,
        initial_deploy_az_update_strategy=az_strategy,
    )


# --------------------------------------------------------------------------
# scheduling


@dataclass(frozen=True)
class Batch:
    """Instances updated together. ``az`` is ``None`` for instances without
    an AZ, or for a parallel initial deploy across all AZs."""

    az: str | None
    canary: bool
    plans: tuple[InstancePlan, ...]

    @property
    def watch_time_key(self) -> str:
        return "canary_watch_time" if self.canary else "update_watch_time"


def _ordered(plans: Sequence[InstancePlan]) -> list[InstancePlan]:
    by_index = sorted(plans, key=lambda p: p.index)
    bootstrap = next((p for p in by_index if p.bootstrap), None)
    if bootstrap is None:
        return by_index
    first_az = [p for p in by_index if p.az == bootstrap.az and p is not bootstrap]
    rest = [p for p in by_index if p.az != bootstrap.az]
    return [bootstrap, *first_az, *rest]


def _chunks(plans: Sequence[InstancePlan], size: int) -> list[tuple[InstancePlan, ...]]:
    return [tuple(plans[i : i + size]) for i in range(0, len(plans), size)]


def schedule(
    instance_plans: Sequence[InstancePlan],
    update: UpdateConfig,
    *,
    initial_deploy: bool = False,
) -> list[Batch]:
    """Batches for one instance group's plans that need updating.

    Plans with ``change`` ``none`` or ``delete`` and ignored instances are
    left out (obsolete instances are deleted before the group is updated,
    ``max_in_flight`` at a time over their count).
    """
    todo = [p for p in instance_plans if p.change not in ("none", "delete") and not p.ignored]
    ordered = _ordered(todo)
    if initial_deploy and update.initial_deploy_az_update_strategy == "parallel":
        azs: list[tuple[str | None, list[InstancePlan]]] = [(None, ordered)] if ordered else []
    else:
        azs = []
        for plan in ordered:
            if not azs or all(az != plan.az for az, _ in azs):
                azs.append((plan.az, []))
            next(group for az, group in azs if az == plan.az).append(plan)

    batches: list[Batch] = []
    for position, (az, plans) in enumerate(azs):
        size = len(plans)
        in_flight = update.max_in_flight_for(size)
        rest = plans
        if position == 0:
            count = min(update.canaries_for(size), size)
            for chunk in _chunks(plans[:count], in_flight):
                batches.append(Batch(az, True, chunk))
            rest = plans[count:]
        for chunk in _chunks(rest, in_flight):
            batches.append(Batch(az, False, chunk))
    return batches


@dataclass(frozen=True)
class GroupRun:
    """Consecutive instance groups with the same ``serial``: one after
    another when ``serial``, all at once otherwise."""

    serial: bool
    groups: tuple[InstanceGroupPlan, ...]


def _updated_on_deploy(group: InstanceGroupPlan) -> bool:
    if not group.is_errand:
        return True
    return any(p.existing is not None and p.existing.vm_cid for p in group.instance_plans)


def group_runs(plan: DeploymentPlan) -> list[GroupRun]:
    """The deployment's instance groups cut into serial / concurrent runs."""
    runs: list[GroupRun] = []
    for group in plan.instance_groups:
        if not _updated_on_deploy(group):
            continue
        if runs and runs[-1].serial == group.update.serial:
            runs[-1] = GroupRun(group.update.serial, (*runs[-1].groups, group))
        else:
            runs.append(GroupRun(group.update.serial, (group,)))
    return runs
