"""Placement is pure: tables of inventory snapshots -> the cluster, host and datastores chosen."""

import pytest

from cpi.base import CloudError, NoDiskSpace
from cpi.vsphere.config import ClusterSpec, ConfigError, DatacenterConfig, HostGroup
from cpi.vsphere.placement import (
    ClusterState,
    DatastoreState,
    DiskRequest,
    HostState,
    candidate_clusters,
    pick_datastore,
    pick_persistent_datastore,
    place_vm,
    vm_group_name,
    vm_host_rule_name,
)

DC = DatacenterConfig(
    name="DC0",
    vm_folder="vms",
    template_folder="templates",
    disk_path="disks",
    datastore_pattern="^eph",
    persistent_datastore_pattern="^pers",
    clusters=(ClusterSpec("C0"), ClusterSpec("C1", resource_pool="RP")),
)


def ds(name, free, maintenance=False, accessible=True):
    return DatastoreState(
        name=name,
        free_mb=free,
        capacity_mb=free * 2,
        maintenance=maintenance,
        accessible=accessible,
    )


def host(name, free, connected=True, maintenance=False):
    return HostState(name=name, free_memory_mb=free, connected=connected, maintenance=maintenance)


def cluster(name, hosts, datastores, pools=("Resources",), groups=None):
    return ClusterState(
        name=name,
        hosts=tuple(hosts),
        datastores=tuple(datastores),
        resource_pools=frozenset(pools),
        host_groups=groups or {},
    )


# -- candidate clusters from AZ / vm_type cloud properties ---------------------------


@pytest.mark.parametrize(
    "cloud_properties, expected",
    [
        ({}, (ClusterSpec("C0"), ClusterSpec("C1", resource_pool="RP"))),
        ({"datacenters": [{"name": "DC0", "clusters": ["C1"]}]}, (ClusterSpec("C1"),)),
        (
            {
                "datacenters": [
                    {
                        "name": "DC0",
                        "clusters": [{"C2": {"resource_pool": "P", "host_group": "HG"}}],
                    }
                ]
            },
            (ClusterSpec("C2", resource_pool="P", host_group=HostGroup("HG", "MUST")),),
        ),
        (
            {
                "datacenters": [
                    {
                        "name": "DC0",
                        "clusters": [
                            {"C2": {"host_group": {"name": "HG", "drs_rule": "SHOULD"}}},
                            "C0",
                        ],
                    }
                ]
            },
            (ClusterSpec("C2", host_group=HostGroup("HG", "SHOULD")), ClusterSpec("C0")),
        ),
        (
            {"datacenters": [{"name": "DC0"}]},
            (ClusterSpec("C0"), ClusterSpec("C1", resource_pool="RP")),
        ),
    ],
)
def test_candidate_clusters(cloud_properties, expected):
    assert candidate_clusters(cloud_properties, DC) == expected


@pytest.mark.parametrize(
    "cloud_properties, message",
    [
        ({"datacenters": []}, "cloud_properties/datacenters: must be a non-empty list"),
        ({"datacenters": ["DC0"]}, "cloud_properties/datacenters/0: must be a map"),
        (
            {"datacenters": [{"name": "DC9", "clusters": ["C0"]}]},
            "cloud_properties/datacenters/0/name: 'DC9' is not the datacenter",
        ),
        (
            {"datacenters": [{"name": "DC0", "clusters": [{"C0": {"host_group": 3}}]}]},
            "cloud_properties/datacenters/0/clusters/0/C0/host_group",
        ),
    ],
)
def test_candidate_cluster_errors_name_the_path(cloud_properties, message):
    with pytest.raises(ConfigError) as exc:
        candidate_clusters(cloud_properties, DC)
    assert message in exc.value.message


# -- datastores ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "datastores, pattern, size, extra, expected",
    [
        ([ds("eph-a", 5000), ds("eph-b", 9000)], "^eph", 1000, 0, "eph-b"),  # most free
        ([ds("eph-a", 5000), ds("pers-b", 90000)], "^eph", 1000, 0, "eph-a"),  # pattern
        ([ds("eph-b", 5000), ds("eph-a", 5000)], "^eph", 1000, 0, "eph-a"),  # tie -> name
        ([ds("eph-a", 2024), ds("eph-b", 2025)], "^eph", 1000, 0, "eph-b"),  # needs > size + 1024
        ([ds("eph-a", 2024)], "^eph", 1000, 0, None),
        ([ds("eph-a", 4000)], "^eph", 1000, 0, "eph-a"),
        ([ds("eph-a", 4000)], "^eph", 1000, 2500, None),  # swap headroom: needs > 4524
        ([ds("eph-a", 90000, maintenance=True), ds("eph-b", 3000)], "^eph", 1000, 0, "eph-b"),
        ([ds("eph-a", 90000, accessible=False)], "^eph", 1000, 0, None),
        ([], "^eph", 1, 0, None),
    ],
)
def test_pick_datastore(datastores, pattern, size, extra, expected):
    picked = pick_datastore(datastores, pattern, size, extra)
    assert (picked.name if picked else None) == expected


def test_no_persistent_datastore_is_no_disk_space_with_the_candidates_listed():
    with pytest.raises(NoDiskSpace) as exc:
        pick_persistent_datastore([ds("pers-a", 1500), ds("eph-a", 99999)], "^pers", 1000)
    assert "pers-a 1500 MB free" in exc.value.message and "eph-a" not in exc.value.message
    with pytest.raises(NoDiskSpace) as exc:
        pick_persistent_datastore([ds("eph-a", 99999)], "^pers", 1000)
    assert "no datastore matches (available: eph-a)" in exc.value.message


