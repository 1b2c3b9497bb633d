"""Fixtures for the CPI tests: a VSphereCloud on the session's vcsim, a stemcell.

The vcsim inventory (``vcsim.inventory``) is shared by the whole session, so
tests create their own objects (VMs, disks, pools, host groups) with unique
names and never count what other tests left behind.
"""

from __future__ import annotations

import copy
import tarfile
import uuid

import pytest
from pyVmomi import vim

from cpi.stemcell_builder import build_stemcell
from cpi.vsphere import VSphereCloud

AGENT = {
    "ntp": ["0.pool.ntp.org", "1.pool.ntp.org"],
    "mbus": "nats://nats:nats-password@10.0.0.6:4222",
    "blobstore": {
        "provider": "dav",
        "options": {
            "endpoint": "http://10.0.0.6:25250",
            "user": "agent",
            "password": "blob-password",
        },
    },
}


@pytest.fixture(scope="session")
def cpi_properties(vcsim) -> dict:
    """cloud.properties of a cpi.json for the session's vcsim (certificate checked)."""
    inv = vcsim.inventory
    return {
        "vcenters": [
            {
                "host": vcsim.host,
                "user": vcsim.username,
                "password": vcsim.password,
                "connection_options": {"ca_cert": vcsim.ca_pem},
                "default_disk_type": "thin",
                "datacenters": [
                    {
                        "name": inv["datacenters"][0],
                        "vm_folder": "BOSH_VMs",
                        "template_folder": "BOSH_Templates",
                        "disk_path": "BOSH_Disks",
                        "datastore_pattern": "^LocalDS_",
                        "persistent_datastore_pattern": "^LocalDS_",
                        "clusters": list(inv["clusters"]),
                    }
                ],
            }
        ],
        "agent": copy.deepcopy(AGENT),
    }


@pytest.fixture(scope="session")
def cloud(cpi_properties):
    with VSphereCloud(cpi_properties) as c:
        yield c


@pytest.fixture(scope="session")
def stemcell_tgz(tmp_path_factory):
    return build_stemcell(tmp_path_factory.mktemp("stemcell") / "stemcell.tgz", version="42.1")


@pytest.fixture(scope="session")
def stemcell_image(stemcell_tgz, tmp_path_factory):
    """The ``image`` file from the stemcell tarball, as the director passes it."""
    out = tmp_path_factory.mktemp("stemcell-unpacked")
    with tarfile.open(stemcell_tgz) as tar:
        tar.extractall(out, filter="data")
    return str(out / "image")


@pytest.fixture(scope="session")
def stemcell_cid(cloud, stemcell_image):
    return cloud.create_stemcell(stemcell_image, {})


@pytest.fixture
def networks(vcsim) -> dict:
    """Two manual networks: one on a distributed portgroup, one on the standard 'VM Network'."""
    return {
        "default": {
            "type": "manual",
            "ip": "10.0.0.10",
            "netmask": "255.255.255.0",
            "gateway": "10.0.0.1",
            "dns": ["10.0.0.2"],
            "default": ["dns", "gateway"],
            "cloud_properties": {"name": vcsim.inventory["portgroups"][0]},
        },
        "backend": {
            "type": "manual",
            "ip": "10.1.0.10",
            "netmask": "255.255.255.0",
            "gateway": "10.1.0.1",
            "cloud_properties": {"name": vcsim.inventory["standard_portgroups"][0]},
        },
    }


@pytest.fixture
def new_vm(cloud, stemcell_cid, networks):
    """Create VMs for a test and delete whatever is left at the end."""
    made: list[str] = []

    def make(cloud_properties=None, env=None, nets=None, disk_cids=None):
        props = cloud_properties or {"cpu": 1, "ram": 512, "disk": 1024}
        vm_cid, _ = cloud.create_vm(
            f"agent-{uuid.uuid4()}",
            stemcell_cid,
            props,
            nets or networks,
            disk_cids or [],
            env or {},
        )
        made.append(vm_cid)
        return vm_cid

    yield make
    for vm_cid in made:
        if cloud.has_vm(vm_cid):
            cloud.delete_vm(vm_cid)


def find_vm(si, folder_path: str, name: str):
    """A VM by folder and name, read with our own session (not the CPI's)."""
    index = si.content.searchIndex
    folder = index.FindByInventoryPath(folder_path)
    return index.FindChild(folder, name) if folder is not None else None


def inventory_path(si, datacenter: str, folder: str) -> str:
    return f"{datacenter}/vm/{folder}"


def cluster_by_name(si, name: str) -> vim.ClusterComputeResource:
    view = si.content.viewManager.CreateContainerView(
        si.content.rootFolder, [vim.ClusterComputeResource], True
    )
    try:
        return next(c for c in view.view if c.name == name)
    finally:
        view.DestroyView()


def datastore_files(entity, ds_name: str, folder: str) -> dict[str, int]:
    """``{file name: size}`` in ``[ds_name] folder``, via the datastore browser."""
    from pyVim.task import WaitForTask

    datastore = next(d for d in entity.datastore if d.name == ds_name)
    task = datastore.browser.SearchDatastore_Task(
        datastorePath=f"[{ds_name}] {folder}",
        searchSpec=vim.host.DatastoreBrowser.SearchSpec(
            matchPattern=["*"], details=vim.host.DatastoreBrowser.FileInfo.Details(fileSize=True)
        ),
    )
    WaitForTask(task)
    return {f.path: f.fileSize for f in task.info.result.file or []}
