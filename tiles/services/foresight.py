"""What Review Pending Changes can foresee before Apply Changes runs.

- **Data loss**: a product marked for deletion takes its deployment's
  instances and their persistent disks with it; ``deletion_losses`` names
  them (from the director's records), so the page can say what is lost
  before the operator applies.
- **A VM type too large for any host**: an instance group (or the
  cloud-config's compilation workers) whose VM type asks for more CPUs or
  memory than the largest host of the Director tile's vCenter datacenter has
  cannot power on; the deploy would fail there. ``host_capacity`` asks
  vCenter through the director (``director.vcenter.host_capacity``; when it
  answers: the warning is skipped, saying why, when it does not) and
  ``oversized_vm_types``/``oversized_compilation`` compare.
- **A powered-off VM**: an instance of a deployment the apply updates
  whose VM is powered off in vCenter has no agent to answer, so updating it
  fails; ``powered_off_vms`` reads the power states (one vCenter read).

Nothing here changes anything; vCenter is asked with short timeouts and its
answers are cached for ``CAPACITY_TTL`` seconds, so reloading the page does
not log in again each time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.core.cache import cache

from director import vcenter
from director.models import Instance, PersistentDisk
from director.services import vms as director_vms
from opsconsole.errors import ServiceError
from opsconsole.redaction import redact_text
from tiles import director_tile

#: How long vCenter's host capacities are reused (seconds).
CAPACITY_TTL = 30


@dataclass(frozen=True)
class Host:
    name: str
    cpus: int
    memory_mb: int


@dataclass
class Capacity:
    hosts: list[Host] = field(default_factory=list)
    #: Why vCenter could not be asked (empty when it answered).
    error: str = ""

    @property
    def largest(self) -> tuple[int, int]:
        return (
            max((h.cpus for h in self.hosts), default=0),
            max((h.memory_mb for h in self.hosts), default=0),
        )

    def fits(self, cpus: int, memory_mb: int) -> bool:
        return any(h.cpus >= cpus and h.memory_mb >= memory_mb for h in self.hosts)


def host_capacity() -> Capacity:
    """CPU cores and memory of every connected host in the Director tile's datacenter."""
    try:
        cpi = director_tile.render_cpi_config()
    except Exception as exc:  # noqa: BLE001 - an incomplete tile: nothing to ask
        return Capacity(error=f"the BOSH Director tile's vCenter Config is incomplete ({exc})")
    props = ((cpi.get("cpis") or [{}])[0]).get("properties") or {}
    datacenter = ((props.get("datacenters") or [{}])[0]).get("name") or ""
    key = "foresight:hosts:" + str(
        hash(
            yaml.safe_dump(
                [props.get("host"), props.get("user"), props.get("password"), datacenter]
            )
        )
    )
    found = cache.get(key)
    if found is None:
        found = _ask_vcenter(props, datacenter)
        cache.set(key, found, CAPACITY_TTL)
    return found


def _ask_vcenter(props: Mapping[str, Any], datacenter: str) -> Capacity:
    options = props.get("connection_options") or {}
    insecure = bool(options.get("insecure"))
    try:
        rows = vcenter.host_capacity(
            host=str(props.get("host") or ""),
            user=str(props.get("user") or ""),
            password=str(props.get("password") or ""),
            ca_cert=None if insecure else (options.get("ca_cert") or None),
            insecure=insecure,
            datacenter=datacenter,
        )
    except ServiceError as exc:  # a bad host or datacenter: shown as the reason
        return Capacity(error="; ".join(m for messages in exc.errors.values() for m in messages))
    except Exception as exc:  # noqa: BLE001 - unreachable, refused login: say so, never break
        return Capacity(error=redact_text(str(exc)) or type(exc).__name__)
    return Capacity(hosts=[Host(name, cpus, memory_mb) for name, cpus, memory_mb in rows])


