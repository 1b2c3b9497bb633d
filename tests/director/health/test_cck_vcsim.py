"""Cloud check (``bosh cck``) on vcsim with a real worker, through the API an operator uses.

Each test deploys, breaks something in vCenter behind the director's back,
scans (``POST .../scans``), reads the problems (``GET .../problems``) and
applies resolutions (``PUT .../problems``), then checks what vCenter holds.
"""

from __future__ import annotations

import uuid

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from director.models import DeploymentProblem, Instance, IpAddress, PersistentDisk, Task, Vm

from .conftest import unregister, wait_done, zookeeper_manifest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

D = "/api/v0/director/deployments"


def deploy(env, name, instances=2):
    wait_done(env.deploy(zookeeper_manifest(name, instances=instances)))
    return list(Instance.objects.filter(deployment__name=name).order_by("index"))


def run(api, method, path, body=None):
    """Call the API; a task answer (202) is waited for and must end done."""
    response = getattr(api, method)(path, body, format="json")
    assert response.status_code == 202, response.content
    return wait_done(Task.objects.get(id=response.json()["id"]))


def problems(api, name):
    response = api.get(f"{D}/{name}/problems")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def rogue_vm(env, deployment: str) -> str:
    """A VM in the director's folder tagged with this director and deployment, unknown to it."""
    from django.conf import settings

    folder = env.vm_folder()
    dc = next(e for e in env.si.content.rootFolder.childEntity if e.name == env.datacenter)
    pool = next(
        c for c in dc.hostFolder.childEntity if isinstance(c, vim.ClusterComputeResource)
    ).resourcePool
    name = f"vm-{uuid.uuid4()}"
    spec = vim.vm.ConfigSpec(
        name=name,
        guestId="otherGuest",
        files=vim.vm.FileInfo(vmPathName=f"[{dc.datastore[0].name}]"),
        numCPUs=1,
        memoryMB=32,
    )
    WaitForTask(folder.CreateVM_Task(config=spec, pool=pool))
    vm = env.si.content.searchIndex.FindChild(folder, name)
    manager = env.si.content.customFieldsManager
    fields = {f.name: f.key for f in manager.field or []}
    tags = {"director": settings.DIRECTOR_NAME, "deployment": deployment, "name": "zk/rogue"}
    for key, value in tags.items():
        manager.SetField(entity=vm, key=fields[key], value=value)
    return name


def test_a_missing_vm_is_found_and_recreate_vm_brings_it_back(director_env, admin_api):
    env, name = director_env, "cck-missing"
    victim = deploy(env, name)[1]
    old = Vm.objects.get(instance=victim, active=True)
    ips = sorted(IpAddress.objects.filter(instance=victim).values_list("address", flat=True))
    disk = PersistentDisk.objects.get(instance=victim, active=True).disk_cid
    unregister(env, old.cid)

    run(admin_api, "post", f"{D}/{name}/scans")
    found = problems(admin_api, name)
    assert [(p["type"], p["instance_group"]) for p in found] == [("missing_vm", victim.group)]
    assert old.cid in found[0]["description"]
    assert [r["name"] for r in found[0]["resolutions"]] == [
        "ignore",
        "recreate_vm_without_wait",
        "recreate_vm",
        "delete_vm_reference",
    ]

    run(admin_api, "put", f"{D}/{name}/problems", {"resolutions": {found[0]["id"]: "recreate_vm"}})
    new = Vm.objects.get(instance=victim, active=True)
    assert new.cid != old.cid
    seen = env.vms()[new.cid]
    assert seen.power == "poweredOn"
    assert seen.ips == ips  # the same IP
    assert seen.disks == [disk]  # its persistent disk reattached
    assert DeploymentProblem.objects.get(id=found[0]["id"]).state == "resolved"
    assert problems(admin_api, name) == []
    # A scan now finds nothing.
    run(admin_api, "post", f"{D}/{name}/scans")
    assert problems(admin_api, name) == []


