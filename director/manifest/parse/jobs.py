"""An instance group's ``jobs``: each names a release of the deployment and
gets its ``properties`` (its own, or BOSH's legacy group/global ones)."""

from __future__ import annotations

from ..checks import named_items, unresolved
from ..errors import ErrorCollector, join_path
from ..interpolate import is_placeholder
from ..yaml import unshare

LINK_KEYS = ("consumes", "provides", "custom_provider_definitions")


def parse_jobs(
    ig: dict, path: str, releases: set[str], legacy_props: dict, e: ErrorCollector
) -> list[dict]:
    raw = ig.get("jobs")
    for legacy in ("templates", "template"):
        if legacy in ig:
            e.add(join_path(path, legacy), f"'{legacy}' is no longer supported, please use 'jobs'")
    if raw is None:
        return []
    default_release = ig.get("release")
    if default_release is None and len(releases) == 1:
        default_release = next(iter(releases))
    out = []
    for p, job in named_items(
        raw, join_path(path, "jobs"), e, duplicate=lambda name: _colocated(name, ig)
    ):
        norm = unshare(job)
        norm["release"] = _release(job, p, default_release, releases, e)
        if "properties" in job:
            props = job["properties"]
            if props is None:
                norm["properties"] = {}
            elif not isinstance(props, dict) and not is_placeholder(props):
                e.add(join_path(p, "properties"), "must be a map")
        else:
            norm["properties"] = unshare(legacy_props)
        for key in LINK_KEYS:
            if key in job and job[key] is not None:
                want_list = key == "custom_provider_definitions"
                if not isinstance(job[key], list if want_list else dict):
                    e.add(join_path(p, key), "must be a list" if want_list else "must be a map")
        out.append(norm)
    return out


def _colocated(name: str, ig: dict) -> str:
    return f"Colocated job '{name}' is already added to the instance group '{ig.get('name')}'"


def _release(
    job: dict, p: str, default_release: object, releases: set[str], e: ErrorCollector
) -> object:
    release = job.get("release", default_release)
    if release is None:
        e.add(join_path(p, "release"), "is required (the release that provides this job)")
    elif not isinstance(release, str):
        e.add(join_path(p, "release"), "must be the name of a release")
    elif not unresolved(release):
        if release not in releases:
            e.add(join_path(p, "release"), f"references an unknown release '{release}'")
    return release
