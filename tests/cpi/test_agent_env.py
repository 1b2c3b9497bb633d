"""Agent settings where a real stemcell reads them: ``env.iso`` on the VM's CD-ROM and guestinfo.

What vCenter holds after each CPI method, read with our own session: the
ISO file downloaded through the datastore file API and decoded with
pycdlib, the CD-ROM device of the VM, and ``guestinfo.userdata``.
"""

import base64
import io
import json
import uuid

import pycdlib
import pytest
import requests
from pyVmomi import vim

from cpi.base import VMCreationFailed
from cpi.vsphere.agent_env import env_iso, read_env_iso, vm_directory
from cpi.vsphere.config import ConfigError

from .conftest import AGENT, datastore_files, find_vm


@pytest.fixture
def vms_path(vcsim):
    return f"{vcsim.inventory['datacenters'][0]}/vm/BOSH_VMs"


def guestinfo_settings(vm) -> dict:
    config = {o.key: o.value for o in vm.config.extraConfig or []}
    assert config["guestinfo.userdata.encoding"] == "base64"
    return json.loads(base64.b64decode(config["guestinfo.userdata"]))


def cdrom(vm) -> vim.vm.device.VirtualCdrom:
    found = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualCdrom)]
    assert len(found) == 1, found
    return found[0]


def download(vcsim, datastore_path: str) -> requests.Response:
    """GET a file through vcsim's datastore file API (``/folder/<path>?dcPath=&dsName=``)."""
    ds, path = datastore_path[1:].split("] ", 1)
    session = requests.Session()
    session.trust_env = False
    return session.get(
        f"https://{vcsim.host}/folder/{path}",
        params={"dcPath": vcsim.inventory["datacenters"][0], "dsName": ds},
        verify=vcsim.cert_file,
        timeout=10,
    )


def iso_files(image: bytes) -> dict[str, bytes]:
    """Rock Ridge name -> content of every file at the root of an ISO image."""
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(image))
    try:
        out = {}
        for child in iso.list_children(rr_path="/"):
            if child.is_dot() or child.is_dotdot():
                continue
            name = child.rock_ridge.name().decode()
            data = io.BytesIO()
            iso.get_file_from_iso_fp(data, rr_path=f"/{name}")
            out[name] = data.getvalue()
        return out
    finally:
        iso.close()


def env_on_cdrom(vcsim, vm) -> dict:
    """The settings the agent would read: the file ``env`` of the ISO the CD-ROM points at."""
    device = cdrom(vm)
    assert isinstance(device.backing, vim.vm.device.VirtualCdrom.IsoBackingInfo)
    assert device.connectable.connected and device.connectable.startConnected
    response = download(vcsim, device.backing.fileName)
    assert response.status_code == 200, response.text
    files = iso_files(response.content)
    assert list(files) == ["env"], "the ISO holds the single file the stemcell's agent.json names"
    return json.loads(files["env"])


# -- pure --------------------------------------------------------------------------------


def test_the_iso_holds_env_as_the_agent_reads_it():
    settings = {"agent_id": "a-1", "env": {"bosh": {"password": "$6$x"}}, "ntp": []}
    image = env_iso(settings)
    assert image[0x8001:0x8006] == b"CD001", "an ISO 9660 image"
    files = iso_files(image)
    assert json.loads(files["env"]) == settings
    assert read_env_iso(image) == settings


@pytest.mark.parametrize(
    "vm_path, folder",
    [
        ("[LocalDS_0] vm-1/vm-1.vmx", "[LocalDS_0] vm-1"),
        ("[Shared DS] vm-1 (1)/vm-1.vmx", "[Shared DS] vm-1 (1)"),
        ("[LocalDS_0] vm-1", "[LocalDS_0] vm-1"),
    ],
)
def test_the_vm_folder_comes_from_the_vmx_path(vm_path, folder):
    assert str(vm_directory(vm_path)) == folder
    assert str(vm_directory(vm_path).child("env.iso")) == f"{folder}/env.iso"


# -- against vcsim -----------------------------------------------------------------------


