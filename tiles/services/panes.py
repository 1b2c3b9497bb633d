"""A staged product's system panes: Assign AZs and Networks, Resource Config, Errands.

Each pane reads and writes Ops Manager's API shape. AZs and networks must
exist in the Director tile; resource config checks the job's instance
definition and the VM type catalog (``"automatic"`` restores the tile's
default); errand switches are true, false, ``when-changed`` or the default.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from opsconsole.errors import NotFound, ServiceError
from tiles import director_tile
from tiles.accessors import effective_values
from tiles.director_tile import get_director
from tiles.manifest import _errand_default, job_facts
from tiles.models import StagedProduct

from . import versions
from .common import _err, product_template
from .rendering import _bare_context

AUTOMATIC = "automatic"
_UNSET: Any = object()


def get_networks_and_azs(staged: StagedProduct) -> dict:
    """``{"networks_and_azs": {"singleton_availability_zone": {"name"}, "other_availability_zones": [{"name"}], "network": {"name"}, "service_network": ...}}``."""
    na = staged.network_and_azs or {}
    if not na:
        return {"networks_and_azs": {}}
    out: dict[str, Any] = {
        "singleton_availability_zone": {"name": na.get("singleton_availability_zone")},
        "other_availability_zones": [{"name": n} for n in na.get("other_availability_zones", [])],
        "network": {"name": na.get("network")},
    }
    if na.get("service_network"):
        out["service_network"] = {"name": na["service_network"]}
    return {"networks_and_azs": out}


def _name(value: Any, field: str, errors: dict[str, list[str]]) -> str | None:
    """A name given as ``{"name": x}`` or ``x``; None when absent; anything else an error."""
    if isinstance(value, Mapping):
        value = value.get("name")
    if value is None or isinstance(value, str):
        return value
    _err(errors, field, 'must be a name or {"name": ...}')
    return None


def _save_part(
    staged: StagedProduct, field: str, value: Any, part: str, user: str, version: int | None
) -> None:
    """Write one column under the row lock: refused (409) when ``part`` changed after
    ``version``; the change is recorded as ``user``'s when the value differs."""
    with transaction.atomic():
        fresh = StagedProduct.objects.select_for_update().get(pk=staged.pk)
        versions.check_fresh(fresh, version, [part])
        if getattr(fresh, field) != value:
            versions.record_edits(fresh, [part], user)
        setattr(fresh, field, value)
        fresh.save(update_fields=[field, "revision", "edits", "updated_at"])
    setattr(staged, field, value)
    staged.revision, staged.edits = fresh.revision, fresh.edits


def set_networks_and_azs(
    staged: StagedProduct, data: Mapping, *, user: str = "", version: int | None = None
) -> StagedProduct:
    """The Assign AZs and Networks pane.

    ``data`` is Ops Manager's ``networks_and_azs`` (wrapped or not): names
    as ``{"name": ...}`` or plain strings. AZs and networks must exist in the
    Director tile, and the network needs a subnet in every chosen AZ.
    ``version``/``user``: see ``tiles.services.versions`` (409 when stale).
    """
    if isinstance(data, Mapping) and "networks_and_azs" in data:
        data = data["networks_and_azs"]
    if not isinstance(data, Mapping):
        raise ServiceError({"networks_and_azs": ["must be a map"]})
    d = get_director()
    az_names = {a["name"] for a in d.availability_zones}
    nets = {n["name"]: n for n in (d.networks or {}).get("networks", [])}
    errors: dict[str, list[str]] = {}
    singleton = _name(
        data.get("singleton_availability_zone"), "singleton_availability_zone", errors
    )
    others_raw = data.get("other_availability_zones")
    if others_raw is None:
        others_raw = []
    if not isinstance(others_raw, list):
        _err(errors, "other_availability_zones", "must be a list of AZs")
        others_raw = []
    others = [
        name
        for i, o in enumerate(others_raw)
        if (name := _name(o, f"other_availability_zones/{i}", errors)) is not None
    ]
    network = _name(data.get("network"), "network", errors)
    service_network = _name(data.get("service_network"), "service_network", errors) or None
    if not singleton:
        errors.setdefault("singleton_availability_zone", ["is required"])
    elif singleton not in az_names:
        _err(errors, "singleton_availability_zone", f"'{singleton}' is not an availability zone")
    for o in others:
        if o not in az_names:
            _err(errors, "other_availability_zones", f"'{o}' is not an availability zone")
    if len(set(others)) != len(others):
        _err(errors, "other_availability_zones", "an availability zone is listed twice")
    if not others and singleton:
        others = [singleton]
    for key, net in (("network", network), ("service_network", service_network)):
        if key == "network" and not net:
            errors.setdefault("network", ["is required"])
            continue
        if net and net not in nets:
            _err(errors, key, f"'{net}' is not a network of the director")
        elif net:
            covered = {az for sn in nets[net]["subnets"] for az in sn["availability_zone_names"]}
            for az in [singleton, *others]:
                if az and az in az_names and az not in covered:
                    _err(errors, key, f"network '{net}' has no subnet in availability zone '{az}'")
    if errors:
        raise ServiceError(errors)
    value = {
        "singleton_availability_zone": singleton,
        "other_availability_zones": others,
        "network": network,
        "service_network": service_network,
    }
    _save_part(staged, "network_and_azs", value, versions.NETWORKS_AND_AZS, user, version)
    return staged


