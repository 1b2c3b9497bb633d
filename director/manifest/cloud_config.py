"""Cloud-config: the IaaS side of a deployment (azs, vm_types, networks ...).

A cloud-config holds ``azs``, ``vm_types``, ``vm_extensions``, ``disk_types``,
``networks`` and ``compilation``. Several named cloud-configs are
consolidated the BOSH way: their arrays are concatenated, a name defined
twice is an error, and ``compilation`` may come from at most one of them.

Networks are ``manual`` (the director assigns IPs from ``subnets``),
``dynamic`` (the IaaS assigns them) or ``vip``; ``cloud_networks.py``
checks them and their subnets.

Values that are still ``((placeholders))`` are accepted as they are: a raw
cloud-config is validated before interpolation, and again after.
"""

from __future__ import annotations

from typing import Any

from .checks import is_int, named_items, unresolved
from .cloud_networks import parse_network
from .errors import ErrorCollector, ManifestError, join_path
from .yaml import unshare

SECTIONS = ("azs", "vm_types", "vm_extensions", "disk_types", "networks")
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


def _parse_compilation(
    comp: Any,
    networks: dict[str, dict] | None,
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
    _check_compilation_network(comp.get("network"), networks, e)
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


def _check_compilation_network(
    net: Any, networks: dict[str, dict] | None, e: ErrorCollector
) -> None:
    """Compilation VMs need a manual or dynamic network of the cloud-config."""
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


def _check_cpis(azs: list[tuple[str, dict]], e: ErrorCollector) -> None:
    for path, az in azs:
        if az.get("cpi") is not None and not isinstance(az["cpi"], str):
            e.add(join_path(path, "cpi"), "must be the name of a CPI from the cpi-config")


def _check_disk_sizes(disk_types: list[tuple[str, dict]], e: ErrorCollector) -> None:
    for path, dt in disk_types:
        size = dt.get("disk_size")
        if size is None:
            e.add(join_path(path, "disk_size"), "is required (in MB)")
        elif not unresolved(size) and (not is_int(size) or size < 0):
            e.add(join_path(path, "disk_size"), "must be a non-negative integer (MB)")


def _normalized(items: list[tuple[str, dict]]) -> list[dict]:
    """Private copies, each with its ``cloud_properties`` (``{}`` when absent)."""
    out = [unshare(item) for _, item in items]
    for item in out:
        item.setdefault("cloud_properties", {})
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
    _check_cpis(azs, e)
    vm_types = _named_list(doc, "vm_types", e)
    vm_extensions = _named_list(doc, "vm_extensions", e)
    disk_types = _named_list(doc, "disk_types", e)
    _check_disk_sizes(disk_types, e)
    az_names = {az["name"] for _, az in azs}
    check_azs = None if partial and not az_names else az_names
    networks = []
    for path, net in _named_list(doc, "networks", e):
        networks.append(parse_network(net, path, check_azs, e))
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
        "azs": _normalized(azs),
        "vm_types": _normalized(vm_types),
        "vm_extensions": _normalized(vm_extensions),
        "disk_types": _normalized(disk_types),
        "networks": networks,
        "compilation": compilation,
    }
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
