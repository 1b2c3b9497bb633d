"""Cloud check's ``mount_info_mismatch`` on vcsim, with the real agents (VM runtime) over NATS.

A persistent disk the director has attached to an instance must be mounted
by that instance's agent, and by no other (``list_disk``). Each test breaks
that behind the director's back (the agent unmounts the disk; vCenter
detaches it), scans, and checks that each resolution does what its plan
says, by asking the agent and vCenter afterwards.
"""

from __future__ import annotations

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from director.agent import agent_for
from director.models import DeploymentProblem, Instance, PersistentDisk, Task, Vm
from tests.director.execution.conftest import cpi_calls

from .conftest import vc_vm, wait_done, zookeeper_manifest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

D = "/api/v0/director/deployments"
MARKER = "written before the disk went away"


def deploy(env, name, instances):
    wait_done(env.deploy(zookeeper_manifest(name, instances=instances)))
    return list(Instance.objects.filter(deployment__name=name).order_by("index"))


def run(api, method, path, body=None) -> Task:
    response = getattr(api, method)(path, body, format="json")
    assert response.status_code == 202, response.content
    return wait_done(Task.objects.get(id=response.json()["id"]))


def problems(api, name):
    response = api.get(f"{D}/{name}/problems")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def vm_and_disk(instance):
    return (
        Vm.objects.get(instance=instance, active=True),
        PersistentDisk.objects.get(instance=instance, active=True).disk_cid,
    )


def detach_behind_the_directors_back(env, vm_cid: str, disk_cid: str) -> None:
    """vCenter removes the disk from the VM and keeps its file (no ``fileOperation``)."""
    vm = vc_vm(env, vm_cid)
    device = next(
        d
        for d in vm.config.hardware.device
        if isinstance(d, vim.vm.device.VirtualDisk) and disk_cid in d.backing.fileName
    )
    change = vim.vm.device.VirtualDeviceSpec(
        operation=vim.vm.device.VirtualDeviceSpec.Operation.remove, device=device
    )
    WaitForTask(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[change])))


def test_a_disk_its_agent_unmounted_is_a_mismatch_and_reattach_disk_mounts_it_again(
    director_env, admin_api, vm_runtime, nats_server, settings
):
    settings.NATS_URL = nats_server.url  # the test asks the agents itself
    env, name = director_env, "cck-mounts"
    fixed, ignored = deploy(env, name, instances=2)
    fixed_vm, fixed_disk = vm_and_disk(fixed)
    ignored_vm, ignored_disk = vm_and_disk(ignored)
    (vm_runtime.disk(fixed_disk) / "marker").write_text(MARKER)
    for vm, disk in ((fixed_vm, fixed_disk), (ignored_vm, ignored_disk)):
        agent = agent_for(vm)
        agent.unmount_disk(disk)
        assert disk not in agent.list_disk()

    run(admin_api, "post", f"{D}/{name}/scans")
    found = {p["data"]["disk_cid"]: p for p in problems(admin_api, name)}
    assert {cid: p["type"] for cid, p in found.items()} == {
        fixed_disk: "mount_info_mismatch",
        ignored_disk: "mount_info_mismatch",
    }
    problem = found[fixed_disk]
    assert problem["data"]["owner_vms"] == [] and problem["data"]["vm_cid"] == fixed_vm.cid
    assert f"should be mounted on {fixed_vm.cid}" in problem["description"]
    assert "Not mounted in any VM" in problem["description"]
    assert [r["name"] for r in problem["resolutions"]] == [
        "ignore",
        "reattach_disk",
        "reattach_disk_and_reboot",
    ]

    body = {
        "resolutions": {
            found[fixed_disk]["id"]: "reattach_disk",
            found[ignored_disk]["id"]: "ignore",
        }
    }
    task = run(admin_api, "put", f"{D}/{name}/problems", body)
    # vCenter still had the disk attached: no attach, no reboot, the same VM.
    assert not [c for c in cpi_calls(task) if c["method"] in ("attach_disk", "reboot_vm")]
    agent = agent_for(fixed_vm)
    assert fixed_disk in agent.list_disk()
    assert "persistent" in agent.get_state(full=True)["vitals"]["disk"]  # the store is mounted
    assert (vm_runtime.disk(fixed_disk) / "marker").read_text() == MARKER
    assert Vm.objects.get(instance=fixed, active=True).cid == fixed_vm.cid
    assert env.vms()[fixed_vm.cid].disks == [fixed_disk]
    # "ignore" left the other disk unmounted
    assert ignored_disk not in agent_for(ignored_vm).list_disk()
    states = dict(
        DeploymentProblem.objects.filter(deployment__name=name).values_list(
            "data__disk_cid", "data__resolution"
        )
    )
    assert states == {fixed_disk: "reattach_disk", ignored_disk: "ignore"}

    # A new scan finds only the ignored one.
    run(admin_api, "post", f"{D}/{name}/scans")
    assert [(p["type"], p["data"]["disk_cid"]) for p in problems(admin_api, name)] == [
        ("mount_info_mismatch", ignored_disk)
    ]


def test_a_disk_detached_in_vcenter_is_attached_again_by_reattach_disk_and_reboot(
    director_env, admin_api, vm_runtime, nats_server, settings
):
    settings.NATS_URL = nats_server.url
    env, name = director_env, "cck-detached"
    [instance] = deploy(env, name, instances=1)
    vm, disk = vm_and_disk(instance)
    (vm_runtime.disk(disk) / "marker").write_text(MARKER)
    # The VM loses its disk behind the director's back: vCenter detaches it, the agent unmounts.
    detach_behind_the_directors_back(env, vm.cid, disk)
    agent_for(vm).unmount_disk(disk)
    assert env.vms()[vm.cid].disks == []

    run(admin_api, "post", f"{D}/{name}/scans")
    [problem] = problems(admin_api, name)
    assert problem["type"] == "mount_info_mismatch" and problem["data"]["disk_cid"] == disk

    body = {"resolutions": {problem["id"]: "reattach_disk_and_reboot"}}
    task = run(admin_api, "put", f"{D}/{name}/problems", body)
    calls = [c["method"] for c in cpi_calls(task) if c["method"] in ("attach_disk", "reboot_vm")]
    assert calls == ["attach_disk", "reboot_vm"]
    seen = env.vms()[vm.cid]  # the same VM, rebooted, with its disk attached again
    assert seen.power == "poweredOn" and seen.disks == [disk]
    agent = agent_for(vm)
    assert disk in agent.list_disk()
    assert (vm_runtime.disk(disk) / "marker").read_text() == MARKER

    run(admin_api, "post", f"{D}/{name}/scans")
    assert problems(admin_api, name) == []
