"""AZ placement, index assignment, bootstrap election, obsolete instances."""

import random

import pytest

from director.planning.azs import StaticIpPool, place_instances, tie_breaker
from director.planning.errors import (
    DeploymentIgnoredInstancesModification,
    NetworkReservationError,
    PlanError,
)
from director.planning.inputs import ExistingInstance

AZS = ["z1", "z2", "z3"]


def existing(spec: str) -> list[ExistingInstance]:
    """'0z1 1z2* 2z3d 3z1!' -> index+AZ; '*' bootstrap, 'd' disk, '!' ignored; '-' = no AZ."""
    result = []
    for token in spec.split():
        digits = ""
        for ch in token:
            if ch.isdigit():
                digits += ch
            else:
                break
        index = int(digits)
        rest = token[len(digits) :]
        az = rest[:2] if rest.startswith("z") else None
        flags = rest[2:] if az else rest.lstrip("-")
        result.append(
            ExistingInstance(
                uuid=f"old-{index}",
                group="zk",
                index=index,
                az=az,
                bootstrap="*" in flags,
                has_persistent_disk="d" in flags,
                ignore="!" in flags,
                vm_cid=f"vm-{index}",
            )
        )
    return result


def layout(result) -> tuple[str, str]:
    """('0z1* 1z2 ...' for desired; 'new' instances marked '+'), ('4 3' obsolete indexes)."""
    desired = " ".join(
        f"{p.index}{p.az or '-'}{'*' if p.bootstrap else ''}{'' if p.existing else '+'}"
        for p in result.placements
    )
    obsolete = " ".join(str(e.index) for e in result.obsolete)
    return desired, obsolete


@pytest.mark.parametrize(
    "title, instances, azs, current, expected_desired, expected_obsolete",
    [
        ("0 -> 5 over 3 AZs", 5, AZS, "", "0z1*+ 1z2+ 2z3+ 3z1+ 4z2+", ""),
        ("0 -> 3 over 3 AZs", 3, AZS, "", "0z1*+ 1z2+ 2z3+", ""),
        (
            "5 -> 3 keeps the balanced set, highest indexes deleted",
            3,
            AZS,
            "0z1* 1z2 2z3 3z1 4z2",
            "0z1* 1z2 2z3",
            "4 3",
        ),
        (
            "5 -> 3 with disks: same balanced set",
            3,
            AZS,
            "0z1*d 1z2d 2z3d 3z1d 4z2d",
            "0z1* 1z2 2z3",
            "4 3",
        ),
        ("3 -> 5 keeps existing", 5, AZS, "0z1* 1z2 2z3", "0z1* 1z2 2z3 3z1+ 4z2+", ""),
        ("no change", 3, AZS, "0z1* 1z2 2z3", "0z1* 1z2 2z3", ""),
        (
            "AZ removed: instance without disk moves (replaced)",
            3,
            ["z1", "z2"],
            "0z1* 1z2 2z3",
            "0z1* 1z2 3z1+",
            "2",
        ),
        (
            "AZ removed: an instance with a disk cannot stay there either",
            3,
            ["z1", "z2"],
            "0z1*d 1z2d 2z3d",
            "0z1* 1z2 3z1+",
            "2",
        ),
        (
            "instances with disks stay in their AZ even when unbalanced",
            3,
            AZS,
            "0z1*d 1z1d 2z2",
            "0z1* 1z1 2z2",
            "",
        ),
        (
            "without disks the same instances are rebalanced",
            3,
            AZS,
            "0z1* 1z1 2z2",
            "0z1* 2z2 3z3+",
            "1",
        ),
        (
            "AZ added: existing stay, new go to the empty AZ",
            4,
            ["z1", "z2", "z3"],
            "0z1* 1z2 2z1",
            "0z1* 1z2 2z1 3z3+",
            "",
        ),
        ("scale to zero", 0, AZS, "0z1* 1z2", "", "1 0"),
        ("no AZs", 3, [], "0-* 1-", "0-* 1- 2-+", ""),
        ("no AZs any more: AZ instances replaced", 2, [], "0z1* 1z2", "2-*+ 3-+", "1 0"),
    ],
)
def test_balanced_placement(title, instances, azs, current, expected_desired, expected_obsolete):
    result = place_instances("zk", instances, azs, existing(current))
    assert layout(result) == (expected_desired, expected_obsolete), title


@pytest.mark.parametrize(
    "current, instances, expected",
    [
        # gaps in indexes are reused, smallest first
        ("0z1* 2z3", 3, "0z1* 1z2+ 2z3"),
        ("1z1* 3z2", 4, "0z3+ 1z1* 2z1+ 3z2"),
        # an obsolete instance's index is not reused while it still exists
        ("0z1* 1z2 2z9", 3, "0z1* 1z2 3z3+"),
    ],
)
def test_index_reuse(current, instances, expected):
    result = place_instances("zk", instances, AZS, existing(current))
    assert layout(result)[0] == expected


@pytest.mark.parametrize(
    "current, instances, expected",
    [
        ("0z1 1z2* 2z3", 3, "0z1 1z2* 2z3"),  # single existing bootstrap kept
        ("0z1 1z2 2z3", 3, "0z1* 1z2 2z3"),  # none: lowest index
        ("0z1* 1z2* 2z3", 3, "0z1* 1z2 2z3"),  # several: lowest index
        ("0z1* 1z2 2z3", 1, "0z1*"),
        ("0z1 1z2 2z3*", 2, "0z1* 1z2"),  # bootstrap deleted: re-elected
        ("", 2, "0z1*+ 1z2+"),
    ],
)
def test_bootstrap_election(current, instances, expected):
    result = place_instances("zk", instances, AZS, existing(current))
    assert layout(result)[0] == expected


