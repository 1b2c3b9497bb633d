"""create_vm and the other VM methods against vcsim: what vCenter holds afterwards."""

import base64
import concurrent.futures
import json
import uuid

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from cpi.base import CloudError, NetworkNotFound, VMCreationFailed, VMNotFound
from cpi.vsphere.config import ConfigError

from .conftest import AGENT, cluster_by_name, find_vm


@pytest.fixture
def vms_path(vcsim):
    return f"{vcsim.inventory['datacenters'][0]}/vm/BOSH_VMs"


def extra_config(vm) -> dict[str, str]:
    return {o.key: o.value for o in vm.config.extraConfig or []}


def nics(vm):
    return sorted(
        (d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)),
        key=lambda d: d.key,
    )


def test_create_vm_clones_the_stemcell_with_requested_hardware_and_settings(
    cloud, stemcell_cid, networks, vsphere_si, vms_path, vcsim
):
    env = {
        "bosh": {"password": "$6$salt$hash", "group": "d-dep-web", "groups": ["d", "dep", "web"]}
    }
    agent_id = f"agent-{uuid.uuid4()}"
    vm_cid, returned_networks = cloud.create_vm(
        agent_id, stemcell_cid, {"cpu": 2, "ram": 1024, "disk": 3072}, networks, [], env
    )
    try:
        assert vm_cid.startswith("vm-") and returned_networks == networks
        vm = find_vm(vsphere_si, vms_path, vm_cid)
        assert vm is not None, "the VM is in the vm_folder"
        assert vm.config.hardware.numCPU == 2
        assert vm.config.hardware.memoryMB == 1024
        assert vm.runtime.powerState == "poweredOn"
        assert vm.resourcePool.owner.name in vcsim.inventory["clusters"]

        disks = sorted(
            (d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)),
            key=lambda d: d.unitNumber,
        )
        assert [d.capacityInKB for d in disks] == [64 * 1024, 3072 * 1024]

        # One NIC per network, in order, on the portgroup named in cloud_properties.
        cards = nics(vm)
        assert len(cards) == 2
        dvpg = next(
            n for n in vm.network if n.name == networks["default"]["cloud_properties"]["name"]
        )
        assert cards[0].backing.port.portgroupKey == dvpg.key
        assert cards[1].backing.deviceName == "VM Network"

        config = extra_config(vm)
        assert config["guestinfo.userdata.encoding"] == "base64"
        settings = json.loads(base64.b64decode(config["guestinfo.userdata"]))
        assert settings["agent_id"] == agent_id
        assert settings["vm"] == {"name": vm_cid, "id": vm._moId}
        assert settings["networks"]["default"]["ip"] == "10.0.0.10"
        assert settings["networks"]["default"]["mac"] == cards[0].macAddress
        assert settings["networks"]["backend"]["mac"] == cards[1].macAddress
        assert settings["networks"]["backend"]["cloud_properties"] == {"name": "VM Network"}
        assert settings["disks"] == {
            "system": str(disks[0].unitNumber),
            "ephemeral": str(disks[1].unitNumber),
            "persistent": {},
        }
        assert settings["env"] == env
        assert (settings["ntp"], settings["mbus"], settings["blobstore"]) == (
            AGENT["ntp"],
            AGENT["mbus"],
            AGENT["blobstore"],
        )
    finally:
        cloud.delete_vm(vm_cid)


def test_linked_clone_grows_from_the_stemcell_snapshot(
    cloud, stemcell_cid, new_vm, vsphere_si, vms_path, vcsim
):
    vm = find_vm(vsphere_si, vms_path, new_vm())
    template = find_vm(
        vsphere_si, f"{vcsim.inventory['datacenters'][0]}/vm/BOSH_Templates", stemcell_cid
    )
    system = min(
        (d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)),
        key=lambda d: d.unitNumber,
    )
    template_disk = next(
        d for d in template.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)
    )
    assert system.backing.fileName != template_disk.backing.fileName
    assert system.backing.parent is not None, "a child disk (createNewChildDiskBacking)"
    assert system.backing.parent.fileName == template_disk.backing.fileName
    assert template_disk.backing.fileName.startswith(
        f"[{template.datastore[0].name}] {stemcell_cid}/"
    )
    assert [s.name for s in template.snapshot.rootSnapshotList] == ["initial"]


