"""Placing an instance group's instances in AZs (BOSH §1.5).

Given how many instances the manifest wants, the group's AZs and the
instances that exist, decide which existing instances are kept (and where),
how many new ones are created and where, their indexes, which instance is
the bootstrap, and which existing instances become obsolete.

Without static IPs (BOSH ``AvailabilityZonePicker`` + ``Balancer``):

1. Ignored instances keep their AZ (error if the AZ was removed from the
   group, or if fewer instances are requested than are ignored).
2. Existing instances with a persistent disk stay in their AZ while it is
   still one of the group's AZs, lowest index first, until enough are placed:
   their data stays where it is, even when that leaves the AZs unbalanced.
3. Every remaining instance goes to the AZ with the fewest instances placed
   so far. Ties go to the AZ with the most unclaimed existing instances (so
   they are reused rather than replaced), then to the smallest AZ name, or a
   seeded random choice with ``randomize_az_placement``. In the chosen AZ the
   unclaimed existing instance with the lowest index is reused, else a new
   instance is created.
4. Existing instances nobody claimed are obsolete.

So scaling 5 -> 3 over z1, z2, z3 (indexes 0..4 in z1, z2, z3, z1, z2) keeps
the balanced set 0, 1, 2 (one per AZ) and deletes 3 and 4: the highest
indexes go, as in BOSH. Instances in an AZ removed from the group are
deleted and replaced by new instances in the remaining AZs, disks or not
(BOSH does not move disks across AZs).

With static IPs (BOSH ``StaticIpsAvailabilityZonePicker``) the AZ follows
the IPs: each static network must list exactly one IP per instance; an IP's
AZs are those of its subnet. Existing instances holding an IP of the list
keep it and their AZ (an error if the IP's subnet no longer serves that AZ);
other existing instances are reused when their AZ still has an unclaimed IP;
new instances take the unclaimed IPs, AZ with the fewest instances first.
With several static networks the first one decides the AZ.

Indexes: existing instances keep theirs; a new instance gets the smallest
index no existing instance of the group holds, obsolete ones included (they
still exist while the deploy runs, and two live instances must never share
an index). Bootstrap: the single existing bootstrap instance stays
bootstrap; otherwise (none, or several) the lowest index is elected.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from director.planning.errors import (
    DeploymentIgnoredInstancesModification,
    NetworkReservationError,
    PlanError,
)
from director.planning.inputs import ExistingInstance


@dataclass(frozen=True)
class Placement:
    """A desired instance: where it goes and which existing instance (if
    any) it is. ``static_ips`` maps static network name -> IP."""

    index: int
    az: str | None
    existing: ExistingInstance | None
    bootstrap: bool = False
    static_ips: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlacementResult:
    placements: tuple[Placement, ...]  # by index
    obsolete: tuple[ExistingInstance, ...]  # highest index first


@dataclass(frozen=True)
class StaticIpPool:
    """A static network of an instance group: its IPs in manifest order,
    each with the group AZs its subnet serves (empty when the group has no
    AZs)."""

    network: str
    ips: tuple[tuple[str, tuple[str, ...]], ...]

    def azs_of(self, ip: str) -> tuple[str, ...]:
        return next(azs for candidate, azs in self.ips if candidate == ip)


@dataclass
class _Slot:
    az: str | None
    existing: ExistingInstance | None
    static_ips: dict[str, str] = field(default_factory=dict)


TieBreaker = Callable[[Sequence[str]], str]


def tie_breaker(rng: random.Random | None) -> TieBreaker:
    """``min`` (BOSH ``MinWins``), or a choice by ``rng`` (``RandomWins``)."""
    if rng is None:
        return min
    return lambda candidates: rng.choice(sorted(candidates))


def place_instances(
    group: str,
    instances: int,
    azs: Sequence[str],
    existing: Sequence[ExistingInstance],
    *,
    static_pools: Sequence[StaticIpPool] = (),
    pick: TieBreaker = min,
    path: str | None = None,
) -> PlacementResult:
    """Place ``instances`` instances of ``group`` in ``azs`` (empty = no AZs)."""
    path = path or f"instance_groups/{group}"
    ordered = sorted(existing, key=lambda e: e.index)
    ignored = [e for e in ordered if e.ignore]
    if len(ignored) > instances:
        raise DeploymentIgnoredInstancesModification(
            f"{path}/instances",
            f"instance group '{group}' has {len(ignored)} ignored instance(s); {instances} "
            "requested. Deleting ignored instances is not allowed.",
        )
    removed = sorted({e.az for e in ignored if azs and e.az not in azs}, key=str)
    if removed:
        raise DeploymentIgnoredInstancesModification(
            f"{path}/azs",
            f"instance group '{group}' no longer contains AZ(s) {', '.join(map(str, removed))} "
            "where ignored instance(s) exist",
        )
    if static_pools:
        slots = _place_by_static_ips(group, instances, azs, ordered, static_pools, pick, path)
    else:
        slots = _place_by_balance(instances, azs, ordered, pick)
    claimed = {id(s.existing) for s in slots if s.existing is not None}
    obsolete = [e for e in ordered if id(e) not in claimed]
    return PlacementResult(_index_and_elect(slots, ordered), tuple(reversed(obsolete)))


def _place_by_balance(
    instances: int,
    azs: Sequence[str],
    ordered: list[ExistingInstance],
    pick: TieBreaker,
) -> list[_Slot]:
    slots = [_Slot(e.az, e) for e in ordered if e.ignore]
    unclaimed: dict[str | None, list[ExistingInstance]] = {}
    for e in ordered:
        if not e.ignore:
            unclaimed.setdefault(e.az, []).append(e)

    if not azs:
        # Without AZs only instances without an AZ can be reused.
        pool = unclaimed.get(None, [])
        while len(slots) < instances:
            slots.append(_Slot(None, pool.pop(0) if pool else None))
        return slots

    placed = {az: 0 for az in azs}
    for slot in slots:
        placed[slot.az] += 1  # type: ignore[index]
    for e in [e for e in ordered if e.has_persistent_disk and not e.ignore]:
        if len(slots) >= instances:
            break
        if e.az in placed:
            unclaimed[e.az].remove(e)
            placed[e.az] += 1
            slots.append(_Slot(e.az, e))

    while len(slots) < instances:
        fewest = min(placed.values())
        candidates = [az for az in azs if placed[az] == fewest]
        reusable = [az for az in candidates if unclaimed.get(az)]
        if reusable:
            most = max(len(unclaimed[az]) for az in reusable)
            candidates = [az for az in reusable if len(unclaimed[az]) == most]
        az = pick(candidates)
        pool = unclaimed.get(az)
        placed[az] += 1
        slots.append(_Slot(az, pool.pop(0) if pool else None))
    return slots


def _held_ip(e: ExistingInstance, network: str) -> list[str]:
    result = []
    for reservation in e.reservations:
        name, ip, _static = reservation
        if name == network:
            try:
                result.append(str(ipaddress.ip_address(ip)))
            except ValueError:
                continue
    return result


def _place_by_static_ips(
    group: str,
    instances: int,
    azs: Sequence[str],
    ordered: list[ExistingInstance],
    pools: Sequence[StaticIpPool],
    pick: TieBreaker,
    path: str,
) -> list[_Slot]:
    _check_pools(group, instances, azs, pools, path)
    placer = _StaticIpPlacer(group, instances, azs, pools, path)
    placer.keep_held_ips(ordered)
    placer.reuse_existing(ordered)
    placer.create_new(pick)
    return placer.slots


def _check_pools(
    group: str, instances: int, azs: Sequence[str], pools: Sequence[StaticIpPool], path: str
) -> None:
    """One IP per instance on each static network, no IP twice, each in a
    subnet serving one of the group's AZs."""
    for pool in pools:
        ips_path = f"{path}/networks/{pool.network}/static_ips"
        if len(pool.ips) != instances:
            raise PlanError(
                ips_path,
                f"instance group '{group}' has {instances} instance(s) but "
                f"{len(pool.ips)} static IP(s) on network '{pool.network}'",
            )
        seen: set[str] = set()
        for ip, ip_azs in pool.ips:
            if ip in seen:
                raise PlanError(ips_path, f"{ip} is listed twice")
            seen.add(ip)
            if azs and not ip_azs:
                raise NetworkReservationError(
                    ips_path,
                    f"{ip} is in a subnet that serves none of the instance group's AZs "
                    f"({', '.join(azs)})",
                )


