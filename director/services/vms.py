"""The VMs page (``bosh vms``): instances from the database, power states from vCenter.

The page's vCenter session is kept between refreshes (a ``director.cloud.CachedCloud``); a
vCenter that cannot be asked leaves the rows without power states and says
why, never failing the page.

What each VM's agent said last (``AgentHeartbeat``, recorded by the agent
listener) becomes an ``AgentView``: BOSH's process state, the processes and
the vitals of ``bosh instances --ps --vitals``, shown on the page and by
``GET deployments/{name}/instances?format=full``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Prefetch
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from opsconsole.errors import NotFound
from opsconsole.redaction import redact_text

from ..cloud import CachedCloud
from ..models import AgentHeartbeat, Deployment, Instance, IpAddress, PersistentDisk, Vm

#: Vitals as ``bosh vms --vitals`` reads them: ``{group: keys}`` of what the agent sends.
VITAL_KEYS = {
    "cpu": ("user", "sys", "wait"),
    "mem": ("percent", "kb"),
    "swap": ("percent", "kb"),
    "uptime": ("secs",),
}
#: The agent's disks: ``system`` (root), ``ephemeral`` (/var/vcap/data), ``persistent``.
DISKS = ("system", "ephemeral", "persistent")
#: What an entry of an agent's ``processes`` may hold besides ``name`` and ``state``.
PROCESS_KEYS = {"uptime": ("secs",), "cpu": ("total",), "mem": ("kb", "percent")}


@dataclass(frozen=True)
class AgentView:
    """An instance as its VM's agent last described it (``bosh instances --ps --vitals``).

    ``process_state`` is BOSH's word: the agent's ``job_state`` (``running``,
    ``failing``, ``stopped``, ``starting``) while it heartbeats, ``unresponsive
    agent`` when it never did, fell silent for longer than the health
    monitor's agent timeout, announced a shutdown, or its VM is not powered on;
    None without a VM. ``processes`` and ``vitals`` are what the agent sent,
    kept to the fields BOSH documents (agents send vitals as strings);
    ``vitals`` is None before the first heartbeat.
    """

    process_state: str | None
    processes: list[dict]
    vitals: dict | None
    last_heartbeat: datetime | None

    def as_dict(self) -> dict:
        return {
            "process_state": self.process_state,
            "processes": self.processes,
            "vitals": self.vitals,
            "last_heartbeat": self.last_heartbeat.isoformat() if self.last_heartbeat else None,
        }

    @property
    def vital_cells(self) -> list[tuple[str, str, str]]:
        """``(css class, text, title)`` per ``VITAL_COLUMNS``, in the BOSH CLI's formats."""
        v = self.vitals or {}
        cpu = v.get("cpu") or {}
        disks = v.get("disk") or {}
        cells = {
            "load": (", ".join(v.get("load") or []), ""),
            "cpu": (_triple(cpu, ("user", "sys", "wait"), "%"), ""),
            "memory": (_usage(v.get("mem")), f"swap {_usage(v.get('swap')) or '—'}"),
            "disk": (
                _triple(
                    {name: (disks.get(name) or {}).get("percent") for name in DISKS}, DISKS, "%"
                ),
                "; ".join(f"{name} {_disk(disks[name])}" for name in DISKS if name in disks),
            ),
        }
        return [(css, *(cells[css] if cells[css][0] else ("—", ""))) for _, css in VITAL_COLUMNS]

    @property
    def uptime(self) -> str:
        return _uptime(((self.vitals or {}).get("uptime") or {}).get("secs"))

    @property
    def swap(self) -> str:
        return _usage((self.vitals or {}).get("swap"))

    @property
    def process_rows(self) -> list[dict]:
        """The processes as the page lists them: name, state, uptime, CPU and memory texts."""
        return [
            {
                "name": p["name"],
                "state": p["state"],
                "uptime": _uptime((p.get("uptime") or {}).get("secs")) or "—",
                "cpu": _unit((p.get("cpu") or {}).get("total"), "%") or "—",
                "mem": _usage(p.get("mem")) or "—",
            }
            for p in self.processes
        ]


