"""Each instance's plan: what it should become and what has to happen
(the planner's last steps).

``desired`` builds an instance's desired state: cloud properties merged AZ
<- vm_type (or vm_resources) <- vm_extensions, stemcell, networks, disk,
env, jobs. ``instance_plan`` compares it with what was applied
(``changes.py``) and decides whether the VM is duplicated for
``create-swap-delete``. ``delete_plan`` plans an instance away, with the
reason ``obsolete_reason`` gives. ``releases`` lists the IPs a plan lets go:
those of deleted instances, and those that changed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from director.planning.addresses import parse_ip
from director.planning.azs import Placement
from director.planning.changes import classify, detect_changes
from director.planning.cloud_config import CloudConfig
from director.planning.errors import PlanError
from director.planning.groups import GroupSpec
from director.planning.inputs import ExistingInstance, PlanOptions
from director.planning.model import (
    DeploymentPlan,
    DesiredInstance,
    InstancePlan,
    NetworkReservation,
    ReleasedIp,
)

ERRAND_REASON = "errand: VM is created when the errand runs"


def desired(
    group: GroupSpec,
    placement: Placement,
    cloud: CloudConfig,
    reservations: Mapping[str, NetworkReservation],
) -> DesiredInstance:
    merged: dict[str, Any] = dict(cloud.azs.get(placement.az, {})) if placement.az else {}
    if group.vm_type is not None:
        merged.update(cloud.vm_types[group.vm_type])
    elif group.vm_resources is not None:
        # What the vSphere CPI's calculate_vm_cloud_properties answers.
        merged.update(
            {
                "cpu": group.vm_resources["cpu"],
                "ram": group.vm_resources["ram"],
                "disk": group.vm_resources["ephemeral_disk_size"],
            }
        )
    for ext in group.vm_extensions:
        merged.update(cloud.vm_extensions[ext])
    networks = tuple(replace(reservations[gn.name], default=gn.default) for gn in group.networks)
    return DesiredInstance(
        stemcell=group.stemcell,
        vm_type=group.vm_type,
        vm_extensions=group.vm_extensions,
        cloud_properties=copy.deepcopy(merged),
        env=group.env,
        networks=networks,
        persistent_disk_size=group.persistent_disk_size,
        persistent_disk_type=group.persistent_disk_type,
        persistent_disk_cloud_properties=group.persistent_disk_cloud_properties,
        jobs=group.jobs,
        jobs_fingerprint=group.jobs_fingerprint,
        state=placement.existing.state if placement.existing else "started",
    )


def _changes_and_reasons(
    existing: ExistingInstance | None,
    wanted: DesiredInstance,
    options: PlanOptions,
    *,
    errand: bool,
) -> tuple[frozenset[str], tuple[str, ...]]:
    if existing is None:
        return frozenset(), ((ERRAND_REASON,) if errand else ("new instance",))
    if existing.ignore:
        return frozenset(), ("ignored",)
    changes, reasons = detect_changes(existing, wanted, options)
    if existing.vm_cid is None and existing.state != "detached":
        reasons = (ERRAND_REASON,) if errand else ("vm missing", *reasons)
    return changes, reasons


def instance_plan(
    group: GroupSpec,
    placement: Placement,
    uuid: str,
    wanted: DesiredInstance,
    options: PlanOptions,
) -> InstancePlan:
    existing = placement.existing
    errand = group.lifecycle == "errand"
    changes, reasons = _changes_and_reasons(existing, wanted, options, errand=errand)
    change = classify(existing, changes, errand=errand)
    if change == "none":
        changes = frozenset()
    static = any(n.static for n in wanted.networks)
    needs_duplicate = (
        change == "recreate"
        and group.update.vm_strategy == "create-swap-delete"
        and existing is not None
        and existing.vm_cid is not None
        and existing.state != "detached"
        and not static
        # an unreachable VM (deploy --fix) cannot hand over: it is replaced in place
        and not (options.fix and existing.unresponsive)
    )
    return InstancePlan(
        group=group.name,
        uuid=uuid,
        index=placement.index,
        az=placement.az,
        bootstrap=placement.bootstrap,
        change=change,
        reasons=reasons,
        changes=changes,
        needs_shutting_down=change == "recreate",
        needs_duplicate_vm=needs_duplicate,
        desired=wanted,
        existing=existing,
        lifecycle=group.lifecycle,
    )


def with_networks(plan: InstancePlan, fresh: Mapping[str, NetworkReservation]) -> InstancePlan:
    """``plan`` with the ``fresh`` reservations in place of its own."""
    if not fresh or plan.desired is None:
        return plan
    networks = tuple(
        replace(fresh[n.network], default=n.default) if n.network in fresh else n
        for n in plan.desired.networks
    )
    return replace(plan, desired=replace(plan.desired, networks=networks))


def delete_plan(existing: ExistingInstance, reason: str) -> InstancePlan:
    return InstancePlan(
        group=existing.group,
        uuid=existing.uuid,
        index=existing.index,
        az=existing.az,
        bootstrap=existing.bootstrap,
        change="delete",
        reasons=(reason,),
        changes=frozenset(),
        needs_shutting_down=existing.vm_cid is not None,
        needs_duplicate_vm=False,
        desired=None,
        existing=existing,
    )


def obsolete_reason(group: GroupSpec, existing: ExistingInstance, previous_count: int) -> str:
    """Why an existing instance of a group still in the manifest is deleted."""
    if group.azs and existing.az not in group.azs:
        return f"az '{existing.az}' is no longer used by the instance group"
    if not group.azs and existing.az is not None:
        return "the instance group no longer uses AZs"
    if group.instances < previous_count:
        return f"instances scaled down {previous_count} -> {group.instances}"
    return "replaced to balance instances across AZs or static IPs"


def releases(plan: DeploymentPlan) -> tuple[ReleasedIp, ...]:
    """IPs held today that the plan does not keep."""
    released = []
    for p in plan.all_instance_plans():
        if p.existing is None:
            continue
        keep = (
            {n.ip for n in p.desired.networks if n.ip}
            if p.desired is not None and not p.needs_duplicate_vm
            else set()
        )
        if p.ignored:
            continue
        for network, ip, _static in p.existing.reservations:
            try:
                normalized = str(parse_ip(ip))
            except PlanError:
                normalized = ip
            if normalized not in keep:
                released.append(ReleasedIp(network, normalized, p.existing.label, p.uuid))
    return tuple(released)
