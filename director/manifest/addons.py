"""Addons: jobs colocated onto instance groups by rules (runtime-config or manifest).

An addon is ``{name, jobs: [{name, release, properties}], properties,
include, exclude}``. It applies to an instance group iff ``include`` matches
(a missing or empty include matches everything) and ``exclude`` does not.
The matching instance groups get the addon's jobs appended; a job without its
own ``properties`` gets the addon-level ``properties``.

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
``deployments`` and ignore ``teams``. Runtime-configs also bring
``releases`` (a release the deployment already uses at another version is an
error; ``latest`` is not allowed), ``variables`` and ``tags`` (the
deployment's own tags win).
"""

from __future__ import annotations

from typing import Any

from .errors import ErrorCollector, ManifestError, item_key, join_path
from .interpolate import is_placeholder
from .yaml import unshare

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


def _list(value: Any) -> list:
    """``value`` if it is a list, else ``[]`` (the caller reports the wrong type)."""
    return value if isinstance(value, list) else []


def _str_list(value: Any, path: str, e: ErrorCollector) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
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
    jobs = raw.get("jobs") or []
    if not isinstance(jobs, list):
        e.add(join_path(path, "jobs"), "must be a list of {name, release}")
        jobs = []
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
            out["jobs"].append({"name": job["name"], "release": job["release"]})
    stemcells = raw.get("stemcell") or []
    if not isinstance(stemcells, list):
        e.add(join_path(path, "stemcell"), "must be a list of {os}")
        stemcells = []
    for i, sc in enumerate(stemcells):
        if not isinstance(sc, dict) or not isinstance(sc.get("os"), str) or not sc["os"]:
            e.add(join_path(path, "stemcell", i), "must have an os name")
        else:
            out["stemcell"].append({"os": sc["os"]})
    lifecycle = raw.get("lifecycle")
    if lifecycle is not None:
        if lifecycle not in ("service", "errand"):
            e.add(join_path(path, "lifecycle"), "must be 'service' or 'errand'")
        else:
            out["lifecycle"] = lifecycle
    return out


