"""DeploymentPlanner end to end: manifest + cloud-config + current state -> plan."""

import copy
import datetime as dt
import itertools

import pytest
import yaml

from director.planning.errors import (
    NetworkReservationIpOutsideSubnet,
    NetworkReservationIpReserved,
    NetworkReservationNotEnoughCapacity,
    PlanError,
    UnresponsiveInstance,
)
from director.planning.inputs import ExistingInstance, PlanOptions, Reservation, StemcellRef
from director.planning.planner import default_jobs_fingerprint, plan_deployment
from tests.corpus import CORPUS, needs_corpus

CLOUD = {
    "azs": [
        {"name": "z1", "cloud_properties": {"datacenters": [{"clusters": [{"c1": {}}]}]}},
        {"name": "z2", "cloud_properties": {"datacenters": [{"clusters": [{"c2": {}}]}]}},
        {"name": "z3", "cloud_properties": {"datacenters": [{"clusters": [{"c3": {}}]}]}},
    ],
    "vm_types": [
        {"name": "small", "cloud_properties": {"cpu": 1, "ram": 1024, "disk": 10240}},
        {"name": "large", "cloud_properties": {"cpu": 4, "ram": 8192, "disk": 20480}},
    ],
    "vm_extensions": [
        {"name": "big-disk", "cloud_properties": {"disk": 51200}},
        {"name": "lb", "cloud_properties": {"nsxt": {"lb": {"server_pools": ["p"]}}}},
    ],
    "disk_types": [
        {"name": "10GB", "disk_size": 10240},
        {"name": "fast", "disk_size": 10240, "cloud_properties": {"type": "thin"}},
    ],
    "networks": [
        {
            "name": "default",
            "type": "manual",
            "subnets": [
                {
                    "range": "10.0.1.0/24",
                    "gateway": "10.0.1.1",
                    "dns": ["10.0.0.2"],
                    "reserved": ["10.0.1.2 - 10.0.1.9"],
                    "static": ["10.0.1.200 - 10.0.1.210"],
                    "az": "z1",
                    "cloud_properties": {"name": "pg-z1"},
                },
                {
                    "range": "10.0.2.0/24",
                    "gateway": "10.0.2.1",
                    "dns": ["10.0.0.2"],
                    "reserved": ["10.0.2.2 - 10.0.2.9"],
                    "static": ["10.0.2.200 - 10.0.2.210"],
                    "az": "z2",
                    "cloud_properties": {"name": "pg-z2"},
                },
                {
                    "range": "10.0.3.0/24",
                    "gateway": "10.0.3.1",
                    "dns": ["10.0.0.2"],
                    "reserved": ["10.0.3.2 - 10.0.3.9"],
                    "static": ["10.0.3.200 - 10.0.3.210"],
                    "az": "z3",
                    "cloud_properties": {"name": "pg-z3"},
                },
            ],
        },
        {
            "name": "tiny",
            "subnets": [{"range": "10.9.0.0/30", "gateway": "10.9.0.1", "azs": ["z1"]}],
        },
    ],
    "compilation": {"workers": 2, "network": "default", "az": "z1", "vm_type": "small"},
}

UPDATE = {
    "canaries": 1,
    "max_in_flight": 2,
    "canary_watch_time": "1000-30000",
    "update_watch_time": "1000-30000",
}


def group(**overrides):
    base = {
        "name": "zk",
        "azs": ["z1", "z2", "z3"],
        "instances": 3,
        "jobs": [{"name": "zookeeper", "release": "zookeeper", "properties": {"port": 2181}}],
        "vm_type": "small",
        "stemcell": "default",
        "persistent_disk": 1024,
        "networks": [{"name": "default"}],
    }
    base.update(overrides)
    return base


def manifest(*groups, **overrides):
    base = {
        "name": "zookeeper",
        "releases": [{"name": "zookeeper", "version": "0.0.10"}],
        "stemcells": [{"alias": "default", "os": "ubuntu-jammy", "version": "1.0"}],
        "update": UPDATE,
        "instance_groups": list(groups) or [group()],
    }
    base.update(overrides)
    return base


STEMCELLS = {"default": StemcellRef("default", "bosh-vsphere-esxi-ubuntu-jammy-go_agent", "1.0")}


