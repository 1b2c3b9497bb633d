"""Deploys on vcsim through a real Celery worker: what vCenter holds after each change.

One zookeeper-like deployment (5 instances over 3 AZs, persistent disks)
goes through the life an operator gives it: deploy, scale down, change
vm_type (delete-create), change it back with create-swap-delete, delete.
"""

import json

import pytest
import yaml

from director.agents.client import AgentClient
from director.blobstore import blobstore
from director.cleanup import enqueue_orphaned_vm_cleanup
from director.models import (
    Credential,
    Deployment,
    Event,
    Instance,
    IpAddress,
    OrphanDisk,
    OrphanedVm,
    PersistentDisk,
    Vm,
)
from director.services import deployments

from .conftest import cpi_calls, events, wait_done, wait_terminal, zookeeper_manifest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SUBNET_OF_AZ = {"z1": "10.10.1.", "z2": "10.10.2.", "z3": "10.10.3."}
PORTGROUP_OF_AZ = {"z1": "DC0_DVPG0", "z2": "DC0_DVPG0", "z3": "DC0_DVPG1"}


def stage_entries(task, stage):
    return [e for e in events(task) if e.get("stage") == stage]


def max_in_flight_seen(entries):
    running, most = 0, 0
    for e in entries:
        if e["state"] == "started":
            running += 1
            most = max(most, running)
        elif e["state"] in ("finished", "failed"):
            running -= 1
    return most


def check_vcenter_matches_db(env, deployment):
    """vCenter's VMs are exactly the deployment's VM rows, with their IPs, disks and tags."""
    in_vcenter = env.vms()
    instances = Instance.objects.filter(deployment__name=deployment)
    vms = {vm.cid: vm for vm in Vm.objects.filter(instance__in=instances)}
    assert set(in_vcenter) == set(vms)
    for cid, vm in vms.items():
        inst = vm.instance
        seen = in_vcenter[cid]
        assert vm.active and seen.power == "poweredOn"
        ips = sorted(IpAddress.objects.filter(vm=vm).values_list("address", flat=True))
        assert seen.ips == ips and ips[0].startswith(SUBNET_OF_AZ[inst.az])
        assert seen.networks == [PORTGROUP_OF_AZ[inst.az]]
        assert seen.disks == [PersistentDisk.objects.get(instance=inst, active=True).disk_cid]
        assert seen.settings["agent_id"] == vm.agent_id
        assert seen.metadata["director"] == "opsconsole"
        assert seen.metadata["deployment"] == deployment
        assert seen.metadata["instance_group"] == inst.group
        assert seen.metadata["id"] == inst.uuid
        assert seen.metadata["index"] == str(inst.index)
        assert seen.metadata["name"] == inst.name
        assert f"{deployment}-zookeeper" in seen.settings["env"]["bosh"]["groups"]
    return in_vcenter


