"""IP ranges and allocation on manual networks (BOSH §1.6)."""

import pytest

from director.planning.addresses import IpRangeSet, expand_ips, parse_ip_list
from director.planning.errors import (
    NetworkReservationAlreadyInUse,
    NetworkReservationIpOutsideSubnet,
    NetworkReservationIpReserved,
    NetworkReservationNotEnoughCapacity,
    PlanError,
)
from director.planning.ips import Holder, IpAllocator
from director.planning.networks import parse_network, parse_networks, parse_subnet


def holder(n: int, group: str = "zk") -> Holder:
    return Holder(uuid=f"uuid-{n}", label=f"{group}/{n}")


def allocator(subnets, *, ips_in_use=None, own=None, director_ips=(), name="default"):
    networks = parse_networks([{"name": name, "type": "manual", "subnets": subnets}])
    return IpAllocator(
        networks, deployment="zookeeper", ips_in_use=ips_in_use, own=own, director_ips=director_ips
    )


def dynamic(alloc, count, az=None, network="default"):
    holders = [holder(i) for i in range(count)]
    return [r.ip for r in alloc.allocate_dynamic_many(network, az, holders, group="zk", path="p")]


# -- IpRangeSet ---------------------------------------------------------


@pytest.mark.parametrize(
    "intervals, expected",
    [
        ([], []),
        ([(1, 1), (2, 2), (3, 3)], [(1, 3)]),
        ([(5, 9), (1, 3)], [(1, 3), (5, 9)]),
        ([(1, 5), (3, 9)], [(1, 9)]),
        ([(1, 5), (2, 3)], [(1, 5)]),
    ],
)
def test_range_set_merges(intervals, expected):
    assert list(IpRangeSet(intervals).intervals()) == expected


def test_range_set_add_merges_neighbours_and_queries():
    s = IpRangeSet([(10, 20), (30, 40)])
    s.add(21, 29)
    assert list(s.intervals()) == [(10, 40)]
    s.add(50)
    s.add(5, 8)
    assert list(s.intervals()) == [(5, 8), (10, 40), (50, 50)]
    assert 9 not in s and 10 in s and 50 in s and 51 not in s
    assert s.first_gap(5, 100) == 9
    assert s.first_gap(10, 100) == 41
    assert s.first_gap(10, 40) is None
    assert s.count_in(0, 100) == 4 + 31 + 1
    assert s.count_in(35, 52) == 6 + 1
    assert len(s) == 36


def test_range_set_handles_an_ipv6_64_without_materialising():
    s = IpRangeSet([(0, 2**64 - 1)])
    s.add(2**64, 2**64 + 5)
    assert s.count_in(0, 2**65) == 2**64 + 6
    assert s.first_gap(0, 2**65) == 2**64 + 6


@pytest.mark.parametrize(
    "value, expected",
    [
        (["10.0.0.1"], [("10.0.0.1", "10.0.0.1")]),
        (["10.0.0.1 - 10.0.0.9"], [("10.0.0.1", "10.0.0.9")]),
        (["10.0.0.1-10.0.0.9", "10.0.0.10"], [("10.0.0.1", "10.0.0.10")]),
        (["10.0.0.16/30"], [("10.0.0.16", "10.0.0.19")]),
        ("10.0.0.5", [("10.0.0.5", "10.0.0.5")]),
        (None, []),
    ],
)
def test_parse_ip_list(value, expected):
    import ipaddress

    got = [
        (str(ipaddress.IPv4Address(lo)), str(ipaddress.IPv4Address(hi)))
        for lo, hi in parse_ip_list(value, 4, "p").intervals()
    ]
    assert got == expected


