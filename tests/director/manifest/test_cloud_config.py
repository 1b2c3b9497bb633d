"""Cloud-config validation, consolidation and IP range sets."""

import copy
import ipaddress

import pytest

from director.manifest.cloud_config import consolidate_cloud_configs, parse_cloud_config
from director.manifest.errors import ManifestError
from director.manifest.interpolate import interpolate
from director.manifest.iprange import IpRanges, expand_ip_ranges
from director.manifest.yaml import load_yaml
from tests.corpus import CORPUS, needs_corpus

CLOUD_CONFIGS = sorted(
    str(p.relative_to(CORPUS)) for p in (CORPUS / "cloud-configs").rglob("*.yml")
)
NOT_CLOUD_CONFIGS = {
    # docs fragments that carry non-cloud-config sections
    "cloud-configs/docs-bosh/vsphere-drs-anti-affinity-vm-extension.yml": "instance_groups",
    "cloud-configs/docs-bosh/vsphere-resource-pool-nsx-v1-fragment.yml": "resource_pools",
}


@pytest.mark.parametrize("rel", CLOUD_CONFIGS)
def test_every_corpus_cloud_config_parses(rel):
    doc = load_yaml((CORPUS / rel).read_text())
    if rel in NOT_CLOUD_CONFIGS:
        with pytest.raises(ManifestError) as exc:
            parse_cloud_config(doc)
        assert exc.value.paths == [NOT_CLOUD_CONFIGS[rel]]
        return
    out = parse_cloud_config(doc)
    for section in ("azs", "vm_types", "vm_extensions", "disk_types", "networks"):
        assert len(out[section]) == len(doc.get(section) or [])
    for net in out["networks"]:
        for subnet in net["subnets"]:
            assert isinstance(subnet["azs"], list) and "az" not in subnet


@needs_corpus
def test_cf_vsphere_cloud_config_interpolated():
    doc = load_yaml(
        (CORPUS / "cloud-configs/cf-deployment/iaas-support/vsphere/cloud-config.yml").read_text()
    )
    values = {}
    for n, z in enumerate(("z1", "z2", "z3")):
        values |= {
            f"{z}_cluster": f"cl{n}",
            f"{z}_resource_pool": f"rp{n}",
            f"{z}_datacenter_name": "dc",
            f"{z}_network_name": f"VM Network {n}",
            f"{z}_network_gateway": f"10.{n}.0.1",
            f"{z}_network_dns_array": ["8.8.8.8"],
            f"{z}_network_range": f"10.{n}.0.0/24",
            f"{z}_network_reserved_array": [f"10.{n}.0.2 - 10.{n}.0.9"],
        }
    out = parse_cloud_config(interpolate(doc, values))
    assert out["azs"][0]["cloud_properties"]["datacenters"][0]["clusters"] == [
        {"cl0": {"resource_pool": "rp0"}}
    ]
    assert [s["azs"] for s in out["networks"][0]["subnets"]] == [["z1"], ["z2"], ["z3"]]
    # The same config with a gateway outside its range is refused after interpolation.
    values["z2_network_gateway"] = "10.9.0.1"
    with pytest.raises(ManifestError) as exc:
        parse_cloud_config(interpolate(doc, values))
    assert exc.value.paths == ["networks/default/subnets/1/gateway"]


