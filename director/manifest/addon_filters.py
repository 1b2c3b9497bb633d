"""Addon include/exclude filters: which instance groups an addon applies to.

Filter rules, exactly as the BOSH director evaluates them (``addon/filter.rb``):

1. "Hard" filters first: if ``lifecycle``, ``azs``, ``teams``, ``stemcell``
   (``[{os}]``) or ``networks`` is given and does not match, the filter does
   not match.
2. Then ``deployments``, ``jobs`` (each ``{name, release}``) and
   ``instance_groups``: every one that is given must match (AND).
3. If none of those three is given: an *include* matches; an *exclude*
   matches only if at least one hard filter was given (an empty exclude
   excludes nothing).

Deployment-level addons (the manifest's own ``addons``) may not filter on
``deployments`` and ignore ``teams``.
"""

from __future__ import annotations

from typing import Any

from .checks import is_string_list
from .errors import ErrorCollector, join_path

FILTER_KEYS = (
    "deployments",
    "jobs",
    "instance_groups",
    "stemcell",
    "networks",
    "teams",
    "azs",
    "lifecycle",
)
RUNTIME = "runtime"
DEPLOYMENT = "deployment"


def as_list(value: Any) -> list:
    """``value`` if it is a list, else ``[]`` (the caller reports the wrong type)."""
    return value if isinstance(value, list) else []


def _str_list(value: Any, path: str, e: ErrorCollector) -> list[str]:
    if value is None:
        return []
    if not is_string_list(value):
        e.add(path, "must be a list of strings")
        return []
    return list(value)


def validate_filter(raw: Any, path: str, e: ErrorCollector, level: str) -> dict:
    """Validate one include/exclude block; returns it with every key present."""
    out: dict[str, Any] = {k: [] for k in FILTER_KEYS}
    out["lifecycle"] = ""
    if raw is None:
        return out
    if not isinstance(raw, dict):
        e.add(path, "must be a map")
        return out
    for key in raw:
        if key not in FILTER_KEYS:
            e.add(
                join_path(path, key),
                f"unknown filter '{key}' (expected one of {', '.join(FILTER_KEYS)})",
            )
    for key in ("deployments", "instance_groups", "networks", "teams", "azs"):
        out[key] = _str_list(raw.get(key), join_path(path, key), e)
    if level == DEPLOYMENT and out["deployments"]:
        e.add(
            join_path(path, "deployments"),
            "Deployment filter is not allowed for deployment level addons.",
        )
    if level == DEPLOYMENT:
        out["teams"] = []
    out["jobs"] = _filter_jobs(raw.get("jobs") or [], path, e)
    out["stemcell"] = _filter_stemcells(raw.get("stemcell") or [], path, e)
    lifecycle = raw.get("lifecycle")
    if lifecycle is not None:
        if lifecycle not in ("service", "errand"):
            e.add(join_path(path, "lifecycle"), "must be 'service' or 'errand'")
        else:
            out["lifecycle"] = lifecycle
    return out


def _filter_jobs(jobs: Any, path: str, e: ErrorCollector) -> list[dict]:
    if not isinstance(jobs, list):
        e.add(join_path(path, "jobs"), "must be a list of {name, release}")
        return []
    out = []
    for i, job in enumerate(jobs):
        if (
            not isinstance(job, dict)
            or not isinstance(job.get("name"), str)
            or not isinstance(job.get("release"), str)
            or not job["name"]
            or not job["release"]
        ):
            e.add(join_path(path, "jobs", i), "must have both name and release")
        else:
            out.append({"name": job["name"], "release": job["release"]})
    return out


def _filter_stemcells(stemcells: Any, path: str, e: ErrorCollector) -> list[dict]:
    if not isinstance(stemcells, list):
        e.add(join_path(path, "stemcell"), "must be a list of {os}")
        return []
    out = []
    for i, sc in enumerate(stemcells):
        if not isinstance(sc, dict) or not isinstance(sc.get("os"), str) or not sc["os"]:
            e.add(join_path(path, "stemcell", i), "must have an os name")
        else:
            out.append({"os": sc["os"]})
    return out


def _os_matches(wanted: str, stemcell: str | None) -> bool:
    # A stemcell given by name (bosh-vsphere-esxi-ubuntu-jammy-go_agent) carries its os inside.
    return stemcell is not None and (stemcell == wanted or f"-{wanted}-" in f"-{stemcell}-")


def _hard_filters(
    flt: dict, teams: list[str], ig: dict, stemcell_os: str | None
) -> tuple[bool, bool]:
    """``(given, matches)`` for the hard filters: lifecycle, azs, teams,
    stemcell, networks."""
    hard = False
    if flt["lifecycle"]:
        hard = True
        if ig.get("lifecycle", "service") != flt["lifecycle"]:
            return hard, False
    if flt["azs"]:
        hard = True
        if not set(flt["azs"]) & {a for a in as_list(ig.get("azs")) if isinstance(a, str)}:
            return hard, False
    if flt["teams"]:
        hard = True
        if not set(flt["teams"]) & set(teams or []):
            return hard, False
    if flt["stemcell"]:
        hard = True
        if not any(_os_matches(sc["os"], stemcell_os) for sc in flt["stemcell"]):
            return hard, False
    if flt["networks"]:
        hard = True
        # A group's networks may still be a ((placeholder)) here: addons are
        # applied before interpolation, so only a literal list can match.
        names = {
            n.get("name")
            for n in as_list(ig.get("networks"))
            if isinstance(n, dict) and isinstance(n.get("name"), str)
        }
        if not set(flt["networks"]) & names:
            return hard, False
    return hard, True


def filter_applies(
    flt: dict, kind: str, deployment_name: str, teams: list[str], ig: dict, stemcell_os: str | None
) -> bool:
    """Does one normalized include/exclude filter match an instance group? (rules in the module doc)"""
    hard, matches = _hard_filters(flt, teams, ig, stemcell_os)
    if not matches:
        return False
    checks = []
    if flt["deployments"]:
        checks.append(deployment_name in flt["deployments"])
    if flt["jobs"]:
        have = {
            (j.get("name"), j.get("release"))
            for j in as_list(ig.get("jobs"))
            if isinstance(j, dict)
        }
        checks.append(any((j["name"], j["release"]) in have for j in flt["jobs"]))
    if flt["instance_groups"]:
        checks.append(ig.get("name") in flt["instance_groups"])
    if checks:
        return all(checks)
    return kind == "include" or hard


def addon_applies(
    addon: dict, deployment_name: str, teams: list[str], ig: dict, stemcell_os: str | None
) -> bool:
    include = filter_applies(addon["include"], "include", deployment_name, teams, ig, stemcell_os)
    exclude = addon["_has_exclude"] and filter_applies(
        addon["exclude"], "exclude", deployment_name, teams, ig, stemcell_os
    )
    return include and not exclude