@pytest.mark.parametrize(
    "value, message",
    [
        (["10.0.0.300"], "p/0: '10.0.0.300' is not an IP address, 'a - b' range or CIDR"),
        (["10.0.0.9 - 10.0.0.1"], "p/0: '10.0.0.9 - 10.0.0.1': range start is after its end"),
        (["fd00::1"], "p/0: 'fd00::1' is not an IPv4 address"),
        ([7], "p/0: 7 is not an IP address, 'a - b' range or CIDR"),
        ({"a": 1}, "p: must be a list of IPs or 'a - b' ranges"),
    ],
)
def test_parse_ip_list_errors(value, message):
    with pytest.raises(PlanError) as err:
        parse_ip_list(value, 4, "p")
    assert str(err.value) == message


def test_expand_ips_keeps_order_and_expands_ranges():
    assert expand_ips(["10.0.0.9", "10.0.0.2 - 10.0.0.4"], None, "p") == [
        "10.0.0.9",
        "10.0.0.2",
        "10.0.0.3",
        "10.0.0.4",
    ]


# -- subnet validation ---------------------------------------------------

SUBNET = {"range": "10.0.0.0/24", "gateway": "10.0.0.1", "dns": ["8.8.8.8"]}


@pytest.mark.parametrize(
    "override, path, message",
    [
        ({"range": None}, "s/range", "is required"),
        ({"range": "10.0.0.5/24"}, "s/range", "not a valid CIDR"),
        ({"gateway": None}, "s/gateway", "is required"),
        ({"gateway": "10.0.0.0"}, "s/gateway", "must be an address inside 10.0.0.0/24"),
        ({"gateway": "10.0.0.255"}, "s/gateway", "must be an address inside"),
        ({"gateway": "10.0.1.1"}, "s/gateway", "must be an address inside"),
        ({"reserved": ["10.0.1.5"]}, "s/reserved", "10.0.1.5 is outside the range"),
        ({"static": ["10.0.0.250 - 10.0.1.2"]}, "s/static", "is outside the range"),
        (
            {"reserved": ["10.0.0.2 - 10.0.0.10"], "static": ["10.0.0.10 - 10.0.0.20"]},
            "s/static",
            "10.0.0.10 - 10.0.0.20 overlaps reserved",
        ),
        ({"static": ["10.0.0.1"]}, "s/static", "overlaps reserved addresses, the gateway"),
        ({"az": "z1", "azs": ["z1"]}, "s", "either 'az' or 'azs'"),
        ({"azs": ["z9"]}, "s/azs", "unknown AZ 'z9'"),
    ],
)
def test_subnet_errors_name_the_field(override, path, message):
    raw = {**SUBNET, **override}
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(PlanError) as err:
        parse_subnet(raw, "s", known_azs=["z1", "z2"])
    assert err.value.path == path
    assert message in err.value.message


def test_network_errors():
    with pytest.raises(PlanError, match="n/subnets/1/range: 10.0.0.128/25 overlaps 10.0.0.0/24"):
        parse_network(
            {"name": "n", "subnets": [SUBNET, {"range": "10.0.0.128/25", "gateway": "10.0.0.129"}]},
            "n",
        )
    with pytest.raises(PlanError, match="n/type: 'bogus' is not one of"):
        parse_network({"name": "n", "type": "bogus"}, "n")
    with pytest.raises(PlanError, match="cloud_config/networks/a: network name is used twice"):
        parse_networks([{"name": "a", "type": "vip"}, {"name": "a", "type": "vip"}])


# -- dynamic allocation --------------------------------------------------


def test_never_hands_out_network_gateway_reserved_static_director_or_broadcast():
    alloc = allocator(
        [
            {
                "range": "10.0.0.0/28",
                "gateway": "10.0.0.1",
                "reserved": ["10.0.0.2 - 10.0.0.4", "10.0.0.7"],
                "static": ["10.0.0.8 - 10.0.0.10"],
            }
        ],
        director_ips=["10.0.0.12"],
    )
    # .0 network, .1 gateway, .2-.4 and .7 reserved, .8-.10 static, .12 director, .15 broadcast
    assert dynamic(alloc, 5) == ["10.0.0.5", "10.0.0.6", "10.0.0.11", "10.0.0.13", "10.0.0.14"]
    with pytest.raises(NetworkReservationNotEnoughCapacity):
        dynamic(alloc, 1)