BASE = {
    "azs": [{"name": "z1", "cloud_properties": {"datacenters": [{"name": "dc"}]}}, {"name": "z2"}],
    "vm_types": [{"name": "small", "cloud_properties": {"cpu": 1, "ram": 1024, "disk": 4096}}],
    "vm_extensions": [{"name": "lb"}],
    "disk_types": [{"name": "10GB", "disk_size": 10240}],
    "networks": [
        {
            "name": "default",
            "type": "manual",
            "subnets": [
                {
                    "range": "10.0.0.0/24",
                    "gateway": "10.0.0.1",
                    "dns": ["8.8.8.8"],
                    "reserved": ["10.0.0.2 - 10.0.0.9"],
                    "static": ["10.0.0.10-10.0.0.20"],
                    "az": "z1",
                    "cloud_properties": {"name": "VM Network"},
                },
                {"range": "10.0.1.0/24", "gateway": "10.0.1.1", "azs": ["z1", "z2"]},
            ],
        },
        {"name": "dyn", "type": "dynamic", "dns": ["8.8.8.8"], "cloud_properties": {"name": "x"}},
        {"name": "public", "type": "vip"},
    ],
    "compilation": {"workers": 2, "network": "default", "az": "z1", "vm_type": "small"},
}


def _with(path, value):
    """BASE with one value replaced (path is a tuple of keys/indexes; value None deletes)."""
    doc = copy.deepcopy(BASE)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


S0 = ("networks", 0, "subnets", 0)
BAD = [
    (
        S0 + ("gateway",),
        "10.0.1.1",
        "networks/default/subnets/0/gateway",
        "must be inside the range",
    ),
    (
        S0 + ("gateway",),
        "10.0.0.0",
        "networks/default/subnets/0/gateway",
        "can't be the network address",
    ),
    (
        S0 + ("gateway",),
        "10.0.0.255",
        "networks/default/subnets/0/gateway",
        "can't be the broadcast address",
    ),
    (
        S0 + ("gateway",),
        "10.0.0.0/30",
        "networks/default/subnets/0/gateway",
        "not a valid IP address",
    ),
    (S0 + ("gateway",), None, "networks/default/subnets/0/gateway", "is required"),
    (S0 + ("range",), "10.0.0.1/24", "networks/default/subnets/0/range", "not a valid CIDR"),
    (S0 + ("range",), "10.0.0.1/32", "networks/default/subnets/0/range", "at least 2 IPs"),
    (
        S0 + ("reserved",),
        ["10.0.0.250 - 10.0.1.5"],
        "networks/default/subnets/0/reserved/0",
        "outside the subnet range",
    ),
    (
        S0 + ("reserved",),
        ["10.0.3.4"],
        "networks/default/subnets/0/reserved/0",
        "outside the subnet range",
    ),
    (
        S0 + ("reserved",),
        ["10.0.0.9 - 10.0.0.2"],
        "networks/default/subnets/0/reserved/0",
        "empty range",
    ),
    (
        S0 + ("reserved",),
        ["bogus"],
        "networks/default/subnets/0/reserved/0",
        "not a valid IP address",
    ),
    (
        S0 + ("reserved",),
        ["10.0.0.2 - 10.0.0.15"],
        "networks/default/subnets/0/static",
        "'10.0.0.10 - 10.0.0.15' are in network 'default' reserved range",
    ),
    (
        S0 + ("static",),
        ["10.0.0.1"],
        "networks/default/subnets/0/static",
        "'10.0.0.1' are in network 'default' reserved range",
    ),
    (S0 + ("static",), ["10.0.0.5"], "networks/default/subnets/0/static", "reserved range"),
    (
        S0 + ("static",),
        ["10.0.9.5"],
        "networks/default/subnets/0/static/0",
        "outside the subnet range",
    ),
    (S0 + ("az",), "z9", "networks/default/subnets/0/az", "unknown az 'z9'"),
    (S0 + ("azs",), ["z1"], "networks/default/subnets/0", "either 'az' or 'azs'"),
    (S0 + ("dns",), ["8.8.8"], "networks/default/subnets/0/dns/0", "not a valid IP address"),
    (S0 + ("prefix",), 16, "networks/default/subnets/0/prefix", "larger than range prefix"),
    (
        ("networks", 0, "subnets", 1, "range"),
        "10.0.0.128/25",
        "networks/default/subnets/1/range",
        "overlaps the range 10.0.0.0/24",
    ),
    (
        ("networks", 0, "subnets", 1, "azs"),
        None,
        "networks/default/subnets",
        "must all either specify an az or not",
    ),
    (("networks", 0, "subnets"), [], "networks/default/subnets", "non-empty list"),
    (("networks", 0, "type"), "bridged", "networks/default/type", "unknown network type"),
    (("networks", 1, "name"), "default", "networks/default", "duplicate network name"),
    (("azs", 1, "name"), None, "azs/1/name", "is required"),
    (
        ("vm_types", 0, "cloud_properties"),
        "big",
        "vm_types/small/cloud_properties",
        "must be a map",
    ),
    (("disk_types", 0, "disk_size"), None, "disk_types/10GB/disk_size", "is required"),
    (("disk_types", 0, "disk_size"), -1, "disk_types/10GB/disk_size", "non-negative integer"),
    (("compilation", "workers"), 0, "compilation/workers", "at least 1"),
    (("compilation", "network"), "nope", "compilation/network", "unknown network 'nope'"),
    (("compilation", "network"), "public", "compilation/network", "vip network"),
    (("compilation", "vm_type"), "huge", "compilation/vm_type", "unknown vm_type 'huge'"),
    (("compilation", "az"), "z7", "compilation/az", "unknown az 'z7'"),
    (("compilation", "cloud_properties"), {"cpu": 2}, "compilation", "only one of"),
]


