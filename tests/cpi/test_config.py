"""cpi.json ``cloud.properties``: the vSphere CPI's config shape, and errors naming the key."""

import copy

import pytest

from cpi import cloud_properties_of, load_cloud
from cpi.vsphere.config import (
    ClusterSpec,
    ConfigError,
    HostGroup,
    merge_context,
    parse_config,
    split_host,
)

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

BASE = {
    "vcenters": [
        {
            "host": "vc.example.com",
            "user": "admin",
            "password": "pw",
            "connection_options": {"ca_cert": PEM},
            "datacenters": [
                {
                    "name": "DC0",
                    "datastore_pattern": "^eph",
                    "persistent_datastore_pattern": "^pers",
                    "clusters": [
                        "C0",
                        {"C1": {"resource_pool": "RP1"}},
                        {"C2": {"host_group": "HG-must"}},
                        {"C3": {"resource_pool": "RP3", "host_group": {"name": "HG-soft"}}},
                        {"C4": {"host_group": {"name": "HG-hard", "drs_rule": "must"}}},
                    ],
                }
            ],
        }
    ],
    "agent": {
        "ntp": ["ntp.example.com"],
        "mbus": "nats://n:p@10.0.0.6:4222",
        "blobstore": {"provider": "dav"},
    },
}


def with_change(path: str, value, delete: bool = False):
    props = copy.deepcopy(BASE)
    parts = path.split("/")
    target = props
    for p in parts[:-1]:
        target = target[int(p)] if isinstance(target, list) else target[p]
    last = parts[-1]
    if delete:
        if isinstance(target, list):
            del target[int(last)]
        else:
            del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return props


def test_full_config_parses_with_bosh_defaults():
    cfg = parse_config(BASE)
    vc = cfg.vcenter
    assert (vc.host, vc.port, vc.user, vc.password) == ("vc.example.com", 443, "admin", "pw")
    assert vc.ca_cert == PEM and vc.insecure is False
    assert vc.default_disk_type == "preallocated"
    dc = cfg.datacenter
    assert (dc.name, dc.vm_folder, dc.template_folder, dc.disk_path) == (
        "DC0",
        "BOSH_VMs",
        "BOSH_Templates",
        "BOSH_Disks",
    )
    assert dc.clusters == (
        ClusterSpec("C0"),
        ClusterSpec("C1", resource_pool="RP1"),
        ClusterSpec("C2", host_group=HostGroup("HG-must", "MUST")),
        ClusterSpec("C3", resource_pool="RP3", host_group=HostGroup("HG-soft", "SHOULD")),
        ClusterSpec("C4", host_group=HostGroup("HG-hard", "MUST")),
    )
    assert cfg.agent == BASE["agent"]
    assert "pw" not in repr(cfg)


@pytest.mark.parametrize(
    "host, expected",
    [
        ("vc.example.com", ("vc.example.com", 443)),
        ("127.0.0.1:8989", ("127.0.0.1", 8989)),
        ("[::1]:8989", ("::1", 8989)),
        ("::1", ("::1", 443)),
        ("https://vc.example.com:444/sdk", ("vc.example.com", 444)),
    ],
)
def test_host_may_carry_a_port(host, expected):
    assert split_host(host, "host") == expected
    assert (parse_config(with_change("vcenters/0/host", host)).vcenter.port) == expected[1]