def test_a_vm_tagged_as_ours_but_unknown_is_deleted_or_ignored(director_env, admin_api):
    env, name = director_env, "cck-rogue"
    deploy(env, name, instances=1)
    kept, doomed = rogue_vm(env, name), rogue_vm(env, name)
    rogue_vm(env, "another-deployment")  # someone else's: not this deployment's problem

    run(admin_api, "post", f"{D}/{name}/scans")
    found = {p["data"]["vm_cid"]: p for p in problems(admin_api, name)}
    assert set(found) == {kept, doomed}
    assert {p["type"] for p in found.values()} == {"unknown_vm"}
    assert [r["name"] for r in found[doomed]["resolutions"]] == ["ignore", "delete_vm"]

    body = {"resolutions": {found[doomed]["id"]: "delete_vm", found[kept]["id"]: "ignore"}}
    run(admin_api, "put", f"{D}/{name}/problems", body)
    in_vcenter = env.vms()
    assert doomed not in in_vcenter
    assert kept in in_vcenter  # ignore leaves it
    assert problems(admin_api, name) == []


def test_a_bad_resolution_is_a_422_naming_it(director_env, admin_api):
    env, name = director_env, "cck-bad"
    victim = deploy(env, name, instances=1)[0]
    unregister(env, Vm.objects.get(instance=victim, active=True).cid)
    run(admin_api, "post", f"{D}/{name}/scans")
    [problem] = problems(admin_api, name)
    tasks = Task.objects.count()

    response = admin_api.put(
        f"{D}/{name}/problems", {"resolutions": {problem["id"]: "reboot_vm"}}, format="json"
    )
    assert response.status_code == 422
    message = str(response.json())
    assert f"resolutions.{problem['id']}" in message and "'reboot_vm'" in message
    response = admin_api.put(
        f"{D}/{name}/problems", {"resolutions": {"999999": "ignore"}}, format="json"
    )
    assert response.status_code == 422 and "resolutions.999999" in str(response.json())
    assert Task.objects.count() == tasks  # nothing queued
    assert problems(admin_api, name)[0]["id"] == problem["id"]  # still open


def test_missing_and_inactive_disks_are_found_and_resolved(director_env, admin_api):
    from director.cloud import cloud_for_director

    env, name = director_env, "cck-disks"
    instance = deploy(env, name, instances=1)[0]
    cloud = cloud_for_director()
    try:
        spare = cloud.create_disk(64, {})
        assert cloud.has_disk(spare)
    finally:
        cloud.close()
    gone = f"disk-{uuid.uuid4()}"
    PersistentDisk.objects.create(instance=instance, disk_cid=spare, size=64, active=False)
    PersistentDisk.objects.create(instance=instance, disk_cid=gone, size=64, active=False)

    run(admin_api, "post", f"{D}/{name}/scans")
    found = {p["data"]["disk_cid"]: p for p in problems(admin_api, name)}
    assert {cid: p["type"] for cid, p in found.items()} == {
        spare: "inactive_disk",
        gone: "missing_disk",
    }
    body = {
        "resolutions": {
            found[spare]["id"]: "delete_disk",
            found[gone]["id"]: "delete_disk_reference",
        }
    }
    run(admin_api, "put", f"{D}/{name}/problems", body)
    assert not PersistentDisk.objects.filter(disk_cid__in=[spare, gone]).exists()
    cloud = cloud_for_director()
    try:
        assert not cloud.has_disk(spare)  # deleted from the datastore
    finally:
        cloud.close()
    # the instance's own disk is untouched and still attached
    disk = PersistentDisk.objects.get(instance=instance, active=True).disk_cid
    assert env.vms()[Vm.objects.get(instance=instance).cid].disks == [disk]


