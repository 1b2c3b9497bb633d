"""An instance group's ``networks``: names, ``static_ips`` (ranges expanded
to addresses) and which network is the default for dns and gateway."""

from __future__ import annotations

import ipaddress
from typing import Any

from ..checks import is_int, unresolved
from ..errors import ErrorCollector, item_key, join_path
from ..interpolate import is_placeholder
from ..iprange import parse_ip_entry
from ..yaml import unshare

NETWORK_DEFAULTS = ("dns", "gateway", "addressable")
MAX_STATIC_IPS = 65536


def expand_static_ips(value: Any, path: str, e: ErrorCollector) -> list | Any:
    if value is None:
        return []
    if is_placeholder(value):
        return value
    if not isinstance(value, list):
        e.add(path, "must be a list of IP addresses or 'a - b' ranges")
        return []
    out: list = []
    for i, entry in enumerate(value):
        if unresolved(entry):
            out.append(entry)
            continue
        try:
            version, first, last = parse_ip_entry(entry)
        except ValueError as exc:
            e.add(join_path(path, i), str(exc))
            continue
        if last - first + 1 + len(out) > MAX_STATIC_IPS:
            e.add(join_path(path, i), f"'{entry}' is too large a range of static IPs")
            continue
        for n in range(first, last + 1):
            out.append(str(ipaddress.ip_address(n) if version == 4 else ipaddress.IPv6Address(n)))
    return out


def parse_networks(ig: dict, path: str, instances: Any, e: ErrorCollector) -> list[dict]:
    raw = ig.get("networks")
    npath = join_path(path, "networks")
    if raw is None:
        e.add(npath, "is required")
        return []
    if is_placeholder(raw):
        return raw
    if not isinstance(raw, list) or not raw:
        e.add(npath, "must be a non-empty list")
        return []
    out, seen = [], set()
    for i, net in enumerate(raw):
        p = join_path(npath, item_key(net, i))
        if not isinstance(net, dict) or not isinstance(net.get("name"), str) or not net["name"]:
            e.add(join_path(p, "name") if isinstance(net, dict) else p, "is required")
            continue
        if net["name"] in seen:
            e.add(p, f"network '{net['name']}' is listed twice")
            continue
        seen.add(net["name"])
        out.append(_parse_network(net, p, instances, e))
    _check_defaults(out, npath, e)
    return out


def _parse_network(net: dict, p: str, instances: Any, e: ErrorCollector) -> dict:
    norm = unshare(net)
    norm["static_ips"] = expand_static_ips(net.get("static_ips"), join_path(p, "static_ips"), e)
    default = net.get("default")
    if default is not None:
        if not isinstance(default, list) or any(d not in NETWORK_DEFAULTS for d in default):
            e.add(join_path(p, "default"), f"must be a list of: {', '.join(NETWORK_DEFAULTS)}")
            default = []
    norm["default"] = list(default or [])
    ips = norm["static_ips"]
    if (
        isinstance(ips, list)
        and ips
        and is_int(instances)
        and not any(unresolved(x) for x in ips)
        and len(ips) != instances
    ):
        e.add(
            join_path(p, "static_ips"),
            f"instance group has {instances} instances but was allocated {len(ips)} static IPs "
            f"in network '{net['name']}'",
        )
    return norm


def _check_defaults(out: list[dict], npath: str, e: ErrorCollector) -> None:
    """One network is the default for everything; with several, exactly one
    must claim dns and exactly one gateway."""
    if len(out) == 1:
        if not out[0]["default"]:
            out[0]["default"] = ["dns", "gateway"]
    elif len(out) > 1:
        for need in ("dns", "gateway"):
            owners = [n["name"] for n in out if need in n["default"]]
            if not owners:
                e.add(
                    npath,
                    f"must specify which network is default for {need}, since the instance group has "
                    "more than one network configured",
                )
            elif len(owners) > 1:
                e.add(npath, f"'{need}' has more than one default network: {', '.join(owners)}")
