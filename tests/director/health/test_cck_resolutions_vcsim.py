"""Cloud check resolutions test_cck_vcsim.py leaves out, on vcsim with the real agents.

``unresponsive_agent``: ``recreate_vm`` (a new VM on the same IP and disk,
the silent one deleted) and ``delete_vm_reference`` (the VM stays in vCenter
and the next scan finds it as ``unknown_vm``); ``inactive_disk``:
``activate_disk`` (only for a disk its instance's agent has mounted);
``unknown_disk`` (attached to our VM behind our back): ``delete_disk`` and
``ignore``.
"""

from __future__ import annotations

import uuid

import pytest

from director.agent import agent_for
from director.cloud import cloud_for_director
from director.models import DeploymentProblem, Instance, IpAddress, PersistentDisk, Task, Vm

from .conftest import wait_done, wait_terminal, zookeeper_manifest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

D = "/api/v0/director/deployments"


def deploy(env, name, instances):
    wait_done(env.deploy(zookeeper_manifest(name, instances=instances)))
    return list(Instance.objects.filter(deployment__name=name).order_by("index"))


def run(api, method, path, body=None, done=True) -> Task:
    response = getattr(api, method)(path, body, format="json")
    assert response.status_code == 202, response.content
    task = Task.objects.get(id=response.json()["id"])
    return wait_done(task) if done else wait_terminal(task)


def problems(api, name):
    response = api.get(f"{D}/{name}/problems")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_a_silent_agents_vm_is_recreated_or_its_reference_deleted(
    director_env, admin_api, nats_server, settings
):
    settings.NATS_URL = nats_server.url
    env, name = director_env, "cck-silent"
    recreated, forgotten = deploy(env, name, instances=2)
    old = {i.id: Vm.objects.get(instance=i, active=True) for i in (recreated, forgotten)}
    ips = sorted(IpAddress.objects.filter(instance=recreated).values_list("address", flat=True))
    disk = PersistentDisk.objects.get(instance=recreated, active=True).disk_cid
    for vm in old.values():  # the director now addresses agents nobody runs
        Vm.objects.filter(id=vm.id).update(agent_id=str(uuid.uuid4()))

    run(admin_api, "post", f"{D}/{name}/scans")
    found = {p["data"]["vm_cid"]: p for p in problems(admin_api, name)}
    assert {cid: p["type"] for cid, p in found.items()} == {
        old[recreated.id].cid: "unresponsive_agent",
        old[forgotten.id].cid: "unresponsive_agent",
    }
    body = {
        "resolutions": {
            found[old[recreated.id].cid]["id"]: "recreate_vm",
            found[old[forgotten.id].cid]["id"]: "delete_vm_reference",
        }
    }
    run(admin_api, "put", f"{D}/{name}/problems", body)

    in_vcenter = env.vms()
    new = Vm.objects.get(instance=recreated, active=True)
    assert new.cid != old[recreated.id].cid and old[recreated.id].cid not in in_vcenter
    seen = in_vcenter[new.cid]
    assert seen.power == "poweredOn" and seen.ips == ips and seen.disks == [disk]
    agent = agent_for(new)
    assert agent.get_state()["job_state"] == "running" and disk in agent.list_disk()
    # delete_vm_reference: the director forgets the VM; vCenter still has it ...
    assert not Vm.objects.filter(instance=forgotten).exists()
    assert old[forgotten.id].cid in in_vcenter
    # ... so the next scan finds the instance without a VM and the VM unknown
    run(admin_api, "post", f"{D}/{name}/scans")
    after = sorted((p["type"], p["data"].get("vm_cid")) for p in problems(admin_api, name))
    assert after == [("missing_vm", None), ("unknown_vm", old[forgotten.id].cid)]


