"""``deploy --fix`` on vcsim with the real worker, agents (VM runtime) and NATS.

With resurrection off, one instance's VM is removed from vCenter and another
one's agent falls silent behind the director's back. A plain deploy of the
same manifest leaves both as they are; ``manage.py deploy --fix`` recreates
exactly those two: a new cid each, the same IP, the persistent disk
reattached with its data, the agent running; the third instance is not
touched.
"""

from __future__ import annotations

import io
import uuid

import pytest
import yaml
from django.core.management import call_command

from director import runner
from director.agent import agent_for
from director.models import Instance, IpAddress, PersistentDisk, Task, Vm
from director.services.resurrection import set_resurrection
from tests.director.health.conftest import unregister

from .conftest import wait_done, zookeeper_manifest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MARKER = "written before the VM went away"


def facts(instance):
    vm = Vm.objects.get(instance=instance, active=True)
    ips = sorted(IpAddress.objects.filter(instance=instance).values_list("address", flat=True))
    disk = PersistentDisk.objects.get(instance=instance, active=True).disk_cid
    return vm, ips, disk


def test_deploy_fix_recreates_a_missing_vm_and_a_silent_agent_and_nothing_else(
    director_env, vm_runtime, nats_server, settings, tmp_path
):
    settings.NATS_URL = nats_server.url  # the test asks the agents itself
    set_resurrection(False, "admin")  # nothing but the deploy brings them back
    env, name = director_env, "deploy-fix"
    manifest = zookeeper_manifest(name, instances=3)
    wait_done(env.deploy(manifest))
    gone, deaf, fine = Instance.objects.filter(deployment__name=name).order_by("index")
    before = {i.uuid: facts(i) for i in (gone, deaf, fine)}
    for i in (gone, deaf):
        (vm_runtime.disk(before[i.uuid][2]) / "marker").write_text(MARKER)

    unregister(env, before[gone.uuid][0].cid)  # vCenter lost the VM
    deaf_vm = before[deaf.uuid][0]
    # its agent falls silent: the director addresses an agent nobody runs
    Vm.objects.filter(id=deaf_vm.id).update(agent_id=str(uuid.uuid4()))

    # A plain deploy with no change leaves them as they are.
    wait_done(env.deploy(manifest))
    in_vcenter = env.vms()
    assert set(in_vcenter) == {before[deaf.uuid][0].cid, before[fine.uuid][0].cid}
    assert Vm.objects.get(instance=gone, active=True).cid == before[gone.uuid][0].cid

    # A dry run with fix plans both recreates and changes nothing.
    dry = wait_done(env.deploy(manifest, dry_run=True, fix=True))
    planned = runner.read_output(dry, "result").text
    assert "missing VM" in planned and "unresponsive agent" in planned
    assert set(env.vms()) == set(in_vcenter)

    path = tmp_path / "manifest.yml"
    path.write_text(yaml.safe_dump(manifest))
    out = io.StringIO()
    call_command("deploy", str(path), "--fix", stdout=out, stderr=out)
    task = Task.objects.filter(deployment_name=name).order_by("-id").first()
    assert task.args["fix"] is True
    debug = runner.read_output(task, "debug").text
    assert f"{gone.group}/{gone.uuid} (0): recreate (missing VM)" in debug
    assert f"{deaf.group}/{deaf.uuid} (1): recreate (unresponsive agent)" in debug

    in_vcenter = env.vms()
    for i in (gone, deaf):
        old_vm, ips, disk = before[i.uuid]
        vm, new_ips, new_disk = facts(i)
        assert vm.cid != old_vm.cid and (new_ips, new_disk) == (ips, disk)
        seen = in_vcenter[vm.cid]
        assert seen.power == "poweredOn" and seen.ips == ips and seen.disks == [disk]
        assert seen.metadata["id"] == i.uuid
        agent = agent_for(vm)
        assert agent.get_state()["job_state"] == "running"
        assert disk in agent.list_disk()
        assert (vm_runtime.disk(disk) / "marker").read_text() == MARKER
    assert deaf_vm.cid not in in_vcenter  # the silent one's old VM is deleted
    # the healthy instance is left alone
    assert Vm.objects.get(instance=fine, active=True).cid == before[fine.uuid][0].cid
    assert set(in_vcenter) == {facts(i)[0].cid for i in (gone, deaf, fine)}
