"""Persistent disks against vcsim: the VMDK files vCenter holds through the disk lifecycle."""

import base64
import json
import re
import uuid

import pytest
from pyVmomi import vim

from cpi.base import CloudError, DiskNotAttached, DiskNotFound, NoDiskSpace, NotSupported

from .conftest import datastore_files, find_vm


@pytest.fixture
def dc_name(vcsim):
    return vcsim.inventory["datacenters"][0]


@pytest.fixture
def vm_of(vsphere_si, dc_name):
    return lambda cid: find_vm(vsphere_si, f"{dc_name}/vm/BOSH_VMs", cid)


def locate(vsphere_si, dc_name, disk_cid):
    """(datastore name, {file: size}) of the datastore holding BOSH_Disks/<cid>.vmdk, via our own session."""
    dc = vsphere_si.content.searchIndex.FindByInventoryPath(dc_name)
    for ds in dc.datastore:
        try:
            files = datastore_files(dc, ds.name, "BOSH_Disks")
        except vim.fault.FileNotFound:
            continue
        if f"{disk_cid}.vmdk" in files:
            return ds.name, files
    return None, {}


def datastore_url(vcsim, dc_name, ds_name, path):
    return f"https://{vcsim.host}/folder/{path}?dcPath={dc_name}&dsName={ds_name}"


def http(vcsim, vsphere_si):
    import requests

    s = requests.Session()
    s.trust_env = False
    s.verify = vcsim.cert_file
    s.headers["Cookie"] = vsphere_si._stub.cookie
    return s


def persistent_devices(vm):
    return [
        d
        for d in vm.config.hardware.device
        if isinstance(d, vim.vm.device.VirtualDisk)
        and d.backing.diskMode == "independent_persistent"
    ]


def settings_of(vm):
    value = next(o.value for o in vm.config.extraConfig if o.key == "guestinfo.userdata")
    return json.loads(base64.b64decode(value))


def test_disk_lifecycle_keeps_the_file_and_its_data(
    cloud, new_vm, vm_of, vsphere_si, vcsim, dc_name
):
    vm_a, vm_b = new_vm(), new_vm()
    disk = cloud.create_disk(2048, {}, vm_a)
    assert re.fullmatch(r"disk-[0-9a-f-]{36}", disk)
    assert cloud.has_disk(disk) is True
    ds_name, files = locate(vsphere_si, dc_name, disk)
    assert ds_name is not None and re.match("^LocalDS_", ds_name)
    assert ds_name in {d.name for d in vm_of(vm_a).runtime.host.datastore}, "near the VM"

    # Data written into the disk must survive everything below.
    session = http(vcsim, vsphere_si)
    marker = f"bosh persistent data {uuid.uuid4()}".encode()
    flat = f"BOSH_Disks/{disk}-flat.vmdk"
    assert session.put(datastore_url(vcsim, dc_name, ds_name, flat), data=marker).status_code < 300

    hint = cloud.attach_disk(vm_a, disk)
    devices = persistent_devices(vm_of(vm_a))
    assert [d.backing.fileName for d in devices] == [f"[{ds_name}] BOSH_Disks/{disk}.vmdk"]
    assert hint == str(devices[0].unitNumber)
    assert cloud.get_disks(vm_a) == [disk]
    assert settings_of(vm_of(vm_a))["disks"]["persistent"] == {disk: hint}
    assert cloud.attach_disk(vm_a, disk) == hint, "attaching twice is harmless"
    assert len(persistent_devices(vm_of(vm_a))) == 1

    cloud.detach_disk(vm_a, disk)
    assert persistent_devices(vm_of(vm_a)) == []
    assert cloud.get_disks(vm_a) == []
    assert settings_of(vm_of(vm_a))["disks"]["persistent"] == {}
    with pytest.raises(DiskNotAttached) as exc:
        cloud.detach_disk(vm_a, disk)
    assert exc.value.ok_to_retry is True

    hint_b = cloud.attach_disk(vm_b, disk)
    assert cloud.get_disks(vm_b) == [disk] and hint_b == str(
        persistent_devices(vm_of(vm_b))[0].unitNumber
    )

    # delete_vm detaches persistent disks first: the file and its data outlive the VM.
    cloud.delete_vm(vm_b)
    assert cloud.has_vm(vm_b) is False
    assert cloud.has_disk(disk) is True
    assert session.get(datastore_url(vcsim, dc_name, ds_name, flat)).content == marker

    cloud.attach_disk(vm_a, disk)
    assert cloud.get_disks(vm_a) == [disk]
    cloud.detach_disk(vm_a, disk)

    cloud.delete_disk(disk)
    assert cloud.has_disk(disk) is False
    assert locate(vsphere_si, dc_name, disk) == (None, {})
    with pytest.raises(DiskNotFound):
        cloud.delete_disk(disk)


