"""The plan the planner produces from its inputs (``inputs.py``).

The plan describes, per instance, what it should become
(``DesiredInstance``) and what has to happen to get there
(``InstancePlan.change`` with its reasons), grouped per instance group
(``InstanceGroupPlan``) and per deployment (``DeploymentPlan``).

Everything is a frozen dataclass: a plan is data, computed once with no side
effects, shown on "Review Pending Changes" and then handed unchanged to the
executor. Dict-valued fields (cloud_properties, env) are private copies of
the manifest's values; treat them as read-only.

Change names follow BOSH's ``InstancePlan#changes``; the subset we detect is
listed in ``CHANGE_NAMES``.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from director.planning.inputs import (
    AppliedNetwork,
    AppliedState,
    ExistingInstance,
    StemcellRef,
    StemcellVersion,
)
from director.planning.update import UpdateConfig

Change = Literal["create", "recreate", "update", "delete", "none"]
CHANGES: tuple[Change, ...] = ("create", "recreate", "update", "delete", "none")

#: BOSH change names the planner can detect (``InstancePlan.changes``).
CHANGE_NAMES = frozenset(
    {
        "stemcell",
        "cloud_properties",
        "network",
        "env",
        "persistent_disk",
        "configuration",
        "recreate",
        "recreate_persistent_disks",
    }
)

#: Changes that need the VM shut down and replaced (BOSH ``needs_shutting_down?``).
SHUTDOWN_CHANGES = frozenset({"stemcell", "cloud_properties", "env", "network", "recreate"})


@dataclass(frozen=True)
class SubnetSpec:
    """The subnet a reservation was made in, as the CPI needs it."""

    range: str
    gateway: str | None
    dns: tuple[str, ...]
    cloud_properties: Mapping[str, Any]
    azs: tuple[str, ...] = ()

    @property
    def az(self) -> str | None:
        """The subnet's AZ when it has exactly one."""
        return self.azs[0] if len(self.azs) == 1 else None

    @property
    def netmask(self) -> str | None:
        """Dotted (IPv4) or expanded (IPv6) netmask; ``None`` on dynamic networks."""
        return str(ipaddress.ip_network(self.range).netmask) if self.range else None


@dataclass(frozen=True)
class NetworkReservation:
    """A network an instance is attached to and the address it holds there.

    ``ip`` is ``None`` on ``dynamic`` networks (the IaaS assigns it);
    ``subnet`` is ``None`` on ``vip`` networks. ``default`` lists which of
    ``dns``/``gateway`` this network provides for the VM.
    """

    network: str
    ip: str | None
    static: bool
    subnet: SubnetSpec | None
    default: tuple[str, ...] = ()
    type: str = "manual"


@dataclass(frozen=True)
class JobRef:
    name: str
    release: str


@dataclass(frozen=True)
class DesiredInstance:
    """What an instance should look like after the deploy.

    ``cloud_properties`` is the shallow merge AZ <- vm_type (or vm_resources)
    <- each vm_extension in order (BOSH ``MergedCloudProperties``).
    """

    stemcell: StemcellRef
    vm_type: str | None
    vm_extensions: tuple[str, ...]
    cloud_properties: Mapping[str, Any]
    env: Mapping[str, Any]
    networks: tuple[NetworkReservation, ...]
    persistent_disk_size: int
    persistent_disk_type: str | None
    persistent_disk_cloud_properties: Mapping[str, Any]
    jobs: tuple[JobRef, ...]
    jobs_fingerprint: str
    state: str = "started"

    def network(self, name: str) -> NetworkReservation | None:
        return next((n for n in self.networks if n.network == name), None)

    def to_applied(self) -> AppliedState:
        """The ``AppliedState`` to record once this state has been applied."""
        return AppliedState(
            stemcell=StemcellVersion(self.stemcell.name, self.stemcell.version),
            cloud_properties=self.cloud_properties,
            vm_type=self.vm_type,
            env=self.env,
            networks=tuple(
                AppliedNetwork(
                    name=n.network,
                    ip=n.ip,
                    range=n.subnet.range if n.subnet else None,
                    gateway=n.subnet.gateway if n.subnet else None,
                    dns=n.subnet.dns if n.subnet else None,
                    cloud_properties=n.subnet.cloud_properties if n.subnet else None,
                    default=n.default,
                )
                for n in self.networks
            ),
            persistent_disk_size=self.persistent_disk_size,
            persistent_disk_cloud_properties=self.persistent_disk_cloud_properties,
            jobs_fingerprint=self.jobs_fingerprint,
        )


