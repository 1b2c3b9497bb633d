"""BOSH v2 deployment manifests: validation and normalization.

``parse_manifest`` checks a deployment manifest the way the BOSH director
does before planning (``ManifestValidator``, ``DeploymentSpecParser``,
``InstanceGroupSpecParser``, ``UpdateConfig``) and returns a normalized copy
the planner and the executor can rely on:

* ``update`` has every key: ``serial`` (default true), ``vm_strategy`` (from
  the ``default_vm_strategy`` argument, i.e. the director setting, unless the
  manifest says otherwise), ``initial_deploy_az_update_strategy`` (``serial``);
  each instance group's ``update`` is the *effective* block (deployment
  ``update`` overridden key by key by the group's own).
* instance groups have ``azs`` (list, maybe empty), ``lifecycle``
  (``service``), ``vm_extensions``, ``env``, ``migrated_from``; each job has
  ``release`` and ``properties`` (``{}``, or, BOSH's legacy behaviour, the
  group's and global ``properties`` when the job has none of its own);
  networks have ``static_ips`` (ranges expanded to addresses) and ``default``
  (``[dns, gateway]`` when the group has one network).
* ``features`` has every known flag (false by default); ``variables``,
  ``addons`` and ``tags`` are present.

All problems are collected and raised as one :class:`ManifestError`, each
naming its path (``instance_groups/zookeeper/azs``). Values that are still
``((placeholders))`` pass type checks: a raw manifest is validated before
interpolation as well as after.

``validate_against_cloud_config`` checks the references a manifest makes into
a (parsed) cloud-config: azs, vm_types, vm_extensions, disk types, networks,
static IPs and the compilation section.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from .addons import DEPLOYMENT, validate_addons
from .errors import ErrorCollector, ManifestError, item_key, join_path
from .interpolate import contains_placeholder, is_placeholder, variable_name_error
from .iprange import IpRanges, parse_ip_entry
from .yaml import load_yaml, unshare

VM_STRATEGIES = ("delete-create", "create-swap-delete")
AZ_UPDATE_STRATEGIES = ("serial", "parallel")
LIFECYCLES = ("service", "errand")
VARIABLE_TYPES = ("password", "certificate", "rsa", "ssh", "user", "value", "json")
UPDATE_MODES = ("converge", "no-overwrite")
NETWORK_DEFAULTS = ("dns", "gateway", "addressable")
FEATURES = (
    "use_dns_addresses",
    "use_short_dns_addresses",
    "use_link_dns_names",
    "randomize_az_placement",
    "converge_variables",
    "use_tmpfs_config",
)
UPDATE_KEYS = (
    "canaries",
    "max_in_flight",
    "canary_watch_time",
    "update_watch_time",
    "serial",
    "vm_strategy",
    "initial_deploy_az_update_strategy",
)
REQUIRED_UPDATE_KEYS = UPDATE_KEYS[:4]
MAX_STATIC_IPS = 65536
# Per instance group. Far above real deployments (the largest run a few
# thousand Diego cells); it stops a typo from planning 10^30 instances.
MAX_INSTANCES = 10_000

# Top-level keys the director refuses (messages as BOSH words them).
V1_KEYS = {
    "vm_types": "Deployment manifest contains 'vm_types' section, but this can only be set in a cloud-config.",
    "azs": "Deployment manifest contains 'azs' section, but this can only be set in a cloud-config.",
    "disk_types": "Deployment manifest contains 'disk_types' section, but this can only be set in a cloud-config.",
    "compilation": "Deployment manifest contains 'compilation' section, but this can only be set in a cloud-config.",
    "networks": "Deployment 'networks' are no longer supported. Network definitions must now be provided in a cloud-config.",
    "disk_pools": "disk_pools is no longer supported. Disk definitions must now be provided as disk_types in a cloud-config",
    "jobs": "Jobs are no longer supported, please use instance groups instead",
    "resource_pools": "resource_pools is no longer supported. You must now define resources in a cloud-config",
    "cloud_provider": "cloud_provider is only used by 'bosh create-env' manifests; the director deploys with a cloud-config",
}

# Typed env keys (dotted path under ``env``) -> (python types, description).
ENV_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "persistent_disk_fs": ((str,), "a filesystem name (ext4 or xfs)"),
    "persistent_disk_mount_options": ((list,), "a list of mount options"),
    "bosh": ((dict,), "a map"),
    "bosh.password": ((str,), "a crypted password string"),
    "bosh.keep_root_password": ((bool,), "true or false"),
    "bosh.remove_dev_tools": ((bool,), "true or false"),
    "bosh.remove_static_libraries": ((bool,), "true or false"),
    "bosh.swap_size": ((int,), "an integer (MB)"),
    "bosh.job_dir": ((dict,), "a map"),
    "bosh.job_dir.tmpfs": ((bool,), "true or false"),
    "bosh.job_dir.tmpfs_size": ((str,), "a size string like '100m'"),
    "bosh.agent": ((dict,), "a map"),
    "bosh.agent.settings.tmpfs": ((bool,), "true or false"),
    "bosh.ipv6.enable": ((bool,), "true or false"),
    "bosh.authorized_keys": ((list,), "a list of public keys"),
}
_PERCENT = re.compile(r"^\s*(\d+)\s*%\s*$")
_WATCH = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


# ---------------------------------------------------------------- helpers


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _unresolved(v: Any) -> bool:
    return contains_placeholder(v)


def resolve_count(value: int | str, size: int, *, minimum: int = 0) -> int:
    """``canaries`` / ``max_in_flight`` for a group of ``size`` instances.

    ``"N%"`` is ``floor(N * size / 100)``; the result is capped at ``size`` and
    raised to ``minimum`` (use ``minimum=1`` for ``max_in_flight``).
    """
    if isinstance(value, str):
        m = _PERCENT.match(value)
        if not m:
            raise ValueError(f"'{value}' is neither an integer nor a percentage")
        count = int(m.group(1)) * size // 100
    else:
        count = int(value)
    return max(minimum, min(count, size))


def watch_time_range(value: int | str) -> tuple[int, int]:
    """``canary_watch_time`` / ``update_watch_time`` as ``(min_ms, max_ms)``."""
    if _is_int(value):
        return int(value), int(value)
    m = _WATCH.match(str(value))
    if not m:
        raise ValueError(f"'{value}' is neither milliseconds nor a 'min-max' range")
    low = int(m.group(1))
    high = int(m.group(2)) if m.group(2) is not None else low
    return low, high


def _check_update(update: dict, path: str, e: ErrorCollector, required: bool) -> None:
    for key in update:
        if key not in UPDATE_KEYS:
            e.warn(join_path(path, key), "unknown update key (ignored)")
    if required:
        for key in REQUIRED_UPDATE_KEYS:
            if key not in update:
                e.add(join_path(path, key), "is required")
    for key in ("canaries", "max_in_flight"):
        if key not in update or _unresolved(update[key]):
            continue
        v = update[key]
        floor = 0 if key == "canaries" else 1
        if _is_int(v):
            if v < floor:
                e.add(join_path(path, key), f"must be at least {floor}")
        elif isinstance(v, str) and _PERCENT.match(v):
            pct = int(_PERCENT.match(v).group(1))
            if pct > 100 or (key == "max_in_flight" and pct == 0):
                e.add(join_path(path, key), f"percentage must be between {floor} and 100")
        else:
            e.add(join_path(path, key), "must be an integer or a percentage like '25%'")
    for key in ("canary_watch_time", "update_watch_time"):
        if key not in update or _unresolved(update[key]):
            continue
        try:
            low, high = watch_time_range(update[key])
        except ValueError:
            e.add(
                join_path(path, key),
                "must be milliseconds (30000) or a range 'min-max' (1000-30000)",
            )
            continue
        if low > high:
            e.add(join_path(path, key), f"minimum {low} is greater than maximum {high}")
    if (
        "serial" in update
        and not isinstance(update["serial"], bool)
        and not _unresolved(update["serial"])
    ):
        e.add(join_path(path, "serial"), "must be true or false")
    for key, allowed in (
        ("vm_strategy", VM_STRATEGIES),
        ("initial_deploy_az_update_strategy", AZ_UPDATE_STRATEGIES),
    ):
        if key in update and update[key] not in allowed and not _unresolved(update[key]):
            e.add(join_path(path, key), f"must be one of: {', '.join(allowed)}")


def _version(v: Any) -> Any:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def _expand_static_ips(value: Any, path: str, e: ErrorCollector) -> list | Any:
    if value is None:
        return []
    if is_placeholder(value):
        return value
    if not isinstance(value, list):
        e.add(path, "must be a list of IP addresses or 'a - b' ranges")
        return []
    out: list = []
    for i, entry in enumerate(value):
        if _unresolved(entry):
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


# ---------------------------------------------------------------- sections


def _parse_releases(raw: Any, e: ErrorCollector) -> list[dict]:
    if raw is None:
        e.add("releases", "is required")
        return []
    if not isinstance(raw, list):
        e.add("releases", "must be a list")
        return []
    out, seen = [], set()
    for i, rel in enumerate(raw):
        path = join_path("releases", item_key(rel, i))
        if not isinstance(rel, dict):
            e.add(path, "must be a map")
            continue
        name = rel.get("name")
        if not isinstance(name, str) or not name:
            e.add(join_path(path, "name"), "is required")
            continue
        if name in seen:
            e.add(path, f"duplicate release '{name}'")
            continue
        seen.add(name)
        norm = unshare(rel)
        if rel.get("version") is None:
            e.add(join_path(path, "version"), "is required (a version or 'latest')")
        else:
            norm["version"] = _version(rel["version"])
        for key in ("url", "sha1"):
            if key in rel and not isinstance(rel[key], str):
                e.add(join_path(path, key), "must be a string")
        sc = rel.get("stemcell")
        if sc is not None:
            if not isinstance(sc, dict) or not sc.get("os") or sc.get("version") is None:
                e.add(join_path(path, "stemcell"), "must have os and version (compiled release)")
            else:
                norm["stemcell"] = {**sc, "version": _version(sc["version"])}
        out.append(norm)
    return out


def _parse_stemcells(raw: Any, e: ErrorCollector) -> list[dict]:
    if raw is None:
        e.add("stemcells", "is required")
        return []
    if not isinstance(raw, list):
        e.add("stemcells", "must be a list")
        return []
    out, seen = [], set()
    for i, sc in enumerate(raw):
        path = join_path("stemcells", sc.get("alias", i) if isinstance(sc, dict) else i)
        if not isinstance(sc, dict):
            e.add(path, "must be a map")
            continue
        alias = sc.get("alias")
        if not isinstance(alias, str) or not alias:
            e.add(join_path(path, "alias"), "is required")
            continue
        if alias in seen:
            e.add(path, f"duplicate stemcell alias '{alias}'")
            continue
        seen.add(alias)
        if sc.get("os") and sc.get("name"):
            e.add(path, "Properties 'os' and 'name' are both specified for stemcell, choose one.")
        elif not sc.get("os") and not sc.get("name"):
            e.add(path, "must specify either 'os' or 'name'")
        norm = unshare(sc)
        if sc.get("version") is None:
            e.add(join_path(path, "version"), "is required (a version, 'latest' or '621.latest')")
        else:
            norm["version"] = _version(sc["version"])
        out.append(norm)
    return out


def _parse_variables(raw: Any, e: ErrorCollector) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        e.add("variables", "must be a list")
        return []
    out, seen = [], set()
    for i, var in enumerate(raw):
        path = join_path("variables", item_key(var, i))
        if not isinstance(var, dict):
            e.add(path, "must be a map")
            continue
        name = var.get("name")
        if not isinstance(name, str) or not name:
            e.add(join_path(path, "name"), "is required")
            continue
        problem = variable_name_error(name)
        if problem and not _unresolved(name):
            e.add(join_path(path, "name"), problem)
        if name in seen:
            e.add(path, f"duplicate variable '{name}'")
            continue
        seen.add(name)
        if var.get("type") not in VARIABLE_TYPES and not _unresolved(var.get("type")):
            e.add(join_path(path, "type"), f"must be one of: {', '.join(VARIABLE_TYPES)}")
        if var.get("options") is not None and not isinstance(var["options"], dict):
            e.add(join_path(path, "options"), "must be a map")
        if "update_mode" in var and var["update_mode"] not in UPDATE_MODES:
            e.add(join_path(path, "update_mode"), f"must be one of: {', '.join(UPDATE_MODES)}")
        norm = unshare(var)
        norm.setdefault("options", {})
        out.append(norm)
    return out


def _parse_features(raw: Any, e: ErrorCollector) -> dict:
    out = dict.fromkeys(FEATURES, False)
    if raw is None:
        return out
    if not isinstance(raw, dict):
        e.add("features", "must be a map")
        return out
    for key, value in raw.items():
        if key not in FEATURES:
            e.warn(join_path("features", key), "unknown feature (ignored)")
            out[key] = unshare(value)
            continue
        if not isinstance(value, bool) and not _unresolved(value):
            e.add(join_path("features", key), "must be true or false")
            continue
        out[key] = value
    return out


def _check_env(env: dict, path: str, e: ErrorCollector) -> None:
    for dotted, (types, desc) in ENV_KEYS.items():
        node: Any = env
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            node = node[part]
        if node is None or _unresolved(node):
            continue
        if isinstance(node, bool) and bool not in types or not isinstance(node, types):
            e.add(join_path(path, *dotted.split(".")), f"must be {desc}")
    fs = env.get("persistent_disk_fs")
    if isinstance(fs, str) and fs not in ("ext4", "xfs"):
        e.add(join_path(path, "persistent_disk_fs"), "must be ext4 or xfs")


def _parse_networks(ig: dict, path: str, instances: Any, e: ErrorCollector) -> list[dict]:
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
        norm = unshare(net)
        norm["static_ips"] = _expand_static_ips(
            net.get("static_ips"), join_path(p, "static_ips"), e
        )
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
            and _is_int(instances)
            and not any(_unresolved(x) for x in ips)
            and len(ips) != instances
        ):
            e.add(
                join_path(p, "static_ips"),
                f"instance group has {instances} instances but was allocated {len(ips)} static IPs "
                f"in network '{net['name']}'",
            )
        out.append(norm)
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
    return out


def _parse_jobs(
    ig: dict, path: str, releases: set[str], legacy_props: dict, e: ErrorCollector
) -> list[dict]:
    raw = ig.get("jobs")
    jpath = join_path(path, "jobs")
    for legacy in ("templates", "template"):
        if legacy in ig:
            e.add(join_path(path, legacy), f"'{legacy}' is no longer supported, please use 'jobs'")
    if raw is None:
        return []
    if not isinstance(raw, list):
        e.add(jpath, "must be a list")
        return []
    default_release = ig.get("release")
    if default_release is None and len(releases) == 1:
        default_release = next(iter(releases))
    out, seen = [], set()
    for i, job in enumerate(raw):
        p = join_path(jpath, item_key(job, i))
        if not isinstance(job, dict):
            e.add(p, "must be a map")
            continue
        name = job.get("name")
        if not isinstance(name, str) or not name:
            e.add(join_path(p, "name"), "is required")
            continue
        if name in seen:
            e.add(
                p,
                f"Colocated job '{name}' is already added to the instance group '{ig.get('name')}'",
            )
            continue
        seen.add(name)
        norm = unshare(job)
        release = job.get("release", default_release)
        if release is None:
            e.add(join_path(p, "release"), "is required (the release that provides this job)")
        elif not isinstance(release, str):
            e.add(join_path(p, "release"), "must be the name of a release")
        elif not _unresolved(release) and release not in releases:
            e.add(join_path(p, "release"), f"references an unknown release '{release}'")
        norm["release"] = release
        if "properties" in job:
            props = job["properties"]
            if props is None:
                norm["properties"] = {}
            elif not isinstance(props, dict) and not is_placeholder(props):
                e.add(join_path(p, "properties"), "must be a map")
        else:
            norm["properties"] = unshare(legacy_props)
        for key in ("consumes", "provides", "custom_provider_definitions"):
            if key in job and job[key] is not None:
                ok = (
                    isinstance(job[key], list)
                    if key == "custom_provider_definitions"
                    else isinstance(job[key], dict)
                )
                if not ok:
                    e.add(
                        join_path(p, key),
                        "must be a list"
                        if key == "custom_provider_definitions"
                        else "must be a map",
                    )
        out.append(norm)
    return out


def _parse_instance_group(
    ig: dict,
    path: str,
    deployment: dict,
    releases: set[str],
    stemcells: set[str],
    e: ErrorCollector,
) -> dict:
    out = unshare(ig)
    for key in ("resource_pool", "persistent_disk_pool"):
        if key in ig:
            e.add(
                join_path(path, key),
                f"'{key}' is no longer supported; use "
                + (
                    "'vm_type' and 'stemcell'"
                    if key == "resource_pool"
                    else "'persistent_disk_type'"
                ),
            )
    lifecycle = ig.get("lifecycle", "service")
    if lifecycle not in LIFECYCLES:
        e.add(
            join_path(path, "lifecycle"),
            f"Invalid lifecycle '{lifecycle}', valid lifecycle profiles are: service, errand",
        )
    out["lifecycle"] = lifecycle

    instances = ig.get("instances")
    if instances is None:
        e.add(join_path(path, "instances"), "is required")
    elif not _unresolved(instances) and (not _is_int(instances) or instances < 0):
        e.add(join_path(path, "instances"), "must be a non-negative integer")
    elif _is_int(instances) and instances > MAX_INSTANCES:
        e.add(join_path(path, "instances"), f"must be at most {MAX_INSTANCES}")

    azs = ig.get("azs")
    if azs is None:
        out["azs"] = []
    elif not is_placeholder(azs):
        if not isinstance(azs, list) or not all(isinstance(a, str) for a in azs):
            e.add(join_path(path, "azs"), "must be a list of az names")
        elif not azs:
            e.add(join_path(path, "azs"), "must not be empty (leave it out to deploy without azs)")
        else:
            dupes = sorted({a for a in azs if azs.count(a) > 1})
            if dupes:
                e.add(join_path(path, "azs"), f"lists az '{dupes[0]}' more than once")

    # VM shape
    given = [k for k in ("vm_type", "vm_resources") if ig.get(k) is not None]
    if not given and "resource_pool" not in ig:
        e.add(join_path(path, "vm_type"), "is required (or 'vm_resources')")
    elif len(given) > 1:
        e.add(path, "can only specify one of 'vm_type' or 'vm_resources'")
    vmr = ig.get("vm_resources")
    if vmr is not None and not is_placeholder(vmr):
        if not isinstance(vmr, dict):
            e.add(
                join_path(path, "vm_resources"),
                "must be a map with cpu, ram and ephemeral_disk_size",
            )
        else:
            for key in ("cpu", "ram", "ephemeral_disk_size"):
                v = vmr.get(key)
                if v is None:
                    e.add(join_path(path, "vm_resources", key), "is required")
                elif not _unresolved(v) and (not _is_int(v) or v < 1):
                    e.add(join_path(path, "vm_resources", key), "must be a positive integer")
    if ig.get("vm_type") is not None and not isinstance(ig["vm_type"], str):
        e.add(join_path(path, "vm_type"), "must be the name of a vm_type")
    ext = ig.get("vm_extensions")
    if ext is None:
        out["vm_extensions"] = []
    elif not is_placeholder(ext) and (
        not isinstance(ext, list) or not all(isinstance(x, str) for x in ext)
    ):
        e.add(join_path(path, "vm_extensions"), "must be a list of vm_extension names")

    stemcell = ig.get("stemcell")
    if stemcell is None:
        if "resource_pool" not in ig:
            e.add(join_path(path, "stemcell"), "is required (a stemcell alias)")
    elif not isinstance(stemcell, str):
        e.add(join_path(path, "stemcell"), "must be a stemcell alias")
    elif not _unresolved(stemcell) and stemcell not in stemcells:
        e.add(join_path(path, "stemcell"), f"references an unknown stemcell '{stemcell}'")

    # persistent disks
    disk_keys = [
        k
        for k in ("persistent_disk", "persistent_disk_type", "persistent_disks")
        if ig.get(k) is not None
    ]
    if len(disk_keys) > 1:
        e.add(
            path,
            "specifies more than one of 'persistent_disk', 'persistent_disk_type' and 'persistent_disks'. Choose one.",
        )
    pd = ig.get("persistent_disk")
    if pd is not None and not _unresolved(pd) and (not _is_int(pd) or pd < 0):
        e.add(join_path(path, "persistent_disk"), "must be a non-negative integer (MB)")
    pdt = ig.get("persistent_disk_type")
    if pdt is not None and not isinstance(pdt, str):
        # minio's manifest writes a number here; BOSH wants the disk type's name
        e.add(join_path(path, "persistent_disk_type"), "must be the name of a disk_type")
    pds = ig.get("persistent_disks")
    if pds is not None and not is_placeholder(pds):
        if not isinstance(pds, list):
            e.add(join_path(path, "persistent_disks"), "must be a list of {name, type}")
        else:
            names = []
            for i, d in enumerate(pds):
                dpath = join_path(path, "persistent_disks", item_key(d, i))
                if not isinstance(d, dict) or not d.get("name"):
                    e.add(dpath, "contains a disk with no name")
                    continue
                if not d.get("type"):
                    e.add(join_path(dpath, "type"), "is required (a disk_type name)")
                names.append(d["name"])
            if len(set(names)) != len(names):
                e.add(join_path(path, "persistent_disks"), "contains duplicate names")

    # properties, jobs, networks
    props = ig.get("properties")
    if props is not None and not isinstance(props, dict):
        e.add(join_path(path, "properties"), "must be a map")
        props = None
    legacy = _deep_merge(deployment.get("properties") or {}, props or {})
    out["jobs"] = _parse_jobs(ig, path, releases, legacy, e)
    out["networks"] = _parse_networks(ig, path, instances, e)

    # update override
    upd = ig.get("update")
    effective = dict(deployment.get("update") or {})
    if upd is not None:
        if not isinstance(upd, dict):
            e.add(join_path(path, "update"), "must be a map")
        else:
            _check_update(upd, join_path(path, "update"), e, required=False)
            effective.update(unshare(upd))
    out["update"] = effective

    env = ig.get("env")
    if env is None:
        out["env"] = {}
    elif not isinstance(env, dict):
        e.add(join_path(path, "env"), "must be a map")
    else:
        _check_env(env, join_path(path, "env"), e)

    mf = ig.get("migrated_from")
    if mf is None:
        out["migrated_from"] = []
    elif not isinstance(mf, list) or not all(isinstance(m, dict) and m.get("name") for m in mf):
        e.add(join_path(path, "migrated_from"), "must be a list of {name, az}")
    return out


def _deep_merge(a: dict, b: dict) -> dict:
    out = unshare(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = unshare(v)
    return out


# ---------------------------------------------------------------- entry points


def parse_manifest(
    doc_or_text: dict | str | bytes,
    *,
    default_vm_strategy: str = "delete-create",
    warnings: list[tuple[str, str]] | None = None,
) -> dict:
    """Validate a BOSH v2 deployment manifest and return it normalized (see the module doc).

    ``warnings``, if given, receives ``(path, message)`` pairs for things BOSH
    accepts but ignores (unknown update keys or features, global properties).
    Raises :class:`ManifestError` listing every problem.
    """
    doc = load_yaml(doc_or_text) if isinstance(doc_or_text, str | bytes) else doc_or_text
    if not isinstance(doc, dict):
        raise ManifestError([("", "manifest must be a YAML mapping")])
    if default_vm_strategy not in VM_STRATEGIES:
        raise ValueError(f"default_vm_strategy must be one of {VM_STRATEGIES}")
    e = ErrorCollector()
    for key, message in V1_KEYS.items():
        if key in doc:
            e.add(key, message)

    name = doc.get("name")
    if name is None:
        e.add("name", "is required (the deployment name); a manifest fragment cannot be deployed")
    elif not isinstance(name, str) or not name.strip():
        e.add("name", "must be a non-empty string")

    out = unshare(doc)
    out["releases"] = _parse_releases(doc.get("releases"), e)
    out["stemcells"] = _parse_stemcells(doc.get("stemcells"), e)

    update = doc.get("update")
    if update is None:
        e.add(
            "update", "is required (canaries, max_in_flight, canary_watch_time, update_watch_time)"
        )
        update = {}
    elif not isinstance(update, dict):
        e.add("update", "must be a map")
        update = {}
    else:
        _check_update(update, "update", e, required=True)
    out["update"] = {
        "serial": True,
        "vm_strategy": default_vm_strategy,
        "initial_deploy_az_update_strategy": "serial",
        **unshare(update),
    }

    props = doc.get("properties")
    if props is not None:
        if not isinstance(props, dict):
            e.add("properties", "must be a map")
            props = {}
        else:
            e.warn(
                "properties",
                "Global 'properties' are deprecated. Please define 'properties' at the job level.",
            )
    deployment = {"update": out["update"], "properties": props or {}}

    release_names = {r["name"] for r in out["releases"]}
    stemcell_aliases = {s["alias"] for s in out["stemcells"]}
    igs = doc.get("instance_groups")
    parsed_igs = []
    if igs is None:
        e.add(
            "instance_groups",
            "is required (a list of instance groups); a manifest fragment cannot be deployed",
        )
    elif not isinstance(igs, list):
        e.add("instance_groups", "must be a list")
    else:
        seen: set[str] = set()
        all_static: dict[str, str] = {}
        for i, ig in enumerate(igs):
            path = join_path("instance_groups", item_key(ig, i))
            if not isinstance(ig, dict):
                e.add(path, "must be a map")
                continue
            ig_name = ig.get("name")
            if not isinstance(ig_name, str) or not ig_name:
                e.add(join_path(path, "name"), "is required")
                continue
            if ig_name in seen:
                e.add(path, f"duplicate instance group name '{ig_name}'")
                continue
            seen.add(ig_name)
            parsed = _parse_instance_group(ig, path, deployment, release_names, stemcell_aliases, e)
            for net in parsed["networks"] if isinstance(parsed["networks"], list) else []:
                for ip in net["static_ips"] if isinstance(net["static_ips"], list) else []:
                    if _unresolved(ip):
                        continue
                    other = all_static.get(ip)
                    if other is not None:
                        e.add(
                            join_path(path, "networks", net["name"], "static_ips"),
                            f"static IP '{ip}' is also assigned to instance group '{other}'",
                        )
                    all_static[ip] = ig_name
            parsed_igs.append(parsed)
    out["instance_groups"] = parsed_igs

    out["variables"] = _parse_variables(doc.get("variables"), e)
    out["features"] = _parse_features(doc.get("features"), e)
    validate_addons(doc.get("addons"), "addons", e, DEPLOYMENT)
    raw_addons = doc.get("addons") if isinstance(doc.get("addons"), list) else []
    for a, addon in enumerate(raw_addons):
        jobs = addon.get("jobs") if isinstance(addon, dict) else None
        for job in jobs if isinstance(jobs, list) else []:  # validate_addons reports the rest
            rel = job.get("release") if isinstance(job, dict) else None
            if isinstance(rel, str) and not _unresolved(rel) and rel not in release_names:
                e.add(
                    join_path("addons", item_key(addon, a), "jobs", job.get("name"), "release"),
                    f"references an unknown release '{rel}'",
                )
    out["addons"] = unshare(doc.get("addons") or [])
    tags = doc.get("tags")
    if tags is not None and not isinstance(tags, dict):
        e.add("tags", "must be a map of tag names to values")
    out["tags"] = unshare(tags) if isinstance(tags, dict) else {}
    if warnings is not None:
        warnings.extend(e.warnings)
    e.raise_if_any("manifest")
    return out


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
    azs = {a["name"] for a in cloud_config.get("azs") or []}
    vm_types = {v["name"] for v in cloud_config.get("vm_types") or []}
    extensions = {v["name"] for v in cloud_config.get("vm_extensions") or []}
    disk_types = {v["name"] for v in cloud_config.get("disk_types") or []}
    networks = {n["name"]: n for n in cloud_config.get("networks") or []}
    if require_compilation and not cloud_config.get("compilation"):
        errors.append(
            (
                "compilation",
                "the cloud-config has no compilation section (needed to compile packages)",
            )
        )

    for ig in manifest.get("instance_groups") or []:
        path = join_path("instance_groups", ig["name"])
        ig_azs = ig.get("azs") if isinstance(ig.get("azs"), list) else []
        for az in ig_azs:
            if not _unresolved(az) and az not in azs:
                errors.append((join_path(path, "azs"), f"references an unknown az '{az}'"))
        vt = ig.get("vm_type")
        if isinstance(vt, str) and not _unresolved(vt) and vt not in vm_types:
            errors.append((join_path(path, "vm_type"), f"references an unknown vm type '{vt}'"))
        for x in ig.get("vm_extensions") or [] if isinstance(ig.get("vm_extensions"), list) else []:
            if not _unresolved(x) and x not in extensions:
                errors.append(
                    (join_path(path, "vm_extensions"), f"references an unknown vm_extension '{x}'")
                )
        pdt = ig.get("persistent_disk_type")
        if isinstance(pdt, str) and not _unresolved(pdt) and pdt not in disk_types:
            errors.append(
                (
                    join_path(path, "persistent_disk_type"),
                    f"references an unknown disk type '{pdt}'",
                )
            )
        for d in (
            ig.get("persistent_disks") or [] if isinstance(ig.get("persistent_disks"), list) else []
        ):
            t = d.get("type")
            if isinstance(t, str) and not _unresolved(t) and t not in disk_types:
                errors.append(
                    (
                        join_path(path, "persistent_disks", d.get("name")),
                        f"references an unknown disk type '{t}'",
                    )
                )
        for net in ig.get("networks") or [] if isinstance(ig.get("networks"), list) else []:
            npath = join_path(path, "networks", net["name"])
            if _unresolved(net["name"]):
                continue
            cc_net = networks.get(net["name"])
            if cc_net is None:
                errors.append((npath, f"references an unknown network '{net['name']}'"))
                continue
            errors.extend(_check_network(ig, ig_azs, net, cc_net, npath, path))
    return errors


def _check_network(ig: dict, ig_azs: list, net: dict, cc_net: dict, npath: str, path: str) -> list:
    errors = []
    kind = cc_net.get("type", "manual")
    subnets = cc_net.get("subnets") or []
    subnet_azs = {az for s in subnets for az in s.get("azs") or []}
    if kind != "vip" and subnets:
        if not ig_azs and subnet_azs:
            errors.append(
                (
                    join_path(path, "azs"),
                    f"is required: network '{net['name']}' has subnets in azs {', '.join(sorted(subnet_azs))}",
                )
            )
        elif ig_azs and not subnet_azs:
            errors.append(
                (
                    npath,
                    f"network '{net['name']}' has no azs on its subnets, but the instance group uses azs",
                )
            )
        else:
            for az in ig_azs:
                if not _unresolved(az) and az not in subnet_azs:
                    errors.append((npath, f"network '{net['name']}' has no subnet in az '{az}'"))
    ips = net.get("static_ips")
    if not isinstance(ips, list) or not ips:
        return errors
    spath = join_path(npath, "static_ips")
    if kind == "dynamic":
        return [
            *errors,
            (spath, f"static IPs are not supported on dynamic network '{net['name']}'"),
        ]
    statics = []
    for s in subnets:
        try:
            statics.append((IpRanges.from_entries(s.get("static") or []), s))
        except ValueError:
            continue
    for ip in ips:
        if _unresolved(ip):
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