#: The ``bosh vms --vitals`` columns of the VMs page, ``(heading, css class)``. CPU and disks
#: are grouped as load is, and uptime and swap go to the processes row (swap also in the
#: memory cell's title), so the table stays readable beside the ``bosh vms`` columns.
VITAL_COLUMNS = (
    ("Load (1m, 5m, 15m)", "load"),
    ("CPU (user, sys, wait)", "cpu"),
    ("Memory", "memory"),
    ("Disk (system, ephemeral, persistent)", "disk"),
)


def _unit(value: Any, unit: str) -> str:
    return f"{value}{unit}" if value not in (None, "") else ""


def _triple(values: dict, keys: tuple[str, ...], unit: str) -> str:
    """``"12.5%, 1.5%, —"``: one text for grouped values; "" when none was sent."""
    texts = [_unit(values.get(k), unit) for k in keys]
    return ", ".join(t or "—" for t in texts) if any(texts) else ""


def _usage(values: dict | None) -> str:
    """``26% (1.0 GB)`` from ``{percent, kb}``, as the BOSH CLI shows memory and swap."""
    values = values or {}
    text = _unit(values.get("percent"), "%")
    try:
        kb = int(float(values.get("kb")))
    except (TypeError, ValueError):
        return text
    size = filesizeformat(kb * 1024)
    return f"{text} ({size})" if text else size


def _disk(values: dict | None) -> str:
    """``45% (30i%)``: a disk's use and its inodes', as the BOSH CLI shows them."""
    values = values or {}
    text = _unit(values.get("percent"), "%")
    inodes = values.get("inode_percent")
    return f"{text} ({inodes}i%)" if text and inodes not in (None, "") else text


def _uptime(secs: Any) -> str:
    try:
        secs = int(float(secs))
    except (TypeError, ValueError):
        return ""
    days, rest = divmod(max(secs, 0), 86400)
    return f"{days}d {rest // 3600}h {rest % 3600 // 60}m {rest % 60}s"


def _scalar(value: Any) -> str | int | float | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return value


def _pick(values: Any, keys: tuple[str, ...]) -> dict | None:
    if not isinstance(values, dict):
        return None
    picked = {k: _scalar(values[k]) for k in keys if k in values}
    picked = {k: v for k, v in picked.items() if v is not None}
    return picked or None


def clean_vitals(raw: Any) -> dict | None:
    """The documented part of an agent's vitals; None when it sent none."""
    if not isinstance(raw, dict) or not raw:
        return None
    out: dict[str, Any] = {}
    load = raw.get("load")
    if isinstance(load, list):
        out["load"] = [str(x) for x in load[:3] if _scalar(x) is not None]
    for group, keys in VITAL_KEYS.items():
        picked = _pick(raw.get(group), keys)
        if picked:
            out[group] = picked
    disks = raw.get("disk") if isinstance(raw.get("disk"), dict) else {}
    out["disk"] = {
        name: picked
        for name in DISKS
        if (picked := _pick(disks.get(name), ("percent", "inode_percent")))
    }
    return out


