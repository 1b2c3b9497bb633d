"""A job process killed on a VM, with the real agents: heartbeats say failing, the monitor alerts.

On vcsim with the VM runtime (monit and the jobs' processes), nats-server,
a worker and the agent listener: the greeter release is deployed, then on
the ``idle`` instance's VM its job cannot start any more (its ``ctl`` is
broken, as a bad package or full disk would) and its process is killed.
Monit reports the death over NATS and fails to restart it; the agent's
heartbeats report ``job_state: failing``; the health monitor's scan raises a
``vm_health`` alert naming it and, as BOSH does, does not resurrect a VM
for a failing job (a new VM would run it the same way).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from director import services
from director.health import monitor
from director.models import AgentAlert, AgentHeartbeat, Alert, Instance, Task, Vm
from tests.director.execution.test_agents_vcsim import build_greeter_release, greeter_manifest
from tests.director.heartbeats import agent_listener  # noqa: F401  fixture

from .conftest import wait_done

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def wait_for(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    return check()


@pytest.mark.usefixtures("agent_listener")
def test_a_killed_job_process_that_cannot_restart_is_alerted_and_not_resurrected(
    director_env, vm_runtime, tmp_path
):
    name = "hm-failing"
    wait_done(services.upload_release(build_greeter_release(tmp_path / "greeter.tgz"), "admin"))
    wait_done(director_env.deploy(greeter_manifest(name)), timeout=600)
    idle = Instance.objects.get(deployment__name=name, group="idle")
    vm = Vm.objects.get(instance=idle, active=True)
    running = wait_for(
        lambda: AgentHeartbeat.objects.filter(agent_id=vm.agent_id, job_state="running").first()
    )
    assert running is not None, "no running heartbeat from the idle VM"

    root = vm_runtime.root(vm.cid)
    ctl = (root / "jobs" / "idle" / "bin" / "ctl").resolve()
    ctl.write_text("#!/bin/bash\necho 'cannot start' >&2\nexit 1\n")
    pid = int((root / "data" / "sys" / "run" / "idle" / "idle.pid").read_text())
    os.kill(pid, signal.SIGKILL)

    # monit's alert and the agent's heartbeats reach the director over NATS
    alert = wait_for(
        lambda: AgentAlert.objects.filter(agent_id=vm.agent_id, title__contains="idle").first()
    )
    assert alert is not None and "Does not exist" in alert.title + alert.summary
    beat = wait_for(
        lambda: AgentHeartbeat.objects.filter(agent_id=vm.agent_id, job_state="failing").first()
    )
    assert beat is not None, AgentHeartbeat.objects.filter(agent_id=vm.agent_id).values()

    report = monitor.scan()
    assert [(p.instance.uuid, p.cause) for p in report.problems[name]] == [(idle.uuid, "failing")]
    vm_alert = Alert.objects.get(category="vm_health", resolved_at__isnull=True)
    assert vm_alert.instance == idle.name and "failing" in vm_alert.title
    assert Alert.objects.filter(
        category="deployment_health", deployment=name, resolved_at__isnull=True
    ).exists()
    # not resurrected: no scan and fix task, the same VM still in vCenter
    assert not Task.objects.filter(type="scan_and_fix", deployment_name=name).exists()
    assert Vm.objects.get(instance=idle, active=True).cid == vm.cid
    assert vm.cid in director_env.vms()
