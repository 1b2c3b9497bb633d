"""The Create Availability Zones pane: each AZ a cluster, resource pool and host group.

An AZ keeps its guid across saves and cannot be renamed; one still used by a
network or assigned to a tile is refused on removal. With a ``VCenterCheck``
each cluster and resource pool must exist in the vCenter's datacenter.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from opsconsole.errors import NotFound, ServiceError
from tiles.models import DirectorConfig, StagedProduct

from .checks import VCenterCheck
from .common import _err, _raise, _write, get_director
from .rows import row_name, save_rows, sub_rows

DRS_RULES = ("MUST", "SHOULD")


def list_availability_zones() -> list[dict]:
    """``[{"guid", "name", "clusters": [{"cluster", "res_pool", "host_group"}]}]``."""
    return [dict(az) for az in get_director().availability_zones]


def _normalize_az(az: Any, path: str, errors: dict, existing: Mapping[str, dict]) -> dict | None:
    name = row_name(az, path, errors, "must be a map with name and clusters")
    if name is None:
        return None
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        _err(errors, f"{path}/name", "may only hold letters, digits, '_', '-' and '.'")
    path = f"availability_zones/{name}"
    clusters_in = az.get("clusters")
    if clusters_in is None and az.get("cluster"):  # om's flat vSphere form
        clusters_in = [
            {
                "cluster": az.get("cluster"),
                "res_pool": az.get("resource_pool") or az.get("res_pool"),
                "host_group": az.get("host_group"),
            }
        ]
    clusters = []
    for cp, c in sub_rows(
        clusters_in,
        f"{path}/clusters",
        errors,
        required="at least one cluster is required",
        not_a_map="must be a map with cluster, res_pool and host_group",
    ):
        cname = c.get("cluster")
        if not isinstance(cname, str) or not cname.strip():
            _err(errors, f"{cp}/cluster", "is required")
            continue
        entry: dict[str, Any] = {
            "cluster": cname.strip(),
            "guid": c.get("guid") or f"cluster-{secrets.token_hex(10)}",
        }
        pool = c.get("res_pool", c.get("resource_pool"))
        if pool not in (None, ""):
            if not isinstance(pool, str):
                _err(errors, f"{cp}/res_pool", "must be a string")
            else:
                entry["res_pool"] = pool.strip()
        hg = c.get("host_group")
        if isinstance(hg, str) and hg.strip():
            hg = {"name": hg.strip(), "drs_rule": "MUST"}
        if isinstance(hg, Mapping) and hg.get("name"):
            rule = str(hg.get("drs_rule") or "SHOULD").upper()
            if rule not in DRS_RULES:
                _err(errors, f"{cp}/host_group/drs_rule", "must be MUST or SHOULD")
            entry["host_group"] = {"name": str(hg["name"]).strip(), "drs_rule": rule}
        elif hg not in (None, "", {}) and not isinstance(hg, Mapping | str):
            _err(errors, f"{cp}/host_group", "must be a map with name and drs_rule")
        clusters.append(entry)
    guid = az.get("guid") or (existing.get(name) or {}).get("guid") or f"az-{secrets.token_hex(10)}"
    return {"guid": guid, "name": name, "clusters": clusters}


def set_availability_zones(
    azs: list, *, user: str = "", version: int | None = None, check: VCenterCheck | None = None
) -> list[dict]:
    """Replace every AZ (``PUT``). An AZ still used by a network or a tile is refused.

    ``check``: clusters and resource pools are checked against vCenter first."""
    d = get_director()
    if not isinstance(azs, list):
        raise ServiceError({"availability_zones": ["must be a list"]})
    existing = {az["name"]: az for az in d.availability_zones}

    def normalize(az: Any, i: int, errors: dict) -> dict | None:
        return _normalize_az(az, f"availability_zones/{i}", errors, existing)

    def validate(out: list[dict], removed: set[str], errors: dict) -> None:
        if check is not None:
            errors.update(check.availability_zones(out))
        if removed:
            _check_azs_unused(removed, d, errors)

    return save_rows(
        d,
        "availability_zones",
        azs,
        normalize,
        existing,
        validate=validate,
        user=user,
        version=version,
    )


def _check_azs_unused(removed: set[str], d: DirectorConfig, errors: dict) -> None:
    for net in (d.networks or {}).get("networks", []):
        for i, sn in enumerate(net.get("subnets", [])):
            for az in set(sn.get("availability_zone_names") or []) & removed:
                _err(
                    errors,
                    f"availability_zones/{az}",
                    f"is used by network '{net['name']}' (subnet {i}); remove it there first",
                )
    for sp in StagedProduct.objects.only("guid", "network_and_azs"):
        na = sp.network_and_azs or {}
        used = {na.get("singleton_availability_zone"), *(na.get("other_availability_zones") or [])}
        for az in used & removed:
            _err(errors, f"availability_zones/{az}", f"is assigned to {sp.guid}")


def add_availability_zone(
    az: Mapping, *, user: str = "", version: int | None = None, check: VCenterCheck | None = None
) -> dict:
    """Add one AZ (``POST``); its name must be new."""
    d = get_director()
    errors: dict[str, list[str]] = {}
    existing = {a["name"]: a for a in d.availability_zones}
    n = _normalize_az(az, "availability_zone", errors, {})
    if n is not None and n["name"] in existing:
        _err(errors, "availability_zone/name", f"an availability zone '{n['name']}' exists")
    if n is not None and check is not None:
        errors.update(check.availability_zones([n]))
    _raise(errors)
    _write(
        d, {"availability_zones": [*d.availability_zones, n]}, "availability_zones", user, version
    )
    return n


def update_availability_zone(
    guid: str,
    az: Mapping,
    *,
    user: str = "",
    version: int | None = None,
    check: VCenterCheck | None = None,
) -> dict:
    """Change one AZ by guid (``PUT .../availability_zones/{guid}``); renames are refused."""
    d = get_director()
    current = next((a for a in d.availability_zones if a.get("guid") == guid), None)
    if current is None:
        raise NotFound({"guid": [f"no availability zone with guid '{guid}'"]})
    if not isinstance(az, Mapping):
        raise ServiceError({"availability_zone": ["must be an object with name and clusters"]})
    errors: dict[str, list[str]] = {}
    n = _normalize_az({**az, "guid": guid}, "availability_zone", errors, {})
    if n is not None and n["name"] != current["name"]:
        _err(errors, "availability_zone/name", "an availability zone cannot be renamed")
    if n is not None and check is not None:
        errors.update(check.availability_zones([n]))
    _raise(errors)
    azs = [n if a.get("guid") == guid else a for a in d.availability_zones]
    _write(d, {"availability_zones": azs}, "availability_zones", user, version)
    return n