def test_ignored_instances_keep_their_az():
    result = place_instances("zk", 3, AZS, existing("0z1* 1z1! 2z2"))
    # the ignored instance fills z1, so balancing replaces 0 by a new instance in z3
    assert layout(result) == ("1z1* 2z2 3z3+", "0")
    result = place_instances("zk", 2, AZS, existing("0z1* 1z3! 2z2 3z1"))
    assert layout(result) == ("0z1* 1z3", "3 2")


@pytest.mark.parametrize(
    "instances, azs, message, path",
    [
        (1, AZS, "has 2 ignored instance(s); 1 requested", "instance_groups/zk/instances"),
        (3, ["z1"], "no longer contains AZ(s) z3 where ignored", "instance_groups/zk/azs"),
    ],
)
def test_ignored_instances_errors(instances, azs, message, path):
    with pytest.raises(DeploymentIgnoredInstancesModification) as err:
        place_instances("zk", instances, azs, existing("0z1! 1z3!"))
    assert message in err.value.message
    assert err.value.path == path


def test_randomized_ties_are_seeded_and_still_balanced():
    runs = []
    for seed in (1, 2, 3, 4):
        result = place_instances("zk", 4, AZS, [], pick=tie_breaker(random.Random(seed)))
        counts = sorted(sum(1 for p in result.placements if p.az == az) for az in AZS)
        assert counts == [1, 1, 2]
        runs.append(tuple(p.az for p in result.placements))
    assert len(set(runs)) > 1
    again = place_instances("zk", 4, AZS, [], pick=tie_breaker(random.Random(1)))
    assert tuple(p.az for p in again.placements) == runs[0]


# -- static IPs -----------------------------------------------------------------

IP_AZ = {"10.0.1.10": ("z1",), "10.0.1.11": ("z1",), "10.0.2.10": ("z2",), "10.0.2.11": ("z2",)}


def pool(*ips, network="default"):
    return StaticIpPool(network, tuple((ip, IP_AZ.get(ip, ())) for ip in ips))


def with_ips(instances, ips):
    return [
        ExistingInstance(**{**e.__dict__, "reservations": (("default", ip, True),)})
        for e, ip in zip(instances, ips, strict=True)
    ]


def static_layout(result):
    return [
        (p.index, p.az, p.static_ips["default"], p.existing is not None) for p in result.placements
    ]


def test_static_ips_decide_the_az_of_new_instances():
    result = place_instances(
        "zk", 3, ["z1", "z2"], [], static_pools=[pool("10.0.1.10", "10.0.2.10", "10.0.1.11")]
    )
    assert static_layout(result) == [
        (0, "z1", "10.0.1.10", False),
        (1, "z2", "10.0.2.10", False),
        (2, "z1", "10.0.1.11", False),
    ]


def test_existing_instances_keep_their_static_ips():
    current = with_ips(existing("0z1* 1z2"), ["10.0.1.11", "10.0.2.10"])
    result = place_instances(
        "zk",
        3,
        ["z1", "z2"],
        current,
        static_pools=[pool("10.0.1.10", "10.0.1.11", "10.0.2.10")],
    )
    assert static_layout(result) == [
        (0, "z1", "10.0.1.11", True),
        (1, "z2", "10.0.2.10", True),
        (2, "z1", "10.0.1.10", False),
    ]


def test_instance_whose_ip_was_removed_is_reused_if_its_az_has_an_ip_else_obsolete():
    current = with_ips(existing("0z1* 1z2"), ["10.0.1.99", "10.0.2.99"])
    result = place_instances(
        "zk", 2, ["z1", "z2"], current, static_pools=[pool("10.0.1.10", "10.0.1.11")]
    )
    assert static_layout(result) == [(0, "z1", "10.0.1.10", True), (2, "z1", "10.0.1.11", False)]
    assert [e.index for e in result.obsolete] == [1]


@pytest.mark.parametrize(
    "instances, ips, azs, error, message",
    [
        (3, ["10.0.1.10", "10.0.1.11"], ["z1"], PlanError, "has 3 instance(s) but 2 static IP(s)"),
        (2, ["10.0.1.10", "10.0.1.10"], ["z1"], PlanError, "10.0.1.10 is listed twice"),
        (
            1,
            ["10.0.2.10"],
            ["z1"],
            NetworkReservationError,
            "10.0.2.10 is in a subnet that serves none of the instance group's AZs (z1)",
        ),
    ],
)
def test_static_ip_errors(instances, ips, azs, error, message):
    ip_pool = StaticIpPool(
        "default", tuple((ip, tuple(a for a in IP_AZ[ip] if a in azs)) for ip in ips)
    )
    with pytest.raises(error) as err:
        place_instances("zk", instances, azs, [], static_pools=[ip_pool])
    assert err.value.path == "instance_groups/zk/networks/default/static_ips"
    assert message in err.value.message


def test_existing_instance_whose_ip_moved_to_another_az_is_an_error():
    current = with_ips(existing("0z1*"), ["10.0.2.10"])
    with pytest.raises(NetworkReservationError, match="is using IP 10.0.2.10 in az 'z1'"):
        place_instances("zk", 1, ["z1", "z2"], current, static_pools=[pool("10.0.2.10")])
