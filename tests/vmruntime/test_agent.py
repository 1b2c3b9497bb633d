"""The VM runtime plays the agent inside vcsim's VMs: over the real bus, doing the work for real."""

from __future__ import annotations

import pytest

from tests.vmruntime.helpers import wait_for


def test_a_powered_on_vm_answers_ping_on_its_own_subject(agent_vm, vm_runtime):
    vm = agent_vm()
    vm.client.wait_until_ready(timeout=30)
    assert vm.client.ping() == "pong"
    state = vm.client.get_state(full=True)
    assert state["agent_id"] == vm.agent_id
    assert state["vm"] == {"name": vm.cid}
    assert state["job_state"] == "running"  # no jobs yet
    assert set(state["vitals"]) >= {"cpu", "load", "mem", "swap", "disk", "uptime"}
    root = vm_runtime.root(vm.cid)
    for sub in ("data", "jobs", "packages", "sys/log", "sys/run", "store", "bosh"):
        assert (root / sub).is_dir(), sub


def test_update_settings_with_the_permanent_certificate_reconnects_the_agent(
    agent_vm, nats_server, vm_runtime
):
    vm = agent_vm(ip="10.0.0.40")
    permanent = nats_server.pki.issue_agent(vm.agent_id, bootstrap=False)
    settings = {
        "trusted_certs": "",
        "mbus": {"cert": permanent.mbus_cert(), "urls": [nats_server.url]},
    }
    assert vm.client.update_settings(settings) == "ok"
    cert = vm_runtime.root(vm.cid) / "bosh" / "mbus" / "cert.pem"
    # the agent reconnects (as BOSH's restarts) presenting the permanent certificate
    wait_for(lambda: cert.read_text() == permanent.certificate, what="the new certificate")
    vm.client.wait_until_ready(timeout=30)
    assert vm.client.ping() == "pong"
    assert vm.client.get_state()["agent_id"] == vm.agent_id


def test_protocol_errors_are_boshs(agent_vm):
    from director.agents.errors import AgentRemoteError, AgentUnknownMethod

    vm = agent_vm(ip="10.0.0.41")
    with pytest.raises(AgentUnknownMethod, match="unknown message no_such_method"):
        vm.client._call("no_such_method", [])
    with pytest.raises(AgentRemoteError, match="Not enough arguments, expected 1, got 0"):
        vm.client._call("get_task", [])
    with pytest.raises(AgentRemoteError, match="Task with id nope could not be found"):
        vm.client._call("get_task", ["nope"])
