"""The order in which instances are updated (BOSH §1.9), from each group's ``UpdateConfig``.

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

from collections.abc import Sequence
from dataclasses import dataclass

from director.planning.model import DeploymentPlan, InstanceGroupPlan, InstancePlan
from director.planning.update import UpdateConfig


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
