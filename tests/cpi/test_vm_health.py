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
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from benchmarks.soap_calls import count_soap_calls
from cpi.vsphere import VSphereCloud

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


def test_a_thousand_vms_are_one_round_trip(cpi_properties, vsphere_si, vcsim):
    """1,000 VMs in a folder of their own: one call reads them all (vcsim's VMs, made cheaply)."""
    dc_name = vcsim.inventory["datacenters"][0]
    folder_name = f"health-{uuid.uuid4().hex[:8]}"
    dc = next(e for e in vsphere_si.content.rootFolder.childEntity if e.name == dc_name)
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
        return vsphere_si.content.searchIndex.FindChild(folder, name) is not None

    with ThreadPoolExecutor(4) as pool_exec:
        list(pool_exec.map(make, names))
    props = {**cpi_properties}
    props["vcenters"] = [
        {
            **cpi_properties["vcenters"][0],
            "datacenters": [
                {**cpi_properties["vcenters"][0]["datacenters"][0], "vm_folder": folder_name}
            ],
        }
    ]
    try:
        with VSphereCloud(props) as fresh:
            fresh.client.connect()
            with count_soap_calls() as calls:
                health = fresh.vm_health(names)
            assert calls == {"RetrievePropertiesEx": 1}, calls
            assert len(health) == 1000
            assert {h["power_state"] for h in health.values()} == {"poweredOff"}
    finally:
        # this session may have sat idle while the fresh one read: vcsim may have
        # closed its keep-alive connection, so the clean-up tries again once
        try:
            WaitForTask(folder.Destroy_Task())
        except (ConnectionError, http.client.HTTPException):
            try:
                WaitForTask(folder.Destroy_Task())
            except vmodl.fault.ManagedObjectNotFound:
                pass  # the first call destroyed it: only its answer was lost