def uuids():
    counter = itertools.count()
    return lambda: f"new-{next(counter)}"


def plan(m=None, cloud=None, existing=(), **kwargs):
    kwargs.setdefault("stemcells", STEMCELLS)
    kwargs.setdefault("uuid_factory", uuids())
    return plan_deployment(m or manifest(), cloud or CLOUD, existing, **kwargs)


def deployed(p, **overrides):
    """The existing instances after ``p`` was applied successfully."""
    result = []
    for g in p.instance_groups:
        for ip in g.instance_plans:
            if ip.desired is None:
                continue
            result.append(
                ExistingInstance(
                    uuid=ip.uuid.replace("new-", "old-"),
                    group=ip.group,
                    index=ip.index,
                    az=ip.az,
                    bootstrap=ip.bootstrap,
                    vm_cid=f"vm-{ip.uuid}",
                    vm_created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                    reservations=tuple(
                        Reservation(n.network, n.ip, n.static) for n in ip.desired.networks if n.ip
                    ),
                    applied=ip.desired.to_applied(),
                    has_persistent_disk=ip.desired.persistent_disk_size > 0,
                    **overrides,
                )
            )
    return result


def rows(p):
    return [
        (ip.index, ip.az, ip.change, ip.desired.networks[0].ip if ip.desired else None)
        for g in p.instance_groups
        for ip in g.all_plans
    ]


# -- first deploy ---------------------------------------------------------------


def test_first_deploy_creates_balanced_instances_with_lowest_ips():
    p = plan(manifest(group(instances=5)))
    assert rows(p) == [
        (0, "z1", "create", "10.0.1.10"),
        (1, "z2", "create", "10.0.2.10"),
        (2, "z3", "create", "10.0.3.10"),
        (3, "z1", "create", "10.0.1.11"),
        (4, "z2", "create", "10.0.2.11"),
    ]
    zk = p.instance_group("zk")
    assert [ip.uuid for ip in zk.instance_plans] == [f"new-{i}" for i in range(5)]
    assert [ip.bootstrap for ip in zk.instance_plans] == [True, False, False, False, False]
    assert p.summary() == {"create": 5, "recreate": 0, "update": 0, "delete": 0, "none": 0}
    assert p.initial_deploy is True
    assert len(set(p.changed_instances())) == 5  # plans are hashable
    with pytest.raises(AttributeError):
        zk.instance_plans[0].change = "none"  # and frozen
    first = zk.instance_plans[0]
    assert first.reasons == ("new instance",)
    assert first.label == "zk/new-0 (0)"
    net = first.desired.networks[0]
    assert (net.network, net.static, net.default) == ("default", False, ("dns", "gateway"))
    assert (net.subnet.range, net.subnet.gateway, net.subnet.dns, net.subnet.az) == (
        "10.0.1.0/24",
        "10.0.1.1",
        ("10.0.0.2",),
        "z1",
    )
    assert net.subnet.netmask == "255.255.255.0"
    assert dict(net.subnet.cloud_properties) == {"name": "pg-z1"}
    assert first.desired.stemcell.version == "1.0"
    assert first.desired.persistent_disk_size == 1024
    assert [j.name for j in first.desired.jobs] == ["zookeeper"]


def test_merged_cloud_properties_az_then_vm_type_then_extensions_in_order():
    p = plan(manifest(group(vm_extensions=["big-disk", "lb"])))
    props = dict(p.instance_group("zk").instance_plans[1].desired.cloud_properties)
    assert props == {
        "datacenters": [{"clusters": [{"c2": {}}]}],
        "cpu": 1,
        "ram": 1024,
        "disk": 51200,  # the extension wins over the vm_type
        "nsxt": {"lb": {"server_pools": ["p"]}},
    }


def test_vm_resources_become_cpu_ram_disk():
    g = group(vm_type=None, vm_resources={"cpu": 2, "ram": 4096, "ephemeral_disk_size": 8192})
    del g["vm_type"]
    desired = plan(manifest(g)).instance_group("zk").instance_plans[0].desired
    assert desired.vm_type is None
    assert {k: desired.cloud_properties[k] for k in ("cpu", "ram", "disk")} == {
        "cpu": 2,
        "ram": 4096,
        "disk": 8192,
    }