def clean_processes(raw: Any) -> list[dict]:
    """The agent's processes: ``{name, state}`` and ``uptime``/``cpu``/``mem`` when sent."""
    out = []
    for entry in raw if isinstance(raw, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        process: dict[str, Any] = {"name": entry["name"], "state": str(entry.get("state") or "")}
        for group, keys in PROCESS_KEYS.items():
            picked = _pick(entry.get(group), keys)
            if picked:
                process[group] = picked
        out.append(process)
    return out


def heartbeats_of(vms) -> dict[str, AgentHeartbeat]:
    """``{agent_id: AgentHeartbeat}`` of these VMs, in one query."""
    agent_ids = [vm.agent_id for vm in vms if vm is not None and vm.agent_id]
    return {h.agent_id: h for h in AgentHeartbeat.objects.filter(agent_id__in=agent_ids)}


def agent_view(vm: Vm | None, heartbeat: AgentHeartbeat | None, power: str | None = None):
    """What ``vm``'s agent last said (see ``AgentView``); ``power`` is vCenter's, when read."""
    if vm is None:
        return AgentView(None, [], None, None)
    if heartbeat is None:
        return AgentView("unresponsive agent", [], None, None)
    seen = heartbeat.last_heartbeat_at
    timeout = timedelta(seconds=float(getattr(settings, "HM_AGENT_TIMEOUT", 60)))
    silent = (
        seen is None
        or heartbeat.shutdown_at is not None
        or timezone.now() - seen > timeout
        or (power is not None and power != "poweredOn")
    )
    state = "unresponsive agent" if silent else (heartbeat.job_state or "unresponsive agent")
    return AgentView(
        state, clean_processes(heartbeat.processes), clean_vitals(heartbeat.vitals), seen
    )


@dataclass(frozen=True)
class VmRow:
    """One instance as the VMs page shows it: ``bosh vms`` columns plus vCenter's power state.

    ``power_state`` is what vCenter said just now ("poweredOn", "poweredOff",
    "suspended"), ``"missing"`` when vCenter has no VM of that cid, None
    when there is no VM or vCenter was not asked or did not answer.
    ``process_state`` follows BOSH's words (``AgentView``), ``-`` without a
    VM; ``agent`` holds the processes and vitals of the last heartbeat.
    """

    instance: Instance
    vm: Vm | None
    ips: list[str]
    vm_type: str
    disks: list[PersistentDisk]
    power_state: str | None
    process_state: str
    agent: AgentView


@dataclass(frozen=True)
class DeploymentVms:
    """One deployment's rows of the VMs page."""

    name: str
    rows: list[VmRow]


@dataclass(frozen=True)
class VmsReport:
    """The VMs page: deployments with their rows; ``vcenter_error`` when vCenter failed us."""

    deployments: list[DeploymentVms]
    vcenter_error: str = ""


#: The VMs page's vCenter session (it refreshes every 5 s), kept between refreshes.
_page_cloud = CachedCloud()


def live_vm_states(cids: list[str]) -> dict[str, str]:
    """``{cid: power state}`` from the director's vCenter in one read; ``"missing"`` if not there.

    Raises whatever reaching vCenter raised (``CloudNotConfigured``, a CPI
    ``CloudError``...): the caller decides how to show it.
    """
    if not cids:
        return {}
    found = _page_cloud.call(lambda cloud: cloud.vm_states(cids))
    return {cid: found.get(cid, "missing") for cid in cids}


def deployment_vms(deployment: str | None = None, *, live: bool = True) -> VmsReport:
    """``bosh vms`` (every deployment, or ``deployment``), with power states read from vCenter.

    The rows come from the database in constant queries; the power states
    from one vCenter read for all the VMs shown. If vCenter cannot be asked
    (no cpi config, unreachable, refused login) the rows are still returned,
    without power states, and ``vcenter_error`` says why: a dashboard shows
    what the director knows even when vCenter is down.
    """
    deployments = Deployment.objects.order_by("name")
    if deployment:
        deployments = deployments.filter(name=deployment)
    names = dict(deployments.values_list("id", "name"))
    if deployment and not names:
        raise NotFound({"deployment": [f"Deployment '{deployment}' does not exist"]})
    instances = list(
        Instance.objects.filter(deployment_id__in=names)
        .order_by("group", "index")
        .prefetch_related(
            Prefetch("vms", Vm.objects.order_by("id")),
            Prefetch("ip_addresses", IpAddress.objects.order_by("id")),
            Prefetch("persistent_disks", PersistentDisk.objects.order_by("id")),
        )
    )
    active = {i.id: i.active_vm for i in instances}
    cids = [vm.cid for vm in active.values() if vm is not None]
    states: dict[str, str] = {}
    error = ""
    if live and cids:
        try:
            states = live_vm_states(cids)
        except Exception as exc:  # any failure to reach vCenter is shown, never raised
            error = redact_text(str(exc)) or type(exc).__name__
    heartbeats = heartbeats_of(active.values())
    by_deployment: dict[int, list[VmRow]] = {pk: [] for pk in names}
    for i in instances:
        vm = active[i.id]
        power = states.get(vm.cid) if vm is not None else None
        applied = (i.spec_json or {}).get("applied") or {}
        agent = agent_view(vm, heartbeats.get(vm.agent_id) if vm else None, power)
        by_deployment[i.deployment_id].append(
            VmRow(
                instance=i,
                vm=vm,
                ips=[
                    ip.address
                    for ip in i.ip_addresses.all()
                    if vm is None or ip.vm_id in (None, vm.id)
                ],
                vm_type=str(applied.get("vm_type") or ""),
                disks=[d for d in i.persistent_disks.all() if d.active],
                power_state=power,
                process_state=agent.process_state or "-",
                agent=agent,
            )
        )
    return VmsReport([DeploymentVms(names[pk], rows) for pk, rows in by_deployment.items()], error)
