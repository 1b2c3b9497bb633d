"""The Director tile's Resource Config pane: the compilation workers (Ops Manager's
"Master Compilation Job").

How many workers compile packages in parallel and their VM type, stored in
``DirectorConfig.resource_config["compilation"]`` as ``{"instances",
"instance_type"}``; the cloud-config's ``compilation`` block is rendered from
it (``configs.render_cloud_config``). ``instance_type`` ``automatic`` (or
nothing saved) picks ``catalogs.AUTOMATIC_COMPILATION_VM_TYPES``' first type
the catalog has; 4 workers unless set.

Ops Manager's API reaches it as a job of the director product
(``GET /staged/products/{director guid}/jobs``, ``.../resources``, ``GET/PUT
.../jobs/{job guid}/resource_config``, the shapes ``om configure-director``'s
``resource-configuration`` sends): the one job is ``compilation``; the
director itself runs in the console, with no VM to size. Fields Ops Manager
has that cannot take effect for compilation VMs here (a persistent disk, load
balancers, VM extensions, internet_connected) are accepted only empty or
false, else refused (422) naming the field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from opsconsole.errors import Conflict, ServiceError

from .catalogs import AUTOMATIC_COMPILATION_VM_TYPES, vm_types
from .common import _err, _int, _raise, _write, get_director

__all__ = [
    "COMPILATION",
    "PART_COMPILATION",
    "DEFAULT_COMPILATION_WORKERS",
    "MAX_COMPILATION_WORKERS",
    "compilation_resource_config",
    "set_compilation_resource_config",
    "director_jobs",
    "compilation_job_guid",
    "compilation_job_resource_config",
    "set_compilation_job_resource_config",
    "director_resources",
]

COMPILATION = "compilation"
#: The pane's part (its version, ``tiles.services.versions.resource_config_part``).
PART_COMPILATION = f"resource_config/{COMPILATION}"
DEFAULT_COMPILATION_WORKERS = 4
#: Each worker is a VM powered on at once; more than this is a typo, not a plan.
MAX_COMPILATION_WORKERS = 64
AUTOMATIC = "automatic"


def _automatic_vm_type() -> str:
    """What Automatic picks (as ``catalogs.compilation_vm_type`` with nothing chosen)."""
    names = [t["name"] for t in vm_types()]
    return next((n for n in AUTOMATIC_COMPILATION_VM_TYPES if n in names), names[-1])


def compilation_resource_config() -> dict[str, Any]:
    """``{"instances", "instance_type", "automatic": {"instances", "instance_type"}}``:
    what is saved (``automatic`` when nothing is) and what Automatic means today."""
    d = get_director()
    saved = (d.resource_config or {}).get(COMPILATION) or {}
    return {
        "instances": saved.get("instances") or DEFAULT_COMPILATION_WORKERS,
        "instance_type": saved.get("instance_type") or AUTOMATIC,
        "automatic": {
            "instances": DEFAULT_COMPILATION_WORKERS,
            "instance_type": _automatic_vm_type(),
        },
    }


def set_compilation_resource_config(
    instances: Any = None,
    instance_type: Any = None,
    *,
    user: str = "",
    version: int | None = None,
) -> dict[str, Any]:
    """Save the compilation workers (either field or both; None keeps what is saved).

    ``instances``: 1 to ``MAX_COMPILATION_WORKERS``, or ``automatic`` (the
    default, ``DEFAULT_COMPILATION_WORKERS``); ``instance_type``: ``automatic``
    or a VM type of the catalog. 422 naming ``compilation/<field>``; a write
    based on a stale read is 409."""
    d = get_director()
    errors: dict[str, list[str]] = {}
    out = dict((d.resource_config or {}).get(COMPILATION) or {})
    if instances is not None and str(instances).strip() in ("", AUTOMATIC):
        out.pop("instances", None)
    elif instances is not None:
        n = _int(instances, f"{COMPILATION}/instances", errors, lo=1, hi=MAX_COMPILATION_WORKERS)
        if n is not None:
            out["instances"] = n
    if instance_type is not None:
        name = str(instance_type).strip()
        names = [t["name"] for t in vm_types()]
        if not name or name == AUTOMATIC:
            out.pop("instance_type", None)
        elif name not in names:
            _err(
                errors,
                f"{COMPILATION}/instance_type",
                f"'{name}' is not a VM type of the catalog (VM Types)",
            )
        else:
            out["instance_type"] = name
    _raise(errors)
    config = {**(d.resource_config or {}), COMPILATION: out}
    _write(d, {"resource_config": config}, PART_COMPILATION, user, version)
    return compilation_resource_config()


# --------------------------------------------------------------------------- Ops Manager's API

#: Ops Manager's resource config fields that compilation VMs here accept only empty or off.
_ONLY_OFF = {
    "internet_connected": (
        False,
        "cannot take effect: vSphere VMs get no public IP; leave it false",
    ),
    "elb_names": ([], "cannot take effect: compilation VMs join no load balancer; leave it empty"),
    "additional_vm_extensions": (
        [],
        "cannot take effect: compilation VMs take no VM extensions here; leave it empty",
    ),
}
_API_FIELDS = ("instances", "instance_type", "persistent_disk", *_ONLY_OFF)
#: The service's error paths as Ops Manager's body names them.
_API_PATHS = {
    f"{COMPILATION}/instances": "instances",
    f"{COMPILATION}/instance_type": "instance_type.id",
}


def compilation_job_guid() -> str:
    """The compilation job's guid (``compilation-<20 hex>``), stable for the director."""
    digest = hashlib.sha256(f"{get_director().guid}/{COMPILATION}".encode()).hexdigest()[:20]
    return f"{COMPILATION}-{digest}"


