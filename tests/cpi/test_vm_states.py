"""``VSphereCloud.vm_states``: live power states of many VMs in two round trips, on vcsim.

What the director's VMs page shows beside each instance: the answer must
follow what vCenter holds (a VM powered off behind the CPI's back reads
``poweredOff``), leave out cids with no VM, cost the same two calls for
one VM or many, create nothing, and turn an unreachable vCenter into a
``CloudError`` naming it.
"""

from __future__ import annotations

import uuid

import pytest
from pyVim.task import WaitForTask

from benchmarks.soap_calls import count_soap_calls
from cpi.base import CloudError
from cpi.vsphere import VSphereCloud

from .conftest import find_vm


@pytest.fixture
def vms_path(vcsim):
    return f"{vcsim.inventory['datacenters'][0]}/vm/BOSH_VMs"


def test_power_states_follow_vcenter_in_two_calls(cloud, new_vm, vsphere_si, vms_path):
    on, off = new_vm(), new_vm()
    WaitForTask(find_vm(vsphere_si, vms_path, off).PowerOffVM_Task())
    missing = f"vm-{uuid.uuid4()}"

    with count_soap_calls() as calls:
        states = cloud.vm_states([on, off, missing])
    assert states == {on: "poweredOn", off: "poweredOff"}
    assert calls == {"FindByInventoryPath": 1, "RetrievePropertiesEx": 1}, calls

    # Powered on again behind the CPI's back: read fresh, never cached.
    WaitForTask(find_vm(vsphere_si, vms_path, off).PowerOnVM_Task())
    assert cloud.vm_states([off]) == {off: "poweredOn"}


def test_many_vms_cost_no_more_calls(cloud, new_vm):
    cids = [new_vm() for _ in range(4)]
    with count_soap_calls() as calls:
        states = cloud.vm_states(cids)
    assert states == dict.fromkeys(cids, "poweredOn")
    assert sum(calls.values()) == 2, calls


@pytest.mark.parametrize("cids", [[], ["vm-00000000-0000-0000-0000-000000000000"]])
def test_nothing_asked_or_nothing_there(cloud, cids):
    with count_soap_calls() as calls:
        assert cloud.vm_states(cids) == {}
    assert sum(calls.values()) == (0 if not cids else 2), calls


def test_a_missing_folder_is_not_created(cpi_properties, vsphere_si, vcsim):
    folder = f"absent-{uuid.uuid4().hex[:8]}"
    props = {**cpi_properties}
    props["vcenters"] = [
        {
            **cpi_properties["vcenters"][0],
            "datacenters": [
                {**cpi_properties["vcenters"][0]["datacenters"][0], "vm_folder": folder}
            ],
        }
    ]
    with VSphereCloud(props) as cloud:
        assert cloud.vm_states(["vm-anything"]) == {}
    dc = vcsim.inventory["datacenters"][0]
    assert vsphere_si.content.searchIndex.FindByInventoryPath(f"{dc}/vm/{folder}") is None


def test_unreachable_vcenter_is_a_cloud_error_naming_it(cpi_properties):
    props = {**cpi_properties}
    props["vcenters"] = [
        {
            **cpi_properties["vcenters"][0],
            "host": "127.0.0.1:9",  # discard port: nothing listens
            "connection_options": {
                **cpi_properties["vcenters"][0]["connection_options"],
                "connect_timeout": 1,
            },
        }
    ]
    with VSphereCloud(props) as cloud:
        with pytest.raises(CloudError, match=r"127\.0\.0\.1:9"):
            cloud.vm_states(["vm-anything"])
