"""SOAP round trips per CPI method against vcsim, and the caches that save them.

The counts are upper bounds with a little headroom over what the CPI makes
today (``python -m benchmarks.soap_calls`` prints them): a change that
brings back per-attribute reads (one ``Fetch`` per ``vm.runtime.powerState``)
or a per-call inventory scan fails here, without timing anything. Every
``Fetch`` left is a task's ``info``, read once per task.

The second half checks that cached references never give a wrong answer:
a VM or stemcell removed behind the CPI's back is reported as missing.
"""

import contextlib
import uuid
from collections import Counter
from urllib.parse import urlsplit

import pytest
import requests
from pyVim.task import WaitForTask

from benchmarks.soap_calls import count_soap_calls
from cpi.base import CloudError, VMNotFound

from .conftest import find_vm


@pytest.fixture
def vms_path(vcsim):
    return f"{vcsim.inventory['datacenters'][0]}/vm/BOSH_VMs"


@pytest.fixture
def warm(cloud, new_vm):
    """One VM made and deleted first: a long-lived cloud has looked up its datacenter,
    folders, clusters, networks and stemcell once; the counts below are per VM after that."""
    cloud.delete_vm(new_vm())


@contextlib.contextmanager
def count_http(monkeypatch):
    """``(method, first path segment)`` of each plain HTTP request (datastore and NFC transfers)."""
    counter: Counter = Counter()
    send = requests.Session.send

    def counting(self, request, **kwargs):
        counter[(request.method, urlsplit(request.url).path.split("/")[1])] += 1
        return send(self, request, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(requests.Session, "send", counting)
        yield counter


def create(cloud, stemcell_cid, networks):
    vm_cid, _ = cloud.create_vm(
        f"agent-{uuid.uuid4()}",
        stemcell_cid,
        {"cpu": 1, "ram": 512, "disk": 1024},
        networks,
        [],
        {},
    )
    return vm_cid


def test_create_vm_is_one_clone_one_reconfigure_one_power_on(
    cloud, stemcell_cid, networks, warm, vsphere_si, vms_path, monkeypatch
):
    with count_soap_calls() as calls, count_http(monkeypatch) as http:
        vm_cid = create(cloud, stemcell_cid, networks)
    try:
        # Placement state of both clusters (1), the clone's devices and folder (1), three
        # tasks and their info (6): 8 today. The CD-ROM rides in the settings' reconfigure.
        assert sum(calls.values()) <= 9, calls
        assert calls["CloneVM_Task"] == 1 and calls["ReconfigVM_Task"] == 1, calls
        # env.iso: one PUT to the datastore file API, no SOAP call.
        assert http == {("PUT", "folder"): 1}, http
        assert calls["PowerOnVM_Task"] == 1, calls
        assert calls["Fetch"] <= 3, f"a property read per attribute crept back: {calls}"
        assert calls["RetrievePropertiesEx"] <= 2, calls
        assert calls["FindChild"] == 0, "the stemcell and folders are remembered"
        vm = find_vm(vsphere_si, vms_path, vm_cid)
        assert vm.runtime.powerState == "poweredOn" and vm.config.hardware.numCPU == 1
    finally:
        with count_soap_calls() as calls:
            cloud.delete_vm(vm_cid)
    # Devices, power state, folder and the cluster's DRS groups in one read, three tasks
    # (power off, destroy, and deleting the VM's folder with env.iso, which vSphere keeps):
    # 7 today.
    assert calls["DeleteDatastoreFile_Task"] == 1, "the VM's folder goes with env.iso"
    assert sum(calls.values()) <= 8, calls
    assert calls["Fetch"] <= 3, f"more than one info read per task: {calls}"
    assert find_vm(vsphere_si, vms_path, vm_cid) is None


def test_has_vm_is_one_call(cloud, new_vm):
    vm_cid = new_vm()
    for cid, expected in ((vm_cid, True), (f"vm-{uuid.uuid4()}", False)):
        with count_soap_calls() as calls:
            assert cloud.has_vm(cid) is expected
        assert sum(calls.values()) == 1, calls


def test_set_vm_metadata_writes_only_what_changed(cloud, new_vm, vsphere_si, vms_path):
    metadata = {
        "director": "opsconsole",
        "deployment": "cf",
        "instance_group": "router",
        "index": "0",
        "name": "router/0",
    }
    new_names = {f"bench-{uuid.uuid4().hex[:8]}": "x" for _ in range(3)}
    defining_vm = new_vm()
    with count_soap_calls() as defining:
        cloud.set_vm_metadata(defining_vm, {**metadata, **new_names})
    # Names used for the first time: the definitions are read once, one is added per new name.
    assert len(new_names) <= defining["AddCustomFieldDef"] <= len(metadata) + len(new_names)
    assert defining["Fetch"] <= 1, defining

    vm_cid = new_vm()
    with count_soap_calls() as first:
        cloud.set_vm_metadata(vm_cid, metadata)
    # One read of the current values; vSphere has no batch call, so one SetField per key.
    assert first["SetField"] == len(metadata) and first["RetrievePropertiesEx"] == 1, first
    assert sum(first.values()) <= len(metadata) + 1, first

    with count_soap_calls() as same:
        cloud.set_vm_metadata(vm_cid, metadata)
    assert same["SetField"] == 0 and sum(same.values()) == 1, same

    with count_soap_calls() as changed:
        cloud.set_vm_metadata(vm_cid, {**metadata, "index": "1", "zone": {"az": "z1"}})
    assert changed["SetField"] == 2, changed

    vm = find_vm(vsphere_si, vms_path, vm_cid)
    fields = {f.key: f.name for f in vsphere_si.content.customFieldsManager.field}
    assert {fields[v.key]: v.value for v in vm.customValue} == {
        **metadata,
        "index": "1",
        "zone": '{"az": "z1"}',
    }


def test_disk_methods_read_the_vm_once(cloud, new_vm, warm, monkeypatch):
    vm_cid = new_vm()
    disk_cid = cloud.create_disk(1024, {}, vm_cid)
    try:
        with count_soap_calls() as attach, count_http(monkeypatch) as http:
            hint = cloud.attach_disk(vm_cid, disk_cid)
        # VM (1), datastore list (1), the disk search (2 per datastore looked in), the
        # host's datastores (1), one reconfigure with its info (2): 9 today.
        assert attach["ReconfigVM_Task"] == 1, "device, settings and CD-ROM in one reconfigure"
        assert sum(attach.values()) <= 10, attach
        assert http == {("PUT", "folder"): 1}, f"env.iso is uploaded once: {http}"
        with count_soap_calls() as listed:
            assert cloud.get_disks(vm_cid) == [disk_cid]
        assert sum(listed.values()) == 1, listed
        with count_soap_calls() as detach, count_http(monkeypatch) as http:
            cloud.detach_disk(vm_cid, disk_cid)
        assert sum(detach.values()) <= 3, detach
        assert http == {("PUT", "folder"): 1}, f"env.iso is uploaded once: {http}"
        assert hint.isdigit()
    finally:
        cloud.delete_disk(disk_cid)


# -- cached references never answer wrongly --------------------------------------------


def test_a_vm_deleted_behind_the_cpi_is_not_found(cloud, new_vm, vsphere_si, vms_path):
    vm_cid = new_vm()
    cloud.set_vm_metadata(vm_cid, {"a": "b"})  # the CPI now remembers the VM
    vm = find_vm(vsphere_si, vms_path, vm_cid)
    WaitForTask(vm.PowerOffVM_Task())
    WaitForTask(vm.Destroy_Task())

    assert cloud.has_vm(vm_cid) is False
    for call in (
        lambda: cloud.set_vm_metadata(vm_cid, {"a": "c"}),
        lambda: cloud.get_disks(vm_cid),
        lambda: cloud.delete_vm(vm_cid),
    ):
        with pytest.raises(VMNotFound, match=vm_cid):
            call()


def test_a_stemcell_deleted_behind_the_cpi_is_reported_and_nothing_is_made(
    cloud, stemcell_image, networks, vsphere_si, vcsim, vms_path
):
    stemcell = cloud.create_stemcell(stemcell_image, {})
    cloud.delete_vm(create(cloud, stemcell, networks))  # the CPI now remembers the stemcell
    templates = f"{vcsim.inventory['datacenters'][0]}/vm/BOSH_Templates"
    WaitForTask(find_vm(vsphere_si, templates, stemcell).Destroy_Task())
    before = {
        v.name for v in vsphere_si.content.searchIndex.FindByInventoryPath(vms_path).childEntity
    }

    with pytest.raises(CloudError, match=f"Could not find stemcell '{stemcell}'"):
        create(cloud, stemcell, networks)
    after = {
        v.name for v in vsphere_si.content.searchIndex.FindByInventoryPath(vms_path).childEntity
    }
    assert after == before, "no half-made VM is left"