def test_lowest_free_first_and_skips_ips_in_use_by_other_deployments():
    alloc = allocator(
        [SUBNET],
        ips_in_use={"10.0.0.2": "instance cf/router/x (0) from deployment cf", "10.0.0.4": "x"},
    )
    assert dynamic(alloc, 3) == ["10.0.0.3", "10.0.0.5", "10.0.0.6"]


def test_dynamic_only_from_subnets_serving_the_az_in_cloud_config_order():
    alloc = allocator(
        [
            {"range": "10.0.1.0/24", "gateway": "10.0.1.1", "az": "z1"},
            {"range": "10.0.2.0/30", "gateway": "10.0.2.1", "azs": ["z2"]},
            {"range": "10.0.3.0/24", "gateway": "10.0.3.1", "azs": ["z2", "z3"]},
        ]
    )
    assert dynamic(alloc, 1, "z1") == ["10.0.1.2"]
    # /30 has one usable address (.2), then the next subnet serving z2
    assert dynamic(alloc, 2, "z2") == ["10.0.2.2", "10.0.3.2"]
    assert dynamic(alloc, 1, "z3") == ["10.0.3.3"]


def test_slash_30_capacity_error_names_network_az_and_count():
    alloc = allocator([{"range": "10.0.0.0/30", "gateway": "10.0.0.1", "az": "z1"}])
    with pytest.raises(NetworkReservationNotEnoughCapacity) as err:
        dynamic(alloc, 2, "z1")
    assert str(err.value) == (
        "p: network 'default' in az 'z1' has not enough free IPs for instance group 'zk': "
        "2 needed, 1 free (subnets 10.0.0.0/30)"
    )


def test_ipv6_subnet():
    alloc = allocator(
        [
            {
                "range": "fd00:10::/64",
                "gateway": "fd00:10::1",
                "reserved": ["fd00:10::2 - fd00:10::ff"],
                "static": ["fd00:10::100 - fd00:10::1ff"],
            }
        ]
    )
    assert dynamic(alloc, 2) == ["fd00:10::200", "fd00:10::201"]
    r = alloc.reserve_static("default", "fd00:10::100", holder(9), "p")
    assert (r.ip, r.static, r.subnet.range, r.subnet.gateway) == (
        "fd00:10::100",
        True,
        "fd00:10::/64",
        "fd00:10::1",
    )
    # network, gateway, reserved, static, last address, two allocated
    assert alloc.free_count(alloc.networks["default"], None) == 2**64 - 2 - 254 - 256 - 1 - 2


# -- static reservations --------------------------------------------------

STATIC_SUBNET = {
    "range": "10.0.0.0/24",
    "gateway": "10.0.0.1",
    "reserved": ["10.0.0.2 - 10.0.0.9"],
    "static": ["10.0.0.10 - 10.0.0.20"],
}


@pytest.mark.parametrize(
    "ip, error, message",
    [
        (
            "10.0.0.5",
            NetworkReservationIpReserved,
            "10.0.0.5 for instance zk/1 of deployment zookeeper is reserved in network 'default'",
        ),
        (
            "10.0.0.1",
            NetworkReservationIpReserved,
            "10.0.0.1 for instance zk/1 of deployment zookeeper is reserved",
        ),
        (
            "10.0.0.30",
            NetworkReservationIpReserved,
            "10.0.0.30 for instance zk/1 of deployment zookeeper is not in the static IPs "
            "of network 'default' subnet 10.0.0.0/24",
        ),
        (
            "10.0.1.10",
            NetworkReservationIpOutsideSubnet,
            "10.0.1.10 for instance zk/1 of deployment zookeeper is not in any subnet of "
            "network 'default' (10.0.0.0/24)",
        ),
        (
            "10.0.0.11",
            NetworkReservationAlreadyInUse,
            "10.0.0.11 for instance zk/1 of deployment zookeeper is already reserved by "
            "instance router/abc (0) from deployment cf",
        ),
        ("10.0.0.300", PlanError, "'10.0.0.300' is not an IP address"),
    ],
)
def test_static_reservation_errors(ip, error, message):
    alloc = allocator(
        [STATIC_SUBNET], ips_in_use={"10.0.0.11": "instance router/abc (0) from deployment cf"}
    )
    path = "instance_groups/zk/networks/default/static_ips"
    with pytest.raises(error) as err:
        alloc.reserve_static("default", ip, holder(1), path)
    assert err.value.path == path
    assert message in err.value.message