def director_jobs() -> list[dict[str, str]]:
    """``GET /staged/products/{director guid}/jobs``: ``[{"name", "guid"}]``."""
    return [{"name": COMPILATION, "guid": compilation_job_guid()}]


def _compilation_job(job_guid: str) -> None:
    if job_guid not in (COMPILATION, compilation_job_guid()):
        raise ServiceError(
            {"job_guid": [f"the BOSH Director has no job '{job_guid}' (its job: compilation)"]},
            404,
        )


def compilation_job_resource_config(job_guid: str = COMPILATION) -> dict[str, Any]:
    """``GET .../jobs/{job guid}/resource_config``: ``{"instances": n | "automatic",
    "instance_type": {"id"}, "internet_connected", "elb_names",
    "additional_vm_extensions", "automatic": what Automatic means today}``."""
    _compilation_job(job_guid)
    saved = (get_director().resource_config or {}).get(COMPILATION) or {}
    return {
        "instances": saved.get("instances") or AUTOMATIC,
        "instance_type": {"id": saved.get("instance_type") or AUTOMATIC},
        "internet_connected": False,
        "elb_names": [],
        "additional_vm_extensions": [],
        "automatic": compilation_resource_config()["automatic"],
    }


def set_compilation_job_resource_config(
    job_guid: str, data: Mapping[str, Any], *, user: str = "", version: int | None = None
) -> dict[str, Any]:
    """``PUT .../jobs/{job guid}/resource_config``: ``instances`` (or ``automatic``) and
    ``instance_type: {"id": <VM type> | "automatic"}``; absent keeps what is saved.

    422 naming the field (``instances``, ``instance_type.id``,
    ``persistent_disk.size_mb``, an unknown field), 404 for another job, 409
    when the pane changed after ``version``."""
    _compilation_job(job_guid)
    errors: dict[str, list[str]] = {}
    for key in sorted(set(data) - set(_API_FIELDS)):
        _err(errors, key, "unknown field (a compilation job takes instances and instance_type)")
    for key, (off, why) in _ONLY_OFF.items():
        if data.get(key) not in (None, off):
            _err(errors, key, why)
    disk = data.get("persistent_disk")
    size = disk.get("size_mb") if isinstance(disk, Mapping) else disk
    if size not in (None, "", AUTOMATIC, "none", 0, "0"):
        _err(errors, "persistent_disk.size_mb", "compilation VMs have no persistent disk")
    instance_type = data.get("instance_type")
    if isinstance(instance_type, Mapping):
        instance_type = instance_type.get("id")
        if instance_type is None:
            _err(errors, "instance_type.id", "is required")
    elif instance_type is not None and not isinstance(instance_type, str):
        _err(errors, "instance_type", 'must be {"id": <VM type or automatic>}')
    _raise(errors)
    try:
        set_compilation_resource_config(
            data.get("instances"), instance_type, user=user, version=version
        )
    except Conflict:
        raise
    except ServiceError as exc:
        raise ServiceError(
            {_API_PATHS.get(k, k): v for k, v in exc.errors.items()}, exc.status
        ) from None
    return compilation_job_resource_config(job_guid)


def director_resources() -> list[dict[str, Any]]:
    """``GET /staged/products/{director guid}/resources``: each job's resource config in
    Ops Manager's list shape (``identifier``, ``instances`` and ``instance_type_id`` as
    saved, the ``*_best_fit`` values Automatic resolves to)."""
    current = compilation_job_resource_config()
    automatic = current["automatic"]
    chosen = current["instance_type"]["id"]
    return [
        {
            "identifier": COMPILATION,
            "guid": compilation_job_guid(),
            "description": "Master Compilation Job: the VMs that compile packages",
            "instances": current["instances"],
            "instances_best_fit": automatic["instances"],
            "instance_type_id": "" if chosen == AUTOMATIC else chosen,
            "instance_type_best_fit": automatic["instance_type"],
            "persistent_disk_mb": None,
            "internet_connected": False,
            "elb_names": [],
            "additional_vm_extensions": [],
        }
    ]