class _StaticIpPlacer:
    """Hands out a group's static IPs to slots, in three passes (the module
    doc's "With static IPs"); the first pool decides the AZ."""

    def __init__(
        self,
        group: str,
        instances: int,
        azs: Sequence[str],
        pools: Sequence[StaticIpPool],
        path: str,
    ) -> None:
        self.group = group
        self.instances = instances
        self.azs = azs
        self.pools = pools
        self.path = path
        self.free: list[dict[str, tuple[str, ...]]] = [dict(pool.ips) for pool in pools]
        self.slots: list[_Slot] = []
        self.claimed: set[int] = set()

    def serving(self, pool_index: int, az: str | None) -> str | None:
        return next(
            (ip for ip, ip_azs in self.free[pool_index].items() if az is None or az in ip_azs),
            None,
        )

    def serves_all(self, az: str | None) -> bool:
        return all(self.serving(i, az) is not None for i in range(len(self.pools)))

    def take(self, e: ExistingInstance | None, az: str | None, first: str | None = None) -> None:
        chosen: dict[str, str] = {}
        for i, pool in enumerate(self.pools):
            free = self.free[i]
            held = [ip for ip in _held_ip(e, pool.network) if ip in free] if e else []
            ip = (
                first
                if i == 0 and first
                else next((ip for ip in held if az is None or az in free[ip]), None)
            )
            ip = ip or self.serving(i, az)
            if ip is None:
                raise NetworkReservationError(
                    f"{self.path}/networks/{pool.network}/static_ips",
                    f"not enough static IPs on network '{pool.network}' in az '{az}' "
                    f"for instance group '{self.group}'",
                )
            del free[ip]
            chosen[pool.network] = ip
        if e is not None:
            self.claimed.add(id(e))
        self.slots.append(_Slot(az, e, chosen))

    def keep_held_ips(self, ordered: list[ExistingInstance]) -> None:
        """Existing instances (ignored ones first) holding an IP of the list keep it."""
        primary = self.pools[0]
        ips_path = f"{self.path}/networks/{primary.network}/static_ips"
        for e in sorted(ordered, key=lambda e: (not e.ignore, e.index)):
            if len(self.slots) >= self.instances:
                break
            held = [ip for ip in _held_ip(e, primary.network) if ip in self.free[0]]
            if not held:
                if e.ignore:
                    raise DeploymentIgnoredInstancesModification(
                        ips_path, f"a static IP used by ignored instance {e.label} was removed"
                    )
                continue
            ip = held[0]
            if self.azs and e.az not in self.free[0][ip]:
                raise NetworkReservationError(
                    ips_path,
                    f"existing instance {e.label} is using IP {ip} in az '{e.az}', but the IP's "
                    f"subnet now serves {', '.join(self.free[0][ip]) or 'no AZ of the group'}",
                )
            self.take(e, e.az if self.azs else None, ip)

    def reuse_existing(self, ordered: list[ExistingInstance]) -> None:
        """Other existing instances are reused if their AZ still has IPs."""
        for e in ordered:
            if len(self.slots) >= self.instances:
                break
            if id(e) in self.claimed:
                continue
            az = e.az if self.azs else None
            if self.azs and az not in self.azs:
                continue
            if self.serves_all(az):
                self.take(e, az)

    def create_new(self, pick: TieBreaker) -> None:
        """New instances take the unclaimed IPs, AZ with the fewest instances first."""
        placed = {az: 0 for az in self.azs}
        for slot in self.slots:
            if slot.az in placed:
                placed[slot.az] += 1
        while len(self.slots) < self.instances:
            if not self.azs:
                self.take(None, None)
                continue
            candidates = [az for az in self.azs if self.serves_all(az)]
            if not candidates:
                raise NetworkReservationError(
                    f"{self.path}/networks",
                    f"the static IPs of instance group '{self.group}' cannot be spread over "
                    "its AZs",
                )
            fewest = min(placed[az] for az in candidates)
            az = pick([az for az in candidates if placed[az] == fewest])
            placed[az] += 1
            self.take(None, az)


def _index_and_elect(
    slots: list[_Slot], existing: Sequence[ExistingInstance]
) -> tuple[Placement, ...]:
    used = {e.index for e in existing}
    indexed: list[tuple[int, _Slot]] = []
    candidate = 0
    for slot in slots:
        if slot.existing is not None:
            indexed.append((slot.existing.index, slot))
            continue
        while candidate in used:
            candidate += 1
        used.add(candidate)
        indexed.append((candidate, slot))
    indexed.sort(key=lambda pair: pair[0])
    bootstraps = [i for i, s in indexed if s.existing is not None and s.existing.bootstrap]
    bootstrap = bootstraps[0] if len(bootstraps) == 1 else (indexed[0][0] if indexed else None)
    return tuple(
        Placement(
            index=index,
            az=slot.az,
            existing=slot.existing,
            bootstrap=index == bootstrap,
            static_ips=dict(slot.static_ips),
        )
        for index, slot in indexed
    )
