"""Pure shapes the executor hands the CPI and stores: network settings, groups, applied state."""

import pytest

from cpi.logging import LoggedCpi
from director.execution.leftovers import belongs_to, tagged_vms
from director.execution.prepare import version_key
from director.execution.state import applied_from_json, applied_to_json
from director.execution.steps import bosh_groups, network_settings
from director.planning import (
    AppliedNetwork,
    AppliedState,
    DesiredInstance,
    NetworkReservation,
    StemcellRef,
    StemcellVersion,
    SubnetSpec,
)
from tests.cpi.test_base import _Echo


@pytest.mark.parametrize(
    "older, newer",
    [
        ("1.9", "1.10"),
        ("621.1", "621.10"),
        ("0.0.9", "0.0.10"),
        ("1.0", "1.0.1"),
        ("1.0-rc1", "1.0-rc2"),
    ],
)
def test_versions_compare_numerically(older, newer):
    assert version_key(older) < version_key(newer)


def desired(networks):
    return DesiredInstance(
        stemcell=StemcellRef("default", "sc", "1", "ubuntu-jammy", "sc-1"),
        vm_type="small",
        vm_extensions=(),
        cloud_properties={"cpu": 1},
        env={},
        networks=networks,
        persistent_disk_size=0,
        persistent_disk_type=None,
        persistent_disk_cloud_properties={},
        jobs=(),
        jobs_fingerprint="f",
    )


def test_network_settings_are_the_cpi_network_spec():
    subnet = SubnetSpec("10.0.0.0/24", "10.0.0.1", ("10.0.0.2",), {"name": "pg"}, ("z1",))
    spec = network_settings(
        desired(
            (
                NetworkReservation("a", "10.0.0.5", False, subnet, ("dns", "gateway")),
                NetworkReservation("b", None, False, None, (), "dynamic"),
            )
        )
    )
    assert spec == {
        "a": {
            "type": "manual",
            "ip": "10.0.0.5",
            "netmask": "255.255.255.0",
            "gateway": "10.0.0.1",
            "dns": ["10.0.0.2"],
            "cloud_properties": {"name": "pg"},
            "default": ["dns", "gateway"],
        },
        "b": {"type": "dynamic", "cloud_properties": {}},
    }


def test_bosh_groups_name_director_deployment_and_group(settings):
    settings.DIRECTOR_NAME = "d"
    assert bosh_groups("zk", "zookeeper") == [
        "d",
        "zk",
        "zookeeper",
        "d-zk",
        "zk-zookeeper",
        "d-zk-zookeeper",
    ]


@pytest.mark.parametrize(
    "facts, ours",
    [
        ({"director": "d", "deployment": "zk", "groups": []}, True),
        ({"director": None, "deployment": None, "groups": ["d", "zk", "d-zk"]}, True),
        ({"director": "other", "deployment": "zk", "groups": ["other-zk"]}, False),
        ({"director": "d", "deployment": "zk2", "groups": ["d-zk2"]}, False),
        ({"director": None, "deployment": None, "groups": []}, False),
    ],
)
def test_leftover_vms_are_recognised_by_their_tags(settings, facts, ours):
    settings.DIRECTOR_NAME = "d"
    assert belongs_to(facts, "zk") is ours


def test_a_cloud_that_cannot_list_its_vms_leaves_nothing_to_scan(settings):
    asked = []

    class Listing(_Echo):
        def vms_of_director(self, director):
            asked.append(director)
            return {"vm-1": {"director": director, "deployment": "zk", "groups": []}}

    settings.DIRECTOR_NAME = "d"
    assert tagged_vms(_Echo()) == {}  # the contract's default answer: NotImplemented
    assert tagged_vms(LoggedCpi(_Echo(), lambda record: None)) == {}
    assert tagged_vms(LoggedCpi(Listing(), lambda record: None)) == {
        "vm-1": {"director": "d", "deployment": "zk", "groups": []}
    }
    assert asked == ["d"]


def test_applied_state_survives_json():
    applied = AppliedState(
        stemcell=StemcellVersion("sc", "1"),
        cloud_properties={"cpu": 1},
        vm_type="small",
        env={"bosh": {"swap_size": 0}},
        networks=(
            AppliedNetwork(
                "a", "10.0.0.5", "10.0.0.0/24", "10.0.0.1", ("10.0.0.2",), {"name": "pg"}, ("dns",)
            ),
        ),
        persistent_disk_size=1024,
        persistent_disk_cloud_properties={},
        jobs_fingerprint="abc",
    )
    assert applied_from_json(applied_to_json(applied)) == applied
    assert applied_from_json({}) is None