def test_persistent_disk_type():
    g = group(persistent_disk_type="fast")
    del g["persistent_disk"]
    desired = plan(manifest(g)).instance_group("zk").instance_plans[0].desired
    assert (desired.persistent_disk_size, desired.persistent_disk_type) == (10240, "fast")
    assert dict(desired.persistent_disk_cloud_properties) == {"type": "thin"}


def test_ips_in_use_by_other_deployments_are_skipped():
    p = plan(ips_in_use={"10.0.1.10": "instance cf/router/a (0) from deployment cf"})
    assert rows(p)[0] == (0, "z1", "create", "10.0.1.11")


def test_not_enough_ips_names_network_az_and_count():
    with pytest.raises(NetworkReservationNotEnoughCapacity) as err:
        plan(manifest(group(azs=["z1"], networks=[{"name": "tiny"}])))
    assert str(err.value) == (
        "instance_groups/zk/networks/tiny: network 'tiny' in az 'z1' has not enough free IPs "
        "for instance group 'zk': 3 needed, 1 free (subnets 10.9.0.0/30)"
    )


# -- static IPs ----------------------------------------------------------------


def test_static_ips_place_instances_in_the_ips_az():
    g = group(
        networks=[{"name": "default", "static_ips": ["10.0.2.200", "10.0.1.200 - 10.0.1.201"]}]
    )
    p = plan(manifest(g))
    # z3 has no static IP, so instances go to z1, z2, z1 (fewest first, ties by name)
    assert rows(p) == [
        (0, "z1", "create", "10.0.1.200"),
        (1, "z2", "create", "10.0.2.200"),
        (2, "z1", "create", "10.0.1.201"),
    ]
    assert all(ip.desired.networks[0].static for ip in p.instance_group("zk").instance_plans)


@pytest.mark.parametrize(
    "static_ips, error, message",
    [
        (
            ["10.0.1.200", "10.0.1.201", "10.0.0.300"],
            PlanError,
            "instance_groups/zk/networks/default/static_ips/2: '10.0.0.300' is not an IP address",
        ),
        (
            ["10.0.1.200", "10.0.1.201", "10.0.9.5"],
            NetworkReservationIpOutsideSubnet,
            "instance_groups/zk/networks/default/static_ips: 10.0.9.5 is not in any subnet of "
            "network 'default' (10.0.1.0/24, 10.0.2.0/24, 10.0.3.0/24)",
        ),
        (
            ["10.0.1.200", "10.0.1.201", "10.0.1.5"],
            NetworkReservationIpReserved,
            "instance_groups/zk/networks/default/static_ips: 10.0.1.5 for instance zk/new-2 (2) "
            "of deployment zookeeper is reserved in network 'default'",
        ),
        (
            ["10.0.1.200", "10.0.1.201", "10.0.1.50"],
            NetworkReservationIpReserved,
            "is not in the static IPs of network 'default' subnet 10.0.1.0/24",
        ),
        (
            ["10.0.1.200", "10.0.1.201"],
            PlanError,
            "instance group 'zk' has 3 instance(s) but 2 static IP(s) on network 'default'",
        ),
    ],
)
def test_static_ip_errors_name_the_path(static_ips, error, message):
    g = group(azs=["z1"], networks=[{"name": "default", "static_ips": static_ips}])
    with pytest.raises(error) as err:
        plan(manifest(g))
    assert message in str(err.value)


def test_static_ip_in_use_by_another_deployment():
    g = group(azs=["z1"], instances=1, networks=[{"name": "default", "static_ips": ["10.0.1.200"]}])
    with pytest.raises(PlanError) as err:
        plan(manifest(g), ips_in_use={"10.0.1.200": "instance web/x (0) from deployment shop"})
    assert str(err.value) == (
        "instance_groups/zk/networks/default/static_ips: 10.0.1.200 for instance zk/new-0 (0) "
        "of deployment zookeeper is already reserved by instance web/x (0) from deployment shop"
    )


# -- redeploys -------------------------------------------------------------------


def test_redeploy_without_changes_keeps_everything():
    first = plan(manifest(group(instances=5)))
    again = plan(manifest(group(instances=5)), existing=deployed(first))
    assert rows(again) == [(r[0], r[1], "none", r[3]) for r in rows(first)]
    assert again.summary()["none"] == 5
    assert again.changed_instances() == ()
    assert again.ip_reservations_to_release == ()
    assert again.initial_deploy is False
    assert [ip.reasons for ip in again.instance_group("zk").instance_plans] == [()] * 5