def test_manage_py_cck_auto_recreates_a_missing_vm_and_ignores_a_silent_agent(director_env):
    import io
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    from director.models import AgentHeartbeat

    env, name = director_env, "cck-auto"
    silent, missing = deploy(env, name)
    silent_vm = Vm.objects.get(instance=silent, active=True)
    AgentHeartbeat.objects.create(
        agent_id=silent_vm.agent_id, last_heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    Vm.objects.filter(id=silent_vm.id).update(created_at=timezone.now() - timedelta(hours=1))
    old = Vm.objects.get(instance=missing, active=True).cid
    unregister(env, old)

    out = io.StringIO()
    call_command("cck", name, "--auto", stdout=out)
    text = out.getvalue()
    assert "missing_vm" in text and "unresponsive_agent" in text and "2 problem(s)" in text
    new = Vm.objects.get(instance=missing, active=True).cid
    in_vcenter = env.vms()
    assert new != old and in_vcenter[new].power == "poweredOn"
    assert silent_vm.cid in in_vcenter  # auto ignores an unresponsive agent
    kinds = dict(
        DeploymentProblem.objects.filter(deployment__name=name).values_list(
            "type", "data__resolution"
        )
    )
    assert kinds == {"missing_vm": "recreate_vm_without_wait", "unresponsive_agent": "ignore"}


def test_an_agent_that_does_not_answer_is_unresponsive_and_delete_vm_removes_its_vm(
    director_env, admin_api
):
    env, name = director_env, "cck-deaf"
    instance = deploy(env, name, instances=1)[0]
    vm = Vm.objects.get(instance=instance, active=True)
    disk = PersistentDisk.objects.get(instance=instance, active=True).disk_cid
    # The director now addresses an agent nobody runs: pings go unanswered.
    Vm.objects.filter(id=vm.id).update(agent_id=str(uuid.uuid4()))

    run(admin_api, "post", f"{D}/{name}/scans")
    [problem] = problems(admin_api, name)
    assert problem["type"] == "unresponsive_agent" and problem["data"]["vm_cid"] == vm.cid
    assert "is not responding" in problem["description"]

    run(admin_api, "put", f"{D}/{name}/problems", {"resolutions": {problem["id"]: "delete_vm"}})
    assert vm.cid not in env.vms()
    assert not Vm.objects.filter(instance=instance).exists()
    # the persistent disk and the IP stay the instance's, for a later recreate
    assert PersistentDisk.objects.get(instance=instance, active=True).disk_cid == disk
    assert IpAddress.objects.filter(instance=instance).exists()


def test_reboot_vm_and_delete_vm_reference(director_env, admin_api):
    env, name = director_env, "cck-refs"
    deaf, gone = deploy(env, name)
    deaf_vm = Vm.objects.get(instance=deaf, active=True)
    Vm.objects.filter(id=deaf_vm.id).update(agent_id=str(uuid.uuid4()))
    gone_cid = Vm.objects.get(instance=gone, active=True).cid
    ips = sorted(IpAddress.objects.filter(instance=gone).values_list("address", flat=True))
    unregister(env, gone_cid)

    run(admin_api, "post", f"{D}/{name}/scans")
    found = {p["type"]: p for p in problems(admin_api, name)}
    assert set(found) == {"unresponsive_agent", "missing_vm"}
    body = {
        "resolutions": {
            found["unresponsive_agent"]["id"]: "reboot_vm",
            found["missing_vm"]["id"]: "delete_vm_reference",
        }
    }
    run(admin_api, "put", f"{D}/{name}/problems", body)
    assert env.vms()[deaf_vm.cid].power == "poweredOn"  # rebooted, the same VM
    assert Vm.objects.filter(id=deaf_vm.id).exists()
    # the reference is gone; the instance keeps its IP for a later recreate
    assert not Vm.objects.filter(instance=gone).exists()
    assert sorted(IpAddress.objects.filter(instance=gone).values_list("address", flat=True)) == ips
