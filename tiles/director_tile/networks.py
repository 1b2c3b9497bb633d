"""The Create Networks and Assign AZ and Network panes.

Networks are manual BOSH networks: each subnet a vSphere portgroup
(``iaas_identifier``), CIDR, gateway, reserved ranges, DNS and AZs. A network
assigned to a tile is refused on removal. With a ``VCenterCheck`` each
portgroup must exist. The director's own network and singleton AZ (where
compilation VMs go) must name a network and an AZ of the tile.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Mapping
from typing import Any

from opsconsole.errors import ServiceError
from tiles.models import StagedProduct

from .checks import VCenterCheck
from .common import _csv, _err, _raise, _write, get_director
from .rows import row_name, save_rows, sub_rows


def get_networks() -> dict:
    """``{"icmp_checks_enabled", "networks": [{"guid", "name", "service_network", "subnets"}]}``."""
    n = get_director().networks or {}
    return {
        "icmp_checks_enabled": bool(n.get("icmp_checks_enabled", False)),
        "networks": [dict(x) for x in n.get("networks", [])],
    }


def _ip_entries(text: Any, path: str, errors: dict) -> list[tuple[int, int, str]]:
    """Reserved ranges ``a-b,c`` as ``(first, last, text)`` intervals."""
    out = []
    for part in _csv(text):
        try:
            if "-" in part:
                a, b = (ipaddress.ip_address(x.strip()) for x in part.split("-", 1))
                if int(a) > int(b):
                    raise ValueError
                out.append((a, b, f"{a}-{b}"))
            else:
                ip = ipaddress.ip_address(part)
                out.append((ip, ip, str(ip)))
        except ValueError:
            _err(errors, path, f"'{part}' is not an IP address or an 'a-b' range")
    return out


def _normalize_network(
    net: Any, i: int, az_names: set[str], existing: Mapping[str, dict], errors: dict
) -> dict | None:
    name = row_name(net, f"networks/{i}", errors, "must be a map with name and subnets")
    if name is None:
        return None
    path = f"networks/{name}"
    subnets = []
    for sp, sn in sub_rows(
        net.get("subnets"),
        f"{path}/subnets",
        errors,
        required="at least one subnet is required",
        not_a_map="must be a map",
    ):
        out: dict[str, Any] = {}
        ident = sn.get("iaas_identifier")
        if not isinstance(ident, str) or not ident.strip():
            _err(errors, f"{sp}/iaas_identifier", "is required (the vSphere portgroup name)")
        else:
            out["iaas_identifier"] = ident.strip()
        cidr = None
        try:
            cidr = ipaddress.ip_network(str(sn.get("cidr") or "").strip(), strict=True)
            out["cidr"] = str(cidr)
        except ValueError:
            _err(
                errors,
                f"{sp}/cidr",
                f"'{sn.get('cidr') or ''}' is not a network in CIDR form (e.g. 10.0.0.0/24)",
            )
        try:
            gw = ipaddress.ip_address(str(sn.get("gateway") or "").strip())
            out["gateway"] = str(gw)
            if cidr is not None:
                if gw not in cidr:
                    _err(errors, f"{sp}/gateway", f"{gw} is not inside {cidr}")
                elif cidr.num_addresses > 2 and gw in (
                    cidr.network_address,
                    cidr.broadcast_address,
                ):
                    _err(errors, f"{sp}/gateway", f"{gw} is the network or broadcast address")
        except ValueError:
            _err(errors, f"{sp}/gateway", f"'{sn.get('gateway') or ''}' is not an IP address")
        reserved = _ip_entries(sn.get("reserved_ip_ranges"), f"{sp}/reserved_ip_ranges", errors)
        if cidr is not None:
            for a, b, text in reserved:
                if a not in cidr or b not in cidr:
                    _err(errors, f"{sp}/reserved_ip_ranges", f"{text} is not inside {cidr}")
        out["reserved_ip_ranges"] = ",".join(t for _, _, t in reserved)
        dns = []
        for s in _csv(sn.get("dns")):
            try:
                dns.append(str(ipaddress.ip_address(s)))
            except ValueError:
                _err(errors, f"{sp}/dns", f"'{s}' is not an IP address")
        out["dns"] = ",".join(dns)
        azs = sn.get("availability_zone_names")
        if azs is None:
            azs = []
        if not isinstance(azs, list) or not all(isinstance(a, str) for a in azs):
            _err(errors, f"{sp}/availability_zone_names", "must be a list of AZ names")
            azs = []
        if not azs:
            _err(errors, f"{sp}/availability_zone_names", "at least one availability zone")
        for a in azs:
            if a not in az_names:
                _err(
                    errors,
                    f"{sp}/availability_zone_names",
                    f"'{a}' is not an availability zone of the director",
                )
        out["availability_zone_names"] = list(azs)
        if sn.get("guid"):
            out["guid"] = sn["guid"]
        subnets.append(out)
    guid = net.get("guid") or (existing.get(name) or {}).get("guid")
    return {
        "guid": guid or f"network-{secrets.token_hex(10)}",
        "name": name,
        "service_network": bool(net.get("service_network", False)),
        "subnets": subnets,
    }


def set_networks(
    data: Mapping, *, user: str = "", version: int | None = None, check: VCenterCheck | None = None
) -> dict:
    """``PUT /staged/director/networks``: all networks at once, validated together.

    Checks: names unique, CIDR valid, gateway inside its CIDR (not the network
    or broadcast address), reserved ranges inside, DNS are IPs, AZs exist, and
    no two subnets (of any networks) overlap; with ``check``, the portgroups
    exist in vCenter.
    """
    d = get_director()
    if not isinstance(data, Mapping) or not isinstance(data.get("networks"), list):
        raise ServiceError({"networks": ["must be a list of networks"]})
    az_names = {a["name"] for a in d.availability_zones}
    existing = {n["name"]: n for n in (d.networks or {}).get("networks", [])}
    icmp = data.get("icmp_checks_enabled", False)

    def normalize(net: Any, i: int, errors: dict) -> dict | None:
        return _normalize_network(net, i, az_names, existing, errors)

    def validate(nets: list[dict], removed: set[str], errors: dict) -> None:
        if check is not None:
            errors.update(check.networks(nets))
        _check_no_overlap(nets, errors)
        if removed:
            _check_networks_unused(removed, errors)
        if not isinstance(icmp, bool):
            _err(errors, "icmp_checks_enabled", "must be true or false")

    save_rows(
        d,
        "networks",
        data["networks"],
        normalize,
        existing,
        validate=validate,
        value=lambda nets: {"icmp_checks_enabled": bool(icmp), "networks": nets},
        user=user,
        version=version,
    )
    return get_networks()


def _check_no_overlap(nets: list[dict], errors: dict) -> None:
    """No two subnets, of one network or of two, share an address."""
    cidrs: list[tuple[ipaddress._BaseNetwork, str]] = []
    for n in nets:
        for j, sn in enumerate(n["subnets"]):
            if "cidr" not in sn:
                continue
            net = ipaddress.ip_network(sn["cidr"])
            where = f"networks/{n['name']}/subnets/{j}"
            for other, other_where in cidrs:
                if net.version == other.version and net.overlaps(other):
                    _err(errors, f"{where}/cidr", f"{net} overlaps {other} ({other_where})")
            cidrs.append((net, where))


def _check_networks_unused(removed: set[str], errors: dict) -> None:
    for sp in StagedProduct.objects.only("guid", "network_and_azs"):
        na = sp.network_and_azs or {}
        for nn in {na.get("network"), na.get("service_network")} & removed:
            _err(errors, f"networks/{nn}", f"is assigned to {sp.guid}")


def get_network_and_az() -> dict:
    """``{"network_and_az": {"network": {"name"}, "singleton_availability_zone": {"name"}}}``."""
    na = get_director().network_and_az or {}
    return {
        "network_and_az": {
            "network": {"name": na.get("network")} if na.get("network") else None,
            "singleton_availability_zone": {"name": na.get("singleton_availability_zone")}
            if na.get("singleton_availability_zone")
            else None,
        }
    }


def _name_of(value: Any) -> Any:
    return value.get("name") if isinstance(value, Mapping) else value


def set_network_and_az(data: Mapping, *, user: str = "", version: int | None = None) -> dict:
    """The director's own network and singleton AZ (used for compilation VMs)."""
    d = get_director()
    data = data.get("network_and_az", data) if isinstance(data, Mapping) else data
    if not isinstance(data, Mapping):
        raise ServiceError({"network_and_az": ["must be a map"]})
    errors: dict[str, list[str]] = {}
    net = _name_of(data.get("network"))
    az = _name_of(data.get("singleton_availability_zone"))
    for field, value in (("network", net), ("singleton_availability_zone", az)):
        if value is not None and not isinstance(value, str):
            _err(errors, f"network_and_az/{field}/name", "must be a name (text)")
    _raise(errors)
    nets = {n["name"] for n in (d.networks or {}).get("networks", [])}
    azs = {a["name"] for a in d.availability_zones}
    if not net:
        _err(errors, "network_and_az/network/name", "is required")
    elif net not in nets:
        _err(errors, "network_and_az/network/name", f"'{net}' is not a network of the director")
    if not az:
        _err(errors, "network_and_az/singleton_availability_zone/name", "is required")
    elif az not in azs:
        _err(
            errors,
            "network_and_az/singleton_availability_zone/name",
            f"'{az}' is not an availability zone of the director",
        )
    _raise(errors)
    value = {"network": net, "singleton_availability_zone": az}
    _write(d, {"network_and_az": value}, "network_and_az", user, version)
    return get_network_and_az()
