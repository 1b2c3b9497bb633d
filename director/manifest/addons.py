"""Addons: jobs colocated onto instance groups by rules (runtime-config or manifest).

An addon is ``{name, jobs: [{name, release, properties}], properties,
include, exclude}``. It applies to an instance group iff ``include`` matches
(a missing or empty include matches everything) and ``exclude`` does not.
The matching instance groups get the addon's jobs appended; a job without its
own ``properties`` gets the addon-level ``properties``.

Filter rules: ``addon_filters.py``.

Deployment-level addons (the manifest's own ``addons``) may not filter on
``deployments`` and ignore ``teams``. Runtime-configs also bring
``releases`` (a release the deployment already uses at another version is an
error; ``latest`` is not allowed), ``variables`` and ``tags`` (the
deployment's own tags win).
"""

from __future__ import annotations

from typing import Any

from .addon_filters import DEPLOYMENT, RUNTIME, addon_applies, as_list, validate_filter
from .errors import ErrorCollector, ManifestError, item_key, join_path
from .interpolate import is_placeholder
from .yaml import unshare


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
        norm_jobs = _addon_jobs(addon, apath, e)
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


def _addon_jobs(addon: dict, apath: str, e: ErrorCollector) -> list[dict]:
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
    return norm_jobs


def _stemcell_os(manifest: dict, alias: Any) -> str | None:
    for sc in manifest.get("stemcells") or []:
        if sc.get("alias") == alias:
            return sc.get("os") or sc.get("name")
    return None


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
        _merge_releases(releases, as_list(config.get("releases")), label, e)
        addons.extend(unshare(as_list(config.get("addons"))))
        _merge_variables(variables, as_list(config.get("variables")), label, e)
        if isinstance(config.get("tags"), dict):
            tags.update(unshare(config["tags"]))
    e.raise_if_any("runtime-config")
    out: dict[str, Any] = {"releases": list(releases.values()), "addons": addons}
    if variables:
        out["variables"] = list(variables.values())
    if tags:
        out["tags"] = tags
    return out


def _merge_releases(releases: dict[str, dict], more: list, label: str, e: ErrorCollector) -> None:
    """A release named by several runtime-configs must have one version."""
    for r, rel in enumerate(more):
        if not isinstance(rel, dict) or not isinstance(rel.get("name"), str) or not rel["name"]:
            e.add(join_path("releases", r), f"must be a map with a name (runtime-config {label})")
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


def _merge_variables(variables: dict[str, dict], more: list, label: str, e: ErrorCollector) -> None:
    """A variable named by several runtime-configs must be defined the same way."""
    for v, var in enumerate(more):
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
        existing = {j.get("name") for j in as_list(ig.get("jobs")) if isinstance(j, dict)}
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


def _check_addon_releases(
    addons: list[dict], releases: dict, message: str, e: ErrorCollector
) -> None:
    """Each addon job names a release of ``releases`` (``message`` formatted
    with the release it names)."""
    for addon in addons:
        for job in addon["jobs"]:
            if job["release"] not in releases:
                e.add(
                    join_path("addons", addon.get("name"), "jobs", job["name"], "release"),
                    message.format(job["release"]),
                )


def _add_runtime_releases(
    out: dict,
    used: set[str],
    rc_releases: dict[str, dict],
    release_by_name: dict,
    e: ErrorCollector,
) -> None:
    """The releases of the runtime-config addons that applied join the
    deployment's, at the version the deployment uses if it has them."""
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


def _add_runtime_variables(out: dict, rc_variables: list, e: ErrorCollector) -> None:
    have = {v.get("name"): v for v in out.get("variables") or []}
    for var in rc_variables:
        if var.get("name") in have:
            if have[var["name"]] != var:
                e.add(
                    join_path("variables", var["name"]),
                    "is defined differently in the runtime-config",
                )
            continue
        out.setdefault("variables", []).append(unshare(var))


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
    _check_addon_releases(dep_addons, release_by_name, "references an unknown release '{}'", e)
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
    _check_addon_releases(
        rc_addons,
        rc_releases,
        "references release '{}' which the runtime-config does not list",
        e,
    )
    e.raise_if_any("runtime-config")
    used: set[str] = set()
    for addon in rc_addons:
        used |= _attach(out, addon, deployment_name, teams, e, "runtime-config")
    _add_runtime_releases(out, used, rc_releases, release_by_name, e)
    if rc_addons or rc.get("variables"):
        _add_runtime_variables(out, rc.get("variables") or [], e)
    if rc.get("tags"):
        out["tags"] = {**rc["tags"], **(out.get("tags") or {})}
    e.raise_if_any("manifest")
    return out


__all__ = [
    "ManifestError",
    "apply_addons",
    "consolidate_runtime_configs",
    "validate_addons",
]
