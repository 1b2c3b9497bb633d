"""Fixtures for the VM runtime tests: VMs made by our CPI on vcsim, agents on the real NATS.

``agent_vm(...)`` creates a VM through ``cpi.vsphere`` (which writes the agent
settings to guestinfo and env.iso and powers it on) with a bootstrap client
certificate from the director's NATS CA, lets its agent onto the bus, and
returns the VM cid, the agent id and an ``AgentClient`` (the director's) for it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from tests.vmruntime.blobserver import BlobServer
from tests.vmruntime.helpers import running_pid, wait_for


@pytest.fixture(scope="session")
def blob_server(tmp_path_factory):
    server = BlobServer(tmp_path_factory.mktemp("blobs"))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def rt_cloud(vcsim, nats_server, blob_server):
    from cpi.vsphere import VSphereCloud

    inv = vcsim.inventory
    props = {
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
        "agent": {"mbus": nats_server.url, "blobstore": blob_server.settings()},
    }
    with VSphereCloud(props) as cloud:
        yield cloud


@pytest.fixture(scope="session")
def rt_stemcell(rt_cloud, tmp_path_factory):
    import tarfile

    from cpi.stemcell_builder import build_stemcell

    tgz = build_stemcell(tmp_path_factory.mktemp("stemcell") / "stemcell.tgz", version="1.1")
    out = tmp_path_factory.mktemp("stemcell-image")
    with tarfile.open(tgz) as tar:
        tar.extractall(out, filter="data")
    return rt_cloud.create_stemcell(str(out / "image"), {})


@pytest.fixture(scope="session")
def director_mbus(nats_server):
    mbus = nats_server.director_mbus()
    try:
        yield mbus
    finally:
        mbus.close()


@dataclass
class AgentVm:
    cid: str
    agent_id: str
    client: object


@pytest.fixture(scope="session")
def vm_factory(rt_cloud, rt_stemcell, nats_server, director_mbus, vcsim, vm_runtime):
    """Make a VM through our CPI with agent settings; its agent's ``AgentClient`` too."""
    from director.agents.client import AgentClient

    made: list[str] = []

    def make(disk_cids=(), agent_id=None, ip="10.0.0.20"):
        agent_id = agent_id or str(uuid.uuid4())
        nats_server.allow_agents([agent_id])
        creds = nats_server.pki.issue_agent(agent_id)
        networks = {
            "default": {
                "type": "manual",
                "ip": ip,
                "netmask": "255.255.255.0",
                "gateway": "10.0.0.1",
                "dns": ["10.0.0.2"],
                "default": ["dns", "gateway"],
                "cloud_properties": {"name": vcsim.inventory["portgroups"][0]},
            }
        }
        env = {"bosh": {"mbus": {"cert": creds.mbus_cert()}}}
        props = {"cpu": 1, "ram": 512, "disk": 1024}
        cid, _ = rt_cloud.create_vm(agent_id, rt_stemcell, props, networks, list(disk_cids), env)
        made.append(cid)
        client = AgentClient(
            agent_id, instance=cid, mbus=director_mbus, timeout=30, poll_interval=0.2
        )
        client.wait_until_ready(timeout=60)
        return AgentVm(cid=cid, agent_id=agent_id, client=client)

    make.made = made
    yield make
    for cid in made:
        if rt_cloud.has_vm(cid):
            rt_cloud.delete_vm(cid)


@pytest.fixture
def agent_vm(vm_factory, rt_cloud):
    """``vm_factory`` for one test: its VMs are deleted at the end of the test."""
    before = len(vm_factory.made)
    yield vm_factory
    for cid in vm_factory.made[before:]:
        if rt_cloud.has_vm(cid):
            rt_cloud.delete_vm(cid)


@pytest.fixture(scope="session")
def hm(nats_server):
    from tests.vmruntime.hm import HmListener

    listener = HmListener(nats_server.url, nats_server.pki)
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture(scope="session")
def compiled_hello(vm_factory, blob_server, rt_cloud, vm_runtime):
    """``hello`` compiled by ``compile_package`` on a compilation VM (deleted afterwards):
    the package entry of an apply spec, and the packaging log the VM wrote."""
    from tests.vmruntime.release import source_package

    vm = vm_factory(ip="10.0.0.250")
    blob_id, sha1 = blob_server.put(source_package())
    result = vm.client.compile_package(blob_id, sha1, "hello", "1.0.1", {})
    logs = vm_runtime.root(vm.cid) / "sys" / "log" / "compilation"
    log = (logs / "packaging.stdout.log").read_text() + (logs / "packaging.stderr.log").read_text()
    rt_cloud.delete_vm(vm.cid)
    out = result["result"]
    return {
        "package": {
            "name": "hello",
            "version": "1.0.1",
            "sha1": out["sha1"],
            "blobstore_id": out["blobstore_id"],
        },
        "packaging_log": log,
    }


def find_vm(si, name: str):
    from pyVmomi import vim

    view = si.content.viewManager.CreateContainerView(
        si.content.rootFolder, [vim.VirtualMachine], True
    )
    try:
        return next(v for v in view.view if v.name == name)
    finally:
        view.DestroyView()


@pytest.fixture
def deployed(agent_vm, blob_server, compiled_hello):
    from tests.vmruntime.release import apply_spec, rendered_archive

    """A VM with ``ticker`` applied and started, as the director's update does it."""

    def deploy(greeting="hello from the manifest", **kwargs):
        vm = agent_vm(**kwargs)
        archive = blob_server.put(rendered_archive(greeting))
        spec = apply_spec(agent_vm=vm, archive=archive, package=compiled_hello["package"])
        assert vm.client.apply(spec) == "applied"
        vm.client.run_script("pre-start", {})
        assert vm.client.start() == "started"
        pid = wait_for(lambda: running_pid(vm.client), what="ticker running")
        return vm, spec, pid

    return deploy
