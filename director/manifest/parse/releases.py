"""The manifest's ``releases`` and ``stemcells``: what a deployment is built from."""

from __future__ import annotations

from typing import Any

from ..checks import named_items
from ..errors import ErrorCollector, join_path
from ..yaml import unshare


def version_text(v: Any) -> Any:
    """A version as the string the director compares (YAML may read ``1.10``
    as a float, ``true`` as a boolean)."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def parse_releases(raw: Any, e: ErrorCollector) -> list[dict]:
    if raw is None:
        e.add("releases", "is required")
        return []
    out = []
    for path, rel in named_items(
        raw, "releases", e, duplicate=lambda name: f"duplicate release '{name}'"
    ):
        norm = unshare(rel)
        if rel.get("version") is None:
            e.add(join_path(path, "version"), "is required (a version or 'latest')")
        else:
            norm["version"] = version_text(rel["version"])
        for key in ("url", "sha1"):
            if key in rel and not isinstance(rel[key], str):
                e.add(join_path(path, key), "must be a string")
        sc = rel.get("stemcell")
        if sc is not None:
            if not isinstance(sc, dict) or not sc.get("os") or sc.get("version") is None:
                e.add(join_path(path, "stemcell"), "must have os and version (compiled release)")
            else:
                norm["stemcell"] = {**sc, "version": version_text(sc["version"])}
        out.append(norm)
    return out


def _alias_or_index(sc: Any, i: int) -> Any:
    return sc.get("alias", i) if isinstance(sc, dict) else i


def parse_stemcells(raw: Any, e: ErrorCollector) -> list[dict]:
    if raw is None:
        e.add("stemcells", "is required")
        return []
    out = []
    for path, sc in named_items(
        raw,
        "stemcells",
        e,
        duplicate=lambda name: f"duplicate stemcell alias '{name}'",
        name_key="alias",
        path_of=_alias_or_index,
    ):
        if sc.get("os") and sc.get("name"):
            e.add(path, "Properties 'os' and 'name' are both specified for stemcell, choose one.")
        elif not sc.get("os") and not sc.get("name"):
            e.add(path, "must specify either 'os' or 'name'")
        norm = unshare(sc)
        if sc.get("version") is None:
            e.add(join_path(path, "version"), "is required (a version, 'latest' or '621.latest')")
        else:
            norm["version"] = version_text(sc["version"])
        out.append(norm)
    return out