def test_existing_instances_keep_ips_even_when_lower_ones_are_free():
    first = plan(manifest(group(instances=5)))
    current = deployed(first)
    # drop instance 0 from the records: its IP 10.0.1.10 becomes free
    current = [e for e in current if e.index != 0]
    again = plan(manifest(group(instances=5)), existing=current)
    assert rows(again) == [
        (0, "z1", "create", "10.0.1.10"),
        (1, "z2", "none", "10.0.2.10"),
        (2, "z3", "none", "10.0.3.10"),
        (3, "z1", "none", "10.0.1.11"),
        (4, "z2", "none", "10.0.2.11"),
    ]


def test_scale_down_deletes_highest_indexes_and_releases_their_ips():
    first = plan(manifest(group(instances=5)))
    down = plan(manifest(group(instances=3)), existing=deployed(first))
    zk = down.instance_group("zk")
    assert [(ip.index, ip.change) for ip in zk.instance_plans] == [
        (0, "none"),
        (1, "none"),
        (2, "none"),
    ]
    assert [(ip.index, ip.change, ip.reasons) for ip in zk.obsolete_plans] == [
        (4, "delete", ("instances scaled down 5 -> 3",)),
        (3, "delete", ("instances scaled down 5 -> 3",)),
    ]
    assert all(ip.needs_shutting_down for ip in zk.obsolete_plans)
    assert [(r.network, r.ip, r.instance) for r in down.ip_reservations_to_release] == [
        ("default", "10.0.2.11", "zk/old-4 (4)"),
        ("default", "10.0.1.11", "zk/old-3 (3)"),
    ]
    assert down.summary() == {"create": 0, "recreate": 0, "update": 0, "delete": 2, "none": 3}


def test_removed_az_moves_instances_and_new_ones_never_reuse_released_ips():
    first = plan(manifest(group()))
    moved = plan(manifest(group(azs=["z1", "z2"])), existing=deployed(first))
    assert rows(moved) == [
        (0, "z1", "none", "10.0.1.10"),
        (1, "z2", "none", "10.0.2.10"),
        (3, "z1", "create", "10.0.1.11"),
        (2, "z3", "delete", None),
    ]
    assert moved.instance_group("zk").obsolete_plans[0].reasons == (
        "az 'z3' is no longer used by the instance group",
    )


def test_removed_group_gets_delete_plans():
    first = plan(manifest(group(), group(name="web", instances=2, persistent_disk=0)))
    second = plan(manifest(group()), existing=deployed(first))
    assert [g.name for g in second.instance_groups] == ["zk"]
    [web] = second.obsolete_groups
    assert [(ip.index, ip.change, ip.reasons) for ip in web.obsolete_plans] == [
        (1, "delete", ("instance group removed from the manifest",)),
        (0, "delete", ("instance group removed from the manifest",)),
    ]
    assert {r.ip for r in second.ip_reservations_to_release} == {"10.0.1.11", "10.0.2.11"}
    assert second.summary()["delete"] == 2
    # obsolete groups come first: they are deleted before anything is updated
    assert [ip.group for ip in second.changed_instances()] == ["web", "web"]


def test_vm_missing_is_created_for_the_existing_instance():
    first = plan(manifest(group(instances=1, azs=["z1"])))
    [current] = deployed(first)
    current = ExistingInstance(**{**current.__dict__, "vm_cid": None})
    [ip] = (
        plan(manifest(group(instances=1, azs=["z1"])), existing=[current])
        .instance_group("zk")
        .instance_plans
    )
    assert (ip.change, ip.reasons, ip.uuid, ip.existing is current) == (
        "create",
        ("vm missing",),
        current.uuid,
        True,
    )


def test_unresponsive_instances_need_fix():
    first = plan(manifest(group(instances=1, azs=["z1"])))
    current = [ExistingInstance(**{**e.__dict__, "unresponsive": True}) for e in deployed(first)]
    with pytest.raises(UnresponsiveInstance, match="run cloud check, or deploy with fix"):
        plan(manifest(group(instances=1, azs=["z1"])), existing=current)
    fixed = plan(
        manifest(group(instances=1, azs=["z1"])), existing=current, options=PlanOptions(fix=True)
    )
    [ip] = fixed.instance_group("zk").instance_plans
    assert (ip.change, ip.reasons) == ("recreate", ("unresponsive agent",))