def oversized_vm_types(manifest: Mapping[str, Any], capacity: Capacity) -> list[str]:
    """Warnings for instance groups whose VM type no host of ``capacity`` can hold."""
    return [
        f"{group.get('name')}: {text} and the deploy will fail. Choose a smaller VM type in "
        "the product's Resource Config."
        for group in manifest.get("instance_groups") or []
        if group.get("instances")
        for text in [_too_large(str(group.get("vm_type") or ""), capacity)]
        if text
    ]


def oversized_compilation(cloud_config: Mapping[str, Any], capacity: Capacity) -> list[str]:
    """The cloud-config's compilation VM type, when no host can hold it."""
    name = str((cloud_config.get("compilation") or {}).get("vm_type") or "")
    text = _too_large(name, capacity)
    if not text:
        return []
    automatic = ", ".join(director_tile.AUTOMATIC_COMPILATION_VM_TYPES)
    return [
        f"Compilation: {text}, so no package can be compiled and every deploy that compiles "
        f"will fail. On Automatic the director compiles on the first of {automatic} that the "
        "BOSH Director tile's VM Types has, else on its last VM type: add a smaller one "
        "named small.disk or small, or last."
    ]


def _too_large(vm_type_name: str, capacity: Capacity) -> str:
    if not capacity.hosts:
        return ""
    vm_type = {t["name"]: t for t in director_tile.vm_types()}.get(vm_type_name)
    if not vm_type:
        return ""
    need_cpu, need_ram = int(vm_type.get("cpu") or 0), int(vm_type.get("ram") or 0)
    if capacity.fits(need_cpu, need_ram):
        return ""
    cpus, memory = capacity.largest
    return (
        f"VM type {vm_type['name']} ({need_cpu} CPU, {need_ram} MB RAM) is larger than any "
        f"host in vCenter (the largest have {cpus} CPU cores and {memory} MB of memory): "
        "its VMs cannot power on"
    )


@dataclass
class Losses:
    instances: list[str] = field(default_factory=list)
    #: ``(instance, disk cid, size in MB)``
    disks: list[tuple[str, str, int]] = field(default_factory=list)


def deletion_losses(deployments: Iterable[str]) -> dict[str, Losses]:
    """The instances and persistent disks each named deployment would lose (two queries)."""
    names = list(deployments)
    out: dict[str, Losses] = {name: Losses() for name in names}
    if not names:
        return out
    for name, group, uuid, index in (
        Instance.objects.filter(deployment__name__in=names)
        .order_by("group", "index")
        .values_list("deployment__name", "group", "uuid", "index")
    ):
        out[name].instances.append(f"{group}/{uuid} ({index})")
    for name, group, uuid, index, cid, size in (
        PersistentDisk.objects.filter(instance__deployment__name__in=names, active=True)
        .order_by("instance__group", "instance__index")
        .values_list(
            "instance__deployment__name",
            "instance__group",
            "instance__uuid",
            "instance__index",
            "disk_cid",
            "size",
        )
    ):
        out[name].disks.append((f"{group}/{uuid} ({index})", cid, size))
    return out


def powered_off_vms(deployments: Iterable[str]) -> tuple[dict[str, list[str]], str]:
    """``({deployment: [warning]}, vcenter error)``: VMs vCenter reports powered off."""
    names = set(deployments)
    if not names:
        return {}, ""
    report = director_vms.deployment_vms(None)
    out: dict[str, list[str]] = {}
    for dep in report.deployments:
        if dep.name not in names:
            continue
        for row in dep.rows:
            if row.vm is None or row.power_state != "poweredOff":
                continue
            inst = row.instance
            out.setdefault(dep.name, []).append(
                f"{inst.group}/{inst.uuid} ({inst.index}): its VM {row.vm.cid} is powered off "
                "in vCenter, so its agent cannot answer and updating it will fail. Power it on "
                "(or let the resurrector recreate it) before applying."
            )
    return out, report.vcenter_error