@pytest.mark.parametrize("path, value, error_path, text", BAD, ids=[f"{b[2]}:{b[3]}" for b in BAD])
def test_bad_cloud_configs_fail_naming_the_path(path, value, error_path, text):
    with pytest.raises(ManifestError) as exc:
        parse_cloud_config(_with(path, value))
    assert (error_path, text) in [(p, text) for p, m in exc.value.errors if text in m], (
        exc.value.errors
    )


def test_all_errors_are_reported_at_once():
    doc = _with(S0 + ("gateway",), "10.0.0.0")
    doc["compilation"]["workers"] = 0
    doc["disk_types"][0]["disk_size"] = "big"
    with pytest.raises(ManifestError) as exc:
        parse_cloud_config(doc)
    assert exc.value.paths == [
        "disk_types/10GB/disk_size",
        "networks/default/subnets/0/gateway",
        "compilation/workers",
    ]
    assert str(exc.value).splitlines()[0].startswith("disk_types/10GB/disk_size: ")


def test_normalized_shape():
    out = parse_cloud_config(BASE)
    default, dyn, vip = out["networks"]
    assert default["subnets"][0]["azs"] == ["z1"]
    assert default["subnets"][1]["dns"] == [] and default["subnets"][1]["reserved"] == []
    assert dyn["subnets"] == [{"dns": ["8.8.8.8"], "cloud_properties": {"name": "x"}, "azs": []}]
    assert vip == {"name": "public", "type": "vip", "subnets": []}
    assert out["azs"][1]["cloud_properties"] == {}
    assert out["compilation"]["reuse_compilation_vms"] is False
    assert BASE["networks"][0]["subnets"][0]["az"] == "z1"  # input untouched


def test_ipv6_subnet():
    doc = {
        "networks": [
            {
                "name": "v6",
                "subnets": [
                    {
                        "range": "fd00::/64",
                        "gateway": "fd00::1",
                        "reserved": ["fd00::2 - fd00::ff"],
                        "static": ["fd00::100 - fd00::1ff"],
                    }
                ],
            }
        ]
    }
    parse_cloud_config(doc)
    doc["networks"][0]["subnets"][0]["static"] = ["fd00::ff"]
    with pytest.raises(ManifestError, match="reserved range"):
        parse_cloud_config(doc)


def test_partial_configs_skip_references_they_do_not_define():
    nets = {
        "networks": [
            {"name": "n", "subnets": [{"range": "10.0.0.0/24", "gateway": "10.0.0.1", "az": "z1"}]}
        ]
    }
    parse_cloud_config(nets, partial=True)
    with pytest.raises(ManifestError, match="unknown az 'z1'"):
        parse_cloud_config(nets)


