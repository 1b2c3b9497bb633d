"""The VMs page (``bosh vms``): instances from the database, power states from vCenter.

The page's vCenter session is kept between refreshes (``_PageCloud``); a
vCenter that cannot be asked leaves the rows without power states and says
why, never failing the page.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch

from opsconsole.errors import NotFound
from opsconsole.redaction import redact_text

from ..cloud import cloud_for_director, cloud_properties
from ..models import AgentHeartbeat, Deployment, Instance, IpAddress, PersistentDisk, Vm


@dataclass(frozen=True)
class VmRow:
    """One instance as the VMs page shows it: ``bosh vms`` columns plus vCenter's power state.

    ``power_state`` is what vCenter said just now ("poweredOn", "poweredOff",
    "suspended"), ``"missing"`` when vCenter has no VM of that cid, None
    when there is no VM or vCenter was not asked or did not answer.
    ``process_state`` follows BOSH's words: ``running``/``stopped`` from what
    the agent recorded, ``unresponsive agent`` when the VM is not powered on
    (or not there), ``-`` without a VM.
    """

    instance: Instance
    vm: Vm | None
    ips: list[str]
    vm_type: str
    disks: list[PersistentDisk]
    power_state: str | None
    process_state: str


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


def _process_state(vm: Vm | None, power: str | None, job_states: dict[str, str]) -> str:
    """What the VM's agent last reported in its heartbeat (``job_state``), as ``bosh vms``."""
    if vm is None:
        return "-"
    if power is not None and power != "poweredOn":
        return "unresponsive agent"
    return job_states.get(vm.agent_id) or "unresponsive agent"


class _PageCloud:
    """The vCenter session the VMs page reads through, kept between its refreshes.

    The page refreshes every 5 s; logging in and out each time would fill
    vCenter's event log with sessions. One cloud per process is kept for as
    long as the cpi config it was built from is current; a new config, or
    any error, closes it and the next read logs in again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: str | None = None
        self._cloud: Any = None

    def vm_states(self, cids: list[str]) -> dict[str, str]:
        text = json.dumps(cloud_properties(), sort_keys=True, default=str)
        key = hashlib.sha256(text.encode()).hexdigest()  # no second copy of the password
        with self._lock:
            if self._key != key:
                self._drop()
                self._cloud, self._key = cloud_for_director(), key
            cloud = self._cloud
        try:
            return cloud.vm_states(cids)
        except Exception:
            with self._lock:
                if self._cloud is cloud:
                    self._drop()
            raise

    def _drop(self) -> None:
        if self._cloud is not None:
            try:
                self._cloud.close()
            except Exception:  # a dead session needs no logout
                pass
        self._cloud, self._key = None, None


_page_cloud = _PageCloud()


def live_vm_states(cids: list[str]) -> dict[str, str]:
    """``{cid: power state}`` from the director's vCenter in one read; ``"missing"`` if not there.

    Raises whatever reaching vCenter raised (``CloudNotConfigured``, a CPI
    ``CloudError``...): the caller decides how to show it.
    """
    if not cids:
        return {}
    found = _page_cloud.vm_states(cids)
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
    agent_ids = [vm.agent_id for vm in active.values() if vm is not None]
    job_states = dict(
        AgentHeartbeat.objects.filter(agent_id__in=agent_ids).values_list("agent_id", "job_state")
    )
    by_deployment: dict[int, list[VmRow]] = {pk: [] for pk in names}
    for i in instances:
        vm = active[i.id]
        power = states.get(vm.cid) if vm is not None else None
        applied = (i.spec_json or {}).get("applied") or {}
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
                process_state=_process_state(vm, power, job_states),
            )
        )
    return VmsReport([DeploymentVms(names[pk], rows) for pk, rows in by_deployment.items()], error)
