"""End to end: a VM destroyed in vCenter comes back with nobody calling the health scan.

Real services only: Celery beat (``celery_beat``, the project's schedule with
a scan every 2 s), the session's Celery worker running what beat queues (the
health monitor's scan, then the resurrector's scan and fix task), nats-server
and the VM runtime playing the VMs' agents, on vcsim. The test deploys,
writes on an instance's persistent disk, destroys the instance's VM in
vCenter behind the director's back and then only watches what the console
shows (the resurrections API and the deployment's VMs API) until the
instance runs on a new VM; a bounded, generous wait, no timing assertion.
"""

from __future__ import annotations

import time

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from director.agent import agent_for
from director.models import Instance, PersistentDisk, Vm

from .conftest import vc_vm, wait_done, zookeeper_manifest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

H = "/api/v0/director/health"
D = "/api/v0/director/deployments"
#: Seconds the test waits for the resurrection before it gives up (beat scans every 2 s).
TIMEOUT = 240


def events(api, name):
    response = api.get(f"{H}/resurrections?deployment={name}")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def vm_row(api, name, instance_name):
    response = api.get(f"{D}/{name}/vms")
    assert response.status_code == 200, response.content
    return next((r for r in response.json() if r["instance"] == instance_name), None)


def test_beat_brings_back_a_vm_destroyed_in_vcenter_with_its_ip_and_disk_data(
    director_env, celery_beat, admin_api, vm_runtime, nats_server, settings
):
    settings.NATS_URL = nats_server.url  # the test asks the new VM's agent itself
    env, name = director_env, "hm-beat"
    wait_done(env.deploy(zookeeper_manifest(name, instances=2)))
    victim = Instance.objects.get(deployment__name=name, index=0)
    before = vm_row(admin_api, name, victim.name)
    old_cid, ips, [disk] = before["vm_cid"], before["ips"], before["disk_cids"]
    (vm_runtime.disk(disk) / "hm-marker").write_text("written before the outage")
    bystander = Vm.objects.get(instance__deployment__name=name, instance__index=1).cid

    # Destroyed in vCenter ("Delete from Disk" after detaching the persistent disk, which
    # vSphere would delete with the VM otherwise), the director not told.
    vm = vc_vm(env, old_cid)
    WaitForTask(vm.PowerOffVM_Task())
    device = next(
        d
        for d in vm.config.hardware.device
        if getattr(d.backing, "fileName", "").endswith(f"{disk}.vmdk")
    )
    change = vim.vm.device.VirtualDeviceSpec(operation="remove", device=device)
    WaitForTask(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[change])))
    WaitForTask(vm.Destroy_Task())
    assert old_cid not in env.vms()

    deadline = time.monotonic() + TIMEOUT
    recreated = []
    while not recreated and time.monotonic() < deadline:
        seen = events(admin_api, name)
        failed = [e for e in seen if e["decision"] == "failed"]
        assert not failed, failed
        recreated = [e for e in seen if e["decision"] == "recreated"]
        time.sleep(0.5)
    assert recreated, f"{victim.name} not back within {TIMEOUT} s; events: {seen}"

    [event] = recreated
    assert event["instance"] == victim.name and event["cause"] == "missing_vm"
    assert event["old_cid"] == old_cid and event["new_cid"] != old_cid
    assert event["task"] is not None and event["seconds_to_recover"] > 0
    decisions = [e["decision"] for e in sorted(events(admin_api, name), key=lambda e: e["id"])]
    assert decisions == ["detected", "resurrect", "recreated"]
    # The console shows the instance on the new VM, with the same IP and disk.
    after = vm_row(admin_api, name, victim.name)
    assert after["vm_cid"] == event["new_cid"]
    assert (after["ips"], after["disk_cids"]) == (ips, [disk])
    # vCenter holds it powered on, on the same IP, with the same persistent disk attached.
    in_vcenter = env.vms()
    seen_vm = in_vcenter[event["new_cid"]]
    assert seen_vm.power == "poweredOn" and seen_vm.ips == ips and seen_vm.disks == [disk]
    assert seen_vm.metadata["id"] == victim.uuid
    assert old_cid not in in_vcenter and bystander in in_vcenter
    # Its agent runs the jobs with the disk mounted, and the data written before is there.
    agent = agent_for(Vm.objects.get(cid=event["new_cid"]))
    assert agent.get_state()["job_state"] == "running"
    assert disk in agent.list_disk()
    assert (vm_runtime.disk(disk) / "hm-marker").read_text() == "written before the outage"
    assert PersistentDisk.objects.get(instance=victim, active=True).disk_cid == disk