@pytest.mark.parametrize(
    "path, value, delete, message",
    [
        ("vcenters", None, True, "cloud/properties/vcenters: is required"),
        ("vcenters", [], False, "exactly one vCenter"),
        ("vcenters/0/host", None, True, "cloud/properties/vcenters/0/host: is required"),
        ("vcenters/0/host", "vc:99999", False, "cloud/properties/vcenters/0/host: bad port"),
        ("vcenters/0/user", "", False, "cloud/properties/vcenters/0/user: is required"),
        ("vcenters/0/password", 5, False, "cloud/properties/vcenters/0/password: must be a string"),
        (
            "vcenters/0/connection_options",
            {"ca_cert": PEM, "insecure": True},
            False,
            "connection_options: give either ca_cert or insecure",
        ),
        (
            "vcenters/0/connection_options",
            {"ca_cert": "nope"},
            False,
            "connection_options/ca_cert: must be a PEM",
        ),
        (
            "vcenters/0/connection_options",
            {"insecure": "yes"},
            False,
            "connection_options/insecure: must be true or false",
        ),
        (
            "vcenters/0/default_disk_type",
            "fat",
            False,
            "vcenters/0/default_disk_type: must be one of",
        ),
        ("vcenters/0/datacenters", [], False, "exactly one datacenter"),
        ("vcenters/0/datacenters/0/name", None, True, "datacenters/0/name: is required"),
        (
            "vcenters/0/datacenters/0/datastore_pattern",
            "([",
            False,
            "datacenters/0/datastore_pattern: not a valid regular expression",
        ),
        (
            "vcenters/0/datacenters/0/persistent_datastore_pattern",
            None,
            True,
            "persistent_datastore_pattern: is required",
        ),
        (
            "vcenters/0/datacenters/0/clusters",
            [],
            False,
            "datacenters/0/clusters: at least one cluster",
        ),
        (
            "vcenters/0/datacenters/0/clusters/1",
            {"A": {}, "B": {}},
            False,
            "datacenters/0/clusters/1: must be a cluster name or a map",
        ),
        (
            "vcenters/0/datacenters/0/clusters/1",
            {"C1": {"resource_poool": "x"}},
            False,
            "clusters/1/C1/resource_poool: unknown cluster setting",
        ),
        (
            "vcenters/0/datacenters/0/clusters/2",
            {"C2": {"host_group": {"name": "H", "drs_rule": "MAYBE"}}},
            False,
            "clusters/2/C2/host_group/drs_rule: must be MUST or SHOULD",
        ),
        (
            "vcenters/0/datacenters/0/clusters/2",
            {"C2": {"host_group": {}}},
            False,
            "clusters/2/C2/host_group/name: is required",
        ),
        (
            "vcenters/0/datacenters/0/vm_folder",
            "/",
            False,
            "datacenters/0/vm_folder: must name a folder",
        ),
        ("agent", ["x"], False, "cloud/properties/agent: must be a map"),
        ("agent/ntp", "ntp.example.com", False, "cloud/properties/agent/ntp: must be a list"),
    ],
)
def test_bad_config_names_the_key(path, value, delete, message):
    with pytest.raises(ConfigError) as exc:
        parse_config(with_change(path, value, delete))
    assert message in exc.value.message
    assert exc.value.type == "Bosh::Clouds::CloudError"


def test_no_connection_options_means_system_trust_not_insecure():
    cfg = parse_config(with_change("vcenters/0/connection_options", None, True)).vcenter
    assert cfg.ca_cert is None and cfg.insecure is False


def test_folders_may_be_nested_paths():
    cfg = parse_config(with_change("vcenters/0/datacenters/0/vm_folder", "/bosh/vms/"))
    assert cfg.datacenter.vm_folder == "bosh/vms"


def test_context_overrides_vcenter_settings_like_the_real_cpi():
    merged = merge_context(
        BASE,
        {
            "director_uuid": "d-1",
            "request_id": "cpi-123456",
            "vm": {"stemcell": {"api_version": 3}},
            "password": "from-director",
            "datacenters": [
                {
                    "name": "DC9",
                    "datastore_pattern": "x",
                    "persistent_datastore_pattern": "y",
                    "clusters": ["Z"],
                }
            ],
        },
    )
    cfg = parse_config(merged)
    assert cfg.vcenter.password == "from-director"
    assert cfg.vcenter.host == "vc.example.com"
    assert cfg.datacenter.name == "DC9" and cfg.datacenter.clusters == (ClusterSpec("Z"),)
    assert BASE["vcenters"][0]["password"] == "pw", "the original properties are not modified"
    assert merge_context(BASE, {"director_uuid": "x"}) == BASE


@pytest.mark.parametrize(
    "doc, message",
    [
        ([], "cpi.json: must be a map"),
        ({}, "cloud: is required"),
        ({"cloud": {"plugin": "aws", "properties": {}}}, "cloud/plugin: unknown CPI plugin 'aws'"),
        ({"cloud": {"plugin": "vsphere"}}, "cloud/properties: is required"),
    ],
)
def test_cpi_json_shape_errors(doc, message):
    with pytest.raises(ConfigError) as exc:
        load_cloud(doc)
    assert message in exc.value.message


def test_load_cloud_builds_without_contacting_vcenter():
    cloud = load_cloud(
        {
            "cloud": {
                "plugin": "vsphere",
                "properties": with_change("vcenters/0/host", "127.0.0.1:1"),
            }
        }
    )
    assert cloud.info() == {"stemcell_formats": ["vsphere-ovf", "vsphere-ova"], "api_version": 2}
    assert cloud_properties_of({"cloud": {"properties": BASE}})[0] == "vsphere"
