"""The data the planner reads: what exists now and how the operator asked
for the deploy to run.

``ExistingInstance`` is an instance of the deployment as the director's
database holds it, with the ``AppliedState`` last applied to it (``None``
when a deploy did not finish). ``StemcellRef`` is an uploaded stemcell a
manifest alias resolves to. ``PlanOptions`` are the deploy's options
(recreate, fix, canaries and max_in_flight overrides ...). Frozen, like the
plan built from them (``model.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class StemcellVersion(NamedTuple):
    name: str
    version: str


class Reservation(NamedTuple):
    """An IP an existing instance holds: ``(network, ip, static)``."""

    network: str
    ip: str
    static: bool


@dataclass(frozen=True)
class AppliedNetwork:
    """One network as last applied to a VM.

    Only ``name`` and ``ip`` are required; the other settings, when recorded
    (not ``None``), are compared too so that a changed gateway, DNS, port
    group (cloud_properties) or default route also counts as a network change.
    """

    name: str
    ip: str | None
    range: str | None = None
    gateway: str | None = None
    dns: tuple[str, ...] | None = None
    cloud_properties: Mapping[str, Any] | None = None
    default: tuple[str, ...] | None = None


@dataclass(frozen=True)
class AppliedState:
    """What the director last applied to an instance; compared to the desired
    state to find changes. ``persistent_disk_size`` is in MiB, 0 = no disk.
    ``jobs_fingerprint`` is a digest of job names and rendered properties."""

    stemcell: StemcellVersion | tuple[str, str]
    cloud_properties: Mapping[str, Any]
    vm_type: str | None
    env: Mapping[str, Any]
    networks: tuple[AppliedNetwork, ...]
    persistent_disk_size: int
    persistent_disk_cloud_properties: Mapping[str, Any]
    jobs_fingerprint: str


#: Why ``deploy --fix`` recreates an instance (``PlanOptions.unreachable``; the plan's reason).
MISSING_VM = "missing VM"
UNRESPONSIVE_AGENT = "unresponsive agent"


@dataclass(frozen=True)
class ExistingInstance:
    """An instance the director knows for this deployment.

    ``state`` is the desired state the operator last set (``started``,
    ``stopped``, ``detached``); ``unresponsive`` says the agent did not
    answer when the current state was read, ``vm_missing`` that vCenter no
    longer has its VM (an unresponsive instance, for a different reason). ``reservations`` are the IPs it
    holds, as ``(network, ip, static)`` triples. ``applied`` is ``None``
    when no spec was ever applied (a deploy failed before that).
    """

    uuid: str
    group: str
    index: int
    az: str | None
    bootstrap: bool = False
    state: str = "started"
    vm_cid: str | None = None
    vm_created_at: dt.datetime | None = None
    reservations: tuple[Reservation | tuple[str, str, bool], ...] = ()
    applied: AppliedState | None = None
    has_persistent_disk: bool = False
    ignore: bool = False
    unresponsive: bool = False
    vm_missing: bool = False

    @property
    def label(self) -> str:
        """BOSH's instance name: ``group/uuid (index)``."""
        return f"{self.group}/{self.uuid} ({self.index})"

    def __hash__(self) -> int:  # dict-valued fields: hash by identity of the instance
        return hash((self.group, self.uuid, self.index))


@dataclass(frozen=True)
class StemcellRef:
    """An uploaded stemcell a manifest alias resolves to."""

    alias: str
    name: str
    version: str
    os: str = ""
    cid: str | None = None


@dataclass(frozen=True)
class PlanOptions:
    """How the operator asked for the deploy to run (BOSH deploy flags).

    ``canaries``/``max_in_flight`` override every instance group's update
    block. ``random_seed`` makes ``randomize_az_placement`` reproducible.
    ``director_ips`` are never handed out. ``initial_deploy`` (``None`` =
    "no existing instances") selects the ``initial_deploy_az_update_strategy``.
    ``unreachable`` is what a ``fix`` deploy found before planning: instance
    uuid -> ``MISSING_VM`` or ``UNRESPONSIVE_AGENT``; the planner marks those
    existing instances ``unresponsive`` (and ``vm_missing``).
    """

    recreate: bool = False
    recreate_persistent_disks: bool = False
    recreate_vms_created_before: dt.datetime | None = None
    fix: bool = False
    canaries: int | str | None = None
    max_in_flight: int | str | None = None
    default_vm_strategy: str = "delete-create"
    randomize_az_placement: bool = False
    random_seed: int | str | None = None
    director_ips: tuple[str, ...] = ()
    initial_deploy: bool | None = None
    unreachable: Mapping[str, str] = field(default_factory=dict)
