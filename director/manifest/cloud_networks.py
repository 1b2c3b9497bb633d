"""Cloud-config networks: ``manual`` (the director assigns IPs from
``subnets``), ``dynamic`` (the IaaS assigns them) and ``vip``.

A manual subnet has a ``range`` (CIDR), a ``gateway`` inside it that is
neither the network nor the broadcast address, ``reserved`` addresses the
director never hands out, ``static`` addresses only instance groups'
``static_ips`` may use (inside the range, not reserved), ``dns`` servers and
its ``az``/``azs``. Ranges are checked as integer intervals
(``iprange.IpRanges``), so a ``/8`` costs nothing. Subnets of one network
must not overlap, and either all name an az or none does.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from .checks import is_int, is_string_list, unresolved
from .errors import ErrorCollector, item_key, join_path
from .iprange import IpRanges, parse_ip_entry
from .yaml import unshare

NETWORK_TYPES = ("manual", "dynamic", "vip")


def _string_list(value: Any, path: str, e: ErrorCollector) -> list | None:
    if value is None or unresolved(value):
        return None
    if not is_string_list(value):
        e.add(path, "must be a list of strings")
        return None
    return value


def _parse_subnet(
    net_name: str, kind: str, subnet: dict, path: str, az_names: set[str] | None, e: ErrorCollector
) -> dict:
    out = unshare(subnet)
    out.pop("az", None)
    out["azs"] = _subnet_azs(subnet, path, az_names, e)
    dns = subnet.get("dns")
    _check_dns(dns, path, e)
    out["dns"] = dns if dns is not None else []
    cp = subnet.get("cloud_properties")
    if cp is not None and not isinstance(cp, dict) and not unresolved(cp):
        e.add(join_path(path, "cloud_properties"), "must be a map")
    out["cloud_properties"] = cp if cp is not None else {}

    if kind == "dynamic":
        return out

    out["reserved"] = subnet.get("reserved") or []
    out["static"] = subnet.get("static") or []
    if kind == "vip":
        static = _string_list(out["static"], join_path(path, "static"), e)
        for i, entry in enumerate(static or []):
            try:
                parse_ip_entry(entry)
            except ValueError as exc:
                e.add(join_path(path, "static", i), str(exc))
        return out
    _check_manual_subnet(net_name, subnet, path, e)
    return out


def _subnet_azs(subnet: dict, path: str, az_names: set[str] | None, e: ErrorCollector) -> list:
    """``az`` or ``azs`` as a list, each a known az when ``az_names`` is given."""
    if "az" in subnet and "azs" in subnet:
        e.add(path, "specify either 'az' or 'azs', not both")
    azs: list = []
    if subnet.get("az") is not None:
        if isinstance(subnet["az"], str):
            azs = [subnet["az"]]
        else:
            e.add(join_path(path, "az"), "must be a string")
    elif subnet.get("azs") is not None:
        azs = _string_list(subnet["azs"], join_path(path, "azs"), e) or []
        if isinstance(subnet["azs"], list) and not subnet["azs"]:
            e.add(join_path(path, "azs"), "must not be empty")
    if az_names is not None:
        for az in azs:
            if not unresolved(az) and az not in az_names:
                e.add(
                    join_path(path, "azs" if "azs" in subnet else "az"),
                    f"references an unknown az '{az}'",
                )
    return azs


def _check_dns(dns: Any, path: str, e: ErrorCollector) -> None:
    if dns is None or unresolved(dns):
        return
    if not isinstance(dns, list):
        e.add(join_path(path, "dns"), "must be a list of IP addresses")
        return
    for i, server in enumerate(dns):
        if unresolved(server):
            continue
        try:
            ipaddress.ip_address(str(server))
        except ValueError:
            e.add(join_path(path, "dns", i), f"'{server}' is not a valid IP address")


def _check_manual_subnet(net_name: str, subnet: dict, path: str, e: ErrorCollector) -> None:
    """``range`` and ``gateway`` (required), ``reserved`` and ``static``
    inside the range, static IPs clear of the restricted addresses, ``prefix``."""
    rng = subnet.get("range")
    gateway = subnet.get("gateway")
    if rng is None:
        e.add(join_path(path, "range"), "is required for a manual network subnet")
    if gateway is None:
        e.add(join_path(path, "gateway"), "is required for a manual network subnet")
    network = _subnet_range(rng, path, e)
    if network is not None:
        restricted = _restricted(network, gateway, rng, path, e)
        whole = IpRanges.from_network(network)
        reserved = _entries(subnet.get("reserved"), join_path(path, "reserved"), whole, rng, e)
        restricted = restricted.union(reserved)
        static = _entries(subnet.get("static"), join_path(path, "static"), whole, rng, e)
        clash = static.intersection(restricted)
        if clash:
            e.add(
                join_path(path, "static"),
                f"static IPs {_describe(clash)} are in network '{net_name}' reserved range "
                "(reserved entries, the gateway, or the network/broadcast address)",
            )
    else:
        for key in ("reserved", "static"):
            _entries(subnet.get(key), join_path(path, key), None, rng, e)
    prefix = subnet.get("prefix")
    if prefix is not None and not unresolved(prefix):
        if not is_int(prefix) and not (isinstance(prefix, str) and prefix.isdigit()):
            e.add(join_path(path, "prefix"), "must be an integer prefix length")
        elif network is not None and int(prefix) < network.prefixlen:
            e.add(
                join_path(path, "prefix"),
                f"prefix size '{prefix}' is larger than range prefix '{network.prefixlen}'",
            )


def _subnet_range(
    rng: Any, path: str, e: ErrorCollector
) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if rng is None or unresolved(rng):
        return None
    try:
        if not isinstance(rng, str):
            raise ValueError
        network = ipaddress.ip_network(rng.strip(), strict=True)
    except ValueError:
        e.add(join_path(path, "range"), f"'{rng}' is not a valid CIDR range (like 10.0.0.0/24)")
        return None
    if network.num_addresses < 2:
        e.add(join_path(path, "range"), f"range '{rng}' must include at least 2 IPs")
        return None
    return network


def _restricted(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network,
    gateway: Any,
    rng: Any,
    path: str,
    e: ErrorCollector,
) -> IpRanges:
    """The network and broadcast addresses, and the gateway once checked."""
    first, last = int(network.network_address), int(network.broadcast_address)
    v = network.version
    restricted = IpRanges.from_intervals([(v, first, first), (v, last, last)])
    if gateway is None or unresolved(gateway):
        return restricted
    gpath = join_path(path, "gateway")
    try:
        gw = ipaddress.ip_address(str(gateway).strip())
    except ValueError:
        e.add(gpath, f"'{gateway}' is not a valid IP address (the gateway must be a single IP)")
        return restricted
    if gw.version != v or gw not in network:
        e.add(gpath, f"gateway '{gateway}' must be inside the range {rng}")
    elif int(gw) == first:
        e.add(gpath, f"gateway '{gateway}' can't be the network address of {rng}")
    elif int(gw) == last:
        e.add(gpath, f"gateway '{gateway}' can't be the broadcast address of {rng}")
    else:
        restricted = restricted.union(IpRanges.from_intervals([(v, int(gw), int(gw))]))
    return restricted


def _describe(ranges: IpRanges) -> str:
    parts = []
    for v, f, la in ranges.intervals[:5]:
        a = ipaddress.ip_address(f) if v == 4 else ipaddress.IPv6Address(f)
        b = ipaddress.ip_address(la) if v == 4 else ipaddress.IPv6Address(la)
        parts.append(f"'{a}'" if f == la else f"'{a} - {b}'")
    more = " ..." if len(ranges.intervals) > 5 else ""
    return ", ".join(parts) + more


def _entries(
    value: Any, path: str, whole: IpRanges | None, rng: Any, e: ErrorCollector
) -> IpRanges:
    """Parse reserved/static entries, checking they lie inside the subnet range."""
    if value is None or unresolved(value):
        return IpRanges()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        e.add(path, "must be a list of IPs or 'a - b' ranges")
        return IpRanges()
    intervals = []
    for i, entry in enumerate(value):
        if unresolved(entry):
            continue
        try:
            interval = parse_ip_entry(entry)
        except ValueError as exc:
            e.add(join_path(path, i), str(exc))
            continue
        if whole is not None and not IpRanges((interval,)).within(whole):
            e.add(join_path(path, i), f"'{entry}' is outside the subnet range {rng}")
            continue
        intervals.append(interval)
    return IpRanges.from_intervals(intervals)


def parse_network(net: dict, path: str, az_names: set[str] | None, e: ErrorCollector) -> dict:
    name = net["name"]
    kind = net.get("type", "manual")
    out = unshare(net)
    out["type"] = kind
    if kind not in NETWORK_TYPES:
        e.add(
            join_path(path, "type"),
            f"unknown network type '{kind}' (expected manual, dynamic or vip)",
        )
        return out
    subnets = net.get("subnets")
    if subnets is None:
        if kind == "manual":
            e.add(join_path(path, "subnets"), "is required for a manual network")
            out["subnets"] = []
            return out
        # dynamic / vip networks may put subnet keys on the network itself
        lifted = {k: net[k] for k in ("dns", "cloud_properties", "az", "azs", "static") if k in net}
        for k in lifted:
            out.pop(k, None)
        out["subnets"] = (
            [_parse_subnet(name, kind, lifted, path, az_names, e)]
            if lifted or kind == "dynamic"
            else []
        )
        return out
    if not isinstance(subnets, list) or (kind == "manual" and not subnets):
        e.add(join_path(path, "subnets"), "must be a non-empty list")
        out["subnets"] = []
        return out
    parsed = []
    for i, subnet in enumerate(subnets):
        spath = join_path(path, "subnets", item_key(subnet, i))
        if not isinstance(subnet, dict):
            e.add(spath, "must be a map")
            continue
        parsed.append(_parse_subnet(name, kind, subnet, spath, az_names, e))
    out["subnets"] = parsed
    with_az = [bool(s["azs"]) for s in parsed]
    if any(with_az) and not all(with_az):
        e.add(
            join_path(path, "subnets"),
            f"subnets on network '{name}' must all either specify an az or not",
        )
    if kind == "manual":
        _check_overlaps(name, subnets, parsed, path, e)
    return out


def _check_overlaps(
    name: str, subnets: list, parsed: list[dict], path: str, e: ErrorCollector
) -> None:
    """No two subnets of a manual network share an address."""
    ranges = []
    for i, s in enumerate(parsed):
        try:
            ranges.append((i, ipaddress.ip_network(str(s.get("range")).strip())))
        except ValueError:
            continue
    for a in range(len(ranges)):
        for b in range(a + 1, len(ranges)):
            (ia, na), (ib, nb) = ranges[a], ranges[b]
            if na.version == nb.version and na.overlaps(nb):
                e.add(
                    join_path(path, "subnets", item_key(subnets[ib], ib), "range"),
                    f"range {nb} overlaps the range {na} of subnet {item_key(subnets[ia], ia)} "
                    f"in network '{name}'",
                )