# --------------------------------------------------------------------------- resource config


def job_guid(staged: StagedProduct, job_name: str) -> str:
    """Ops Manager's job guid (``<job>-<20 hex>``), stable for a staged product."""
    digest = hashlib.sha256(f"{staged.guid}/{job_name}".encode()).hexdigest()[:20]
    return f"{job_name}-{digest}"


def list_jobs(staged: StagedProduct) -> list[dict]:
    """``[{"name", "guid", "label", "errand"}]`` for every job type."""
    template = product_template(staged)
    return [
        {
            "name": name,
            "guid": job_guid(staged, name),
            "label": job.get("resource_label") or name,
            "errand": bool(job.get("errand")),
        }
        for name, job in template.job_types.items()
    ]


def job_name_for_guid(staged: StagedProduct, guid: str) -> str:
    for j in list_jobs(staged):
        if guid in (j["guid"], j["name"]):
            return j["name"]
    raise NotFound({"job_guid": [f"{staged.guid} has no job '{guid}'"]})


def _resource_defaults(staged: StagedProduct, job_name: str) -> dict:
    """What "Automatic" means for a job, and its constraints."""
    template = product_template(staged)
    job = template.job_type(job_name) or {}
    idef = job.get("instance_definition") or {}
    cons = idef.get("constraints") if isinstance(idef.get("constraints"), Mapping) else {}
    rds = {
        rd.get("name"): rd
        for rd in job.get("resource_definitions") or []
        if isinstance(rd, Mapping)
    }
    ctx = _bare_context(staged)
    facts = job_facts(template, effective_values(template, staged.all_values()), ctx, [])
    f = facts.get(job_name, {})
    disk_rd = rds.get("persistent_disk") or {}
    disk_cons = (
        disk_rd.get("constraints") if isinstance(disk_rd.get("constraints"), Mapping) else {}
    )
    return {
        "instances": f.get("instances"),
        "instances_configurable": bool(idef.get("configurable", True)) if idef else False,
        "instances_min": cons.get("min"),
        "instances_max": cons.get("max"),
        "instance_type": f.get("vm_type"),
        "has_persistent_disk": "persistent_disk" in rds,
        "persistent_disk_mb": disk_rd.get("default") if "persistent_disk" in rds else None,
        "persistent_disk_min_mb": disk_cons.get("min"),
    }


def get_resource_config(staged: StagedProduct, job_name: str) -> dict:
    """Ops Manager's resource config of one job.

    ``{"instances": int | "automatic", "instance_type": {"id": name |
    "automatic"}, "persistent_disk": {"size_mb": "automatic" | "<MB>"}
    (only for jobs with a persistent disk), "internet_connected": false,
    "elb_names": [], "additional_vm_extensions": [], "automatic": {what
    Automatic resolves to, and the constraints}}``.
    """
    if product_template(staged).job_type(job_name) is None:
        job_name = job_name_for_guid(staged, job_name)
    rc = (staged.resource_config or {}).get(job_name) or {}
    defaults = _resource_defaults(staged, job_name)
    out: dict[str, Any] = {
        "instances": rc.get("instances") if rc.get("instances") is not None else AUTOMATIC,
        "instance_type": {"id": rc.get("instance_type") or AUTOMATIC},
        "internet_connected": False,
        "elb_names": [],
        "additional_vm_extensions": [],
        "automatic": defaults,
    }
    if defaults["has_persistent_disk"] or rc.get("persistent_disk_mb") is not None:
        size = rc.get("persistent_disk_mb")
        out["persistent_disk"] = {"size_mb": str(size) if size is not None else AUTOMATIC}
    return out


