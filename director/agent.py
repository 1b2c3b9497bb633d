"""The agent on a VM, behind an interface: what the director asks of a running VM.

In BOSH every VM runs an agent the director talks to over NATS
(``get_state``, ``apply``, ``start``, ``stop``, ``drain``, ``run_script``,
``mount_disk``, ``migrate_disk``...). No agent runs inside vcsim's VMs, so
the executor talks to an ``Agent`` and never to NATS; ``VCenterAgent`` is
the implementation we can honour without one:

* an instance is *ready* when its VM is powered on and carries its settings:
  ``guestinfo.userdata`` (written by the CPI's ``create_vm``) holds the
  ``agent_id`` the director generated for this VM;
* ``apply(spec)`` records the apply spec (job properties, links, networks,
  persistent disk...) on the instance (``Instance.spec_json["apply_spec"]``),
  which is what the VM would run with; ``start``/``stop`` record the job
  state there, and ``get_state`` answers from the VM (power, settings) plus
  that record;
* ``drain`` answers 0 seconds and ``run_script`` succeeds: there are no job
  scripts to run. ``migrate_disk`` cannot copy data without a guest; it is
  recorded and the copy is left to a real agent.
* ``run_errand(spec)`` cannot execute the errand's ``bin/run`` either. It
  checks what an agent would need to run it: the VM is in vCenter, powered
  on, carries this agent's settings, and the errand's jobs were applied to
  it. Exit code 0 with ``stdout`` listing those checks (and saying that no
  script ran), else exit code 1 with the failed check in ``stderr``.

A real NATS agent client can implement the same protocol later without the
executor changing.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from django.utils import timezone

from .models import Instance, Vm


class AgentError(Exception):
    """The agent did not answer or answered with an error."""


class AgentUnresponsive(AgentError):
    """The agent did not become ready in time (BOSH: ``Timed out pinging VM``)."""


class AgentJobNotRunning(AgentError):
    """The jobs did not reach ``running`` within the watch time."""


class Agent(Protocol):
    """The agent of one VM (BOSH ``AgentClient``; methods as the real agent names them)."""

    def wait_until_ready(self, timeout: float = 600) -> None: ...

    def get_state(self) -> dict[str, Any]: ...

    def apply(self, spec: dict[str, Any]) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def drain(self, type: str, spec: dict[str, Any] | None = None) -> int: ...

    def run_script(self, name: str, env: dict[str, Any] | None = None) -> dict[str, Any]: ...

    def add_persistent_disk(self, disk_cid: str, hint: Any) -> None: ...

    def remove_persistent_disk(self, disk_cid: str) -> None: ...

    def migrate_disk(self, old_disk_cid: str, new_disk_cid: str) -> None: ...

    def shutdown(self) -> None: ...

    def run_errand(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Run the errand jobs ``spec["jobs"]``; ``{exit_code, stdout, stderr}``."""
        ...


def _vcenter_of(cloud: Any) -> Any:
    """The vSphere cloud under a logging wrapper (``LoggedCpi.wrapped``)."""
    return getattr(cloud, "wrapped", cloud)