@dataclass(frozen=True)
class InstancePlan:
    """One instance and what the deploy does to it.

    ``change`` is one of ``create`` (new instance, or an existing instance
    whose VM is missing: ``existing`` tells them apart), ``recreate`` (VM
    replaced), ``update`` (VM kept; jobs, disk or properties change),
    ``delete`` (obsolete) and ``none``. ``reasons`` are for people,
    ``changes`` are BOSH change names for code.

    ``needs_duplicate_vm``: with ``vm_strategy: create-swap-delete`` the new
    VM is created up front next to the old one, on the fresh dynamic IPs in
    ``desired.networks``; the old VM's IPs are in the deployment's
    ``ip_reservations_to_release``. Instances with static IPs fall back to
    delete-create, as in BOSH.
    """

    group: str
    uuid: str
    index: int
    az: str | None
    bootstrap: bool
    change: Change
    reasons: tuple[str, ...]
    changes: frozenset[str]
    needs_shutting_down: bool
    needs_duplicate_vm: bool
    desired: DesiredInstance | None
    existing: ExistingInstance | None
    lifecycle: str = "service"

    @property
    def name(self) -> str:
        return f"{self.group}/{self.uuid}"

    @property
    def label(self) -> str:
        """BOSH's instance name: ``group/uuid (index)``."""
        return f"{self.group}/{self.uuid} ({self.index})"

    @property
    def ignored(self) -> bool:
        return bool(self.existing and self.existing.ignore)

    @property
    def changed(self) -> bool:
        return self.change != "none"

    def __hash__(self) -> int:  # dict-valued fields: hash by identity of the instance
        return hash((self.group, self.uuid, self.change))


@dataclass(frozen=True)
class InstanceGroupPlan:
    """An instance group's plans: ``instance_plans`` (desired, by index) and
    ``obsolete_plans`` (``delete``, highest index first).

    Groups with ``lifecycle: errand`` are planned like service groups, but
    their instances without a VM get ``change == "none"``: the VM is created
    when the errand runs, not at deploy time.
    """

    name: str
    lifecycle: str
    update: UpdateConfig
    instance_plans: tuple[InstancePlan, ...]
    obsolete_plans: tuple[InstancePlan, ...] = ()
    azs: tuple[str, ...] = ()

    @property
    def is_errand(self) -> bool:
        return self.lifecycle == "errand"

    @property
    def all_plans(self) -> tuple[InstancePlan, ...]:
        return self.instance_plans + self.obsolete_plans

    @property
    def plans_to_update(self) -> tuple[InstancePlan, ...]:
        """Desired plans with something to do, ignored instances left out."""
        return tuple(p for p in self.instance_plans if p.changed and not p.ignored)

    @property
    def changed(self) -> bool:
        return bool(self.obsolete_plans) or any(p.changed for p in self.instance_plans)


@dataclass(frozen=True)
class ReleasedIp:
    """An IP an existing instance holds that the deploy gives back, once the
    VM using it is gone (obsolete instance, changed IP, create-swap-delete)."""

    network: str
    ip: str
    instance: str  # group/uuid (index)
    uuid: str


@dataclass(frozen=True)
class DeploymentPlan:
    """The whole deploy: instance groups in manifest order, the delete plans
    of groups removed from the manifest, and IPs to release."""

    name: str
    instance_groups: tuple[InstanceGroupPlan, ...]
    obsolete_groups: tuple[InstanceGroupPlan, ...] = ()
    ip_reservations_to_release: tuple[ReleasedIp, ...] = ()
    initial_deploy: bool = False
    warnings: tuple[str, ...] = field(default=())

    def instance_group(self, name: str) -> InstanceGroupPlan:
        for group in self.instance_groups + self.obsolete_groups:
            if group.name == name:
                return group
        raise KeyError(name)

    def all_instance_plans(self) -> tuple[InstancePlan, ...]:
        """Every plan: obsolete groups first (they are deleted first), then each
        group's desired plans and its obsolete plans."""
        plans: list[InstancePlan] = []
        for group in self.obsolete_groups:
            plans.extend(group.all_plans)
        for group in self.instance_groups:
            plans.extend(group.all_plans)
        return tuple(plans)

    def changed_instances(self) -> tuple[InstancePlan, ...]:
        return tuple(p for p in self.all_instance_plans() if p.changed)

    def summary(self) -> dict[str, int]:
        """Counts per change, every change name present (0 when none)."""
        counts = Counter(p.change for p in self.all_instance_plans())
        return {change: counts.get(change, 0) for change in CHANGES}

    @property
    def changed(self) -> bool:
        return bool(self.changed_instances())