def test_static_ip_claimed_in_this_plan_cannot_be_claimed_twice():
    alloc = allocator([STATIC_SUBNET])
    alloc.reserve_static("default", "10.0.0.10", holder(1), "p")
    with pytest.raises(NetworkReservationAlreadyInUse, match="already reserved by instance zk/1"):
        alloc.reserve_static("default", "10.0.0.10", holder(2), "p")


def test_own_instance_keeps_its_ip_even_when_listed_in_use():
    own = {"10.0.0.10": holder(1), "10.0.0.22": holder(1)}
    alloc = allocator(
        [STATIC_SUBNET],
        ips_in_use={"10.0.0.10": "zookeeper/zk/uuid-1", "10.0.0.22": "zookeeper/zk/uuid-1"},
        own=own,
    )
    assert alloc.reserve_static("default", "10.0.0.10", holder(1), "p").ip == "10.0.0.10"
    kept = alloc.keep_dynamic("default", "10.0.0.22", holder(1), None)
    assert kept is not None and kept.ip == "10.0.0.22" and not kept.static
    # another instance of the same deployment cannot take them
    with pytest.raises(NetworkReservationAlreadyInUse, match="instance zk/1 from deployment"):
        alloc.reserve_static("default", "10.0.0.10", holder(2), "p")


@pytest.mark.parametrize(
    "ip, az, kept",
    [
        ("10.0.0.30", None, True),
        ("10.0.0.5", None, False),  # now reserved
        ("10.0.0.12", None, False),  # now in the static list
        ("10.0.1.30", None, False),  # outside every subnet
        ("10.0.0.31", None, False),  # held by another deployment
    ],
)
def test_keep_dynamic_only_while_still_valid(ip, az, kept):
    alloc = allocator([STATIC_SUBNET], ips_in_use={"10.0.0.31": "other"})
    assert (alloc.keep_dynamic("default", ip, holder(1), az) is not None) is kept


def test_keep_dynamic_refuses_a_subnet_that_no_longer_serves_the_az():
    alloc = allocator([{**SUBNET, "az": "z1"}])
    assert alloc.keep_dynamic("default", "10.0.0.30", holder(1), "z2") is None
    assert alloc.keep_dynamic("default", "10.0.0.30", holder(1), "z1") is not None


def test_kept_ips_are_not_handed_out_again():
    alloc = allocator([SUBNET])
    alloc.keep_dynamic("default", "10.0.0.2", holder(1), None)
    assert dynamic(alloc, 1) == ["10.0.0.3"]


def test_vip_and_dynamic_networks():
    networks = parse_networks(
        [
            {"name": "public", "type": "vip"},
            {"name": "dhcp", "type": "dynamic", "cloud_properties": {"name": "VM Network"}},
        ]
    )
    alloc = IpAllocator(networks, deployment="d", ips_in_use={"203.0.113.9": "other"})
    r = alloc.reserve_static("public", "203.0.113.10", holder(1), "p")
    assert (r.ip, r.static, r.subnet, r.type) == ("203.0.113.10", True, None, "vip")
    with pytest.raises(NetworkReservationAlreadyInUse):
        alloc.reserve_static("public", "203.0.113.9", holder(1), "p")
    [d] = alloc.allocate_dynamic_many("dhcp", "z1", [holder(1)], group="zk", path="p")
    assert (d.ip, d.type, dict(d.subnet.cloud_properties)) == (
        None,
        "dynamic",
        {"name": "VM Network"},
    )
