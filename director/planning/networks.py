"""Cloud-config networks as the planner reads them: subnets and the AZs
they serve (BOSH §1.6).

A *manual* network has subnets; each subnet has a ``range`` (CIDR), a
``gateway``, ``reserved`` and ``static`` lists (single IPs, ``a - b`` ranges
or CIDRs) and the AZs it serves. A subnet's *restricted* addresses are its
network address, its broadcast (last address, also for IPv6), its gateway
and its ``reserved`` list; the allocator (``ips.py``) adds the director's
own IPs. *dynamic* and *vip* networks may have no subnets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from director.planning.addresses import (
    IPAddress,
    IPNetwork,
    IpRangeSet,
    format_range,
    parse_ip,
    parse_ip_list,
)
from director.planning.errors import PlanError
from director.planning.model import SubnetSpec

NETWORK_TYPES = ("manual", "dynamic", "vip")


@dataclass(frozen=True)
class Subnet:
    """A parsed subnet. ``restricted`` does not include director IPs (those
    are a director setting, added by ``IpAllocator``)."""

    network: IPNetwork
    gateway: IPAddress | None
    dns: tuple[str, ...]
    reserved: IpRangeSet
    static: IpRangeSet
    azs: tuple[str, ...]
    cloud_properties: Mapping[str, Any]
    restricted: IpRangeSet

    @property
    def version(self) -> int:
        return self.network.version

    @property
    def first(self) -> int:
        return int(self.network.network_address)

    @property
    def last(self) -> int:
        return int(self.network.broadcast_address)

    def contains(self, ip: IPAddress) -> bool:
        return ip.version == self.version and self.first <= int(ip) <= self.last

    def serves(self, az: str | None) -> bool:
        """Whether instances in ``az`` may take addresses here."""
        return az is None or not self.azs or az in self.azs

    @property
    def spec(self) -> SubnetSpec:
        return SubnetSpec(
            range=str(self.network),
            gateway=str(self.gateway) if self.gateway is not None else None,
            dns=self.dns,
            cloud_properties=self.cloud_properties,
            azs=self.azs,
        )


@dataclass(frozen=True)
class Network:
    """A cloud-config network: ``type`` manual, dynamic or vip."""

    name: str
    type: str
    subnets: tuple[Subnet, ...]

    def subnet_for(self, ip: IPAddress) -> Subnet | None:
        return next((s for s in self.subnets if s.contains(ip)), None)

    def subnets_for_az(self, az: str | None) -> tuple[Subnet, ...]:
        return tuple(s for s in self.subnets if s.serves(az))

    @property
    def azs(self) -> frozenset[str]:
        return frozenset(az for s in self.subnets for az in s.azs)


def _azs_of(raw: Mapping[str, Any], known_azs: Iterable[str] | None, path: str) -> tuple[str, ...]:
    if "az" in raw and "azs" in raw:
        raise PlanError(path, "use either 'az' or 'azs', not both")
    if raw.get("az") is not None:
        azs = [raw["az"]]
        where = f"{path}/az"
    else:
        azs = raw.get("azs") or []
        where = f"{path}/azs"
    if not isinstance(azs, list) or not all(isinstance(a, str) for a in azs):
        raise PlanError(where, "must be an AZ name or a list of AZ names")
    if known_azs is not None:
        known = set(known_azs)
        for az in azs:
            if az not in known:
                raise PlanError(where, f"unknown AZ '{az}' (not in the cloud-config's azs)")
    return tuple(azs)


def _dns(value: object, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise PlanError(path, "must be a list of DNS server addresses")
    return tuple(value)


def _subnet_range(rng: object, path: str) -> IPNetwork:
    if not isinstance(rng, str):
        raise PlanError(f"{path}/range", "is required (a CIDR such as 10.0.0.0/24)")
    try:
        return ipaddress.ip_network(rng.strip(), strict=True)
    except ValueError as exc:
        raise PlanError(f"{path}/range", f"'{rng}' is not a valid CIDR range ({exc})") from None


def _gateway(value: object, network: IPNetwork, path: str) -> IPAddress:
    """The subnet's gateway: required, inside the range, neither its network
    nor its broadcast address."""
    if value is None:
        raise PlanError(f"{path}/gateway", "is required")
    gateway = parse_ip(value, f"{path}/gateway")
    first, last = int(network.network_address), int(network.broadcast_address)
    if gateway.version != network.version or not first < int(gateway) < last:
        raise PlanError(
            f"{path}/gateway",
            f"{gateway} must be an address inside {network} (not its network or broadcast address)",
        )
    return gateway


def _inside(value: object, network: IPNetwork, path: str) -> IpRangeSet:
    """A ``reserved`` or ``static`` list, every entry inside the range."""
    version = network.version
    first, last = int(network.network_address), int(network.broadcast_address)
    ranges = parse_ip_list(value, version, path)
    for lo, hi in ranges.ranges_outside(first, last):
        raise PlanError(path, f"{format_range(version, lo, hi)} is outside the range {network}")
    return ranges


def parse_subnet(
    raw: Mapping[str, Any], path: str, known_azs: Iterable[str] | None = None
) -> Subnet:
    """Parse and validate one manual-network subnet."""
    if not isinstance(raw, Mapping):
        raise PlanError(path, "must be a mapping")
    network = _subnet_range(raw.get("range"), path)
    version = network.version
    first, last = int(network.network_address), int(network.broadcast_address)
    restricted = IpRangeSet([(first, first), (last, last)])
    gateway = _gateway(raw.get("gateway"), network, path)
    restricted.add(int(gateway))

    reserved = _inside(raw.get("reserved"), network, f"{path}/reserved")
    static = _inside(raw.get("static"), network, f"{path}/static")
    for lo, hi in reserved.intervals():
        restricted.add(lo, hi)
    for lo, hi in static.intervals():
        if restricted.overlaps(lo, hi):
            raise PlanError(
                f"{path}/static",
                f"{format_range(version, lo, hi)} overlaps reserved addresses, the gateway, "
                "or the network/broadcast address",
            )
    cloud_properties = raw.get("cloud_properties") or {}
    if not isinstance(cloud_properties, Mapping):
        raise PlanError(f"{path}/cloud_properties", "must be a mapping")
    return Subnet(
        network=network,
        gateway=gateway,
        dns=_dns(raw.get("dns"), f"{path}/dns"),
        reserved=reserved,
        static=static,
        azs=_azs_of(raw, known_azs, path),
        cloud_properties=dict(cloud_properties),
        restricted=restricted,
    )


def parse_network(
    raw: Mapping[str, Any], path: str, known_azs: Iterable[str] | None = None
) -> Network:
    """Parse one cloud-config network (manual, dynamic or vip)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        raise PlanError(path, "must be a mapping with a 'name'")
    name = raw["name"]
    kind = raw.get("type") or "manual"
    if kind not in NETWORK_TYPES:
        raise PlanError(f"{path}/type", f"'{kind}' is not one of {', '.join(NETWORK_TYPES)}")
    raw_subnets = raw.get("subnets")
    if kind == "manual":
        if not isinstance(raw_subnets, list) or not raw_subnets:
            raise PlanError(f"{path}/subnets", "a manual network needs at least one subnet")
        subnets = tuple(
            parse_subnet(s, f"{path}/subnets/{i}", known_azs) for i, s in enumerate(raw_subnets)
        )
        for i, a in enumerate(subnets):
            for b in subnets[:i]:
                if a.network.version == b.network.version and a.network.overlaps(b.network):
                    raise PlanError(
                        f"{path}/subnets/{i}/range", f"{a.network} overlaps {b.network}"
                    )
        return Network(name=name, type=kind, subnets=subnets)
    if kind == "dynamic":
        # A dynamic network describes only where VMs attach; the IaaS assigns the IP.
        entries = raw_subnets if isinstance(raw_subnets, list) and raw_subnets else [raw]
        subnets = []
        for i, entry in enumerate(entries):
            sub_path = f"{path}/subnets/{i}" if entry is not raw else path
            cloud_properties = entry.get("cloud_properties") or {}
            subnets.append(
                Subnet(
                    network=ipaddress.ip_network("0.0.0.0/0"),
                    gateway=None,
                    dns=_dns(entry.get("dns"), f"{sub_path}/dns"),
                    reserved=IpRangeSet(),
                    static=IpRangeSet(),
                    azs=_azs_of(entry, known_azs, sub_path),
                    cloud_properties=dict(cloud_properties),
                    restricted=IpRangeSet(),
                )
            )
        return Network(name=name, type=kind, subnets=tuple(subnets))
    return Network(name=name, type=kind, subnets=())


def parse_networks(
    raw_networks: object,
    path: str = "cloud_config/networks",
    known_azs: Iterable[str] | None = None,
) -> dict[str, Network]:
    if raw_networks is None:
        return {}
    if not isinstance(raw_networks, list):
        raise PlanError(path, "must be a list")
    known = list(known_azs) if known_azs is not None else None
    networks: dict[str, Network] = {}
    for i, raw in enumerate(raw_networks):
        label = raw.get("name") if isinstance(raw, Mapping) else None
        network = parse_network(raw, f"{path}/{label or i}", known)
        if network.name in networks:
            raise PlanError(f"{path}/{network.name}", "network name is used twice")
        networks[network.name] = network
    return networks