def _whole_number(value: Any) -> int:
    """``value`` as an int (``"3"``, `` 3 ``); ValueError for booleans and non-numbers."""
    if isinstance(value, bool):
        raise ValueError(value)
    return int(str(value).strip())


def set_resource_config(
    staged: StagedProduct,
    job_name: str,
    instances: Any = _UNSET,
    instance_type: Any = _UNSET,
    persistent_disk_mb: Any = _UNSET,
    *,
    user: str = "",
    version: int | None = None,
) -> dict:
    """Change one job's resource config; ``"automatic"`` (or None) restores the tile default.

    Checks the instance definition (``configurable``, ``constraints``
    ``min``/``max``), that the VM type is in the catalog and that the disk
    size meets the job's minimum. Errors name ``instances``,
    ``instance_type.id`` and ``persistent_disk.size_mb``.
    ``version``/``user``: see ``tiles.services.versions`` (409 when stale).
    """
    template = product_template(staged)
    job = template.job_type(job_name)
    if job is None:
        raise NotFound({"job_guid": [f"{staged.guid} has no job '{job_name}'"]})
    rc = dict((staged.resource_config or {}).get(job_name) or {})
    errors: dict[str, list[str]] = {}
    idef = job.get("instance_definition") or {}
    cons = idef.get("constraints") if isinstance(idef.get("constraints"), Mapping) else {}
    if instances is not _UNSET:
        if instances in (None, AUTOMATIC, ""):
            rc["instances"] = None
        else:
            try:
                n = _whole_number(instances)
            except (TypeError, ValueError):
                _err(errors, "instances", f"'{instances}' is not a whole number")
            else:
                default = idef.get("default")
                if idef and not idef.get("configurable", True) and n != default:
                    _err(
                        errors,
                        "instances",
                        f"is not configurable for {job_name} (fixed at {default})",
                    )
                elif n < 0:
                    _err(errors, "instances", "must be 0 or more")
                elif isinstance(cons.get("min"), int) and n < cons["min"]:
                    _err(errors, "instances", f"must be at least {cons['min']}")
                elif isinstance(cons.get("max"), int) and n > cons["max"]:
                    _err(errors, "instances", f"must be at most {cons['max']}")
                elif cons.get("may_only_be_odd_or_zero") and n % 2 == 0 and n != 0:
                    _err(errors, "instances", "must be odd or zero")
                else:
                    rc["instances"] = n
    if instance_type is not _UNSET:
        if isinstance(instance_type, Mapping):
            instance_type = instance_type.get("id")
        if instance_type in (None, AUTOMATIC, ""):
            rc["instance_type"] = None
        elif instance_type not in {t["name"] for t in director_tile.vm_types()}:
            _err(errors, "instance_type.id", f"'{instance_type}' is not in the VM type catalog")
        else:
            rc["instance_type"] = instance_type
    if persistent_disk_mb is not _UNSET:
        if isinstance(persistent_disk_mb, Mapping):
            persistent_disk_mb = persistent_disk_mb.get("size_mb")
        rds = {
            rd.get("name"): rd
            for rd in job.get("resource_definitions") or []
            if isinstance(rd, Mapping)
        }
        if persistent_disk_mb in (None, AUTOMATIC, ""):
            rc["persistent_disk_mb"] = None
        elif "persistent_disk" not in rds:
            _err(errors, "persistent_disk.size_mb", f"{job_name} has no persistent disk")
        else:
            try:
                size = _whole_number(persistent_disk_mb)
            except (TypeError, ValueError):
                _err(
                    errors, "persistent_disk.size_mb", f"'{persistent_disk_mb}' is not a size in MB"
                )
            else:
                dcons = rds["persistent_disk"].get("constraints") or {}
                if size < 0:
                    _err(errors, "persistent_disk.size_mb", "must be 0 or more")
                elif isinstance(dcons.get("min"), int) and 0 < size < dcons["min"]:
                    _err(errors, "persistent_disk.size_mb", f"must be at least {dcons['min']} MB")
                else:
                    rc["persistent_disk_mb"] = size
    if errors:
        raise ServiceError(errors)
    with transaction.atomic():
        fresh = StagedProduct.objects.select_for_update().get(pk=staged.pk)
        part = versions.resource_config_part(job_name)
        versions.check_fresh(fresh, version, [part])
        config = dict(fresh.resource_config or {})
        if config.get(job_name, {}) != rc:
            versions.record_edits(fresh, [part], user)
        config[job_name] = rc
        fresh.resource_config = config
        fresh.save(update_fields=["resource_config", "revision", "edits", "updated_at"])
    staged.resource_config = config
    staged.revision, staged.edits = fresh.revision, fresh.edits
    return get_resource_config(staged, job_name)