def test_zookeeper_lifecycle(director_env, nats_server):
    env = director_env
    name = "zk"

    # -- deploy 5 instances over 3 AZs -------------------------------------------------
    preview = deployments.plan(name, yaml.safe_dump(zookeeper_manifest(name)))
    assert preview["summary"]["create"] == 5
    assert preview["variables_to_generate"] == ["zk_password"]
    task = wait_done(env.deploy(zookeeper_manifest(name)))
    instances = list(Instance.objects.filter(deployment__name=name).order_by("index"))
    assert [i.index for i in instances] == [0, 1, 2, 3, 4]
    assert sorted(i.az for i in instances) == ["z1", "z1", "z2", "z2", "z3"]
    in_vcenter = check_vcenter_matches_db(env, name)
    assert {(v.cpu, v.ram) for v in in_vcenter.values()} == {(1, 256)}
    # each agent was applied its instance's rendered templates (archive in the blobstore)
    mbus = nats_server.director_mbus()
    for i in instances:
        vm = Vm.objects.get(instance=i, active=True)
        state = AgentClient(vm.agent_id, mbus=mbus, timeout=20).get_state()
        assert state["job_state"] == "running"
        assert state["id"] == i.uuid and state["index"] == i.index
        assert state["configuration_hash"] == i.spec_json["configuration_hash"]
        archive = state["rendered_templates_archive"]
        assert archive == i.spec_json["rendered_templates_archive"]
        assert blobstore().exists(archive["blobstore_id"])
        assert set(state["packages"]) == {"java", "zookeeper"}
    # the password is not in the database (only in the variable store)
    password = Credential.latest("/opsconsole/zk/zk_password").value
    assert all(password not in json.dumps(i.spec_json) for i in instances)
    mbus.close()

    created = stage_entries(task, "Creating missing vms")
    assert len([e for e in created if e["state"] == "finished"]) == 5
    updating = stage_entries(task, "Updating instance")
    assert {tuple(e["tags"]) for e in updating} == {("zookeeper",)}
    canaries = [e for e in updating if e["task"].endswith("(canary)")]
    assert len({e["task"] for e in canaries}) == 1  # canaries: 1
    canary_done = next(
        i for i, e in enumerate(updating) if e in canaries and e["state"] == "finished"
    )
    first_other = next(i for i, e in enumerate(updating) if e not in canaries)
    assert canary_done < first_other  # the canary finished before anything else started
    assert max_in_flight_seen(updating) == 2  # max_in_flight: 2, in parallel threads
    # AZ by AZ: every instance of an AZ finished before the next AZ's first starts
    az_of = {f"zookeeper/{i.uuid} ({i.index})": i.az for i in instances}
    order = [
        az_of[e["task"].removesuffix(" (canary)")] for e in updating if e["state"] == "started"
    ]
    assert order == sorted(order, key=order.index) and len(set(order)) == 3

    deploy_events = Event.objects.filter(task=task.id, object_type="deployment")
    start = deploy_events.get(parent__isnull=True, action="create")
    assert deploy_events.get(parent=start).error == ""
    vm_events = Event.objects.filter(task=task.id, object_type="vm", action="create")
    # 5 instance VMs and 2 compilation VMs (java, zookeeper), each a start and an end event
    assert vm_events.exclude(instance__startswith="compilation-").count() == 10
    assert vm_events.filter(instance__startswith="compilation-").count() == 4
    assert Event.objects.filter(task=task.id, object_type="instance", action="create").count() == 10
    assert Event.objects.filter(task=task.id, object_type="disk", action="create").count() == 10

    # -- scale 5 -> 3: the planned instances go, their disks are orphaned ----------------
    preview = deployments.plan(name, yaml.safe_dump(zookeeper_manifest(name, instances=3)))
    going = {i["name"] for g in preview["instance_groups"] for i in g["obsolete"]}
    assert len(going) == 2 and preview["summary"]["delete"] == 2
    going_rows = [i for i in instances if i.name in going]
    going_disks = {PersistentDisk.objects.get(instance=i).disk_cid for i in going_rows}
    going_vms = {i.active_vm.cid for i in going_rows}
    task = wait_done(env.deploy(zookeeper_manifest(name, instances=3)))
    left = list(Instance.objects.filter(deployment__name=name))
    assert {i.name for i in left} == {i.name for i in instances} - going
    assert sorted(i.az for i in left) == ["z1", "z2", "z3"]
    in_vcenter = check_vcenter_matches_db(env, name)
    assert not going_vms & set(in_vcenter)
    assert set(OrphanDisk.objects.values_list("disk_cid", flat=True)) == going_disks
    assert going_disks <= env.disk_files()  # orphaned, not deleted
    assert stage_entries(task, "Deleting unneeded instances")
    assert Event.objects.filter(task=task.id, object_type="disk", action="orphan").count() == 2

    # -- vm_type change: VMs recreated (delete-create), disks kept ------------------------
    disk_of = {i.uuid: PersistentDisk.objects.get(instance=i).disk_cid for i in left}
    vm_of = {i.uuid: i.active_vm.cid for i in left}
    task = wait_done(env.deploy(zookeeper_manifest(name, instances=3, vm_type="large")))
    in_vcenter = check_vcenter_matches_db(env, name)
    assert {(v.cpu, v.ram) for v in in_vcenter.values()} == {(2, 512)}
    for inst in Instance.objects.filter(deployment__name=name):
        assert inst.active_vm.cid != vm_of[inst.uuid]
        assert in_vcenter[inst.active_vm.cid].disks == [disk_of[inst.uuid]]
    calls = [c["method"] for c in cpi_calls(task) if c["method"] in ("create_vm", "delete_vm")]
    assert calls == ["delete_vm", "create_vm"] * 3  # delete-create, one instance at a time
    assert (
        Event.objects.filter(task=task.id, object_type="instance", action="recreate").count() == 6
    )

    # -- create-swap-delete: new VMs first, old ones orphaned, then cleaned up ------------
    old_vms = {i.uuid: i.active_vm.cid for i in Instance.objects.filter(deployment__name=name)}
    old_ips = set(IpAddress.objects.values_list("address", flat=True))
    manifest = zookeeper_manifest(
        name, instances=3, vm_type="small", update={"vm_strategy": "create-swap-delete"}
    )
    task = wait_done(env.deploy(manifest))
    calls = [c["method"] for c in cpi_calls(task) if c["method"] in ("create_vm", "delete_vm")]
    assert calls == ["create_vm"] * 3  # all new VMs made up front, none deleted by the deploy
    assert set(OrphanedVm.objects.values_list("cid", flat=True)) == set(old_vms.values())
    assert set(old_vms.values()) <= set(env.vms())  # still there until the cleanup runs
    assert Event.objects.filter(task=task.id, object_type="vm", action="orphan").count() == 3
    new_ips = set(IpAddress.objects.filter(vm__isnull=False).values_list("address", flat=True))
    assert not new_ips & old_ips  # fresh IPs for the new VMs
    for inst in Instance.objects.filter(deployment__name=name):
        assert inst.active_vm.cid != old_vms[inst.uuid]
        assert env.vms()[inst.active_vm.cid].disks == [disk_of[inst.uuid]]
    cleanup = wait_done(enqueue_orphaned_vm_cleanup("admin"))
    assert [c["method"] for c in cpi_calls(cleanup)] == ["delete_vm"] * 3
    assert not OrphanedVm.objects.exists()
    assert not IpAddress.objects.filter(address__in=old_ips).exists()
    check_vcenter_matches_db(env, name)

    # -- delete: nothing left in vCenter but the orphaned disks ---------------------------
    disks = set(PersistentDisk.objects.values_list("disk_cid", flat=True)) | going_disks
    task = wait_done(deployments.delete_deployment(name, "admin"))
    assert env.vms() == {}
    assert not Deployment.objects.filter(name=name).exists()
    assert not IpAddress.objects.exists() and not Vm.objects.exists()
    assert set(OrphanDisk.objects.values_list("disk_cid", flat=True)) == disks
    assert env.disk_files() == disks
    assert (
        Event.objects.filter(task=task.id, object_type="deployment", action="delete").count() == 2
    )