def test_activate_disk_activates_only_a_disk_its_instances_agent_has_mounted(
    director_env, admin_api, nats_server, settings
):
    settings.NATS_URL = nats_server.url
    env, name = director_env, "cck-activate"
    [instance] = deploy(env, name, instances=1)
    mounted = PersistentDisk.objects.get(instance=instance, active=True)
    PersistentDisk.objects.filter(id=mounted.id).update(active=False)  # tampered with
    cloud = cloud_for_director()
    try:
        spare = cloud.create_disk(64, {})  # in vCenter, attached nowhere
    finally:
        cloud.close()
    PersistentDisk.objects.create(instance=instance, disk_cid=spare, size=64, active=False)

    run(admin_api, "post", f"{D}/{name}/scans")
    found = {p["data"]["disk_cid"]: p for p in problems(admin_api, name)}
    assert {cid: p["type"] for cid, p in found.items()} == {
        mounted.disk_cid: "inactive_disk",
        spare: "inactive_disk",
    }
    assert [r["name"] for r in found[spare]["resolutions"]] == [
        "ignore",
        "delete_disk",
        "activate_disk",
    ]

    # The spare disk is mounted nowhere: activating it fails naming why, and stays open.
    task = run(
        admin_api,
        "put",
        f"{D}/{name}/problems",
        {"resolutions": {found[spare]["id"]: "activate_disk"}},
        done=False,
    )
    assert task.state == "error" and f"disk '{spare}' is not mounted" in task.result
    assert DeploymentProblem.objects.get(id=found[spare]["id"]).state == "open"
    assert not PersistentDisk.objects.get(disk_cid=spare).active

    body = {"resolutions": {found[mounted.disk_cid]["id"]: "activate_disk"}}
    run(admin_api, "put", f"{D}/{name}/problems", body)
    assert PersistentDisk.objects.get(id=mounted.id).active
    # With its disk active again, the instance has no problem left but the spare disk.
    run(admin_api, "post", f"{D}/{name}/scans")
    assert [(p["type"], p["data"]["disk_cid"]) for p in problems(admin_api, name)] == [
        ("inactive_disk", spare)
    ]


def test_a_disk_attached_to_our_vm_behind_our_back_is_unknown_and_delete_disk_removes_it(
    director_env, admin_api
):
    env, name = director_env, "cck-foreign-disk"
    [instance] = deploy(env, name, instances=1)
    vm = Vm.objects.get(instance=instance, active=True)
    own = PersistentDisk.objects.get(instance=instance, active=True).disk_cid
    cloud = cloud_for_director()
    try:  # two disks made and attached in vCenter, the director told nothing
        doomed, kept = cloud.create_disk(64, {}), cloud.create_disk(64, {})
        cloud.attach_disk(vm.cid, doomed)
        cloud.attach_disk(vm.cid, kept)
    finally:
        cloud.close()
    assert sorted(env.vms()[vm.cid].disks) == sorted([own, doomed, kept])

    run(admin_api, "post", f"{D}/{name}/scans")
    found = {p["data"]["disk_cid"]: p for p in problems(admin_api, name)}
    assert {cid: p["type"] for cid, p in found.items()} == {
        doomed: "unknown_disk",
        kept: "unknown_disk",
    }
    assert found[doomed]["data"]["vm_cid"] == vm.cid
    assert "the director does not know it" in found[doomed]["description"]
    body = {"resolutions": {found[doomed]["id"]: "delete_disk", found[kept]["id"]: "ignore"}}
    run(admin_api, "put", f"{D}/{name}/problems", body)

    assert sorted(env.vms()[vm.cid].disks) == sorted([own, kept])  # the VM keeps its own disk
    cloud = cloud_for_director()
    try:
        assert not cloud.has_disk(doomed) and cloud.has_disk(kept)
    finally:
        cloud.close()
    assert PersistentDisk.objects.get(instance=instance, active=True).disk_cid == own
    run(admin_api, "post", f"{D}/{name}/scans")
    assert [(p["type"], p["data"]["disk_cid"]) for p in problems(admin_api, name)] == [
        ("unknown_disk", kept)
    ]