def test_deploy_fix_recreates_what_it_found_unreachable_in_place_and_nothing_else():
    """``PlanOptions.unreachable`` (what ``deploy --fix`` found) marks the instances; each is
    recreated with its reason, in place even under create-swap-delete; the others stay."""
    m = manifest(group(instances=3, azs=["z1"], update={"vm_strategy": "create-swap-delete"}))
    current = deployed(plan(m))
    gone, deaf, fine = (e.uuid for e in current)
    options = PlanOptions(fix=True, unreachable={gone: "missing VM", deaf: "unresponsive agent"})
    plans = {ip.uuid: ip for ip in plan(m, existing=current, options=options).all_instance_plans()}
    assert (plans[gone].change, plans[gone].reasons) == ("recreate", ("missing VM",))
    assert (plans[deaf].change, plans[deaf].reasons) == ("recreate", ("unresponsive agent",))
    assert plans[gone].existing.vm_missing and not plans[deaf].existing.vm_missing
    assert not plans[gone].needs_duplicate_vm and not plans[deaf].needs_duplicate_vm
    assert plans[fine].change == "none"
    # the same instances keep their IPs
    for e in current:
        assert [n.ip for n in plans[e.uuid].desired.networks] == [r[1] for r in e.reservations]


# -- change reasons -----------------------------------------------------------------


def _cloud(**changes):
    cloud = copy.deepcopy(CLOUD)
    for path, value in changes.items():
        section, name, key = path.split("__")
        target = next(i for i in cloud[section] if i.get("name") == name)
        target[key] = value
    return cloud


def _subnet_cloud(key, value):
    cloud = copy.deepcopy(CLOUD)
    cloud["networks"][0]["subnets"][0][key] = value
    return cloud


NEWER = {"default": StemcellRef("default", "bosh-vsphere-esxi-ubuntu-jammy-go_agent", "2.0")}
OTHER_OS = {"default": StemcellRef("default", "bosh-vsphere-esxi-ubuntu-noble-go_agent", "1.0")}


