"""IP addresses on cloud-config networks, and handing them out (BOSH §1.6).

A *manual* network has subnets; each subnet has a ``range`` (CIDR), a
``gateway``, ``reserved`` and ``static`` lists (single IPs, ``a - b`` ranges
or CIDRs) and the AZs it serves. Addresses are kept as merged integer
intervals (``IpRangeSet``), never as sets of single addresses, so a /8 or an
IPv6 /64 costs as much as a /29.

Rules, as in BOSH:

* *restricted* = network address, broadcast (last address, also for IPv6),
  gateway, ``reserved`` and the director's own IPs. Never handed out.
* A **static** reservation names its IP (instance group
  ``networks[].static_ips``); the IP must be inside a subnet
  (``NetworkReservationIpOutsideSubnet``), in that subnet's ``static`` list
  and not restricted (``NetworkReservationIpReserved``), and not held by
  another instance of any deployment (``NetworkReservationAlreadyInUse``).
* A **dynamic** reservation takes the lowest free address of the first
  subnet (cloud-config order) whose AZs include the instance's AZ (any
  subnet when the instance has no AZ). Not free: restricted, the ``static``
  list, every address in use by any deployment (``ips_in_use``) and every
  address already claimed in this plan.
* An existing instance keeps its dynamic IP while it stays valid: inside a
  subnet of the network that serves the instance's AZ, not restricted, not
  in the static list, not claimed by someone else.

*dynamic* networks get a reservation without an IP (the IaaS picks one);
*vip* networks take the instance group's static IPs as they are.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from director.planning.errors import (
    NetworkReservationAlreadyInUse,
    NetworkReservationIpOutsideSubnet,
    NetworkReservationIpReserved,
    NetworkReservationNotEnoughCapacity,
    PlanError,
)
from director.planning.model import NetworkReservation, SubnetSpec

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

NETWORK_TYPES = ("manual", "dynamic", "vip")


# --------------------------------------------------------------------------
# ranges


class IpRangeSet:
    """A set of addresses of one IP version as sorted, disjoint, merged
    closed intervals ``[lo, hi]`` of integers.

    ``add`` mutates; everything else is a query. Instances held by frozen
    dataclasses are never mutated after construction (``copy()`` first).
    """

    __slots__ = ("_los", "_his")

    def __init__(self, intervals: Iterable[tuple[int, int]] = ()) -> None:
        self._los: list[int] = []
        self._his: list[int] = []
        merged: list[list[int]] = []
        for lo, hi in sorted(intervals):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        for lo, hi in merged:
            self._los.append(lo)
            self._his.append(hi)

    def copy(self) -> IpRangeSet:
        clone = IpRangeSet()
        clone._los = list(self._los)
        clone._his = list(self._his)
        return clone

    def intervals(self) -> Iterator[tuple[int, int]]:
        return zip(self._los, self._his, strict=True)

    def __bool__(self) -> bool:
        return bool(self._los)

    def __len__(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.intervals())

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        i = bisect.bisect_right(self._los, value) - 1
        return i >= 0 and self._his[i] >= value

    def add(self, lo: int, hi: int | None = None) -> None:
        hi = lo if hi is None else hi
        # first interval that could touch [lo, hi]
        i = bisect.bisect_left(self._his, lo - 1)
        j = i
        while j < len(self._los) and self._los[j] <= hi + 1:
            lo = min(lo, self._los[j])
            hi = max(hi, self._his[j])
            j += 1
        self._los[i:j] = [lo]
        self._his[i:j] = [hi]

    def union(self, other: IpRangeSet) -> IpRangeSet:
        return IpRangeSet([*self.intervals(), *other.intervals()])

    def overlaps(self, lo: int, hi: int) -> bool:
        i = bisect.bisect_right(self._los, hi) - 1
        return i >= 0 and self._his[i] >= lo

    def count_in(self, lo: int, hi: int) -> int:
        """How many addresses of ``[lo, hi]`` are in the set."""
        total = 0
        i = max(bisect.bisect_right(self._los, lo) - 1, 0)
        while i < len(self._los) and self._los[i] <= hi:
            total += max(0, min(hi, self._his[i]) - max(lo, self._los[i]) + 1)
            i += 1
        return total

    def first_gap(self, lo: int, hi: int) -> int | None:
        """The lowest address of ``[lo, hi]`` not in the set, or ``None``."""
        candidate = lo
        i = max(bisect.bisect_right(self._los, lo) - 1, 0)
        while i < len(self._los) and self._los[i] <= candidate:
            if self._his[i] >= candidate:
                candidate = self._his[i] + 1
            i += 1
        return candidate if candidate <= hi else None

    def ranges_outside(self, lo: int, hi: int) -> Iterator[tuple[int, int]]:
        """Intervals of the set that are not inside ``[lo, hi]``."""
        for a, b in self.intervals():
            if a < lo or b > hi:
                yield a, b

    def __repr__(self) -> str:
        return f"IpRangeSet({list(self.intervals())!r})"


def normalize_ip(value: object, path: str = "") -> str:
    """``value`` as the canonical text of an IP (``10.0.0.010`` is refused)."""
    return str(parse_ip(value, path))


def parse_ip(value: object, path: str = "") -> IPAddress:
    if not isinstance(value, str):
        raise PlanError(path, f"{value!r} is not an IP address")
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        raise PlanError(path, f"{value!r} is not an IP address") from None


def parse_ip_entry(entry: object, version: int, path: str) -> tuple[int, int]:
    """One ``reserved``/``static``/``static_ips`` entry as ``(lo, hi)``:
    a single IP, an ``a - b`` range, or a CIDR block."""
    if not isinstance(entry, str):
        raise PlanError(path, f"{entry!r} is not an IP address, 'a - b' range or CIDR")
    text = entry.strip()
    try:
        if "/" in text:
            block = ipaddress.ip_network(text, strict=False)
            lo_ip, hi_ip = block.network_address, block.broadcast_address
        elif "-" in text:
            left, _, right = text.partition("-")
            lo_ip = ipaddress.ip_address(left.strip())
            hi_ip = ipaddress.ip_address(right.strip())
        else:
            lo_ip = hi_ip = ipaddress.ip_address(text)
    except ValueError:
        raise PlanError(path, f"'{entry}' is not an IP address, 'a - b' range or CIDR") from None
    if lo_ip.version != version or hi_ip.version != version:
        raise PlanError(path, f"'{entry}' is not an IPv{version} address")
    if int(lo_ip) > int(hi_ip):
        raise PlanError(path, f"'{entry}': range start is after its end")
    return int(lo_ip), int(hi_ip)


def parse_ip_list(value: object, version: int, path: str) -> IpRangeSet:
    """A ``reserved``/``static`` value (list of entries, or one string)."""
    if value is None:
        return IpRangeSet()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise PlanError(path, "must be a list of IPs or 'a - b' ranges")
    return IpRangeSet(
        parse_ip_entry(entry, version, f"{path}/{i}") for i, entry in enumerate(value)
    )


def expand_ips(value: object, version: int | None, path: str, limit: int = 65536) -> list[str]:
    """Expand an instance group's ``static_ips`` to single addresses, in
    the order given. Static IPs are one per instance, so a list longer than
    ``limit`` is refused rather than materialised."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise PlanError(path, "must be a list of IPs or 'a - b' ranges")
    result: list[str] = []
    for i, entry in enumerate(value):
        entry_path = f"{path}/{i}"
        if version is None:
            first = str(entry).split("-")[0].split("/")[0].strip()
            version = parse_ip(first, entry_path).version
        lo, hi = parse_ip_entry(entry, version, entry_path)
        if len(result) + (hi - lo + 1) > limit:
            raise PlanError(path, f"more than {limit} static IPs")
        cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        result.extend(str(cls(n)) for n in range(lo, hi + 1))
    return result


