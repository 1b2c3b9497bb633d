"""What vCenter does to a VM reaches its runtime: power off, power on, destroy, disks."""

from __future__ import annotations

import os
import time

from pyVim.task import WaitForTask

from tests.vmruntime.conftest import find_vm
from tests.vmruntime.helpers import running_pid, wait_for


def test_power_off_kills_the_processes_and_silences_the_agent(deployed, vsphere_si, hm):
    vm, _, pid = deployed(ip="10.0.0.30")
    WaitForTask(find_vm(vsphere_si, vm.cid).PowerOffVM_Task())
    off_at = time.time()
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="the process killed")
    time.sleep(3)  # three heartbeat intervals
    assert hm.of("heartbeat", vm.agent_id, since=off_at + 0.5) == []

    on_at = time.time()
    WaitForTask(find_vm(vsphere_si, vm.cid).PowerOnVM_Task())
    # rebooted: the agent is back and monit starts the jobs of the last apply again
    vm.client.wait_until_ready(timeout=30)
    new_pid = wait_for(lambda: running_pid(vm.client), what="ticker after reboot")
    assert new_pid != pid
    os.kill(new_pid, 0)
    wait_for(lambda: hm.of("heartbeat", vm.agent_id, since=on_at), what="heartbeats again")


def test_destroying_a_vm_removes_its_directory(vm_factory, rt_cloud, vm_runtime):
    vm = vm_factory(ip="10.0.0.31")
    root = vm_runtime.root(vm.cid)
    assert root.is_dir()
    rt_cloud.delete_vm(vm.cid)
    wait_for(lambda: not root.parent.parent.exists(), what="the VM's directory removed")


def test_persistent_disk_data_moves_with_the_disk_to_a_new_vm(
    vm_factory, rt_cloud, vm_runtime, blob_server, compiled_hello
):
    from tests.vmruntime.release import apply_spec, rendered_archive

    first = vm_factory(ip="10.0.0.32")
    disk = rt_cloud.create_disk(1024, {}, first.cid)
    rt_cloud.attach_disk(first.cid, disk)
    first.client.add_persistent_disk(disk, "0")
    first.client.mount_disk(disk)
    assert first.client.list_disk() == [disk]
    spec = apply_spec(
        agent_vm=first,
        archive=blob_server.put(rendered_archive("first", word="written-by-the-first-vm")),
        package=compiled_hello["package"],
        ip="10.0.0.32",
        persistent_disk=1024,
    )
    first.client.apply(spec)
    assert first.client.run_errand("smoke")["exit_code"] == 0  # writes to /var/vcap/store

    # recreate: the old VM goes (the CPI detaches the disk first), a new one gets the disk
    rt_cloud.delete_vm(first.cid)
    second = vm_factory(ip="10.0.0.33")
    rt_cloud.attach_disk(second.cid, disk)
    second.client.add_persistent_disk(disk, "0")
    second.client.mount_disk(disk)
    spec2 = apply_spec(
        agent_vm=second,
        archive=blob_server.put(rendered_archive("second", word="written-by-the-second-vm")),
        package=compiled_hello["package"],
        ip="10.0.0.33",
        persistent_disk=1024,
    )
    second.client.apply(spec2)
    assert second.client.run_errand("smoke")["exit_code"] == 0
    data = (vm_runtime.disk(disk) / "smoke" / "data").read_text().splitlines()
    assert data == ["written-by-the-first-vm", "written-by-the-second-vm"]
    assert not any(vm_runtime.root(second.cid).joinpath("store").iterdir())  # a mount point

    rt_cloud.detach_disk(second.cid, disk)
    rt_cloud.delete_disk(disk)


def test_a_disk_not_attached_in_vcenter_cannot_be_mounted(agent_vm):
    import pytest

    from director.agents.errors import AgentTaskFailed

    vm = agent_vm(ip="10.0.0.34")
    with pytest.raises(AgentTaskFailed, match="Persistent disk with volume id 'disk-nope'"):
        vm.client.mount_disk("disk-nope")
