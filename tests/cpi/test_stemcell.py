"""create_stemcell / delete_stemcell against vcsim: what vCenter holds afterwards."""

import tarfile

import pytest
from pyVmomi import vim

from cpi.base import CloudError

from .conftest import datastore_files, find_vm


@pytest.fixture
def templates_path(vcsim):
    return f"{vcsim.inventory['datacenters'][0]}/vm/BOSH_Templates"


def test_stemcell_becomes_a_template_vm_with_snapshot_initial_and_no_nics(
    cloud, stemcell_cid, vsphere_si, templates_path
):
    assert stemcell_cid.startswith("sc-")
    vm = find_vm(vsphere_si, templates_path, stemcell_cid)
    assert vm is not None, "the stemcell VM is in the template folder"
    assert vm.snapshot.currentSnapshot is not None
    assert [s.name for s in vm.snapshot.rootSnapshotList] == ["initial"]
    devices = vm.config.hardware.device
    assert not [d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
    assert len(disks) == 1 and disks[0].capacityInKB == 64 * 1024
    assert vm.config.hardware.numCPU == 1 and vm.config.hardware.memoryMB == 512
    assert vm.runtime.powerState == "poweredOff"


def test_uploaded_vmdk_lands_on_the_datastore(
    cloud, stemcell_cid, stemcell_image, vsphere_si, templates_path
):
    with tarfile.open(stemcell_image) as tar:
        vmdk_size = tar.getmember("image-disk1.vmdk").size
    vm = find_vm(vsphere_si, templates_path, stemcell_cid)
    disk = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
    ds_name, rel = disk.backing.fileName[1:].split("] ", 1)
    sizes = datastore_files(vm, ds_name, rel.rsplit("/", 1)[0])
    assert sizes.get(rel.rsplit("/", 1)[1]) == vmdk_size, (
        f"the disk holds the uploaded bytes: {sizes}"
    )


def test_two_stemcells_get_distinct_cids_and_delete_removes_only_one(
    cloud, stemcell_image, vsphere_si, templates_path
):
    a = cloud.create_stemcell(stemcell_image, {})
    b = cloud.create_stemcell(stemcell_image, {})
    assert a != b
    cloud.delete_stemcell(a)
    assert find_vm(vsphere_si, templates_path, a) is None
    assert find_vm(vsphere_si, templates_path, b) is not None
    cloud.delete_stemcell(b)
    assert find_vm(vsphere_si, templates_path, b) is None
    cloud.delete_stemcell(b)  # already gone: nothing to do, as in BOSH


def test_image_that_is_not_a_tarball_is_a_cloud_error(cloud, tmp_path):
    bad = tmp_path / "image"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(CloudError, match="is not a readable tarball"):
        cloud.create_stemcell(str(bad), {})


def test_image_without_ovf_is_a_cloud_error(cloud, tmp_path):
    (tmp_path / "readme").write_text("hi")
    with tarfile.open(tmp_path / "image", "w:gz") as tar:
        tar.add(tmp_path / "readme", arcname="readme")
    with pytest.raises(CloudError, match="has no .ovf descriptor"):
        cloud.create_stemcell(str(tmp_path / "image"), {})