def _fmt(version: int, value: int) -> str:
    return str(ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value))


def _fmt_range(version: int, lo: int, hi: int) -> str:
    return _fmt(version, lo) if lo == hi else f"{_fmt(version, lo)} - {_fmt(version, hi)}"


# --------------------------------------------------------------------------
# networks


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


def parse_subnet(
    raw: Mapping[str, Any], path: str, known_azs: Iterable[str] | None = None
) -> Subnet:
    """Parse and validate one manual-network subnet."""
    if not isinstance(raw, Mapping):
        raise PlanError(path, "must be a mapping")
    rng = raw.get("range")
    if not isinstance(rng, str):
        raise PlanError(f"{path}/range", "is required (a CIDR such as 10.0.0.0/24)")
    try:
        network = ipaddress.ip_network(rng.strip(), strict=True)
    except ValueError as exc:
        raise PlanError(f"{path}/range", f"'{rng}' is not a valid CIDR range ({exc})") from None
    version = network.version
    first, last = int(network.network_address), int(network.broadcast_address)
    restricted = IpRangeSet([(first, first), (last, last)])

    gateway = None
    if raw.get("gateway") is not None:
        gateway = parse_ip(raw["gateway"], f"{path}/gateway")
        if gateway.version != version or not first < int(gateway) < last:
            raise PlanError(
                f"{path}/gateway",
                f"{gateway} must be an address inside {network} "
                "(not its network or broadcast address)",
            )
        restricted.add(int(gateway))
    else:
        raise PlanError(f"{path}/gateway", "is required")

    reserved = parse_ip_list(raw.get("reserved"), version, f"{path}/reserved")
    for lo, hi in reserved.ranges_outside(first, last):
        raise PlanError(
            f"{path}/reserved", f"{_fmt_range(version, lo, hi)} is outside the range {network}"
        )
    static = parse_ip_list(raw.get("static"), version, f"{path}/static")
    for lo, hi in static.ranges_outside(first, last):
        raise PlanError(
            f"{path}/static", f"{_fmt_range(version, lo, hi)} is outside the range {network}"
        )
    for lo, hi in reserved.intervals():
        restricted.add(lo, hi)
    for lo, hi in static.intervals():
        if restricted.overlaps(lo, hi):
            raise PlanError(
                f"{path}/static",
                f"{_fmt_range(version, lo, hi)} overlaps reserved addresses, the gateway, "
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


# --------------------------------------------------------------------------
# allocation


@dataclass(frozen=True)
class Holder:
    """Who asks for an IP: the instance's uuid (identity) and how to name it
    in messages (``zk/0`` or ``zk/uuid (0)``)."""

    uuid: str
    label: str


class IpAllocator:
    """Reserves addresses for one plan. Stateful while planning only.

    ``ips_in_use`` maps every address held by any deployment (this one
    included) to a description of its holder (``"instance zk/abc (0) from
    deployment zookeeper"``). ``own`` maps addresses held by this
    deployment's existing instances to their ``Holder``: an instance may
    keep its own address even when ``ips_in_use`` lists it.
    """

    def __init__(
        self,
        networks: Mapping[str, Network],
        *,
        deployment: str,
        ips_in_use: Mapping[str, str] | None = None,
        own: Mapping[str, Holder] | None = None,
        director_ips: Sequence[str] = (),
    ) -> None:
        self.networks = networks
        self.deployment = deployment
        self._in_use: dict[IPAddress, str] = {}
        for ip, owner in (ips_in_use or {}).items():
            self._in_use[parse_ip(ip, f"ips_in_use/{ip}")] = owner
        self._own: dict[IPAddress, Holder] = {
            parse_ip(ip, f"existing/{ip}"): holder for ip, holder in (own or {}).items()
        }
        self._director = [parse_ip(ip, "director_ips") for ip in director_ips]
        self._claimed: dict[IPAddress, Holder] = {}
        self._blocked: dict[tuple[str, int], IpRangeSet] = {}

    # -- queries -------------------------------------------------------

    def network(self, name: str, path: str) -> Network:
        try:
            return self.networks[name]
        except KeyError:
            raise PlanError(path, f"network '{name}' is not in the cloud-config") from None

    def _is_director_ip(self, ip: IPAddress) -> bool:
        return ip in self._director

    def _owner_other_than(self, ip: IPAddress, holder: Holder) -> str | None:
        """Describe whoever holds ``ip`` if that is not ``holder``."""
        claimed = self._claimed.get(ip)
        if claimed is not None and claimed.uuid != holder.uuid:
            return f"instance {claimed.label} from deployment {self.deployment}"
        own = self._own.get(ip)
        if own is not None:
            if own.uuid == holder.uuid:
                return None
            return f"instance {own.label} from deployment {self.deployment}"
        owner = self._in_use.get(ip)
        if owner is not None:
            return owner
        return None

    def _blocked_for(self, network: Network, index: int) -> IpRangeSet:
        key = (network.name, index)
        if key not in self._blocked:
            subnet = network.subnets[index]
            blocked = subnet.restricted.union(subnet.static)
            for ip in (*self._director, *self._in_use, *self._own, *self._claimed):
                if subnet.contains(ip):
                    blocked.add(int(ip))
            self._blocked[key] = blocked
        return self._blocked[key]

    def free_count(self, network: Network, az: str | None) -> int:
        total = 0
        for i, subnet in enumerate(network.subnets):
            if subnet.serves(az):
                blocked = self._blocked_for(network, i)
                total += (subnet.last - subnet.first + 1) - blocked.count_in(
                    subnet.first, subnet.last
                )
        return total

    # -- claims --------------------------------------------------------

    def _claim(self, ip: IPAddress, holder: Holder) -> None:
        self._claimed[ip] = holder
        for (name, index), blocked in self._blocked.items():
            if self.networks[name].subnets[index].contains(ip):
                blocked.add(int(ip))

    def keep_dynamic(
        self, network_name: str, ip_text: str, holder: Holder, az: str | None
    ) -> NetworkReservation | None:
        """Let an existing instance keep its dynamic IP if it is still valid;
        ``None`` when it must get a new one."""
        network = self.networks.get(network_name)
        if network is None or network.type != "manual":
            return None
        try:
            ip = ipaddress.ip_address(ip_text)
        except ValueError:
            return None
        subnet = network.subnet_for(ip)
        if subnet is None or not subnet.serves(az):
            return None
        value = int(ip)
        if value in subnet.restricted or value in subnet.static or self._is_director_ip(ip):
            return None
        if self._owner_other_than(ip, holder) is not None:
            return None
        self._claim(ip, holder)
        return NetworkReservation(network_name, str(ip), False, subnet.spec)

    def reserve_static(
        self, network_name: str, ip_text: str, holder: Holder, path: str
    ) -> NetworkReservation:
        """Reserve a static IP for ``holder`` or raise the BOSH error."""
        network = self.network(network_name, path)
        ip = parse_ip(ip_text, path)
        who = f"instance {holder.label} of deployment {self.deployment}"
        if network.type == "vip":
            owner = self._owner_other_than(ip, holder)
            if owner is not None:
                raise NetworkReservationAlreadyInUse(
                    path, f"{ip} for {who} is already in use by {owner}"
                )
            self._claim(ip, holder)
            return NetworkReservation(network_name, str(ip), True, None, type="vip")
        if network.type != "manual":
            raise PlanError(path, f"network '{network_name}' is {network.type}: no static IPs")
        subnet = network.subnet_for(ip)
        if subnet is None:
            ranges = ", ".join(str(s.network) for s in network.subnets)
            raise NetworkReservationIpOutsideSubnet(
                path,
                f"{ip} for {who} is not in any subnet of network '{network_name}' ({ranges})",
            )
        value = int(ip)
        if value in subnet.restricted or self._is_director_ip(ip):
            raise NetworkReservationIpReserved(
                path,
                f"{ip} for {who} is reserved in network '{network_name}' "
                f"(subnet {subnet.network}: reserved, gateway, network, broadcast or director IP)",
            )
        if value not in subnet.static:
            raise NetworkReservationIpReserved(
                path,
                f"{ip} for {who} is not in the static IPs of network '{network_name}' "
                f"subnet {subnet.network}",
            )
        owner = self._owner_other_than(ip, holder)
        if owner is not None:
            raise NetworkReservationAlreadyInUse(
                path, f"{ip} for {who} is already reserved by {owner}"
            )
        self._claim(ip, holder)
        return NetworkReservation(network_name, str(ip), True, subnet.spec)

    def allocate_dynamic_many(
        self,
        network_name: str,
        az: str | None,
        holders: Sequence[Holder],
        *,
        group: str,
        path: str,
    ) -> list[NetworkReservation]:
        """Lowest free addresses for ``holders`` (all in ``az``), or a
        ``NetworkReservationNotEnoughCapacity`` naming how many were needed."""
        network = self.network(network_name, path)
        candidates = self._dynamic_candidates(network, az, path)
        if network.type == "dynamic":
            subnet = network.subnets[candidates[0]]
            spec = SubnetSpec("", None, subnet.dns, subnet.cloud_properties, subnet.azs)
            reservation = NetworkReservation(network_name, None, False, spec, type="dynamic")
            return [reservation] * len(holders)
        self.check_capacity(network_name, az, len(holders), group=group, path=path)
        result = []
        for holder in holders:
            for i in candidates:
                subnet = network.subnets[i]
                gap = self._blocked_for(network, i).first_gap(subnet.first, subnet.last)
                if gap is not None:
                    ip = ipaddress.ip_address(gap)
                    self._claim(ip, holder)
                    result.append(NetworkReservation(network_name, str(ip), False, subnet.spec))
                    break
        return result

    def _dynamic_candidates(self, network: Network, az: str | None, path: str) -> list[int]:
        if network.type == "vip":
            raise PlanError(path, f"network '{network.name}' is a vip network: static_ips required")
        candidates = [i for i, s in enumerate(network.subnets) if s.serves(az)]
        if not candidates:
            where = f" in az '{az}'" if az else ""
            raise PlanError(path, f"network '{network.name}' has no subnet{where}")
        return candidates

    def check_capacity(
        self, network_name: str, az: str | None, needed: int, *, group: str, path: str
    ) -> None:
        """Raise ``NetworkReservationNotEnoughCapacity`` unless ``needed``
        dynamic addresses are free for ``az``."""
        network = self.network(network_name, path)
        candidates = self._dynamic_candidates(network, az, path)
        if network.type != "manual":
            return
        free = self.free_count(network, az)
        if free < needed:
            where = f" in az '{az}'" if az else ""
            ranges = ", ".join(str(network.subnets[i].network) for i in candidates)
            raise NetworkReservationNotEnoughCapacity(
                path,
                f"network '{network_name}'{where} has not enough free IPs for instance group "
                f"'{group}': {needed} needed, {free} free (subnets {ranges})",
            )

    def claimed_by(self, uuid: str) -> set[str]:
        return {str(ip) for ip, holder in self._claimed.items() if holder.uuid == uuid}