class VCenterAgent:
    """An ``Agent`` answered by vCenter (VM power state and guestinfo) and the database.

    ``vm`` is the ``Vm`` row; ``cloud`` the director's CPI (a ``VSphereCloud``,
    possibly wrapped for logging) whose vCenter session is used to read the VM.
    """

    POLL_SECONDS = 0.2

    def __init__(self, vm: Vm, cloud: Any):
        self.vm = vm
        self.cloud = cloud

    # -- reading the VM ------------------------------------------------------

    def _vm_facts(self) -> dict[str, Any] | None:
        """``{"power": ..., "settings": {...}}`` of the VM (one vCenter read), or None if it is gone."""
        from cpi.base import VMNotFound
        from cpi.vsphere.vm import settings_in

        vms = getattr(_vcenter_of(self.cloud), "vms", None)
        if vms is None:  # not a vSphere cloud: trust the CPI's has_vm
            return {"power": "poweredOn", "settings": {"agent_id": self.vm.agent_id}}
        try:
            view = vms.view(self.vm.cid, ["runtime.powerState", "config.extraConfig"])
        except VMNotFound:
            return None
        return {
            "power": str(view.props.get("runtime.powerState")),
            "settings": settings_in(view.props.get("config.extraConfig")),
        }

    def _ready(self, facts: dict[str, Any] | None) -> bool:
        return bool(
            facts
            and facts["power"] == "poweredOn"
            and (facts.get("settings") or {}).get("agent_id") == self.vm.agent_id
        )

    def wait_until_ready(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        facts = None
        while True:
            facts = self._vm_facts()
            if self._ready(facts):
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(self.POLL_SECONDS)
        if facts is None:
            why = "the VM does not exist"
        elif facts["power"] != "poweredOn":
            why = f"the VM is {facts['power']}"
        else:
            why = "the VM does not carry this agent's settings"
        raise AgentUnresponsive(
            f"Timed out pinging VM '{self.vm.cid}' with agent '{self.vm.agent_id}' "
            f"after {timeout:g} seconds: {why}"
        )

    # -- the record of what the agent runs -------------------------------------

    def _instance(self) -> Instance:
        return Instance.objects.get(id=self.vm.instance_id)

    def _record(self, **values: Any) -> None:
        instance = self._instance()
        spec = dict(instance.spec_json or {})
        spec.update(values)
        Instance.objects.filter(id=instance.id).update(spec_json=spec, updated_at=timezone.now())

    def get_state(self) -> dict[str, Any]:
        facts = self._vm_facts()
        spec = self._instance().spec_json or {}
        running = (
            self._ready(facts)
            and spec.get("agent_id") == self.vm.agent_id
            and spec.get("job_state") == "running"
        )
        settings = (facts or {}).get("settings") or {}
        return {
            "agent_id": self.vm.agent_id,
            "vm": {"name": self.vm.cid},
            "job_state": "running" if running else "stopped",
            "networks": settings.get("networks") or {},
            "power_state": (facts or {}).get("power", "missing"),
        }

    def apply(self, spec: dict[str, Any]) -> None:
        self._record(apply_spec=spec, agent_id=self.vm.agent_id)

    def start(self) -> None:
        self._record(job_state="running", agent_id=self.vm.agent_id)

    def stop(self) -> None:
        self._record(job_state="stopped")

    def wait_until_running(self, min_ms: int, max_ms: int) -> None:
        """BOSH's watch loop: sleep ``min``, then poll ``get_state`` until ``max``."""
        step = min(max((max_ms - min_ms) / 9, 1000), 15000)
        waits = [min_ms] + [step] * int((max_ms - min_ms) // step) if max_ms > min_ms else [min_ms]
        for wait in waits:
            time.sleep(wait / 1000)
            if self.get_state()["job_state"] == "running":
                return
        raise AgentJobNotRunning(
            f"'{self._instance()}' is not running after update: VM '{self.vm.cid}' "
            f"is not powered on with its settings"
        )

    def drain(self, type: str, spec: dict[str, Any] | None = None) -> int:
        return 0

    def run_script(self, name: str, env: dict[str, Any] | None = None) -> dict[str, Any]:
        return {}

    def add_persistent_disk(self, disk_cid: str, hint: Any) -> None:
        instance = self._instance()
        disks = dict((instance.spec_json or {}).get("disk_hints") or {})
        disks[disk_cid] = hint
        self._record(disk_hints=disks)

    def remove_persistent_disk(self, disk_cid: str) -> None:
        instance = self._instance()
        disks = dict((instance.spec_json or {}).get("disk_hints") or {})
        disks.pop(disk_cid, None)
        self._record(disk_hints=disks)

    def migrate_disk(self, old_disk_cid: str, new_disk_cid: str) -> None:
        self._record(migrated_disk={"from": old_disk_cid, "to": new_disk_cid})

    def shutdown(self) -> None:
        self._record(job_state="stopped")

    def run_errand(self, spec: dict[str, Any]) -> dict[str, Any]:
        """What an agent needs to run the errand, checked in vCenter and the applied spec.

        ``spec``: ``{"name": errand, "jobs": [job names], ...}``. No script
        runs (there is no agent in the VM); ``stdout`` says so.
        """
        cid, agent_id = self.vm.cid, self.vm.agent_id
        jobs = [str(j) for j in spec.get("jobs") or []]

        def failed(reason: str, done: list[str]) -> dict[str, Any]:
            return {
                "exit_code": 1,
                "stdout": "".join(f"{line}\n" for line in done),
                "stderr": reason + "\n",
            }

        done: list[str] = []
        facts = self._vm_facts()
        if facts is None:
            return failed(f"VM '{cid}' does not exist in vCenter", done)
        done.append(f"VM '{cid}' exists in vCenter")
        if facts["power"] != "poweredOn":
            return failed(f"VM '{cid}' is {facts['power']}, not poweredOn", done)
        done.append(f"VM '{cid}' is poweredOn")
        if (facts.get("settings") or {}).get("agent_id") != agent_id:
            return failed(f"VM '{cid}' does not carry the settings of agent '{agent_id}'", done)
        done.append(f"its settings (guestinfo.userdata) carry agent '{agent_id}'")
        applied = (self._instance().spec_json or {}).get("apply_spec") or {}
        templates = (applied.get("job") or {}).get("templates") or []
        applied_jobs = {t.get("name") for t in templates if isinstance(t, dict)}
        missing = [j for j in jobs if j not in applied_jobs]
        if missing:
            return failed(
                f"job(s) {', '.join(missing)} not applied to VM '{cid}' "
                f"(applied: {', '.join(sorted(j for j in applied_jobs if j)) or 'none'})",
                done,
            )
        if jobs:
            done.append(f"job(s) {', '.join(jobs)} applied to it")
        done.append(
            f"no BOSH agent runs inside VM '{cid}': errand '{spec.get('name', '')}' "
            "bin/run was not executed; these checks stand in for it"
        )
        return {"exit_code": 0, "stdout": "".join(f"{line}\n" for line in done), "stderr": ""}


def agent_for(vm: Vm, cloud: Any) -> Agent:
    """The agent of ``vm`` (today always the vCenter-backed one)."""
    return VCenterAgent(vm, cloud)