def test_create_vm_puts_the_settings_on_a_cdrom_and_in_guestinfo(
    cloud, stemcell_cid, networks, vsphere_si, vms_path, vcsim
):
    env = {
        "bosh": {
            "password": "$6$salt$hash",
            "mbus": {
                "urls": ["nats://10.0.0.6:4222"],
                "cert": {"ca": "CA PEM", "certificate": "CERT PEM", "private_key": "KEY PEM"},
            },
            "blobstores": [{"provider": "dav", "options": {"endpoint": "http://10.0.0.6"}}],
        }
    }
    agent_id = f"agent-{uuid.uuid4()}"
    vm_cid, _ = cloud.create_vm(
        agent_id, stemcell_cid, {"cpu": 1, "ram": 512, "disk": 1024}, networks, [], env
    )
    try:
        vm = find_vm(vsphere_si, vms_path, vm_cid)
        folder = vm_directory(vm.config.files.vmPathName)
        assert folder.path == vm_cid
        assert "env.iso" in datastore_files(vm, folder.datastore, folder.path)
        device = cdrom(vm)
        assert device.backing.fileName == f"[{folder.datastore}] {vm_cid}/env.iso"
        assert device.backing.datastore.name == folder.datastore

        settings = env_on_cdrom(vcsim, vm)
        assert settings == guestinfo_settings(vm), "the CD-ROM and guestinfo agree"
        cards = sorted(
            (
                d
                for d in vm.config.hardware.device
                if isinstance(d, vim.vm.device.VirtualEthernetCard)
            ),
            key=lambda d: d.key,
        )
        assert settings["agent_id"] == agent_id
        assert settings["vm"] == {"name": vm_cid, "id": vm._moId}
        assert [settings["networks"][n]["mac"] for n in ("default", "backend")] == [
            c.macAddress for c in cards
        ]
        assert settings["disks"]["persistent"] == {}
        assert {"system", "ephemeral"} <= set(settings["disks"])
        assert settings["env"] == env, "the director's per-agent mbus certificate reaches the agent"
        assert (settings["mbus"], settings["blobstore"], settings["ntp"]) == (
            AGENT["mbus"],
            AGENT["blobstore"],
            AGENT["ntp"],
        )
    finally:
        cloud.delete_vm(vm_cid)


def test_attach_and_detach_rewrite_the_iso_and_guestinfo(
    cloud, new_vm, vsphere_si, vms_path, vcsim
):
    vm_cid = new_vm()
    disk_cid = cloud.create_disk(512, {}, vm_cid)
    try:
        hint = cloud.attach_disk(vm_cid, disk_cid)
        vm = find_vm(vsphere_si, vms_path, vm_cid)
        on_cdrom = env_on_cdrom(vcsim, vm)
        assert on_cdrom["disks"]["persistent"] == {disk_cid: hint}
        assert on_cdrom == guestinfo_settings(vm)
        assert cdrom(vm).backing.fileName.endswith(f"] {vm_cid}/env.iso")

        cloud.detach_disk(vm_cid, disk_cid)
        vm = find_vm(vsphere_si, vms_path, vm_cid)
        on_cdrom = env_on_cdrom(vcsim, vm)
        assert on_cdrom["disks"]["persistent"] == {}
        assert on_cdrom == guestinfo_settings(vm)
    finally:
        if disk_cid in cloud.get_disks(vm_cid):
            cloud.detach_disk(vm_cid, disk_cid)
        cloud.delete_disk(disk_cid)


