"""Deployment planning: manifest + cloud-config + current state -> ``DeploymentPlan``.

Pure: no I/O, no Django. The same plan feeds "Review Pending Changes" and
the executor:

    plan = plan_deployment(manifest, cloud_config, existing, stemcells, ips_in_use, options)
    for run in group_runs(plan):                  # serial / concurrent groups
        for group in run.groups:
            ...delete group.obsolete_plans...
            for batch in schedule(group.instance_plans, group.update,
                                  initial_deploy=plan.initial_deploy):
                ...update batch.plans together (canaries first)...

Modules, in the planner's order: ``inputs`` (what exists, deploy options),
``cloud_config`` and ``groups`` (the cloud-config and instance groups as the
planner reads them), ``azs`` (AZ placement, indexes, bootstrap),
``addresses`` and ``networks`` (IPs, subnets), ``ips`` and ``reservations``
(IP allocation), ``instance_plans`` (desired state), ``changes`` (what
changed and why), ``model`` (the plan), ``planner`` (the entry point),
``update`` (the update block), ``schedule`` (batches, serial runs),
``errors``.
"""

from director.planning.changes import classify, detect_changes
from director.planning.errors import (
    DeploymentIgnoredInstancesModification,
    NetworkReservationAlreadyInUse,
    NetworkReservationError,
    NetworkReservationIpOutsideSubnet,
    NetworkReservationIpReserved,
    NetworkReservationNotEnoughCapacity,
    PlanError,
    UnresponsiveInstance,
    UpdateConfigError,
)
from director.planning.inputs import (
    MISSING_VM,
    UNRESPONSIVE_AGENT,
    AppliedNetwork,
    AppliedState,
    ExistingInstance,
    PlanOptions,
    Reservation,
    StemcellRef,
    StemcellVersion,
)
from director.planning.model import (
    CHANGE_NAMES,
    CHANGES,
    DeploymentPlan,
    DesiredInstance,
    InstanceGroupPlan,
    InstancePlan,
    JobRef,
    NetworkReservation,
    ReleasedIp,
    SubnetSpec,
)
from director.planning.planner import DeploymentPlanner, default_jobs_fingerprint, plan_deployment
from director.planning.schedule import Batch, GroupRun, group_runs, schedule
from director.planning.update import (
    UpdateConfig,
    WatchTime,
    resolve_numeric,
    resolve_update_config,
)

__all__ = [
    "CHANGES",
    "CHANGE_NAMES",
    "MISSING_VM",
    "UNRESPONSIVE_AGENT",
    "AppliedNetwork",
    "AppliedState",
    "Batch",
    "DeploymentIgnoredInstancesModification",
    "DeploymentPlan",
    "DeploymentPlanner",
    "DesiredInstance",
    "ExistingInstance",
    "GroupRun",
    "InstanceGroupPlan",
    "InstancePlan",
    "JobRef",
    "NetworkReservation",
    "NetworkReservationAlreadyInUse",
    "NetworkReservationError",
    "NetworkReservationIpOutsideSubnet",
    "NetworkReservationIpReserved",
    "NetworkReservationNotEnoughCapacity",
    "PlanError",
    "PlanOptions",
    "ReleasedIp",
    "Reservation",
    "StemcellRef",
    "StemcellVersion",
    "SubnetSpec",
    "UnresponsiveInstance",
    "UpdateConfig",
    "UpdateConfigError",
    "WatchTime",
    "classify",
    "default_jobs_fingerprint",
    "detect_changes",
    "group_runs",
    "plan_deployment",
    "resolve_numeric",
    "resolve_update_config",
    "schedule",
]
