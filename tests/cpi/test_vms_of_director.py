"""``VSphereCloud.vms_of_director``: the VMs a director made, as vCenter holds them, on vcsim.

What the leftover scan reads before each deploy: a VM counts as the
director's when ``set_vm_metadata`` tagged it ``director``, or, when the
task died before that, when its agent settings (``guestinfo.userdata``)
name the director in ``env.bosh.groups``. Another director's VMs and
untagged VMs are left out; the answer is read, never cached, and the call
is not written to a task's CPI log.
"""

from __future__ import annotations

from benchmarks.soap_calls import count_soap_calls
from cpi.logging import LoggedCpi


def _groups(director: str, deployment: str) -> dict:
    return {"bosh": {"groups": [director, deployment, f"{director}-{deployment}"]}}


def test_tagged_and_settings_only_vms_are_the_directors_and_others_are_not(cloud, new_vm):
    tagged = new_vm()
    cloud.set_vm_metadata(tagged, {"director": "d-alpha", "deployment": "zk"})
    untagged_yet = new_vm(env=_groups("d-alpha", "kafka"))
    theirs = new_vm(env=_groups("d-beta", "zk"))
    cloud.set_vm_metadata(theirs, {"director": "d-beta", "deployment": "zk"})
    plain = new_vm()

    found = cloud.vms_of_director("d-alpha")

    assert tagged in found and untagged_yet in found
    assert theirs not in found and plain not in found
    assert found[tagged]["director"] == "d-alpha"
    assert found[tagged]["deployment"] == "zk"
    assert found[untagged_yet]["director"] is None
    assert found[untagged_yet]["deployment"] is None
    assert "d-alpha-kafka" in found[untagged_yet]["groups"]
    assert found[untagged_yet]["agent_id"].startswith("agent-")
    assert set(cloud.vms_of_director("d-beta")) >= {theirs}


def test_a_vm_deleted_behind_the_cpi_is_gone_from_the_next_answer(cloud, new_vm):
    vm = new_vm()
    cloud.set_vm_metadata(vm, {"director": "d-gamma", "deployment": "zk"})
    assert vm in cloud.vms_of_director("d-gamma")
    cloud.delete_vm(vm)
    assert vm not in cloud.vms_of_director("d-gamma")


def test_few_round_trips_whatever_the_number_of_vms(cloud, new_vm):
    for _ in range(3):
        cloud.set_vm_metadata(new_vm(), {"director": "d-delta", "deployment": "zk"})
    cloud.vms_of_director("d-delta")  # vm_folder looked up once for this cloud
    with count_soap_calls() as calls:
        assert len(cloud.vms_of_director("d-delta")) == 3
    assert calls == {
        "Fetch": 1,  # the custom attribute names
        "CreateContainerView": 1,
        "RetrievePropertiesEx": 1,
        "DestroyView": 1,
    }, calls


def test_through_the_task_log_wrapper_it_is_answered_and_not_logged(cloud, new_vm):
    vm = new_vm()
    cloud.set_vm_metadata(vm, {"director": "d-epsilon", "deployment": "zk"})
    records: list[dict] = []
    logged = LoggedCpi(cloud, records.append)
    assert set(logged.vms_of_director("d-epsilon")) == {vm}
    assert set(logged.vm_health([vm])) == {vm}
    assert set(logged.vm_states([vm])) == {vm}
    assert records == []