def test_attach_disconnects_the_cdrom_when_the_datastore_refuses_the_upload(
    cloud, new_vm, vsphere_si, vms_path, vcsim, monkeypatch
):
    """vcsim locks no file; the fake datastore refuses a PUT while vCenter says the VM's
    CD-ROM is connected, as VMFS does for a medium a running VM holds open."""
    import cpi.vsphere.disks as disks_module

    vm_cid = new_vm()
    disk_cid = cloud.create_disk(512, {}, vm_cid)
    refused = []
    real_upload = disks_module.upload

    def locking_upload(client, datacenter, path, data):
        if cdrom(find_vm(vsphere_si, vms_path, vm_cid)).connectable.connected:
            refused.append(str(path))
            raise disks_module.CloudError(f"Uploading {path} failed: HTTP 500 locked")
        real_upload(client, datacenter, path, data)

    monkeypatch.setattr(disks_module, "upload", locking_upload)
    try:
        hint = cloud.attach_disk(vm_cid, disk_cid)
        vm = find_vm(vsphere_si, vms_path, vm_cid)
        assert len(refused) == 1, refused
        assert cdrom(vm).connectable.connected, "connected again, on the new image"
        on_cdrom = env_on_cdrom(vcsim, vm)
        assert on_cdrom["disks"]["persistent"] == {disk_cid: hint}
        assert on_cdrom == guestinfo_settings(vm)
    finally:
        monkeypatch.undo()
        if disk_cid in cloud.get_disks(vm_cid):
            cloud.detach_disk(vm_cid, disk_cid)
        cloud.delete_disk(disk_cid)


def test_delete_vm_leaves_no_iso_on_the_datastore(cloud, new_vm, vsphere_si, vms_path, vcsim):
    vm_cid = new_vm()
    vm = find_vm(vsphere_si, vms_path, vm_cid)
    folder = vm_directory(vm.config.files.vmPathName)
    iso = cdrom(vm).backing.fileName
    assert download(vcsim, iso).status_code == 200
    datacenter = vm.datastore[0].parent.parent  # datastore folder -> datacenter

    cloud.delete_vm(vm_cid)

    assert download(vcsim, iso).status_code == 404, "env.iso is gone"
    root = datastore_files(datacenter, folder.datastore, "")
    assert folder.path not in root, f"the VM's folder is gone: {sorted(root)}"


def test_a_failed_create_removes_the_uploaded_iso(
    cloud, stemcell_cid, networks, vsphere_si, vcsim, monkeypatch
):
    """The reconfigure fails after the upload (injected: vcsim cannot fail it on demand)."""
    import cpi.vsphere.agent_env as agent_env_module
    import cpi.vsphere.vm as vm_module

    uploaded = []
    real_upload = agent_env_module.upload

    def recording_upload(client, datacenter, path, data):
        uploaded.append(str(path))
        real_upload(client, datacenter, path, data)

    def broken_write(vm, settings, action, device_change):
        raise vm_module.CloudError(f"{action} failed: injected fault")

    monkeypatch.setattr(vm_module, "upload", recording_upload)
    monkeypatch.setattr(vm_module, "write_settings", broken_write)
    with pytest.raises(VMCreationFailed, match="injected fault"):
        cloud.create_vm(
            "agent-f", stemcell_cid, {"cpu": 1, "ram": 256, "disk": 512}, networks, [], {}
        )
    assert len(uploaded) == 1 and uploaded[0].endswith("/env.iso"), uploaded
    assert download(vcsim, uploaded[0]).status_code == 404, "no ISO left behind"


@pytest.mark.parametrize(
    "env, path",
    [
        ("not a map", "env"),
        ({"bosh": []}, "env/bosh"),
        ({"bosh": {"mbus": "nats://x"}}, "env/bosh/mbus"),
        ({"bosh": {"mbus": {"urls": "nats://x"}}}, "env/bosh/mbus/urls"),
        ({"bosh": {"mbus": {"cert": {"ca": 1}}}}, "env/bosh/mbus/cert/ca"),
    ],
)
def test_a_malformed_env_is_refused_before_anything_is_made(
    cloud, stemcell_cid, networks, vsphere_si, vms_path, env, path
):
    before = {
        v.name for v in vsphere_si.content.searchIndex.FindByInventoryPath(vms_path).childEntity
    }
    with pytest.raises(ConfigError, match=f"^{path}: "):
        cloud.create_vm("a", stemcell_cid, {"cpu": 1, "ram": 256, "disk": 512}, networks, [], env)
    after = {
        v.name for v in vsphere_si.content.searchIndex.FindByInventoryPath(vms_path).childEntity
    }
    assert after == before