def test_one_instance_env_and_persistent_disk_changes(director_env):
    """tmpfs env reaches the VM; a disk grows by CPI resize, shrinks by copy, goes when unwanted."""
    env = director_env
    manifest = zookeeper_manifest("zk1", instances=1, env={"bosh": {"swap_size": 0}})
    manifest["features"] = {"use_tmpfs_config": True}
    wait_done(env.deploy(manifest))
    [inst] = Instance.objects.filter(deployment__name="zk1")
    [seen] = env.vms().values()
    bosh = seen.settings["env"]["bosh"]
    assert bosh["job_dir"]["tmpfs"] is True and bosh["agent"]["settings"]["tmpfs"] is True
    assert bosh["swap_size"] == 0
    assert bosh["group"] == "opsconsole-zk1-zookeeper"
    assert seen.settings["networks"]["default"]["ip"] == inst.ip_addresses.get().address
    disk = PersistentDisk.objects.get(instance=inst)
    assert disk.size == 1024

    # grow: the CPI resizes the same disk in place
    wait_done(
        env.deploy(
            {
                **manifest,
                "instance_groups": [
                    {**manifest["instance_groups"][0], "persistent_disk_type": "2GB"}
                ],
            }
        )
    )
    grown = PersistentDisk.objects.get(instance=inst)
    assert (grown.disk_cid, grown.size) == (disk.disk_cid, 2048)
    assert [v.disks for v in env.vms().values()] == [[disk.disk_cid]]

    # shrink: copied to a new disk, the old one orphaned
    task = wait_done(env.deploy(manifest))
    shrunk = PersistentDisk.objects.get(instance=inst)
    assert shrunk.disk_cid != disk.disk_cid and shrunk.size == 1024
    assert [v.disks for v in env.vms().values()] == [[shrunk.disk_cid]]
    assert OrphanDisk.objects.filter(disk_cid=disk.disk_cid).exists()
    assert "migrating persistent disk" in str(events(task))

    # no persistent disk any more: detached and orphaned, the VM is kept
    vm = Vm.objects.get(instance=inst).cid
    group = {k: v for k, v in manifest["instance_groups"][0].items() if k != "persistent_disk_type"}
    wait_done(env.deploy({**manifest, "instance_groups": [group]}))
    assert not PersistentDisk.objects.filter(instance=inst).exists()
    assert list(env.vms()) == [vm] and env.vms()[vm].disks == []
    assert {shrunk.disk_cid, disk.disk_cid} <= env.disk_files()


def test_bad_input_fails_before_anything_is_created(director_env):
    env = director_env
    manifest = zookeeper_manifest("zkbad", instances=1)
    manifest["stemcells"][0]["version"] = "9.9"
    task = wait_terminal(env.deploy(manifest))
    assert task.state == "error"
    assert task.result == (
        "stemcells/default: Stemcell os 'ubuntu-jammy' version '9.9' is not uploaded "
        "(upload it with upload-stemcell)"
    )
    assert env.vms() == {} and not Instance.objects.exists()
