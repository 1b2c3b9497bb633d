"""The manifest's ``variables`` (what the director generates) and
``features`` (deployment-wide switches)."""

from __future__ import annotations

from typing import Any

from ..checks import named_items, unresolved
from ..errors import ErrorCollector, join_path
from ..interpolate import variable_name_error
from ..yaml import unshare

VARIABLE_TYPES = ("password", "certificate", "rsa", "ssh", "user", "value", "json")
UPDATE_MODES = ("converge", "no-overwrite")
FEATURES = (
    "use_dns_addresses",
    "use_short_dns_addresses",
    "use_link_dns_names",
    "randomize_az_placement",
    "converge_variables",
    "use_tmpfs_config",
)


def parse_variables(raw: Any, e: ErrorCollector) -> list[dict]:
    if raw is None:
        return []

    def check_name(name: str, path: str) -> None:
        problem = variable_name_error(name)
        if problem and not unresolved(name):
            e.add(join_path(path, "name"), problem)

    out = []
    for path, var in named_items(
        raw,
        "variables",
        e,
        duplicate=lambda name: f"duplicate variable '{name}'",
        check_name=check_name,
    ):
        if var.get("type") not in VARIABLE_TYPES and not unresolved(var.get("type")):
            e.add(join_path(path, "type"), f"must be one of: {', '.join(VARIABLE_TYPES)}")
        if var.get("options") is not None and not isinstance(var["options"], dict):
            e.add(join_path(path, "options"), "must be a map")
        if "update_mode" in var and var["update_mode"] not in UPDATE_MODES:
            e.add(join_path(path, "update_mode"), f"must be one of: {', '.join(UPDATE_MODES)}")
        norm = unshare(var)
        norm.setdefault("options", {})
        out.append(norm)
    return out


def parse_features(raw: Any, e: ErrorCollector) -> dict:
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
        if not isinstance(value, bool) and not unresolved(value):
            e.add(join_path("features", key), "must be true or false")
            continue
        out[key] = value
    return out