# --------------------------------------------------------------------------- errands


_ERRAND_STATES = (True, False, "when-changed", "default")


def get_errands(staged: StagedProduct) -> list[dict]:
    """``[{"name", "label", "post_deploy": bool | "when-changed" | "default", "pre_delete": ...}]``.

    A phase an errand does not belong to is left out; ``"default"`` means
    the tile's default (shown in ``default_post_deploy`` / ``default_pre_delete``).
    """
    template = product_template(staged)
    saved = staged.errands or {}
    by_name: dict[str, dict] = {}
    for phase, items in (
        ("post_deploy", template.post_deploy_errands),
        ("pre_delete", template.pre_delete_errands),
    ):
        for e in items:
            name = e.get("name")
            entry = by_name.setdefault(name, {"name": name, "label": e.get("label") or name})
            state = (saved.get(name) or {}).get(phase)
            entry[phase] = "default" if state is None else state
            entry[f"default_{phase}"] = _errand_default(e, template.job_type(name), phase)
    return list(by_name.values())


def set_errands(
    staged: StagedProduct, errands: Any, *, user: str = "", version: int | None = None
) -> list[dict]:
    """Save errand switches: ``[{"name", "post_deploy", "pre_delete"}]`` (or a map by name).

    Values: true/false, ``"when-changed"``, or ``"default"``/null for the tile default.
    ``version``/``user``: see ``tiles.services.versions`` (409 when stale).
    """
    if isinstance(errands, Mapping) and "errands" in errands:
        errands = errands["errands"]
    if isinstance(errands, Mapping):
        errands = [{"name": k, **(v if isinstance(v, Mapping) else {})} for k, v in errands.items()]
    if not isinstance(errands, list):
        raise ServiceError({"errands": ["must be a list of {name, post_deploy, pre_delete}"]})
    known = {e["name"]: e for e in get_errands(staged)}
    errors: dict[str, list[str]] = {}
    saved = copy.deepcopy(staged.errands or {})
    for i, e in enumerate(errands):
        if not isinstance(e, Mapping) or not e.get("name"):
            _err(errors, f"errands/{i}", "must be a map with name")
            continue
        name = e["name"]
        if name not in known:
            _err(errors, f"errands/{name}", "is not an errand of this product")
            continue
        for phase in ("post_deploy", "pre_delete"):
            key = phase if phase in e else f"{phase.replace('_', '-')}-state"
            if key not in e:
                continue
            v = e[key]
            if isinstance(v, str) and v.lower() in ("true", "false", "on", "off"):
                v = v.lower() in ("true", "on")
            if v is None:
                v = "default"
            if v not in _ERRAND_STATES:
                _err(
                    errors,
                    f"errands/{name}/{phase}",
                    "must be true, false, when-changed or default",
                )
                continue
            if phase not in known[name]:
                _err(errors, f"errands/{name}/{phase}", f"{name} is not a {phase} errand")
                continue
            saved.setdefault(name, {})[phase] = None if v == "default" else v
    if errors:
        raise ServiceError(errors)
    _save_part(staged, "errands", saved, versions.ERRANDS, user, version)
    return get_errands(staged)
