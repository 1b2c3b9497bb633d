"""IP reservations for a whole deployment (the planner's IP step).

Once every group's instances are placed and named, addresses are reserved
in three passes over all groups, so that no group takes an address another
one keeps or names:

1. existing instances keep their still-valid dynamic IPs (every group);
2. static IPs are reserved (vip networks take the group's IPs in order);
3. the remaining dynamic IPs are handed out, lowest address to lowest index.

With ``vm_strategy: create-swap-delete`` the duplicate VMs get fresh
dynamic IPs afterwards (``fresh_for_duplicates``). The rules for one
address are ``ips.py``'s ``IpAllocator``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

from director.planning.addresses import parse_ip
from director.planning.azs import Placement
from director.planning.cloud_config import CloudConfig
from director.planning.errors import PlanError
from director.planning.groups import GroupSpec
from director.planning.inputs import ExistingInstance
from director.planning.ips import Holder, IpAllocator
from director.planning.model import NetworkReservation

#: uuid -> network name -> reservation
Reservations = dict[str, dict[str, NetworkReservation]]


class PlacedGroup(NamedTuple):
    """A group with its placed instances (placement, uuid) and the existing
    instances it no longer needs."""

    group: GroupSpec
    items: list[tuple[Placement, str]]
    obsolete: tuple[ExistingInstance, ...]


def holder(group: GroupSpec, placement: Placement, uuid: str) -> Holder:
    return Holder(uuid, f"{group.name}/{uuid} ({placement.index})")


def make_allocator(
    cloud: CloudConfig,
    *,
    deployment: str,
    existing: Iterable[ExistingInstance],
    ips_in_use: Mapping[str, str],
    director_ips: Sequence[str],
) -> IpAllocator:
    """An allocator that knows which addresses this deployment's instances
    already hold (theirs to keep) and which others hold."""
    own = {}
    for instance in existing:
        owner = Holder(instance.uuid, instance.label)
        for _network, ip, _static in instance.reservations:
            try:
                own[str(parse_ip(ip))] = owner
            except PlanError:
                continue
    return IpAllocator(
        cloud.networks,
        deployment=deployment,
        ips_in_use=ips_in_use,
        own=own,
        director_ips=director_ips,
    )


def reserve_ips(allocator: IpAllocator, placed: list[PlacedGroup]) -> Reservations:
    """The three passes, in order, over all groups."""
    reservations: Reservations = {}
    for group, items, _ in placed:
        _keep_dynamic(allocator, group, items, reservations)
    for group, items, _ in placed:
        _reserve_static(allocator, group, items, reservations)
    for group, items, _ in placed:  # lowest first
        allocate_dynamic(allocator, group, items, reservations, lambda p, u: True)
    return reservations


def fresh_for_duplicates(
    allocator: IpAllocator, placed: list[PlacedGroup], duplicates: set[str]
) -> Reservations:
    """Fresh dynamic IPs for the duplicate VMs of ``create-swap-delete``."""
    fresh: Reservations = {}
    for group, items, _ in placed:
        allocate_dynamic(allocator, group, items, fresh, lambda p, u: u in duplicates)
    return fresh


def _keep_dynamic(
    allocator: IpAllocator,
    group: GroupSpec,
    items: list[tuple[Placement, str]],
    reservations: Reservations,
) -> None:
    for placement, uuid in items:
        if placement.existing is None:
            continue
        for gn in group.networks:
            if gn.is_static or gn.network.type != "manual":
                continue
            for network, ip, _static in placement.existing.reservations:
                if network != gn.name:
                    continue
                kept = allocator.keep_dynamic(
                    gn.name, ip, holder(group, placement, uuid), placement.az
                )
                if kept:
                    reservations.setdefault(uuid, {})[gn.name] = kept
                    break


def _reserve_static(
    allocator: IpAllocator,
    group: GroupSpec,
    items: list[tuple[Placement, str]],
    reservations: Reservations,
) -> None:
    vip_index = {gn.name: 0 for gn in group.networks}
    for placement, uuid in items:
        for gn in group.networks:
            if not gn.is_static:
                continue
            if gn.network.type == "vip":
                ip = (
                    gn.static_ips[vip_index[gn.name]]
                    if vip_index[gn.name] < len(gn.static_ips)
                    else None
                )
                vip_index[gn.name] += 1
                if ip is None:
                    raise PlanError(
                        f"{group.path}/networks/{gn.name}/static_ips",
                        f"instance group '{group.name}' has {group.instances} "
                        f"instance(s) but {len(gn.static_ips)} static IP(s)",
                    )
            else:
                ip = placement.static_ips[gn.name]
            reservations.setdefault(uuid, {})[gn.name] = allocator.reserve_static(
                gn.name,
                ip,
                holder(group, placement, uuid),
                f"{group.path}/networks/{gn.name}/static_ips",
            )


def allocate_dynamic(
    allocator: IpAllocator,
    group: GroupSpec,
    items: list[tuple[Placement, str]],
    reservations: Reservations,
    wanted: Callable[[Placement, str], bool],
) -> None:
    """Dynamic IPs for the ``wanted`` instances that have none yet on each
    of the group's dynamic networks; capacity is checked per AZ first."""
    for gn in group.networks:
        if gn.is_static:
            continue
        by_az: dict[str | None, list[tuple[Placement, str]]] = {}
        for placement, uuid in items:
            if wanted(placement, uuid) and gn.name not in reservations.get(uuid, {}):
                by_az.setdefault(placement.az, []).append((placement, uuid))
        path = f"{group.path}/networks/{gn.name}"
        for az, members in by_az.items():
            allocator.check_capacity(gn.name, az, len(members), group=group.name, path=path)
        # lowest addresses to lowest indexes, whatever their AZ
        for placement, uuid in sorted(
            (m for members in by_az.values() for m in members), key=lambda m: m[0].index
        ):
            [reservation] = allocator.allocate_dynamic_many(
                gn.name, placement.az, [holder(group, placement, uuid)], group=group.name, path=path
            )
            reservations.setdefault(uuid, {})[gn.name] = reservation