def test_resource_pool_from_the_az(cloud, new_vm, vsphere_si, vms_path, vcsim):
    cluster_name = vcsim.inventory["clusters"][1]
    cluster = cluster_by_name(vsphere_si, cluster_name)
    pool_name = f"rp-{uuid.uuid4().hex[:8]}"
    cluster.resourcePool.CreateResourcePool(pool_name, _pool_spec())
    az = {
        "datacenters": [
            {
                "name": vcsim.inventory["datacenters"][0],
                "clusters": [{cluster_name: {"resource_pool": pool_name}}],
            }
        ]
    }
    vm = find_vm(vsphere_si, vms_path, new_vm({"cpu": 1, "ram": 256, "disk": 512, **az}))
    assert vm.resourcePool.name == pool_name
    assert vm.resourcePool.owner.name == cluster_name


def _pool_spec():
    alloc = vim.ResourceAllocationInfo(
        reservation=0, limit=-1, expandableReservation=True, shares=vim.SharesInfo(level="normal")
    )
    return vim.ResourceConfigSpec(cpuAllocation=alloc, memoryAllocation=alloc)


@pytest.mark.parametrize("rule", ["MUST", "SHOULD"])
def test_host_group_az_puts_the_vm_in_a_drs_vm_group_with_a_vm_host_rule(
    rule, cloud, new_vm, vsphere_si, vms_path, vcsim
):
    cluster_name = vcsim.inventory["clusters"][0]
    cluster = cluster_by_name(vsphere_si, cluster_name)
    group = f"hg-{uuid.uuid4().hex[:8]}"
    members = sorted(cluster.host, key=lambda h: h.name)[1:]
    WaitForTask(
        cluster.ReconfigureComputeResource_Task(
            vim.cluster.ConfigSpecEx(
                groupSpec=[
                    vim.cluster.GroupSpec(
                        operation="add", info=vim.cluster.HostGroup(name=group, host=members)
                    )
                ]
            ),
            True,
        )
    )
    az = {
        "datacenters": [
            {
                "name": vcsim.inventory["datacenters"][0],
                "clusters": [{cluster_name: {"host_group": {"name": group, "drs_rule": rule}}}],
            }
        ]
    }
    a = find_vm(vsphere_si, vms_path, new_vm({"cpu": 1, "ram": 256, "disk": 512, **az}))
    b = find_vm(vsphere_si, vms_path, new_vm({"cpu": 1, "ram": 256, "disk": 512, **az}))

    config = cluster.configurationEx
    vm_group = next(g for g in config.group if g.name == f"{group}{rule}_vm_group")
    assert sorted(v._moId for v in vm_group.vm) == sorted([a._moId, b._moId])
    rules = [r for r in config.rule if r.name == f"{group}{rule}_vm_group_rule"]
    assert len(rules) == 1
    assert rules[0].vmGroupName == vm_group.name and rules[0].affineHostGroupName == group
    assert rules[0].mandatory is (rule == "MUST") and rules[0].enabled
    if rule == "MUST":
        assert a.runtime.host.name in {h.name for h in members}

    cloud.delete_vm(a.name)
    vm_group = next(g for g in cluster.configurationEx.group if g.name == f"{group}{rule}_vm_group")
    assert [v._moId for v in vm_group.vm] == [b._moId]
    cloud.delete_vm(b.name)
    config = cluster.configurationEx
    assert not [g for g in config.group if g.name == f"{group}{rule}_vm_group"], (
        "empty VM group removed"
    )
    assert not [r for r in config.rule if r.name == f"{group}{rule}_vm_group_rule"]


def test_delete_vm_removes_it_and_has_vm_follows(cloud, new_vm, vsphere_si, vms_path):
    vm_cid = new_vm()
    assert cloud.has_vm(vm_cid) is True
    cloud.delete_vm(vm_cid)
    assert cloud.has_vm(vm_cid) is False
    assert find_vm(vsphere_si, vms_path, vm_cid) is None
    with pytest.raises(VMNotFound, match=vm_cid):
        cloud.delete_vm(vm_cid)


def test_set_vm_metadata_sets_custom_attributes(cloud, new_vm, vsphere_si, vms_path):
    vm_cid = new_vm()
    metadata = {
        "director": "opsconsole",
        "deployment": "cf",
        "instance_group": "router",
        "index": "0",
        "id": "3f1c2a",
        "name": "router/3f1c2a",
    }
    cloud.set_vm_metadata(vm_cid, metadata)
    cloud.set_vm_metadata(vm_cid, {"index": "1", "created_at": "2026-01-01T00:00:00Z"})
    vm = find_vm(vsphere_si, vms_path, vm_cid)
    fields = {f.key: f.name for f in vsphere_si.content.customFieldsManager.field}
    values = {fields[v.key]: v.value for v in vm.customValue}
    assert values == {**metadata, "index": "1", "created_at": "2026-01-01T00:00:00Z"}