def validate_addons(raw: Any, path: str, e: ErrorCollector, level: str) -> list[dict]:
    """Validate an ``addons`` list; returns normalized addons (filters filled, properties {})."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        e.add(path, "must be a list")
        return []
    out = []
    for i, addon in enumerate(raw):
        apath = join_path(path, item_key(addon, i))
        if not isinstance(addon, dict):
            e.add(apath, "must be a map")
            continue
        if not isinstance(addon.get("name"), str) or not addon["name"]:
            e.add(join_path(apath, "name"), "is required")
        props = addon.get("properties")
        if props is not None and not isinstance(props, dict) and not is_placeholder(props):
            e.add(join_path(apath, "properties"), "must be a map")
            props = None
        jobs = addon.get("jobs")
        if not isinstance(jobs, list):
            e.add(join_path(apath, "jobs"), "is required and must be a list")
            jobs = []
        norm_jobs, seen = [], set()
        for j, job in enumerate(jobs):
            jpath = join_path(apath, "jobs", item_key(job, j))
            if not isinstance(job, dict):
                e.add(jpath, "must be a map")
                continue
            if not isinstance(job.get("name"), str) or not job["name"]:
                e.add(join_path(jpath, "name"), "is required")
                continue
            if not isinstance(job.get("release"), str) or not job["release"]:
                e.add(join_path(jpath, "release"), "is required")
                continue
            if job["name"] in seen:
                e.add(jpath, f"job '{job['name']}' is listed twice in addon '{addon.get('name')}'")
                continue
            seen.add(job["name"])
            jprops = job.get("properties")
            if jprops is not None and not isinstance(jprops, dict) and not is_placeholder(jprops):
                e.add(join_path(jpath, "properties"), "must be a map")
            norm_jobs.append(unshare(job))
        out.append(
            {
                **unshare(addon),
                "jobs": norm_jobs,
                "properties": unshare(props) if props is not None else {},
                "include": validate_filter(
                    addon.get("include"), join_path(apath, "include"), e, level
                ),
                "exclude": validate_filter(
                    addon.get("exclude"), join_path(apath, "exclude"), e, level
                ),
                "_has_include": addon.get("include") is not None,
                "_has_exclude": addon.get("exclude") is not None,
            }
        )
    return out


def _stemcell_os(manifest: dict, alias: Any) -> str | None:
    for sc in manifest.get("stemcells") or []:
        if sc.get("alias") == alias:
            return sc.get("os") or sc.get("name")
    return None


def _os_matches(wanted: str, stemcell: str | None) -> bool:
    # A stemcell given by name (bosh-vsphere-esxi-ubuntu-jammy-go_agent) carries its os inside.
    return stemcell is not None and (stemcell == wanted or f"-{wanted}-" in f"-{stemcell}-")


def filter_applies(
    flt: dict, kind: str, deployment_name: str, teams: list[str], ig: dict, stemcell_os: str | None
) -> bool:
    """Does one normalized include/exclude filter match an instance group? (rules in the module doc)"""
    hard = False
    if flt["lifecycle"]:
        hard = True
        if ig.get("lifecycle", "service") != flt["lifecycle"]:
            return False
    if flt["azs"]:
        hard = True
        if not set(flt["azs"]) & {a for a in _list(ig.get("azs")) if isinstance(a, str)}:
            return False
    if flt["teams"]:
        hard = True
        if not set(flt["teams"]) & set(teams or []):
            return False
    if flt["stemcell"]:
        hard = True
        if not any(_os_matches(sc["os"], stemcell_os) for sc in flt["stemcell"]):
            return False
    if flt["networks"]:
        hard = True
        # A group's networks may still be a ((placeholder)) here: addons are
        # applied before interpolation, so only a literal list can match.
        names = {
            n.get("name")
            for n in _list(ig.get("networks"))
            if isinstance(n, dict) and isinstance(n.get("name"), str)
        }
        if not set(flt["networks"]) & names:
            return False
    checks = []
    if flt["deployments"]:
        checks.append(deployment_name in flt["deployments"])
    if flt["jobs"]:
        have = {
            (j.get("name"), j.get("release")) for j in _list(ig.get("jobs")) if isinstance(j, dict)
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


def consolidate_runtime_configs(configs: list[dict], names: list[str] | None = None) -> dict:
    """Merge several runtime-configs: releases (same name must have one version),
    addons and variables concatenated, tags merged (later configs win)."""
    e = ErrorCollector()
    releases: dict[str, dict] = {}
    addons: list = []
    variables: dict[str, dict] = {}
    tags: dict = {}
    for i, config in enumerate(configs):
        label = names[i] if names and i < len(names) else str(i)
        if config is None:
            continue
        if not isinstance(config, dict):
            e.add(f"runtime-config {label}", "must be a YAML mapping")
            continue
        for section, kind in (("releases", list), ("addons", list), ("variables", list)):
            if config.get(section) is not None and not isinstance(config[section], kind):
                e.add(section, f"must be a list (runtime-config {label})")
        if config.get("tags") is not None and not isinstance(config["tags"], dict):
            e.add("tags", f"must be a map (runtime-config {label})")
        for r, rel in enumerate(_list(config.get("releases"))):
            if not isinstance(rel, dict) or not isinstance(rel.get("name"), str) or not rel["name"]:
                e.add(
                    join_path("releases", r), f"must be a map with a name (runtime-config {label})"
                )
                continue
            prev = releases.get(rel["name"])
            if prev is not None and str(prev.get("version")) != str(rel.get("version")):
                e.add(
                    join_path("releases", rel["name"]),
                    f"runtime-configs specify release '{rel['name']}' with different versions "
                    f"'{prev.get('version')}' and '{rel.get('version')}'",
                )
                continue
            releases.setdefault(rel["name"], unshare(rel))
        addons.extend(unshare(_list(config.get("addons"))))
        for v, var in enumerate(_list(config.get("variables"))):
            if not isinstance(var, dict) or not isinstance(var.get("name"), str):
                e.add(
                    join_path("variables", v),
                    f"must be a map with a name (runtime-config {label})",
                )
                continue
            if var.get("name") in variables and variables[var["name"]] != var:
                e.add(
                    join_path("variables", var["name"]),
                    f"defined differently in runtime-config {label}",
                )
                continue
            if isinstance(var, dict):
                variables.setdefault(var.get("name"), unshare(var))
        if isinstance(config.get("tags"), dict):
            tags.update(unshare(config["tags"]))
    e.raise_if_any("runtime-config")
    out: dict[str, Any] = {"releases": list(releases.values()), "addons": addons}
    if variables:
        out["variables"] = list(variables.values())
    if tags:
        out["tags"] = tags
    return out


def _attach(
    manifest: dict,
    addon: dict,
    deployment_name: str,
    teams: list[str],
    e: ErrorCollector,
    where: str,
) -> set:
    """Append an addon's jobs to every matching instance group; returns the releases used."""
    used: set[str] = set()
    for ig in manifest.get("instance_groups") or []:
        os_name = _stemcell_os(manifest, ig.get("stemcell"))
        if not addon_applies(addon, deployment_name, teams, ig, os_name):
            continue
        existing = {j.get("name") for j in _list(ig.get("jobs")) if isinstance(j, dict)}
        for job in addon["jobs"]:
            if job["name"] in existing:
                e.add(
                    join_path("instance_groups", ig.get("name"), "jobs", job["name"]),
                    f"Colocated job '{job['name']}' is already added to the instance group "
                    f"'{ig.get('name')}' (addon '{addon.get('name')}' from the {where})",
                )
                continue
            added = unshare(job)
            added["properties"] = (
                unshare(job["properties"])
                if job.get("properties") is not None
                else unshare(addon["properties"])
            )
            ig.setdefault("jobs", []).append(added)
            used.add(job["release"])
    return used


