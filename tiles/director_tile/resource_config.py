"""The Director tile's Resource Config pane: the compilation workers (Ops Manager's
"Master Compilation Job").

How many workers compile packages in parallel and their VM type, stored in
``DirectorConfig.resource_config["compilation"]`` as ``{"instances",
"instance_type"}``; the cloud-config's ``compilation`` block is rendered from
it (``configs.render_cloud_config``). ``instance_type`` ``automatic`` (or
nothing saved) picks ``catalogs.AUTOMATIC_COMPILATION_VM_TYPES``' first type
the catalog has; 4 workers unless set.
"""

from __future__ import annotations

from typing import Any

from .catalogs import AUTOMATIC_COMPILATION_VM_TYPES, vm_types
from .common import _err, _int, _raise, _write, get_director

__all__ = [
    "COMPILATION",
    "PART_COMPILATION",
    "DEFAULT_COMPILATION_WORKERS",
    "MAX_COMPILATION_WORKERS",
    "compilation_resource_config",
    "set_compilation_resource_config",
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

    ``instances``: 1 to ``MAX_COMPILATION_WORKERS``; ``instance_type``: ``automatic``
    or a VM type of the catalog. 422 naming ``compilation/<field>``; a write
    based on a stale read is 409."""
    d = get_director()
    errors: dict[str, list[str]] = {}
    out = dict((d.resource_config or {}).get(COMPILATION) or {})
    if instances is not None:
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
