"""What a parsed manifest names in a parsed cloud-config: azs, vm_types,
vm_extensions, disk types, networks (and the azs their subnets serve),
static IPs, and the compilation section."""

from __future__ import annotations

from ..checks import unresolved
from ..errors import join_path
from ..iprange import IpRanges


def validate_against_cloud_config(
    manifest: dict, cloud_config: dict, *, require_compilation: bool = True
) -> list[tuple[str, str]]:
    """References from a parsed manifest into a parsed cloud-config that do not resolve.

    Returns ``(path, message)`` pairs (empty when all is well); raise
    ``ManifestError(errors)`` to report them. Checks azs, vm_types,
    vm_extensions, persistent disk types, networks, az coverage of each
    network, static IPs (in a subnet's ``static`` range, in one of the
    group's azs, on a manual or vip network) and the compilation section.
    """
    errors: list[tuple[str, str]] = []
    if require_compilation and not cloud_config.get("compilation"):
        errors.append(
            (
                "compilation",
                "the cloud-config has no compilation section (needed to compile packages)",
            )
        )
    for ig in manifest.get("instance_groups") or []:
        errors.extend(_group_refs(ig, cloud_config))
    return errors


def _names(cloud_config: dict, section: str) -> set[str]:
    return {v["name"] for v in cloud_config.get(section) or []}


def _list(ig: dict, key: str) -> list:
    return ig.get(key) or [] if isinstance(ig.get(key), list) else []


def _group_refs(ig: dict, cloud_config: dict) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    path = join_path("instance_groups", ig["name"])
    azs, disk_types = _names(cloud_config, "azs"), _names(cloud_config, "disk_types")
    ig_azs = ig.get("azs") if isinstance(ig.get("azs"), list) else []
    for az in ig_azs:
        if not unresolved(az) and az not in azs:
            errors.append((join_path(path, "azs"), f"references an unknown az '{az}'"))
    vt = ig.get("vm_type")
    if isinstance(vt, str) and not unresolved(vt) and vt not in _names(cloud_config, "vm_types"):
        errors.append((join_path(path, "vm_type"), f"references an unknown vm type '{vt}'"))
    extensions = _names(cloud_config, "vm_extensions")
    for x in _list(ig, "vm_extensions"):
        if not unresolved(x) and x not in extensions:
            errors.append(
                (join_path(path, "vm_extensions"), f"references an unknown vm_extension '{x}'")
            )
    pdt = ig.get("persistent_disk_type")
    if isinstance(pdt, str) and not unresolved(pdt) and pdt not in disk_types:
        errors.append(
            (join_path(path, "persistent_disk_type"), f"references an unknown disk type '{pdt}'")
        )
    for d in _list(ig, "persistent_disks"):
        t = d.get("type")
        if isinstance(t, str) and not unresolved(t) and t not in disk_types:
            errors.append(
                (
                    join_path(path, "persistent_disks", d.get("name")),
                    f"references an unknown disk type '{t}'",
                )
            )
    networks = {n["name"]: n for n in cloud_config.get("networks") or []}
    for net in _list(ig, "networks"):
        npath = join_path(path, "networks", net["name"])
        if unresolved(net["name"]):
            continue
        cc_net = networks.get(net["name"])
        if cc_net is None:
            errors.append((npath, f"references an unknown network '{net['name']}'"))
            continue
        errors.extend(_check_network(ig_azs, net, cc_net, npath, path))
    return errors


def _check_network(
    ig_azs: list, net: dict, cc_net: dict, npath: str, path: str
) -> list[tuple[str, str]]:
    kind = cc_net.get("type", "manual")
    subnets = cc_net.get("subnets") or []
    errors = _check_network_azs(ig_azs, net, kind, subnets, npath, path)
    ips = net.get("static_ips")
    if not isinstance(ips, list) or not ips:
        return errors
    spath = join_path(npath, "static_ips")
    if kind == "dynamic":
        return [
            *errors,
            (spath, f"static IPs are not supported on dynamic network '{net['name']}'"),
        ]
    return errors + _check_static_ips(ig_azs, net, ips, subnets, spath)


def _check_network_azs(
    ig_azs: list, net: dict, kind: str, subnets: list, npath: str, path: str
) -> list[tuple[str, str]]:
    """The group's azs and the azs of the network's subnets agree."""
    if kind == "vip" or not subnets:
        return []
    subnet_azs = {az for s in subnets for az in s.get("azs") or []}
    if not ig_azs and subnet_azs:
        return [
            (
                join_path(path, "azs"),
                f"is required: network '{net['name']}' has subnets in azs {', '.join(sorted(subnet_azs))}",
            )
        ]
    if ig_azs and not subnet_azs:
        return [
            (
                npath,
                f"network '{net['name']}' has no azs on its subnets, but the instance group uses azs",
            )
        ]
    return [
        (npath, f"network '{net['name']}' has no subnet in az '{az}'")
        for az in ig_azs
        if not unresolved(az) and az not in subnet_azs
    ]


def _check_static_ips(
    ig_azs: list, net: dict, ips: list, subnets: list, spath: str
) -> list[tuple[str, str]]:
    """Each static IP is in a subnet's ``static`` range, in one of the group's azs."""
    errors = []
    statics = []
    for s in subnets:
        try:
            statics.append((IpRanges.from_entries(s.get("static") or []), s))
        except ValueError:
            continue
    for ip in ips:
        if unresolved(ip):
            continue
        home = next((s for ranges, s in statics if ip in ranges), None)
        if home is None:
            errors.append(
                (
                    spath,
                    f"IP '{ip}' is not in the static range of any subnet of network '{net['name']}'",
                )
            )
        elif ig_azs and home.get("azs") and not set(home["azs"]) & set(ig_azs):
            errors.append(
                (
                    spath,
                    f"IP '{ip}' belongs to a subnet in az {', '.join(home['azs'])}, "
                    f"which is not one of the instance group's azs",
                )
            )
    return errors