def test_consolidate_concatenates_and_refuses_duplicates():
    a = {"azs": [{"name": "z1"}], "vm_types": [{"name": "small"}]}
    b = {
        "azs": [{"name": "z2"}],
        "networks": BASE["networks"][:1],
        "compilation": BASE["compilation"],
    }
    merged = consolidate_cloud_configs([a, b], names=["base", "vsphere"])
    assert [z["name"] for z in merged["azs"]] == ["z1", "z2"]
    assert merged["compilation"] == BASE["compilation"]
    parse_cloud_config(merged)

    with pytest.raises(ManifestError) as exc:
        consolidate_cloud_configs(
            [a, {"azs": [{"name": "z1"}], "compilation": {}}, {"compilation": {}}],
            names=["base", "x", "y"],
        )
    assert exc.value.errors == [
        ("azs/z1", "'z1' is defined in cloud-config base and again in cloud-config x"),
        ("compilation", "may be defined in only one cloud-config; found in x, y"),
    ]


def test_ip_ranges_are_intervals_not_lists():
    big = IpRanges.from_entries(["10.0.0.0/8", "10.0.0.5", "11.0.0.0 - 11.0.0.9"])
    assert big.intervals == (
        (4, int(ipaddress.ip_address("10.0.0.0")), int(ipaddress.ip_address("11.0.0.9"))),
    )
    assert big.count == 2**24 + 10
    assert IpRanges.from_network("fd00::/48").count == 2**80
    assert "10.200.3.4" in big and "11.0.0.10" not in big and "fd00::1" not in big
    assert expand_ip_ranges(["10.0.0.0 - 10.0.0.9"]) == [
        ipaddress.ip_network("10.0.0.0/29"),
        ipaddress.ip_network("10.0.0.8/31"),
    ]
    assert expand_ip_ranges(["10.0.0.0/8"]) == [ipaddress.ip_network("10.0.0.0/8")]


def test_first_free_skips_excluded_intervals():
    subnet = IpRanges.from_network("10.0.0.0/24")
    taken = IpRanges.from_entries(["10.0.0.0 - 10.0.0.9", "10.0.0.10", "10.0.0.12", "10.0.0.255"])
    assert str(subnet.first_free(taken)) == "10.0.0.11"
    assert subnet.first_free(subnet) is None
    v6 = IpRanges.from_network("fd00::/64")
    assert str(v6.first_free(IpRanges.from_entries(["fd00:: - fd00::ff"]))) == "fd00::100"


def test_huge_ranges_are_checked_without_listing_addresses():
    import time

    start = time.monotonic()
    doc = {
        "networks": [
            {
                "name": "big",
                "subnets": [
                    {
                        "range": "10.0.0.0/8",
                        "gateway": "10.0.0.1",
                        "reserved": ["10.0.0.2 - 10.255.0.0"],
                        "static": ["10.255.0.1 - 10.255.255.254"],
                    },
                    {
                        "range": "fd00::/48",
                        "gateway": "fd00::1",
                        "reserved": ["fd00::2 - fd00:0:0:ff::"],
                        "static": ["fd00:0:0:100:: - fd00:0:0:ffff:ffff:ffff:ffff:fffe"],
                    },
                ],
            }
        ]
    }
    parse_cloud_config(doc)
    doc["networks"][0]["subnets"][0]["static"] = ["10.200.0.0 - 10.255.255.254"]
    with pytest.raises(
        ManifestError, match="'10.200.0.0 - 10.255.0.0' are in network 'big' reserved range"
    ):
        parse_cloud_config(doc)
    # Listing these ranges address by address would take minutes: a bound against that,
    # not a speed measurement (python -m benchmarks --suite render measures).
    assert time.monotonic() - start < 10
