"""``VSphereCloud.vm_health``: power state and metadata of every managed VM in ONE round trip.

The health monitor's scan reads this every interval for every VM the
director manages; the answer must follow vCenter (powered off, destroyed,
re-tagged behind the CPI's back) and cost one ``RetrievePropertiesEx``
whether the cloud is fresh (walks from the root folder) or has looked its
folder up before, for one VM or a thousand.
"""

from __future__ import annotations

import http.client
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from benchmarks.soap_calls import count_soap_calls
from cpi.vsphere import VSphereCloud
from opsconsole.localservices.vcsim import start_vcsim

from .conftest import find_vm


@pytest.fixture
def vms_path(vcsim):
    return f"{vcsim.inventory['datacenters'][0]}/vm/BOSH_VMs"


def test_power_and_metadata_follow_vcenter_in_one_call(cloud, new_vm, vsphere_si, vms_path):
    on, off, gone = new_vm(), new_vm(), new_vm()
    cloud.set_vm_metadata(on, {"deployment": "zk", "id": "abc"})
    WaitForTask(find_vm(vsphere_si, vms_path, off).PowerOffVM_Task())
    WaitForTask(find_vm(vsphere_si, vms_path, gone).PowerOffVM_Task())
    WaitForTask(find_vm(vsphere_si, vms_path, gone).Destroy_Task())
    never = f"vm-{uuid.uuid4()}"

    with count_soap_calls() as calls:
        health = cloud.vm_health([on, off, gone, never])
    assert calls == {"RetrievePropertiesEx": 1}, calls
    assert set(health) == {on, off}
    assert health[on]["power_state"] == "poweredOn"
    assert health[on]["metadata"]["deployment"] == "zk"
    assert health[on]["metadata"]["id"] == "abc"
    assert health[off]["power_state"] == "poweredOff"


def test_a_fresh_cloud_walks_from_the_root_in_one_call(cpi_properties, new_vm):
    vm = new_vm()
    with VSphereCloud(cpi_properties) as fresh:
        fresh.client.connect()  # log in first: the login is not the scan
        with count_soap_calls() as calls:
            health = fresh.vm_health([vm])
    assert calls == {"RetrievePropertiesEx": 1}, calls
    assert health[vm]["power_state"] == "poweredOn"


def test_nothing_asked_costs_nothing(cloud):
    with count_soap_calls() as calls:
        assert cloud.vm_health([]) == {}
    assert not calls


@pytest.fixture
def own_vcsim(tmp_path):
    """A simulator of this test's own: the session's is watched by the VM runtime, which
    would spend minutes digesting 1,000 VMs coming and going while later tests wait
    for their agents (a CI run lost 4 VM runtime tests so)."""
    sim = start_vcsim(
        datacenters=1, clusters=2, hosts=3, datastores=2, portgroups=2, workdir=tmp_path
    )
    si = SmartConnect(
        host="127.0.0.1",
        port=sim.port,
        user=sim.username,
        pwd=sim.password,
        sslContext=sim.ssl_context(),
    )
    try:
        yield sim, si
    finally:
        Disconnect(si)
        sim.stop()


def test_a_thousand_vms_are_one_round_trip(cpi_properties, own_vcsim):
    """1,000 VMs in a folder of their own: one call reads them all (vcsim's VMs, made cheaply)."""
    sim, si = own_vcsim
    dc_name = sim.inventory["datacenters"][0]
    folder_name = f"health-{uuid.uuid4().hex[:8]}"
    dc = next(e for e in si.content.rootFolder.childEntity if e.name == dc_name)
    folder = dc.vmFolder.CreateFolder(folder_name)
    pool = next(
        c for c in dc.hostFolder.childEntity if isinstance(c, vim.ClusterComputeResource)
    ).resourcePool
    datastore = dc.datastore[0].name
    names = [f"vm-{uuid.uuid4()}" for _ in range(1000)]

    def make(name):
        spec = vim.vm.ConfigSpec(
            name=name,
            guestId="otherGuest",
            files=vim.vm.FileInfo(vmPathName=f"[{datastore}]"),
            numCPUs=1,
            memoryMB=32,
        )
        for attempt in (1, 2, 3):  # a loaded machine may drop a keep-alive connection
            try:
                WaitForTask(folder.CreateVM_Task(config=spec, pool=pool))
                return
            except (ConnectionError, http.client.HTTPException):
                if attempt == 3 or folder_has(name):
                    return

    def folder_has(name):
        return si.content.searchIndex.FindChild(folder, name) is not None

    with ThreadPoolExecutor(4) as pool_exec:
        list(pool_exec.map(make, names))
    vcenter = cpi_properties["vcenters"][0]
    props = {
        **cpi_properties,
        "vcenters": [
            {
                **vcenter,
                "host": sim.host,
                "user": sim.username,
                "password": sim.password,
                "connection_options": {**vcenter["connection_options"], "ca_cert": sim.ca_pem},
                "datacenters": [{**vcenter["datacenters"][0], "vm_folder": folder_name}],
            }
        ],
    }
    with VSphereCloud(props) as fresh:
        fresh.client.connect()
        with count_soap_calls() as calls:
            health = fresh.vm_health(names)
        assert calls == {"RetrievePropertiesEx": 1}, calls
        assert len(health) == 1000
        assert {h["power_state"] for h in health.values()} == {"poweredOff"}
