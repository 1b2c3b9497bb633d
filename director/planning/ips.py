"""Handing out IP addresses on cloud-config networks (BOSH §1.6).

A *manual* network has subnets; each subnet has a ``range`` (CIDR), a
``gateway``, ``reserved`` and ``static`` lists (single IPs, ``a - b`` ranges
or CIDRs) and the AZs it serves (parsed by ``networks.py``). Addresses are
kept as merged integer intervals (``addresses.IpRangeSet``), never as sets
of single addresses, so a /8 or an IPv6 /64 costs as much as a /29.

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

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from director.planning.addresses import IPAddress, IpRangeSet, parse_ip
from director.planning.errors import (
    NetworkReservationAlreadyInUse,
    NetworkReservationIpOutsideSubnet,
    NetworkReservationIpReserved,
    NetworkReservationNotEnoughCapacity,
    PlanError,
)
from director.planning.model import NetworkReservation, SubnetSpec

# director/execution/compile.py imports parse_networks from here.
from director.planning.networks import (
    Network,
    parse_networks,  # noqa: F401
)


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
