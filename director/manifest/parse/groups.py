"""One instance group of a manifest, section by section.

``parse_instance_group`` checks and normalizes, in this order: keys BOSH no
longer supports, ``lifecycle``, ``instances``, ``azs``, the VM shape
(``vm_type`` or ``vm_resources``, ``vm_extensions``), ``stemcell``,
persistent disks, ``properties``, ``jobs`` (``jobs.py``), ``networks``
(``networks.py``), the group's ``update`` (merged over the deployment's),
``env`` and ``migrated_from``.
"""

from __future__ import annotations

from typing import Any

from ..checks import is_int, is_string_list, unresolved
from ..errors import ErrorCollector, item_key, join_path
from ..interpolate import is_placeholder
from ..yaml import unshare
from .jobs import parse_jobs
from .networks import parse_networks
from .update import check_update

LIFECYCLES = ("service", "errand")
# Per instance group. Far above real deployments (the largest run a few
# thousand Diego cells); it stops a typo from planning 10^30 instances.
MAX_INSTANCES = 10_000

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


def parse_instance_group(
    ig: dict,
    path: str,
    deployment: dict,
    releases: set[str],
    stemcells: set[str],
    e: ErrorCollector,
) -> dict:
    out = unshare(ig)
    _check_retired_keys(ig, path, e)
    out["lifecycle"] = _lifecycle(ig, path, e)
    instances = ig.get("instances")
    _check_instances(instances, path, e)
    if ig.get("azs") is None:
        out["azs"] = []
    _check_azs(ig.get("azs"), path, e)
    _check_vm_shape(ig, path, e)
    if ig.get("vm_extensions") is None:
        out["vm_extensions"] = []
    _check_stemcell(ig, path, stemcells, e)
    _check_persistent_disks(ig, path, e)

    props = ig.get("properties")
    if props is not None and not isinstance(props, dict):
        e.add(join_path(path, "properties"), "must be a map")
        props = None
    legacy = deep_merge(deployment.get("properties") or {}, props or {})
    out["jobs"] = parse_jobs(ig, path, releases, legacy, e)
    out["networks"] = parse_networks(ig, path, instances, e)
    out["update"] = _effective_update(ig.get("update"), path, deployment, e)

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


def _check_retired_keys(ig: dict, path: str, e: ErrorCollector) -> None:
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


def _lifecycle(ig: dict, path: str, e: ErrorCollector) -> Any:
    lifecycle = ig.get("lifecycle", "service")
    if lifecycle not in LIFECYCLES:
        e.add(
            join_path(path, "lifecycle"),
            f"Invalid lifecycle '{lifecycle}', valid lifecycle profiles are: service, errand",
        )
    return lifecycle


def _check_instances(instances: Any, path: str, e: ErrorCollector) -> None:
    if instances is None:
        e.add(join_path(path, "instances"), "is required")
    elif not unresolved(instances) and (not is_int(instances) or instances < 0):
        e.add(join_path(path, "instances"), "must be a non-negative integer")
    elif is_int(instances) and instances > MAX_INSTANCES:
        e.add(join_path(path, "instances"), f"must be at most {MAX_INSTANCES}")


def _check_azs(azs: Any, path: str, e: ErrorCollector) -> None:
    if azs is None or is_placeholder(azs):
        return
    if not is_string_list(azs):
        e.add(join_path(path, "azs"), "must be a list of az names")
    elif not azs:
        e.add(join_path(path, "azs"), "must not be empty (leave it out to deploy without azs)")
    else:
        dupes = sorted({a for a in azs if azs.count(a) > 1})
        if dupes:
            e.add(join_path(path, "azs"), f"lists az '{dupes[0]}' more than once")


def _check_vm_shape(ig: dict, path: str, e: ErrorCollector) -> None:
    """``vm_type`` or ``vm_resources`` (one of them), and ``vm_extensions``."""
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
                elif not unresolved(v) and (not is_int(v) or v < 1):
                    e.add(join_path(path, "vm_resources", key), "must be a positive integer")
    if ig.get("vm_type") is not None and not isinstance(ig["vm_type"], str):
        e.add(join_path(path, "vm_type"), "must be the name of a vm_type")
    ext = ig.get("vm_extensions")
    if ext is not None and not is_placeholder(ext) and not is_string_list(ext):
        e.add(join_path(path, "vm_extensions"), "must be a list of vm_extension names")


def _check_stemcell(ig: dict, path: str, stemcells: set[str], e: ErrorCollector) -> None:
    stemcell = ig.get("stemcell")
    if stemcell is None:
        if "resource_pool" not in ig:
            e.add(join_path(path, "stemcell"), "is required (a stemcell alias)")
    elif not isinstance(stemcell, str):
        e.add(join_path(path, "stemcell"), "must be a stemcell alias")
    elif not unresolved(stemcell) and stemcell not in stemcells:
        e.add(join_path(path, "stemcell"), f"references an unknown stemcell '{stemcell}'")


def _check_persistent_disks(ig: dict, path: str, e: ErrorCollector) -> None:
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
    if pd is not None and not unresolved(pd) and (not is_int(pd) or pd < 0):
        e.add(join_path(path, "persistent_disk"), "must be a non-negative integer (MB)")
    pdt = ig.get("persistent_disk_type")
    if pdt is not None and not isinstance(pdt, str):
        # minio's manifest writes a number here; BOSH wants the disk type's name
        e.add(join_path(path, "persistent_disk_type"), "must be the name of a disk_type")
    pds = ig.get("persistent_disks")
    if pds is None or is_placeholder(pds):
        return
    if not isinstance(pds, list):
        e.add(join_path(path, "persistent_disks"), "must be a list of {name, type}")
        return
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


def _effective_update(upd: Any, path: str, deployment: dict, e: ErrorCollector) -> dict:
    """The deployment's ``update`` overridden key by key by the group's."""
    effective = dict(deployment.get("update") or {})
    if upd is not None:
        if not isinstance(upd, dict):
            e.add(join_path(path, "update"), "must be a map")
        else:
            check_update(upd, join_path(path, "update"), e, required=False)
            effective.update(unshare(upd))
    return effective


def _check_env(env: dict, path: str, e: ErrorCollector) -> None:
    for dotted, (types, desc) in ENV_KEYS.items():
        node: Any = env
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            node = node[part]
        if node is None or unresolved(node):
            continue
        if isinstance(node, bool) and bool not in types or not isinstance(node, types):
            e.add(join_path(path, *dotted.split(".")), f"must be {desc}")
    fs = env.get("persistent_disk_fs")
    if isinstance(fs, str) and fs not in ("ext4", "xfs"):
        e.add(join_path(path, "persistent_disk_fs"), "must be ext4 or xfs")


def deep_merge(a: dict, b: dict) -> dict:
    out = unshare(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = unshare(v)
    return out
