"""The Director tile's catalogs: VM types (built-in or the operator's) and disk types.

The VM type catalog is Ops Manager's on vSphere until the operator sets
his own (``PUT /vm_types``; an empty list restores the built-ins). Disk
types are Ops Manager's fixed size list, each named after its size in MB.
The compilation workers' VM type is picked from the catalog.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from opsconsole.errors import ServiceError
from tiles.models import DirectorConfig

from .common import _err, _int, _raise, _write, get_director

#: Ops Manager's built-in VM types on vSphere (name, CPU, RAM MB, ephemeral disk MB).
DEFAULT_VM_TYPES: tuple[dict, ...] = tuple(
    {"name": n, "cpu": c, "ram": r, "ephemeral_disk": d, "builtin": True}
    for n, c, r, d in (
        ("nano", 1, 512, 1024),
        ("micro", 1, 1024, 8192),
        ("micro.ram", 1, 2048, 8192),
        ("small", 1, 2048, 8192),
        ("small.disk", 1, 2048, 16384),
        ("medium", 2, 4096, 8192),
        ("medium.mem", 2, 6144, 8192),
        ("medium.disk", 2, 4096, 32768),
        ("large", 2, 8192, 16384),
        ("large.mem", 2, 12288, 16384),
        ("large.disk", 2, 8192, 65536),
        ("large.cpu", 4, 4096, 16384),
        ("xlarge", 4, 16384, 32768),
        ("xlarge.mem", 4, 32768, 32768),
        ("xlarge.disk", 4, 16384, 131072),
        ("xlarge.cpu", 8, 8192, 32768),
        ("2xlarge", 8, 32768, 65536),
        ("2xlarge.mem", 8, 65536, 65536),
        ("2xlarge.disk", 8, 32768, 262144),
        ("2xlarge.cpu", 16, 16384, 65536),
    )
)

#: The compilation workers' VM type on Automatic: the first of these the catalog has, else
#: its last type. Compiling wants disk more than memory, and its workers must power on
#: wherever the deployments do: small.disk (1 CPU, 2 GB RAM, 16 GB disk) fits a host of 2
#: cores and 4 GB (a small lab's, vcsim's), where a large type (8 GB) finds no placement
#: and every deploy that compiles would fail. The operator picks another in the
#: ``compilation`` job's Resource Config.
AUTOMATIC_COMPILATION_VM_TYPES = ("small.disk", "small", "medium")

#: Ops Manager's persistent disk catalog (MB); a disk type is named after its size.
DISK_TYPE_SIZES_MB: tuple[int, ...] = (
    1024, 2048, 5120, 10240, 20480, 30720, 51200, 76800, 102400, 153600,
    204800, 307200, 512000, 768000, 1048576, 2097152, 5242880, 10485760, 16777216,
)  # fmt: skip


def vm_types() -> list[dict]:
    """The VM type catalog: custom types if any were set, else the built-in ones."""
    custom = get_director().vm_types
    if custom:
        return [{**v, "builtin": False} for v in custom]
    return [dict(v) for v in DEFAULT_VM_TYPES]


def set_vm_types(types: list | None, *, user: str = "", version: int | None = None) -> list[dict]:
    """Replace the catalog (``PUT /vm_types``); an empty list or None restores the built-ins."""
    d = get_director()
    if types in (None, []):
        _write(d, {"vm_types": []}, "vm_types", user, version)
        return vm_types()
    if not isinstance(types, list):
        raise ServiceError({"vm_types": ["must be a list"]})
    errors: dict[str, list[str]] = {}
    out, seen = [], set()
    for i, t in enumerate(types):
        p = f"vm_types/{i}"
        if not isinstance(t, Mapping):
            _err(errors, p, "must be a map with name, cpu, ram and ephemeral_disk")
            continue
        name = t.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name or ""):
            _err(errors, f"{p}/name", "is required (letters, digits, '_', '-', '.')")
            continue
        p = f"vm_types/{name}"
        if name in seen:
            _err(errors, f"{p}/name", "is defined twice")
        seen.add(name)
        cpu = _int(t.get("cpu"), f"{p}/cpu", errors, lo=1)
        ram = _int(t.get("ram"), f"{p}/ram", errors, lo=256)
        disk = _int(t.get("ephemeral_disk"), f"{p}/ephemeral_disk", errors, lo=1024)
        out.append({"name": name, "cpu": cpu, "ram": ram, "ephemeral_disk": disk})
    _raise(errors)
    _write(d, {"vm_types": out}, "vm_types", user, version)
    return vm_types()


def disk_types() -> list[dict]:
    """Persistent disk types: ``[{"name": "10240", "size_mb": 10240}]``."""
    return [{"name": str(s), "size_mb": s} for s in DISK_TYPE_SIZES_MB]


def compilation_vm_type(d: DirectorConfig | None = None, types: list[dict] | None = None) -> str:
    """The compilation workers' VM type: the ``compilation`` job's Resource Config when it
    names one, else Automatic (``AUTOMATIC_COMPILATION_VM_TYPES``)."""
    d = d or get_director()
    names = [t["name"] for t in (vm_types() if types is None else types)]
    chosen = ((d.resource_config or {}).get("compilation") or {}).get("instance_type")
    if chosen and chosen != "automatic":
        return chosen
    return next((n for n in AUTOMATIC_COMPILATION_VM_TYPES if n in names), names[-1])