@pytest.mark.parametrize(
    "title, m, kwargs, change, reasons, changes",
    [
        ("nothing", manifest(group(azs=["z1"], instances=1)), {}, "none", (), set()),
        (
            "stemcell version",
            manifest(group(azs=["z1"], instances=1)),
            {"stemcells": NEWER},
            "recreate",
            ("stemcell changed 1.0 -> 2.0",),
            {"stemcell"},
        ),
        (
            "stemcell name",
            manifest(group(azs=["z1"], instances=1)),
            {"stemcells": OTHER_OS},
            "recreate",
            (
                "stemcell changed bosh-vsphere-esxi-ubuntu-jammy-go_agent/1.0 -> "
                "bosh-vsphere-esxi-ubuntu-noble-go_agent/1.0",
            ),
            {"stemcell"},
        ),
        (
            "vm_type",
            manifest(group(azs=["z1"], instances=1, vm_type="large")),
            {},
            "recreate",
            ("vm_type changed small -> large",),
            {"cloud_properties"},
        ),
        (
            "vm_type's cloud_properties",
            manifest(group(azs=["z1"], instances=1)),
            {"cloud": _cloud(vm_types__small__cloud_properties={"cpu": 2, "ram": 1024})},
            "recreate",
            ("cloud_properties changed",),
            {"cloud_properties"},
        ),
        (
            "AZ cloud_properties",
            manifest(group(azs=["z1"], instances=1)),
            {
                "cloud": _cloud(
                    azs__z1__cloud_properties={"datacenters": [{"clusters": [{"c9": {}}]}]}
                )
            },
            "recreate",
            ("cloud_properties changed",),
            {"cloud_properties"},
        ),
        (
            "vm_extension added",
            manifest(group(azs=["z1"], instances=1, vm_extensions=["big-disk"])),
            {},
            "recreate",
            ("cloud_properties changed",),
            {"cloud_properties"},
        ),
        (
            "env",
            manifest(group(azs=["z1"], instances=1, env={"bosh": {"password": "x"}})),
            {},
            "recreate",
            ("env changed",),
            {"env"},
        ),
        (
            "IP changed to a static IP",
            manifest(
                group(
                    azs=["z1"],
                    instances=1,
                    networks=[{"name": "default", "static_ips": ["10.0.1.205"]}],
                )
            ),
            {},
            "recreate",
            ("network changed (default: 10.0.1.10 -> 10.0.1.205)",),
            {"network"},
        ),
        (
            "port group changed",
            manifest(group(azs=["z1"], instances=1)),
            {"cloud": _subnet_cloud("cloud_properties", {"name": "pg-new"})},
            "recreate",
            ("network changed (default: cloud_properties)",),
            {"network"},
        ),
        (
            "dns changed",
            manifest(group(azs=["z1"], instances=1)),
            {"cloud": _subnet_cloud("dns", ["1.1.1.1"])},
            "recreate",
            ("network changed (default: dns)",),
            {"network"},
        ),
        (
            "persistent disk size",
            manifest(group(azs=["z1"], instances=1, persistent_disk=2048)),
            {},
            "update",
            ("persistent_disk size 1024 -> 2048",),
            {"persistent_disk"},
        ),
        (
            "persistent disk removed",
            manifest(group(azs=["z1"], instances=1, persistent_disk=0)),
            {},
            "update",
            ("persistent_disk size 1024 -> 0",),
            {"persistent_disk"},
        ),
        (
            "job properties",
            manifest(
                group(
                    azs=["z1"],
                    instances=1,
                    jobs=[{"name": "zookeeper", "release": "zookeeper", "properties": {"port": 1}}],
                )
            ),
            {},
            "update",
            ("jobs or properties changed",),
            {"configuration"},
        ),
        (
            "recreate requested",
            manifest(group(azs=["z1"], instances=1)),
            {"options": PlanOptions(recreate=True)},
            "recreate",
            ("recreate requested",),
            {"recreate"},
        ),
        (
            "recreate only VMs created before a date: this one is newer",
            manifest(group(azs=["z1"], instances=1)),
            {
                "options": PlanOptions(
                    recreate=True,
                    recreate_vms_created_before=dt.datetime(2023, 1, 1, tzinfo=dt.UTC),
                )
            },
            "none",
            (),
            set(),
        ),
        (
            "recreate persistent disks",
            manifest(group(azs=["z1"], instances=1)),
            {"options": PlanOptions(recreate_persistent_disks=True)},
            "update",
            ("recreate persistent disks requested",),
            {"recreate_persistent_disks"},
        ),
        (
            "several at once, in a stable order",
            manifest(group(azs=["z1"], instances=1, vm_type="large", persistent_disk=2048)),
            {"stemcells": NEWER},
            "recreate",
            (
                "stemcell changed 1.0 -> 2.0",
                "vm_type changed small -> large",
                "persistent_disk size 1024 -> 2048",
            ),
            {"stemcell", "cloud_properties", "persistent_disk"},
        ),
    ],
)
def test_change_reasons(title, m, kwargs, change, reasons, changes):
    first = plan(manifest(group(azs=["z1"], instances=1)))
    second = plan(m, existing=deployed(first), **kwargs)
    [ip] = second.instance_group("zk").instance_plans
    assert (ip.change, ip.reasons, set(ip.changes)) == (change, reasons, changes), title
    assert ip.needs_shutting_down is (change == "recreate")
    assert ip.needs_duplicate_vm is False  # delete-create is the default


def test_renamed_vm_type_with_same_cloud_properties_is_no_change():
    cloud = copy.deepcopy(CLOUD)
    cloud["vm_types"].append(
        {"name": "small2", "cloud_properties": {"cpu": 1, "ram": 1024, "disk": 10240}}
    )
    first = plan(manifest(group(azs=["z1"], instances=1)), cloud=cloud)
    second = plan(
        manifest(group(azs=["z1"], instances=1, vm_type="small2")),
        cloud=cloud,
        existing=deployed(first),
    )
    assert second.instance_group("zk").instance_plans[0].change == "none"


