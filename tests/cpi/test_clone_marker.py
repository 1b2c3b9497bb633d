"""A VM cloned but not yet given its agent settings already says whose it is.

Between ``CloneVM_Task`` and the reconfigure that writes the settings (with
the MACs the clone got), a director that dies leaves a powered-off VM. Its
guestinfo then holds the agent id and ``env.bosh.groups`` from the clone
spec, so the next deploy's ``leftovers`` recognises it and deletes it
instead of leaking it (seen when a worker was killed mid-compilation).
"""

from __future__ import annotations

import uuid

import pytest

from cpi.vsphere.vm import VmOperations

from .conftest import find_vm
from .test_agent_env import guestinfo_settings


class Killed(BaseException):
    """Stands for the worker's SIGKILL: nothing after it runs, no cleanup either."""


@pytest.fixture
def vms_path(vcsim):
    return f"{vcsim.inventory['datacenters'][0]}/vm/BOSH_VMs"


def test_a_clone_left_before_its_settings_carries_its_groups(
    cloud,
    stemcell_cid,
    networks,
    vsphere_si,
    vms_path,
    monkeypatch,
):
    created = []

    def killed(self, vm, name, *args, **kwargs):
        created.append(name)
        raise Killed()

    monkeypatch.setattr(VmOperations, "_configure_new_vm", killed)
    agent_id = f"agent-{uuid.uuid4()}"
    groups = ["opsconsole", "dep", "g", "opsconsole-dep", "dep-g", "opsconsole-dep-g"]
    with pytest.raises(Killed):
        cloud.create_vm(
            agent_id,
            stemcell_cid,
            {"cpu": 1, "ram": 256, "disk": 256},
            networks,
            [],
            {"bosh": {"groups": groups}},
        )
    monkeypatch.undo()
    (name,) = created
    try:
        vm = find_vm(vsphere_si, vms_path, name)
        settings = guestinfo_settings(vm)
        assert settings["agent_id"] == agent_id and settings["vm"]["name"] == name
        assert settings["env"]["bosh"]["groups"] == groups
        assert str(vm.runtime.powerState) == "poweredOff"
    finally:
        cloud.delete_vm(name)