def test_reboot_vm_leaves_it_running(cloud, new_vm, vsphere_si, vms_path):
    vm_cid = new_vm()
    cloud.reboot_vm(vm_cid)
    assert find_vm(vsphere_si, vms_path, vm_cid).runtime.powerState == "poweredOn"


def test_calculate_vm_cloud_properties():
    from cpi.vsphere.cloud import VSphereCloud

    assert VSphereCloud.calculate_vm_cloud_properties(
        None, {"cpu": 2, "ram": 4096, "ephemeral_disk_size": 10240}
    ) == {
        "cpu": 2,
        "ram": 4096,
        "disk": 10240,
    }
    with pytest.raises(ConfigError, match="vm_resources/ram: must be a positive integer"):
        VSphereCloud.calculate_vm_cloud_properties(None, {"cpu": 2, "ephemeral_disk_size": 1})


def test_missing_vm_is_vm_not_found_for_every_vm_method(cloud):
    ghost = f"vm-{uuid.uuid4()}"
    assert cloud.has_vm(ghost) is False
    for call in (
        lambda: cloud.delete_vm(ghost),
        lambda: cloud.reboot_vm(ghost),
        lambda: cloud.set_vm_metadata(ghost, {"a": "b"}),
        lambda: cloud.get_disks(ghost),
        lambda: cloud.attach_disk(ghost, f"disk-{uuid.uuid4()}"),
        lambda: cloud.detach_disk(ghost, f"disk-{uuid.uuid4()}"),
    ):
        with pytest.raises(VMNotFound) as exc:
            call()
        assert exc.value.type == "Bosh::Clouds::VMNotFound" and ghost in exc.value.message


def _vm_names(si, vms_path):
    folder = si.content.searchIndex.FindByInventoryPath(vms_path)
    return {v.name for v in folder.childEntity} if folder else set()


def test_bad_portgroup_is_network_not_found_and_creates_nothing(
    cloud, stemcell_cid, networks, vsphere_si, vms_path
):
    before = _vm_names(vsphere_si, vms_path)
    nets = {
        **networks,
        "broken": {"type": "manual", "ip": "10.9.0.5", "cloud_properties": {"name": "no-such-pg"}},
    }
    with pytest.raises(NetworkNotFound) as exc:
        cloud.create_vm("agent-x", stemcell_cid, {"cpu": 1, "ram": 256, "disk": 512}, nets, [], {})
    assert exc.value.type == "Bosh::Clouds::NetworkNotFound"
    assert "Unable to find network 'no-such-pg'" in exc.value.message
    assert _vm_names(vsphere_si, vms_path) == before


def test_unknown_stemcell_is_a_cloud_error_naming_it(cloud, networks):
    with pytest.raises(CloudError) as exc:
        cloud.create_vm(
            "agent-x", "sc-does-not-exist", {"cpu": 1, "ram": 256, "disk": 512}, networks, [], {}
        )
    assert type(exc.value) is CloudError
    assert "Could not find stemcell 'sc-does-not-exist'" in exc.value.message


@pytest.mark.parametrize(
    "cloud_properties, nets, message",
    [
        ({"ram": 256, "disk": 512}, None, "cloud_properties/cpu: is required"),
        (
            {"cpu": 1, "ram": "lots", "disk": 512},
            None,
            "cloud_properties/ram: must be a positive integer",
        ),
        (
            {"cpu": 1, "ram": 256, "disk": 512},
            {"n": {"type": "manual"}},
            "networks/n/cloud_properties/name: is required",
        ),
        ({"cpu": 1, "ram": 256, "disk": 512}, {}, "networks: at least one network"),
        (
            {
                "cpu": 1,
                "ram": 256,
                "disk": 512,
                "datacenters": [{"name": "elsewhere", "clusters": ["x"]}],
            },
            None,
            "cloud_properties/datacenters/0/name: 'elsewhere' is not the datacenter",
        ),
    ],
)
def test_bad_create_vm_input_is_refused_before_anything_is_made(
    cloud, stemcell_cid, networks, cloud_properties, nets, message
):
    with pytest.raises(ConfigError) as exc:
        cloud.create_vm(
            "agent-x", stemcell_cid, cloud_properties, networks if nets is None else nets, [], {}
        )
    assert message in exc.value.message