def test_detached_instances_are_not_recreated():
    first = plan(manifest(group(azs=["z1"], instances=1)))
    current = [
        ExistingInstance(**{**e.__dict__, "vm_cid": None, "state": "detached"})
        for e in deployed(first)
    ]
    [ip] = (
        plan(manifest(group(azs=["z1"], instances=1)), existing=current, stemcells=NEWER)
        .instance_group("zk")
        .instance_plans
    )
    assert (ip.change, ip.needs_shutting_down, ip.desired.state) == ("update", False, "detached")


# -- create-swap-delete ------------------------------------------------------------------


def test_create_swap_delete_needs_a_duplicate_vm_with_fresh_ips():
    m = manifest(group(instances=2, azs=["z1"], update={"vm_strategy": "create-swap-delete"}))
    first = plan(m)
    current = deployed(first)
    second = plan(m, existing=current, stemcells=NEWER)
    plans = second.instance_group("zk").instance_plans
    assert [(ip.change, ip.needs_duplicate_vm) for ip in plans] == [("recreate", True)] * 2
    old_ips = [e.reservations[0].ip for e in current]
    new_ips = [ip.desired.networks[0].ip for ip in plans]
    assert old_ips == ["10.0.1.10", "10.0.1.11"]
    assert new_ips == ["10.0.1.12", "10.0.1.13"]
    assert [r.ip for r in second.ip_reservations_to_release] == old_ips


@pytest.mark.parametrize(
    "title, m, kwargs, expected",
    [
        (
            "update only: VM kept",
            manifest(
                group(
                    instances=1,
                    azs=["z1"],
                    persistent_disk=2048,
                    update={"vm_strategy": "create-swap-delete"},
                )
            ),
            {},
            ("update", False),
        ),
        (
            "static IPs fall back to delete-create",
            manifest(
                group(
                    instances=1,
                    azs=["z1"],
                    update={"vm_strategy": "create-swap-delete"},
                    networks=[{"name": "default", "static_ips": ["10.0.1.200"]}],
                )
            ),
            {"stemcells": NEWER},
            ("recreate", False),
        ),
        (
            "director default strategy",
            manifest(group(instances=1, azs=["z1"])),
            {"stemcells": NEWER, "options": PlanOptions(default_vm_strategy="create-swap-delete")},
            ("recreate", True),
        ),
    ],
)
def test_create_swap_delete_table(title, m, kwargs, expected):
    first = plan(manifest(group(instances=1, azs=["z1"])))
    [ip] = plan(m, existing=deployed(first), **kwargs).instance_group("zk").instance_plans
    assert (ip.change, ip.needs_duplicate_vm) == expected, title


# -- errands and update config -----------------------------------------------------------


def test_errand_instances_get_no_vm_at_deploy():
    errand = group(
        name="smoke-tests", lifecycle="errand", instances=1, azs=["z1"], persistent_disk=0
    )
    p = plan(manifest(group(), errand))
    smoke = p.instance_group("smoke-tests")
    assert smoke.is_errand
    [ip] = smoke.instance_plans
    assert (ip.change, ip.reasons, ip.lifecycle) == (
        "none",
        ("errand: VM is created when the errand runs",),
        "errand",
    )
    # it still reserves its IP, so a later run finds it free
    assert ip.desired.networks[0].ip == "10.0.1.11"


def test_group_update_is_resolved_per_group():
    p = plan(
        manifest(group(), group(name="web", update={"serial": False, "max_in_flight": "50%"})),
        options=PlanOptions(canaries=0),
    )
    zk, web = p.instance_groups
    assert (zk.update.serial, zk.update.max_in_flight, zk.update.canaries) == (True, "2", "0")
    assert (web.update.serial, web.update.max_in_flight) == (False, "50%")


