"""What changed for an existing instance, and what the deploy does about it.

``detect_changes`` compares the state last applied to an instance
(``AppliedState``) with the desired one and returns BOSH change names plus a
sentence per change for people (shown on "Review Pending Changes"):

=====================  ======================================  ==========
change name            reason                                  effect
=====================  ======================================  ==========
recreate               recreate requested                      recreate
stemcell               stemcell changed 1.0 -> 2.0             recreate
cloud_properties       vm_type changed small -> large          recreate
cloud_properties       cloud_properties changed                recreate
env                    env changed                             recreate
network                network changed (default: a -> b)       recreate
persistent_disk        persistent_disk size 1024 -> 2048       update
configuration          jobs or properties changed              update
recreate_persistent_   recreate persistent disks requested     update
disks
=====================  ======================================  ==========

As in BOSH, the vm_type is compared through the cloud properties it
contributes: renaming a vm_type without changing its cloud_properties does
not recreate VMs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from director.planning.inputs import (
    MISSING_VM,
    UNRESPONSIVE_AGENT,
    AppliedNetwork,
    AppliedState,
    ExistingInstance,
    PlanOptions,
)
from director.planning.model import SHUTDOWN_CHANGES, Change, DesiredInstance, NetworkReservation


def _stemcell_reason(old: tuple[str, str], new: tuple[str, str]) -> str:
    if old[0] == new[0]:
        return f"stemcell changed {old[1]} -> {new[1]}"
    return f"stemcell changed {old[0]}/{old[1]} -> {new[0]}/{new[1]}"


def _same(a: Any, b: Any) -> bool:
    """Equality that treats tuples and lists alike (JSON round trips)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _network_details(
    applied: tuple[AppliedNetwork, ...], desired: tuple[NetworkReservation, ...]
) -> list[str]:
    old = {n.name: n for n in applied}
    new = {n.network: n for n in desired}
    details: list[str] = []
    for name, reservation in new.items():
        before = old.get(name)
        if before is None:
            details.append(f"added {name}")
            continue
        if reservation.ip is not None and before.ip != reservation.ip:
            details.append(f"{name}: {before.ip} -> {reservation.ip}")
            continue
        subnet = reservation.subnet
        settings = {
            "range": subnet.range if subnet else None,
            "gateway": subnet.gateway if subnet else None,
            "dns": subnet.dns if subnet else None,
            "cloud_properties": subnet.cloud_properties if subnet else None,
            "default": reservation.default,
        }
        changed = [
            key
            for key, value in settings.items()
            if getattr(before, key) is not None and not _same(getattr(before, key), value)
        ]
        if changed:
            details.append(f"{name}: {', '.join(changed)}")
    details.extend(f"removed {name}" for name in old if name not in new)
    return details


def _compare_applied(applied: AppliedState, desired: DesiredInstance) -> list[tuple[str, str]]:
    """``(change, reason)`` for each way ``desired`` differs from what was applied."""
    found: list[tuple[str, str]] = []
    old_stemcell = tuple(applied.stemcell)
    new_stemcell = (desired.stemcell.name, desired.stemcell.version)
    if old_stemcell != new_stemcell:
        found.append(("stemcell", _stemcell_reason(old_stemcell, new_stemcell)))  # type: ignore[arg-type]
    if not _same(dict(applied.cloud_properties), dict(desired.cloud_properties)):
        if applied.vm_type != desired.vm_type:
            found.append(
                ("cloud_properties", f"vm_type changed {applied.vm_type} -> {desired.vm_type}")
            )
        else:
            found.append(("cloud_properties", "cloud_properties changed"))
    if not _same(dict(applied.env), dict(desired.env)):
        found.append(("env", "env changed"))
    details = _network_details(applied.networks, desired.networks)
    if details:
        found.append(("network", f"network changed ({'; '.join(details)})"))
    if applied.persistent_disk_size != desired.persistent_disk_size:
        found.append(
            (
                "persistent_disk",
                f"persistent_disk size {applied.persistent_disk_size} -> "
                f"{desired.persistent_disk_size}",
            )
        )
    elif desired.persistent_disk_size and not _same(
        dict(applied.persistent_disk_cloud_properties),
        dict(desired.persistent_disk_cloud_properties),
    ):
        found.append(("persistent_disk", "persistent_disk cloud_properties changed"))
    if applied.jobs_fingerprint != desired.jobs_fingerprint:
        found.append(("configuration", "jobs or properties changed"))
    return found


def detect_changes(
    existing: ExistingInstance, desired: DesiredInstance, options: PlanOptions
) -> tuple[frozenset[str], tuple[str, ...]]:
    """BOSH change names and human reasons for an existing instance."""
    changes: set[str] = set()
    reasons: list[str] = []

    def add(change: str, reason: str) -> None:
        changes.add(change)
        reasons.append(reason)

    if options.recreate:
        before = options.recreate_vms_created_before
        if before is None or existing.vm_created_at is None or existing.vm_created_at < before:
            add("recreate", "recreate requested")
    if options.fix and existing.unresponsive:
        add("recreate", MISSING_VM if existing.vm_missing else UNRESPONSIVE_AGENT)

    applied = existing.applied
    if applied is None:
        if "recreate" not in changes:
            add("recreate", "no applied state recorded (previous deploy did not finish)")
    else:
        for change, reason in _compare_applied(applied, desired):
            add(change, reason)

    if options.recreate_persistent_disks and desired.persistent_disk_size:
        add("recreate_persistent_disks", "recreate persistent disks requested")
    return frozenset(changes), tuple(reasons)


def classify(
    existing: ExistingInstance | None,
    changes: frozenset[str],
    *,
    errand: bool = False,
) -> Change:
    """The change for a desired instance, from its BOSH change names."""
    if existing is None:
        return "none" if errand else "create"
    if existing.ignore:
        return "none"
    if existing.state == "detached":
        # No VM on purpose (``stop --hard``): the new state is recorded and
        # applied when the instance is started again.
        return "update" if changes else "none"
    if existing.vm_cid is None:
        return "none" if errand else "create"
    if changes & SHUTDOWN_CHANGES:
        return "recreate"
    return "update" if changes else "none"
