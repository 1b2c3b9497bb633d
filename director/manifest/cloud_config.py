"""Cloud-config: the IaaS side of a deployment (azs, vm_types, networks ...).

A cloud-config holds ``azs``, ``vm_types``, ``vm_extensions``, ``disk_types``,
``networks`` and ``compilation``. Several named cloud-configs are
consolidated the BOSH way: their arrays are concatenated, a name defined
twice is an error, and ``compilation`` may come from at most one of them.

Networks are ``manual`` (the director assigns IPs from ``subnets``),
``dynamic`` (the IaaS assigns them) or ``vip``. A manual subnet has a
``range`` (CIDR), a ``gateway`` inside it that is neither the network nor the
broadcast address, ``reserved`` addresses the director never hands out,
``static`` addresses only instance groups' ``static_ips`` may use (inside the
range, not reserved), ``dns`` servers and its ``az``/``azs``. Ranges are
checked as integer intervals, so a ``/8`` costs nothing.

Values that are still ``((placeholders))`` are accepted as they are: a raw
cloud-config is validated before interpolation, and again after.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from .checks import is_int, is_string_list, named_items, unresolved
from .errors import ErrorCollector, ManifestError, item_key, join_path
from .iprange import IpRanges, parse_ip_entry
from .yaml import unshare

SECTIONS = ("azs", "vm_types", "vm_extensions", "disk_types", "networks")
NETWORK_TYPES = ("manual", "dynamic", "vip")
_NOT_CLOUD_KEYS = {
    "resource_pools": "resource_pools is no longer supported; define vm_types (and stemcells in the deployment manifest)",
    "disk_pools": "disk_pools is no longer supported; define disk_types",
    "instance_groups": "instance_groups belong in a deployment manifest, not in a cloud-config",
    "releases": "releases belong in a deployment manifest, not in a cloud-config",
    "stemcells": "stemcells belong in a deployment manifest, not in a cloud-config",
    "update": "update belongs in a deployment manifest, not in a cloud-config",
    "jobs": "jobs belong in a deployment manifest, not in a cloud-config",
}


def _named_list(doc: dict, key: str, e: ErrorCollector) -> list[tuple[str, dict]]:
    """Validate a list of ``{name: ..}`` maps; returns ``(path, item)`` pairs of the good ones."""
    value = doc.get(key)
    if value is None:
        return []
    out = []
    kind = key[:-1].replace("_", " ")
    for path, item in named_items(
        value,
        key,
        e,
        duplicate=lambda name: f"duplicate {kind} name '{name}'",
        name_message="is required and must be a non-empty string",
    ):
        cp = item.get("cloud_properties")
        if cp is not None and not isinstance(cp, dict) and not unresolved(cp):
            e.add(join_path(path, "cloud_properties"), "must be a map")
        out.append((path, item))
    return out


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
    # az / azs
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
    out.pop("az", None)
    out["azs"] = azs
    if az_names is not None:
        for az in azs:
            if not unresolved(az) and az not in az_names:
                e.add(
                    join_path(path, "azs" if "azs" in subnet else "az"),
                    f"references an unknown az '{az}'",
                )
    dns = subnet.get("dns")
    if dns is not None and not unresolved(dns):
        if not isinstance(dns, list):
            e.add(join_path(path, "dns"), "must be a list of IP addresses")
        else:
            for i, server in enumerate(dns):
                if unresolved(server):
                    continue
                try:
                    ipaddress.ip_address(str(server))
                except ValueError:
                    e.add(join_path(path, "dns", i), f"'{server}' is not a valid IP address")
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

    # manual
    rng = subnet.get("range")
    gateway = subnet.get("gateway")
    if rng is None:
        e.add(join_path(path, "range"), "is required for a manual network subnet")
    if gateway is None:
        e.add(join_path(path, "gateway"), "is required for a manual network subnet")
    network = None
    if rng is not None and not unresolved(rng):
        try:
            if not isinstance(rng, str):
                raise ValueError
            network = ipaddress.ip_network(rng.strip(), strict=True)
        except ValueError:
            e.add(join_path(path, "range"), f"'{rng}' is not a valid CIDR range (like 10.0.0.0/24)")
        else:
            if network.num_addresses < 2:
                e.add(join_path(path, "range"), f"range '{rng}' must include at least 2 IPs")
                network = None
    restricted = IpRanges()
    if network is not None:
        first, last = int(network.network_address), int(network.broadcast_address)
        v = network.version
        restricted = IpRanges.from_intervals([(v, first, first), (v, last, last)])
        if gateway is not None and not unresolved(gateway):
            gpath = join_path(path, "gateway")
            try:
                gw = ipaddress.ip_address(str(gateway).strip())
            except ValueError:
                e.add(
                    gpath,
                    f"'{gateway}' is not a valid IP address (the gateway must be a single IP)",
                )
            else:
                if gw.version != v or gw not in network:
                    e.add(gpath, f"gateway '{gateway}' must be inside the range {rng}")
                elif int(gw) == first:
                    e.add(gpath, f"gateway '{gateway}' can't be the network address of {rng}")
                elif int(gw) == last:
                    e.add(gpath, f"gateway '{gateway}' can't be the broadcast address of {rng}")
                else:
                    restricted = restricted.union(IpRanges.from_intervals([(v, int(gw), int(gw))]))
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
    return out


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


def _parse_network(net: dict, path: str, az_names: set[str] | None, e: ErrorCollector) -> dict:
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
    return out


def _parse_compilation(
    comp: Any,
    networks: dict[str, dict],
    az_names: set[str] | None,
    vm_types: set[str] | None,
    e: ErrorCollector,
) -> dict | None:
    if comp is None:
        return None
    if not isinstance(comp, dict):
        e.add("compilation", "must be a map")
        return None
    out = unshare(comp)
    workers = comp.get("workers")
    if workers is None:
        e.add("compilation/workers", "is required")
    elif not unresolved(workers) and (not is_int(workers) or workers < 1):
        e.add("compilation/workers", "must be an integer of at least 1")
    net = comp.get("network")
    if net is None:
        e.add("compilation/network", "is required")
    elif not isinstance(net, str):
        e.add("compilation/network", "must be the name of a network")
    elif not unresolved(net) and networks is not None:
        if net not in networks:
            e.add("compilation/network", f"references an unknown network '{net}'")
        elif networks[net].get("type") == "vip":
            e.add(
                "compilation/network",
                f"network '{net}' is a vip network; compilation needs manual or dynamic",
            )
    az = comp.get("az")
    if az is not None and not isinstance(az, str):
        e.add("compilation/az", "must be the name of an az")
    elif az is not None and az_names is not None and not unresolved(az) and az not in az_names:
        e.add("compilation/az", f"references an unknown az '{az}'")
    given = [k for k in ("vm_type", "vm_resources", "cloud_properties") if comp.get(k) is not None]
    if len(given) > 1:
        e.add(
            "compilation",
            f"specify only one of 'vm_type', 'vm_resources' or 'cloud_properties' (found {', '.join(given)})",
        )
    vt = comp.get("vm_type")
    if vt is not None and not isinstance(vt, str):
        e.add("compilation/vm_type", "must be the name of a vm_type")
    elif vt is not None and vm_types is not None and not unresolved(vt) and vt not in vm_types:
        e.add("compilation/vm_type", f"references an unknown vm_type '{vt}'")
    for flag in ("reuse_compilation_vms", "orphan_workers"):
        if flag in comp and not isinstance(comp[flag], bool) and not unresolved(comp[flag]):
            e.add(f"compilation/{flag}", "must be true or false")
    out.setdefault("reuse_compilation_vms", False)
    out.setdefault("orphan_workers", False)
    return out


def parse_cloud_config(doc: Any, *, partial: bool = False, what: str = "cloud-config") -> dict:
    """Validate a cloud-config and return it normalized.

    Normalized shape: every section present (lists, ``compilation`` None when
    absent); each network has ``type`` and ``subnets``; each subnet has
    ``azs`` (a list, ``az`` folded in), ``dns``, ``cloud_properties`` and, for
    manual/vip, ``reserved`` and ``static`` (entries kept as written; use
    :func:`~director.manifest.iprange.IpRanges.from_entries` to test them).

    ``partial=True`` validates one of several named cloud-configs: references
    to azs / networks / vm_types it does not define itself are not checked
    (they are, once consolidated). Raises :class:`ManifestError`.
    """
    e = ErrorCollector()
    if not isinstance(doc, dict):
        raise ManifestError([("", f"{what} must be a YAML mapping")], what)
    for key, message in _NOT_CLOUD_KEYS.items():
        if key in doc:
            e.add(key, message)
    azs = _named_list(doc, "azs", e)
    for path, az in azs:
        if az.get("cpi") is not None and not isinstance(az["cpi"], str):
            e.add(join_path(path, "cpi"), "must be the name of a CPI from the cpi-config")
    vm_types = _named_list(doc, "vm_types", e)
    vm_extensions = _named_list(doc, "vm_extensions", e)
    disk_types = _named_list(doc, "disk_types", e)
    for path, dt in disk_types:
        size = dt.get("disk_size")
        if size is None:
            e.add(join_path(path, "disk_size"), "is required (in MB)")
        elif not unresolved(size) and (not is_int(size) or size < 0):
            e.add(join_path(path, "disk_size"), "must be a non-negative integer (MB)")
    az_names = {az["name"] for _, az in azs}
    check_azs = None if partial and not az_names else az_names
    networks = []
    for path, net in _named_list(doc, "networks", e):
        networks.append(_parse_network(net, path, check_azs, e))
    net_by_name = {n["name"]: n for n in networks}
    vm_type_names = {vt["name"] for _, vt in vm_types}
    compilation = _parse_compilation(
        doc.get("compilation"),
        None if partial and not networks else net_by_name,
        check_azs,
        None if partial and not vm_type_names else vm_type_names,
        e,
    )
    e.raise_if_any(what)
    out: dict[str, Any] = {
        "azs": [unshare(az) for _, az in azs],
        "vm_types": [unshare(v) for _, v in vm_types],
        "vm_extensions": [unshare(v) for _, v in vm_extensions],
        "disk_types": [unshare(v) for _, v in disk_types],
        "networks": networks,
        "compilation": compilation,
    }
    for section in ("azs", "vm_types", "vm_extensions", "disk_types"):
        for item in out[section]:
            item.setdefault("cloud_properties", {})
    return out


def consolidate_cloud_configs(configs: list[dict], names: list[str] | None = None) -> dict:
    """Merge several cloud-configs the BOSH way (arrays concatenated, names unique).

    ``names`` labels each config in error messages (defaults to its index).
    The result is a raw cloud-config; pass it to :func:`parse_cloud_config`.
    """
    e = ErrorCollector()
    merged: dict[str, Any] = {s: [] for s in SECTIONS}
    owner: dict[tuple[str, str], str] = {}
    compilation_from: list[str] = []
    for i, config in enumerate(configs):
        label = names[i] if names and i < len(names) else str(i)
        if config is None:
            continue
        if not isinstance(config, dict):
            e.add(f"cloud-config {label}", "must be a YAML mapping")
            continue
        for section in SECTIONS:
            items = config.get(section)
            if items is None:
                continue
            if not isinstance(items, list):
                e.add(f"{section}", f"must be a list (cloud-config {label})")
                continue
            for item in items:
                name = item.get("name") if isinstance(item, dict) else None
                if isinstance(name, str):
                    first = owner.get((section, name))
                    if first is not None:
                        e.add(
                            join_path(section, name),
                            f"'{name}' is defined in cloud-config {first} and again in cloud-config {label}",
                        )
                        continue
                    owner[(section, name)] = label
                merged[section].append(unshare(item))
        if config.get("compilation") is not None:
            compilation_from.append(label)
            merged["compilation"] = unshare(config["compilation"])
    if len(compilation_from) > 1:
        e.add(
            "compilation",
            "may be defined in only one cloud-config; found in " + ", ".join(compilation_from),
        )
    e.raise_if_any("cloud-config")
    return merged
