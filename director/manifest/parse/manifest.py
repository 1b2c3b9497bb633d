"""``parse_manifest``: the whole deployment manifest, section by section.

Top-level keys first (retired v1 sections, ``name``), then ``releases`` and
``stemcells`` (``releases.py``), ``update`` (``update.py``), global
``properties``, ``instance_groups`` (``groups.py``; a static IP may belong to
one group only), ``variables`` and ``features`` (``variables.py``),
``addons`` and ``tags``.
"""

from __future__ import annotations

from typing import Any

from ..addon_filters import DEPLOYMENT
from ..addons import validate_addons
from ..checks import named_items, unresolved
from ..errors import ErrorCollector, ManifestError, item_key, join_path
from ..yaml import load_yaml, unshare
from .groups import parse_instance_group
from .releases import parse_releases, parse_stemcells
from .update import VM_STRATEGIES, check_update
from .variables import parse_features, parse_variables

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
    _check_name(doc.get("name"), e)

    out = unshare(doc)
    out["releases"] = parse_releases(doc.get("releases"), e)
    out["stemcells"] = parse_stemcells(doc.get("stemcells"), e)
    out["update"] = _deployment_update(doc.get("update"), default_vm_strategy, e)
    deployment = {"update": out["update"], "properties": _global_properties(doc, e)}

    release_names = {r["name"] for r in out["releases"]}
    stemcell_aliases = {s["alias"] for s in out["stemcells"]}
    out["instance_groups"] = _parse_instance_groups(
        doc.get("instance_groups"), deployment, release_names, stemcell_aliases, e
    )
    out["variables"] = parse_variables(doc.get("variables"), e)
    out["features"] = parse_features(doc.get("features"), e)
    validate_addons(doc.get("addons"), "addons", e, DEPLOYMENT)
    _check_addon_releases(doc.get("addons"), release_names, e)
    out["addons"] = unshare(doc.get("addons") or [])
    tags = doc.get("tags")
    if tags is not None and not isinstance(tags, dict):
        e.add("tags", "must be a map of tag names to values")
    out["tags"] = unshare(tags) if isinstance(tags, dict) else {}
    if warnings is not None:
        warnings.extend(e.warnings)
    e.raise_if_any("manifest")
    return out


def _check_name(name: Any, e: ErrorCollector) -> None:
    if name is None:
        e.add("name", "is required (the deployment name); a manifest fragment cannot be deployed")
    elif not isinstance(name, str) or not name.strip():
        e.add("name", "must be a non-empty string")


def _deployment_update(update: Any, default_vm_strategy: str, e: ErrorCollector) -> dict:
    """The deployment's ``update`` with every key (defaults filled in)."""
    if update is None:
        e.add(
            "update", "is required (canaries, max_in_flight, canary_watch_time, update_watch_time)"
        )
        update = {}
    elif not isinstance(update, dict):
        e.add("update", "must be a map")
        update = {}
    else:
        check_update(update, "update", e, required=True)
    return {
        "serial": True,
        "vm_strategy": default_vm_strategy,
        "initial_deploy_az_update_strategy": "serial",
        **unshare(update),
    }


def _global_properties(doc: dict, e: ErrorCollector) -> dict:
    props = doc.get("properties")
    if props is None:
        return {}
    if not isinstance(props, dict):
        e.add("properties", "must be a map")
        return {}
    e.warn(
        "properties",
        "Global 'properties' are deprecated. Please define 'properties' at the job level.",
    )
    return props or {}


def _parse_instance_groups(
    igs: Any,
    deployment: dict,
    release_names: set[str],
    stemcell_aliases: set[str],
    e: ErrorCollector,
) -> list[dict]:
    if igs is None:
        e.add(
            "instance_groups",
            "is required (a list of instance groups); a manifest fragment cannot be deployed",
        )
        return []
    parsed_igs = []
    all_static: dict[str, str] = {}
    for path, ig in named_items(
        igs,
        "instance_groups",
        e,
        duplicate=lambda name: f"duplicate instance group name '{name}'",
    ):
        parsed = parse_instance_group(ig, path, deployment, release_names, stemcell_aliases, e)
        _claim_static_ips(parsed, path, all_static, e)
        parsed_igs.append(parsed)
    return parsed_igs


def _claim_static_ips(
    parsed: dict, path: str, all_static: dict[str, str], e: ErrorCollector
) -> None:
    """A static IP belongs to one instance group of the deployment."""
    for net in parsed["networks"] if isinstance(parsed["networks"], list) else []:
        for ip in net["static_ips"] if isinstance(net["static_ips"], list) else []:
            if unresolved(ip):
                continue
            other = all_static.get(ip)
            if other is not None:
                e.add(
                    join_path(path, "networks", net["name"], "static_ips"),
                    f"static IP '{ip}' is also assigned to instance group '{other}'",
                )
            all_static[ip] = parsed["name"]


def _check_addon_releases(raw: Any, release_names: set[str], e: ErrorCollector) -> None:
    raw_addons = raw if isinstance(raw, list) else []
    for a, addon in enumerate(raw_addons):
        jobs = addon.get("jobs") if isinstance(addon, dict) else None
        for job in jobs if isinstance(jobs, list) else []:  # validate_addons reports the rest
            rel = job.get("release") if isinstance(job, dict) else None
            if isinstance(rel, str) and not unresolved(rel) and rel not in release_names:
                e.add(
                    join_path("addons", item_key(addon, a), "jobs", job.get("name"), "release"),
                    f"references an unknown release '{rel}'",
                )
