"""The VM runtime plays the agent inside vcsim's VMs: over the real bus, doing the work for real."""

from __future__ import annotations


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