def test_no_cluster_with_enough_memory_is_a_cloud_error(cloud, stemcell_cid, networks):
    with pytest.raises(
        CloudError, match="No valid placement found for requested memory: 900000 MB"
    ):
        cloud.create_vm(
            "agent-x", stemcell_cid, {"cpu": 1, "ram": 900000, "disk": 512}, networks, [], {}
        )


def test_concurrent_create_vm_on_one_cloud_object(
    cloud, stemcell_cid, networks, vsphere_si, vms_path, vcsim
):
    """The director creates VMs from several threads on one cloud: each gets its own VM and settings."""
    cluster_name = vcsim.inventory["clusters"][0]
    cluster = cluster_by_name(vsphere_si, cluster_name)
    group = f"hg-{uuid.uuid4().hex[:8]}"
    WaitForTask(
        cluster.ReconfigureComputeResource_Task(
            vim.cluster.ConfigSpecEx(
                groupSpec=[
                    vim.cluster.GroupSpec(
                        operation="add",
                        info=vim.cluster.HostGroup(name=group, host=list(cluster.host)),
                    )
                ]
            ),
            True,
        )
    )
    az = {
        "datacenters": [
            {
                "name": vcsim.inventory["datacenters"][0],
                "clusters": [{cluster_name: {"host_group": group}}],
            }
        ]
    }
    agents = [f"agent-{i}-{uuid.uuid4()}" for i in range(8)]

    def create(agent_id):
        return cloud.create_vm(
            agent_id, stemcell_cid, {"cpu": 1, "ram": 128, "disk": 256, **az}, networks, [], {}
        )[0]

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        cids = list(pool.map(create, agents))
    try:
        assert len(set(cids)) == 8
        for agent_id, vm_cid in zip(agents, cids, strict=True):
            vm = find_vm(vsphere_si, vms_path, vm_cid)
            settings = json.loads(base64.b64decode(extra_config(vm)["guestinfo.userdata"]))
            assert (settings["agent_id"], settings["vm"]["name"]) == (agent_id, vm_cid)
        vm_group = next(
            g for g in cluster.configurationEx.group if g.name == f"{group}MUST_vm_group"
        )
        assert len(vm_group.vm) == 8, "no VM lost from the DRS group by concurrent updates"
    finally:
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(cloud.delete_vm, cids))
    assert not any(cloud.has_vm(c) for c in cids)


def test_failure_after_the_clone_removes_the_half_made_vm(
    cloud, stemcell_cid, networks, vsphere_si, vms_path, monkeypatch
):
    """vcsim cannot fail a reconfigure on demand: inject the fault at our own boundary, on the real clone."""
    import cpi.vsphere.vm as vm_module

    def broken_write(vm, settings, action, device_change):
        raise CloudError(f"{action} failed: injected fault")

    monkeypatch.setattr(vm_module, "write_settings", broken_write)
    before = _vm_names(vsphere_si, vms_path)
    with pytest.raises(VMCreationFailed) as exc:
        cloud.create_vm(
            "agent-f", stemcell_cid, {"cpu": 1, "ram": 256, "disk": 512}, networks, [], {}
        )
    assert exc.value.type == "Bosh::Clouds::VMCreationFailed" and exc.value.ok_to_retry is True
    assert "injected fault" in exc.value.message
    assert _vm_names(vsphere_si, vms_path) == before, "the clone was destroyed"


def test_vm_type_datastores_choose_the_ephemeral_datastore(
    cloud, stemcell_cid, networks, new_vm, vsphere_si, vms_path, vcsim
):
    for wanted in vcsim.inventory["datastores"]:
        vm = find_vm(
            vsphere_si,
            vms_path,
            new_vm({"cpu": 1, "ram": 256, "disk": 512, "datastores": [wanted]}),
        )
        disks = sorted(
            (d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)),
            key=lambda d: d.unitNumber,
        )
        assert disks[1].backing.fileName.startswith(f"[{wanted}] "), disks[1].backing.fileName
    with pytest.raises(ConfigError, match="cloud_properties/datastores: must be a non-empty list"):
        cloud.create_vm(
            "a",
            stemcell_cid,
            {"cpu": 1, "ram": 256, "disk": 512, "datastores": "LocalDS_0"},
            networks,
            [],
            {},
        )