def test_deleting_a_vm_without_disks_does_not_touch_other_disks(cloud, new_vm):
    disk = cloud.create_disk(1024, {}, None)
    vm = new_vm()
    cloud.delete_vm(vm)
    assert cloud.has_disk(disk)
    cloud.delete_disk(disk)


def test_disk_type_datastores_choose_the_datastore(cloud, vsphere_si, vcsim, dc_name):
    wanted = vcsim.inventory["datastores"][-1]
    disk = cloud.create_disk(1024, {"datastores": [wanted], "type": "thin"}, None)
    try:
        assert locate(vsphere_si, dc_name, disk)[0] == wanted
    finally:
        cloud.delete_disk(disk)


def test_no_datastore_with_room_is_no_disk_space(cloud):
    with pytest.raises(NoDiskSpace, match="No datastore matching"):
        cloud.create_disk(1024, {"datastores": ["no-such-datastore"]}, None)
    with pytest.raises(NoDiskSpace):
        cloud.create_disk(900_000_000, {}, None)


def test_missing_disk_is_disk_not_found(cloud, new_vm):
    ghost = f"disk-{uuid.uuid4()}"
    assert cloud.has_disk(ghost) is False
    assert cloud.has_disk("not-a-disk-cid") is False
    vm = new_vm()
    for call in (
        lambda: cloud.attach_disk(vm, ghost),
        lambda: cloud.delete_disk(ghost),
        lambda: cloud.resize_disk(ghost, 2048),
    ):
        with pytest.raises(DiskNotFound) as exc:
            call()
        assert exc.value.type == "Bosh::Clouds::DiskNotFound" and ghost in exc.value.message
    with pytest.raises(DiskNotAttached):
        cloud.detach_disk(vm, ghost)


def test_resize_disk_grows_the_vmdk(cloud, vsphere_si, dc_name):
    disk = cloud.create_disk(1024, {}, None)
    try:
        cloud.resize_disk(disk, 4096)
        ds_name, files = locate(vsphere_si, dc_name, disk)
        # vcsim grows the (sparse) data file to the new capacity.
        assert files[f"{disk}-flat.vmdk"] == 4096 * 1024 * 1024
        with pytest.raises((NotSupported, CloudError)) as exc:
            cloud.resize_disk(disk, 2048)
        assert "newCapacityKb" in exc.value.message or "shrinking" in exc.value.message
        assert locate(vsphere_si, dc_name, disk)[1][f"{disk}-flat.vmdk"] == 4096 * 1024 * 1024
    finally:
        cloud.delete_disk(disk)


def test_set_disk_metadata_is_accepted(cloud):
    disk = cloud.create_disk(1024, {}, None)
    cloud.set_disk_metadata(disk, {"deployment": "cf"})
    cloud.delete_disk(disk)


def test_get_disks_of_a_new_vm_is_empty(cloud, new_vm):
    assert cloud.get_disks(new_vm()) == []