# -- VMs ------------------------------------------------------------------------------

EPH = DiskRequest("ephemeral", 2000, "^eph", extra_mb=512)
STATES = {
    "C0": cluster(
        "C0", [host("h0", 3000), host("h1", 3000)], [ds("eph-0", 50000), ds("pers-0", 50000)]
    ),
    "C1": cluster(
        "C1",
        [host("h2", 8000), host("h3", 500), host("h4", 9000, maintenance=True)],
        [ds("eph-1", 20000), ds("pers-1", 50000)],
        pools=("Resources", "RP"),
        groups={"HG": ("h3", "h4"), "HG2": ("h2", "h3")},
    ),
}


def test_cluster_with_most_free_memory_wins():
    p = place_vm(DC.clusters, STATES, 512, [EPH])
    assert (p.cluster.name, p.resource_pool, p.host, dict(p.datastores)) == (
        "C1",
        "RP",
        None,
        {"ephemeral": "eph-1"},
    )


def test_hosts_in_maintenance_or_disconnected_do_not_count():
    states = dict(STATES)
    states["C1"] = cluster(
        "C1",
        [host("h2", 8000, connected=False), host("h4", 9000, maintenance=True)],
        [ds("eph-1", 20000)],
        pools=("RP",),
    )
    assert place_vm(DC.clusters, states, 512, [EPH]).cluster.name == "C0"


def test_memory_needs_ram_plus_128_mb_headroom():
    # C0 has 6000 MB free: 5872 of RAM does not fit (needs > 6000), 5871 does.
    only_c0 = (ClusterSpec("C0"),)
    assert place_vm(only_c0, STATES, 5871, [EPH]).cluster.name == "C0"
    with pytest.raises(CloudError) as exc:
        place_vm(only_c0, STATES, 5872, [EPH])
    assert type(exc.value) is CloudError
    assert "No valid placement found for requested memory: 5872 MB" in exc.value.message
    assert "C0: 6000 MB free memory" in exc.value.message


def test_must_host_group_pins_the_emptiest_usable_host_of_the_group():
    spec = ClusterSpec("C1", host_group=HostGroup("HG2", "MUST"))
    p = place_vm((spec,), STATES, 256, [EPH])
    assert p.host == "h2" and p.host_group == HostGroup("HG2", "MUST")


def test_should_host_group_leaves_the_host_to_drs_but_counts_group_memory():
    spec = ClusterSpec("C1", host_group=HostGroup("HG", "SHOULD"))
    p = place_vm((spec,), STATES, 256, [EPH])
    assert p.host is None and p.cluster == spec
    # HG = h3 (500 MB) + h4 (maintenance): not enough for 512 MB.
    with pytest.raises(CloudError, match="C1/HG: 500 MB free memory"):
        place_vm((spec,), STATES, 512, [EPH])


def test_existing_persistent_disk_stays_and_draws_the_vm_to_its_cluster():
    disk_on_c0 = DiskRequest("disk-1", 10000, "^pers", current_datastore="pers-0")
    p = place_vm(DC.clusters, STATES, 512, [EPH, disk_on_c0])
    assert p.cluster.name == "C0" and p.datastores == {"ephemeral": "eph-0", "disk-1": "pers-0"}
    assert p.migration_mb == 0


def test_disk_that_must_move_counts_as_migration():
    disk_elsewhere = DiskRequest("disk-1", 10000, "^pers", current_datastore="pers-9")
    p = place_vm(DC.clusters, STATES, 512, [EPH, disk_elsewhere])
    assert p.cluster.name == "C1" and p.datastores["disk-1"] == "pers-1" and p.migration_mb == 10000


def test_space_claimed_by_one_disk_is_not_offered_to_the_next():
    states = {"C0": cluster("C0", [host("h0", 9000)], [ds("eph-0", 5000), ds("eph-1", 4000)])}
    a = DiskRequest("a", 3000, "^eph")
    b = DiskRequest("b", 2500, "^eph")
    p = place_vm((ClusterSpec("C0"),), states, 512, [a, b])
    assert p.datastores == {"a": "eph-0", "b": "eph-1"}


def test_only_disk_problems_raise_no_disk_space():
    with pytest.raises(NoDiskSpace) as exc:
        place_vm(DC.clusters, STATES, 512, [DiskRequest("ephemeral", 60000, "^eph")])
    assert "C0: no datastore for ephemeral (60000 MB)" in exc.value.message
    assert "C1: no datastore for ephemeral" in exc.value.message


@pytest.mark.parametrize(
    "spec, message",
    [
        (ClusterSpec("C9"), "Cluster 'C9' was not found"),
        (
            ClusterSpec("C0", resource_pool="nope"),
            "Resource pool 'nope' was not found in cluster 'C0'",
        ),
        (
            ClusterSpec("C1", host_group=HostGroup("nope", "MUST")),
            "Host group 'nope' was not found in cluster 'C1'",
        ),
    ],
)
def test_missing_inventory_objects_are_named(spec, message):
    with pytest.raises(CloudError, match=message):
        place_vm((spec,), STATES, 256, [EPH])


def test_drs_names_follow_the_vsphere_cpi():
    assert vm_group_name(HostGroup("HG", "MUST")) == "HGMUST_vm_group"
    assert vm_host_rule_name(HostGroup("HG", "SHOULD")) == "HGSHOULD_vm_group_rule"