# -- manifest errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "m, message",
    [
        (manifest(group(vm_type="huge")), "instance_groups/zk/vm_type: unknown vm_type 'huge'"),
        (manifest(group(azs=["z1", "z9"])), "instance_groups/zk/azs: unknown AZ 'z9'"),
        (manifest(group(stemcell="other")), "instance_groups/zk/stemcell: stemcell 'other' is not"),
        (
            manifest(group(networks=[{"name": "nope"}])),
            "instance_groups/zk/networks/nope: network 'nope' is not in the cloud-config",
        ),
        (
            manifest(group(networks=[{"name": "tiny"}])),
            "instance_groups/zk/networks/tiny: no subnet of network 'tiny' serves az 'z2'",
        ),
        (
            manifest(group(networks=[{"name": "default"}, {"name": "tiny"}], azs=["z1"])),
            "instance_groups/zk/networks: with more than one network, exactly one must have 'dns'",
        ),
        (manifest(group(instances=-1)), "instance_groups/zk/instances: must be a whole number"),
        (manifest(group(instances="3")), "instance_groups/zk/instances: must be a whole number"),
        (manifest(group(lifecycle="daemon")), "instance_groups/zk/lifecycle: 'daemon' is not"),
        (
            manifest(group(vm_extensions=["x"])),
            "instance_groups/zk/vm_extensions: unknown vm_extension 'x'",
        ),
        (
            manifest(group(persistent_disk_type="ssd")),
            "instance_groups/zk: use either persistent_disk",
        ),
        (manifest(group(networks=[])), "instance_groups/zk/networks: at least one network"),
        (manifest(group(), group()), "instance_groups/zk: name is used twice"),
        (
            manifest(group(update={"canaries": "lots"})),
            "instance_groups/zk/update/canaries: 'lots'",
        ),
        (
            manifest(group(migrated_from=[{"name": "old"}])),
            "instance_groups/zk/migrated_from: is not supported",
        ),
        (manifest(group(jobs=[{"name": "x"}])), "instance_groups/zk/jobs/x/release: is required"),
        ({"instance_groups": []}, "name: is required"),
    ],
)
def test_manifest_errors_name_the_path(m, message):
    with pytest.raises(PlanError) as err:
        plan(m)
    assert str(err.value).startswith(message)


def test_multiple_networks_with_defaults():
    g = group(
        azs=["z1"],
        instances=1,
        networks=[{"name": "default", "default": ["dns", "gateway"]}, {"name": "tiny"}],
    )
    [ip] = plan(manifest(g)).instance_group("zk").instance_plans
    assert [(n.network, n.ip, n.default) for n in ip.desired.networks] == [
        ("default", "10.0.1.10", ("dns", "gateway")),
        ("tiny", "10.9.0.2", ()),
    ]


def test_jobs_fingerprint_is_injectable_and_default_is_stable():
    g = group()
    assert default_jobs_fingerprint(g) == default_jobs_fingerprint(copy.deepcopy(g))
    p = plan(manifest(g), jobs_fingerprint=lambda raw: f"fp-{raw['name']}")
    assert p.instance_group("zk").instance_plans[0].desired.jobs_fingerprint == "fp-zk"


# -- real manifests --------------------------------------------------------------------------


@needs_corpus
def test_corpus_zookeeper_on_the_bosh_deployment_vsphere_cloud_config():
    cloud_text = (CORPUS / "cloud-configs/bosh-deployment/vsphere/cloud-config.yml").read_text()
    for var, value in {
        "((vcenter_cluster))": "cluster1",
        "((internal_cidr))": "10.0.0.0/24",
        "((internal_gw))": "10.0.0.1",
        "((network_name))": "VM Network",
    }.items():
        cloud_text = cloud_text.replace(var, value)
    cloud = yaml.safe_load(cloud_text)
    cloud["networks"][0]["subnets"][0]["reserved"] = ["10.0.0.2 - 10.0.0.9"]
    m = yaml.safe_load(
        (CORPUS / "deployments/docs-bosh/deployment-basics-zookeeper.yml").read_text()
    )
    p = plan(m, cloud)
    zk = p.instance_group("zookeeper")
    assert [(ip.index, ip.az, ip.desired.networks[0].ip) for ip in zk.instance_plans] == [
        (0, "z1", "10.0.0.10"),
        (1, "z2", "10.0.0.11"),
        (2, "z3", "10.0.0.12"),
        (3, "z1", "10.0.0.13"),
        (4, "z2", "10.0.0.14"),
    ]
    assert zk.instance_plans[0].desired.persistent_disk_size == 10240
    assert dict(zk.instance_plans[0].desired.cloud_properties) == {
        "datacenters": [{"clusters": [{"cluster1": {}}]}],
        "cpu": 2,
        "ram": 1024,
        "disk": 30000,
    }
    assert (zk.update.canaries, zk.update.max_in_flight) == ("2", "1")
    assert p.instance_group("smoke-tests").is_errand
    assert p.summary() == {"create": 5, "recreate": 0, "update": 0, "delete": 0, "none": 1}
