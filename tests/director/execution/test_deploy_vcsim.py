"""Deploys on vcsim through a real Celery worker: what vCenter holds after each change."""

import pytest

from director.models import Deployment, Instance, IpAddress, PersistentDisk, Vm

from .conftest import events, wait_done, zookeeper_manifest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_single_instance_deploys(director_env):
    task = wait_done(director_env.deploy(zookeeper_manifest("zk-one", instances=1)))
    assert task.result == "/deployments/zk-one"
    [instance] = Instance.objects.filter(deployment__name="zk-one")
    vm = Vm.objects.get(instance=instance, active=True)
    in_vcenter = director_env.vms()
    assert set(in_vcenter) == {vm.cid}
    assert in_vcenter[vm.cid].power == "poweredOn"
    disk = PersistentDisk.objects.get(instance=instance, active=True)
    assert in_vcenter[vm.cid].disks == [disk.disk_cid]
    assert [ip.address for ip in IpAddress.objects.filter(instance=instance)] == in_vcenter[
        vm.cid
    ].ips
    assert Deployment.objects.get(name="zk-one").manifest
    assert any(e.get("stage") == "Updating instance" for e in events(task))