def apply_addons(
    manifest: dict,
    deployment_name: str,
    runtime_configs: list[dict] | None = None,
    *,
    teams: list[str] | None = None,
) -> dict:
    """Return a copy of a parsed manifest with deployment-level and runtime-config addons applied.

    Call once, on the output of :func:`~director.manifest.parse.parse_manifest`.
    Releases of runtime-config addons that apply are added to ``releases``;
    runtime-config ``variables`` are added (a same-named variable defined
    differently is an error) and its ``tags`` merged under the manifest's.
    Raises :class:`ManifestError`.
    """
    out = unshare(manifest)
    teams = teams or []
    e = ErrorCollector()
    release_by_name = {r.get("name"): r for r in out.get("releases") or []}

    dep_addons = validate_addons(out.get("addons"), "addons", e, DEPLOYMENT)
    for addon in dep_addons:
        for job in addon["jobs"]:
            if job["release"] not in release_by_name:
                e.add(
                    join_path("addons", addon.get("name"), "jobs", job["name"], "release"),
                    f"references an unknown release '{job['release']}'",
                )
    e.raise_if_any("manifest")
    for addon in dep_addons:
        _attach(out, addon, deployment_name, teams, e, "deployment manifest")

    rc = consolidate_runtime_configs(runtime_configs or [])
    rc_addons = validate_addons(rc["addons"], "addons", e, RUNTIME)
    rc_releases = {r["name"]: r for r in rc["releases"]}
    for name, rel in rc_releases.items():
        if str(rel.get("version")) == "latest":
            e.add(
                join_path("releases", name, "version"),
                "a runtime-config cannot use 'latest' as a release version",
            )
    for addon in rc_addons:
        for job in addon["jobs"]:
            if job["release"] not in rc_releases:
                e.add(
                    join_path("addons", addon.get("name"), "jobs", job["name"], "release"),
                    f"references release '{job['release']}' which the runtime-config does not list",
                )
    e.raise_if_any("runtime-config")
    used: set[str] = set()
    for addon in rc_addons:
        used |= _attach(out, addon, deployment_name, teams, e, "runtime-config")
    for name in sorted(used, key=list(rc_releases).index):
        rel = rc_releases[name]
        mine = release_by_name.get(name)
        if mine is None:
            out.setdefault("releases", []).append(unshare(rel))
            release_by_name[name] = rel
        elif str(mine.get("version")) != str(rel.get("version")):
            e.add(
                join_path("releases", name, "version"),
                f"Runtime manifest specifies release '{name}' with version as '{rel.get('version')}'. "
                f"This conflicts with version '{mine.get('version')}' specified in the deployment manifest.",
            )
    if rc_addons or rc.get("variables"):
        have = {v.get("name"): v for v in out.get("variables") or []}
        for var in rc.get("variables") or []:
            if var.get("name") in have:
                if have[var["name"]] != var:
                    e.add(
                        join_path("variables", var["name"]),
                        "is defined differently in the runtime-config",
                    )
                continue
            out.setdefault("variables", []).append(unshare(var))
    if rc.get("tags"):
        out["tags"] = {**rc["tags"], **(out.get("tags") or {})}
    e.raise_if_any("manifest")
    return out


__all__ = [
    "ManifestError",
    "addon_applies",
    "apply_addons",
    "consolidate_runtime_configs",
    "filter_applies",
    "validate_addons",
]
