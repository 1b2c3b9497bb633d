"""Deployment manifest validation and normalization."""

import copy

import pytest

from director.manifest.cloud_config import parse_cloud_config
from director.manifest.errors import ManifestError
from director.manifest.ops import apply_ops
from director.manifest.parse import (
    parse_manifest,
    resolve_count,
    validate_against_cloud_config,
    watch_time_range,
)
from director.manifest.yaml import load_yaml, load_yaml_document
from tests.corpus import CORPUS, needs_corpus

D = "deployments/"


def _load(rel):
    return load_yaml((CORPUS / rel).read_text(), rel)


DEPLOYABLE = [
    "cf-deployment/cf-deployment.yml",
    "concourse-bosh-deployment/cluster/concourse.yml",
    "docs-bosh/deployment-basics-zookeeper.yml",
    "kubo-deployment/cfcr.yml",
    "postgres-release/postgres.yml",
    "prometheus-boshrelease/prometheus.yml",
    "redis-boshrelease/redis.yml",
    "zookeeper-release/zookeeper.yml",
]
# create-env / v1 manifests: refused, naming the sections the director does not take
NOT_DEPLOYABLE = {
    "bosh-deployment/bosh.yml": {
        "networks",
        "resource_pools",
        "disk_pools",
        "cloud_provider",
        "instance_groups/bosh/resource_pool",
    },
    "concourse-bosh-deployment/lite/concourse.yml": {
        "networks",
        "resource_pools",
        "cloud_provider",
        "instance_groups/concourse/persistent_disk_pool",
    },
    "docs-bosh/sample-manifest-v1-redis.yml": {
        "jobs",
        "networks",
        "resource_pools",
        "compilation",
        "instance_groups",
    },
}
# fragments: refused, naming the missing parts; the part they do show is valid
FRAGMENTS = {
    "docs-bosh/links-as-from-fragment.yml": {"name", "releases", "stemcells", "update"},
    "docs-bosh/links-network-nil-fragment.yml": {"name", "releases", "stemcells", "update"},
    "docs-bosh/manifest-v2-instance-groups-fragment.yml": {
        "name",
        "releases",
        "stemcells",
        "update",
    },
    "docs-bosh/manifest-v2-compiled-release-fragment.yml": {
        "name",
        "instance_groups",
        "stemcells",
        "update",
    },
    "docs-bosh/manifest-v2-features-fragment.yml": {"name", "instance_groups"},
    "docs-bosh/manifest-v2-stemcells-fragment.yml": {
        "name",
        "instance_groups",
        "releases",
        "update",
    },
    "docs-bosh/manifest-v2-tags-fragment.yml": {"name", "instance_groups"},
    "docs-bosh/manifest-v2-update-initial-az-serial-fragment.yml": {
        "name",
        "instance_groups",
        "releases",
        "stemcells",
    },
    "docs-bosh/manifest-v2-update-percentages-fragment.yml": {
        "name",
        "instance_groups",
        "releases",
        "stemcells",
    },
    "docs-bosh/manifest-v2-variables-fragment.yml": {"name", "instance_groups", "update"},
    "docs-bosh/variable-types-certificates-fragment.yml": {"name", "instance_groups", "update"},
    "docs-bosh/vsphere-create-env-cloud-provider-fragment.yml": {
        "name",
        "instance_groups",
        "cloud_provider",
    },
}
TOP_LEVEL_PARTS = {"name", "releases", "stemcells", "update", "instance_groups", "cloud_provider"}


@needs_corpus
def test_the_corpus_table_is_complete():
    on_disk = {str(p.relative_to(CORPUS / D)) for p in (CORPUS / D).rglob("*.yml")}
    assert on_disk == set(DEPLOYABLE) | set(NOT_DEPLOYABLE) | set(FRAGMENTS)


@pytest.mark.parametrize("rel", DEPLOYABLE)
@needs_corpus
def test_corpus_manifests_parse(rel):
    raw = _load(D + rel)
    out = parse_manifest(raw)
    assert [ig["name"] for ig in out["instance_groups"]] == [
        ig["name"] for ig in raw["instance_groups"]
    ]
    for ig in out["instance_groups"]:
        assert ig["lifecycle"] in ("service", "errand")
        assert set(out["update"]) <= set(ig["update"])
        for job in ig["jobs"]:
            assert isinstance(job["properties"], dict | str)  # str only for a ((placeholder))


@pytest.mark.parametrize("rel", DEPLOYABLE)
@needs_corpus
def test_parsing_is_idempotent(rel):
    once = parse_manifest(_load(D + rel))
    assert parse_manifest(once) == once


@pytest.mark.parametrize("rel, paths", NOT_DEPLOYABLE.items())
@needs_corpus
def test_create_env_and_v1_manifests_are_refused(rel, paths):
    with pytest.raises(ManifestError) as exc:
        parse_manifest(_load(D + rel))
    assert paths <= set(exc.value.paths)


@pytest.mark.parametrize("rel, missing", FRAGMENTS.items())
@needs_corpus
def test_fragments_fail_naming_the_missing_parts(rel, missing):
    raw = _load(D + rel)
    with pytest.raises(ManifestError) as exc:
        parse_manifest(raw)
    paths = set(exc.value.paths)
    assert missing <= paths
    if "instance_groups" not in raw:
        # section-only fragments: nothing wrong except what is missing
        assert paths <= TOP_LEVEL_PARTS, exc.value.errors


@needs_corpus
def test_section_fragments_are_valid_once_completed():
    base = _load(D + "zookeeper-release/zookeeper.yml")
    for rel in (
        "update-percentages",
        "update-initial-az-serial",
        "features",
        "tags",
        "variables",
        "stemcells",
    ):
        frag = _load(f"{D}docs-bosh/manifest-v2-{rel}-fragment.yml")
        doc = {**base, **frag}
        if rel == "stemcells":
            doc["stemcells"] = frag["stemcells"]
        parse_manifest(doc)
    pct = parse_manifest(
        {**base, **_load(D + "docs-bosh/manifest-v2-update-percentages-fragment.yml")}
    )
    assert pct["update"]["max_in_flight"] == "50%"


@needs_corpus
def test_zookeeper_is_normalized():
    out = parse_manifest(
        _load(D + "zookeeper-release/zookeeper.yml"), default_vm_strategy="create-swap-delete"
    )
    assert out["update"]["serial"] is True
    assert out["update"]["vm_strategy"] == "create-swap-delete"
    assert out["update"]["initial_deploy_az_update_strategy"] == "serial"
    zk, smoke = out["instance_groups"]
    assert zk["azs"] == ["z1", "z2", "z3"] and zk["instances"] == 5
    assert zk["lifecycle"] == "service" and smoke["lifecycle"] == "errand"
    assert zk["update"] == out["update"]
    assert zk["networks"] == [{"name": "default", "static_ips": [], "default": ["dns", "gateway"]}]
    assert smoke["jobs"][0]["properties"] == {}
    assert out["features"]["use_dns_addresses"] is False
    assert out["variables"] == [] and out["addons"] == [] and out["tags"] == {}


@needs_corpus
def test_manifest_vm_strategy_wins_over_the_director_default():
    doc = _load(D + "zookeeper-release/zookeeper.yml")
    doc["update"]["vm_strategy"] = "delete-create"
    assert (
        parse_manifest(doc, default_vm_strategy="create-swap-delete")["update"]["vm_strategy"]
        == "delete-create"
    )


@needs_corpus
def test_cf_deployment_per_group_update_overrides_key_by_key():
    out = parse_manifest(_load(D + "cf-deployment/cf-deployment.yml"))
    ig = {g["name"]: g for g in out["instance_groups"]}
    assert out["update"]["serial"] is False
    assert ig["database"]["update"]["serial"] is True
    assert ig["database"]["update"]["max_in_flight"] == out["update"]["max_in_flight"]
    assert ig["smoke-tests"]["lifecycle"] == "errand"


@needs_corpus
def test_manifest_text_is_accepted_and_yaml_errors_are_reported():
    text = (CORPUS / D / "zookeeper-release/zookeeper.yml").read_text()
    assert parse_manifest(text)["name"] == "zookeeper"
    with pytest.raises(ManifestError, match="line 2, column"):
        parse_manifest("name: x\n  bad: indent\n")


VALID = {
    "name": "zk",
    "releases": [{"name": "zookeeper", "version": "0.0.10"}, {"name": "bpm", "version": 1.1}],
    "stemcells": [{"alias": "default", "os": "ubuntu-jammy", "version": "latest"}],
    "update": {
        "canaries": 1,
        "max_in_flight": "25%",
        "canary_watch_time": "1000-30000",
        "update_watch_time": 5000,
    },
    "instance_groups": [
        {
            "name": "zookeeper",
            "azs": ["z1", "z2"],
            "instances": 3,
            "jobs": [{"name": "zookeeper", "release": "zookeeper", "properties": {"port": 2181}}],
            "vm_type": "default",
            "stemcell": "default",
            "persistent_disk": 10240,
            "networks": [{"name": "default", "static_ips": ["10.0.0.10 - 10.0.0.12"]}],
        }
    ],
}
IG = ("instance_groups", 0)


def _with(path, value, base=VALID):
    doc = copy.deepcopy(base)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


def test_valid_example():
    out = parse_manifest(VALID)
    assert out["releases"][1]["version"] == "1.1"
    assert out["instance_groups"][0]["networks"][0]["static_ips"] == [
        "10.0.0.10",
        "10.0.0.11",
        "10.0.0.12",
    ]


P = "instance_groups/zookeeper/"
BAD = [
    (("name",), None, "name", "is required"),
    (("releases", 0, "version"), None, "releases/zookeeper/version", "is required"),
    (("releases", 1, "name"), "zookeeper", "releases/zookeeper", "duplicate release"),
    (
        ("stemcells", 0, "name"),
        "bosh-vsphere-esxi-ubuntu-jammy-go_agent",
        "stemcells/default",
        "both specified",
    ),
    (("stemcells", 0, "os"), None, "stemcells/default", "either 'os' or 'name'"),
    (("update", "canaries"), None, "update/canaries", "is required"),
    (("update", "canaries"), -1, "update/canaries", "at least 0"),
    (("update", "max_in_flight"), 0, "update/max_in_flight", "at least 1"),
    (("update", "max_in_flight"), "150%", "update/max_in_flight", "between 1 and 100"),
    (("update", "max_in_flight"), "lots", "update/max_in_flight", "integer or a percentage"),
    (
        ("update", "canary_watch_time"),
        "30000-1000",
        "update/canary_watch_time",
        "greater than maximum",
    ),
    (("update", "update_watch_time"), "soon", "update/update_watch_time", "min-max"),
    (("update", "serial"), "yes please", "update/serial", "true or false"),
    (
        ("update", "vm_strategy"),
        "recreate",
        "update/vm_strategy",
        "delete-create, create-swap-delete",
    ),
    (
        ("update", "initial_deploy_az_update_strategy"),
        "random",
        "update/initial_deploy_az_update_strategy",
        "serial, parallel",
    ),
    (("instance_groups",), None, "instance_groups", "is required"),
    (IG + ("instances",), None, P + "instances", "is required"),
    (IG + ("instances",), -2, P + "instances", "non-negative integer"),
    (IG + ("azs",), [], P + "azs", "must not be empty"),
    (IG + ("azs",), ["z1", "z1"], P + "azs", "more than once"),
    (IG + ("azs",), "z1", P + "azs", "list of az names"),
    (IG + ("vm_type",), None, P + "vm_type", "is required"),
    (
        IG + ("vm_resources",),
        {"cpu": 2, "ram": 1024, "ephemeral_disk_size": 10},
        "instance_groups/zookeeper",
        "can only specify one of 'vm_type' or 'vm_resources'",
    ),
    (IG + ("stemcell",), "jammy", P + "stemcell", "unknown stemcell 'jammy'"),
    (IG + ("stemcell",), None, P + "stemcell", "is required"),
    (IG + ("persistent_disk_type",), "10GB", "instance_groups/zookeeper", "more than one of"),
    (IG + ("persistent_disk",), -5, P + "persistent_disk", "non-negative"),
    (IG + ("lifecycle",), "daemon", P + "lifecycle", "Invalid lifecycle 'daemon'"),
    (IG + ("jobs", 0, "release"), "zk", P + "jobs/zookeeper/release", "unknown release 'zk'"),
    (IG + ("jobs", 0, "properties"), ["port"], P + "jobs/zookeeper/properties", "must be a map"),
    (IG + ("jobs", 0, "consumes"), ["peers"], P + "jobs/zookeeper/consumes", "must be a map"),
    (IG + ("networks",), None, P + "networks", "is required"),
    (
        IG + ("networks", 0, "static_ips"),
        ["10.0.0.10"],
        P + "networks/default/static_ips",
        "3 instances but was allocated 1 static IPs",
    ),
    (
        IG + ("networks", 0, "static_ips"),
        ["10.0.0.300", "a", "b"],
        P + "networks/default/static_ips/0",
        "not a valid IP",
    ),
    (
        IG + ("networks", 0, "default"),
        ["routes"],
        P + "networks/default/default",
        "must be a list of",
    ),
    (IG + ("env",), {"persistent_disk_fs": "btrfs"}, P + "env/persistent_disk_fs", "ext4 or xfs"),
    (
        IG + ("env",),
        {"bosh": {"job_dir": {"tmpfs": "yes"}}},
        P + "env/bosh/job_dir/tmpfs",
        "true or false",
    ),
    (
        IG + ("env",),
        {"bosh": {"keep_root_password": 1}},
        P + "env/bosh/keep_root_password",
        "true or false",
    ),
    (
        IG + ("update",),
        {"max_in_flight": "x"},
        P + "update/max_in_flight",
        "integer or a percentage",
    ),
    (IG + ("migrated_from",), [{"az": "z1"}], P + "migrated_from", "{name, az}"),
    (IG + ("templates",), [{"name": "zookeeper"}], P + "templates", "no longer supported"),
    (IG + ("resource_pool",), "vms", P + "resource_pool", "no longer supported"),
    (
        ("variables",),
        [{"name": "a", "type": "password"}, {"name": "a", "type": "rsa"}],
        "variables/a",
        "duplicate variable",
    ),
    (("variables",), [{"name": "a", "type": "secret"}], "variables/a/type", "must be one of"),
    (
        ("variables",),
        [{"name": "a//b", "type": "password"}],
        "variables/a//b/name",
        "must not contain '//'",
    ),
    (("features",), {"use_dns_addresses": "true"}, "features/use_dns_addresses", "true or false"),
    (("tags",), ["a"], "tags", "must be a map"),
    (
        ("addons",),
        [{"name": "x", "jobs": [{"name": "j", "release": "nope"}]}],
        "addons/x/jobs/j/release",
        "unknown release 'nope'",
    ),
    (
        ("addons",),
        [{"name": "x", "jobs": [], "include": {"deployments": ["d"]}}],
        "addons/x/include/deployments",
        "not allowed for deployment level addons",
    ),
    (("resource_pools",), [], "resource_pools", "no longer supported"),
    (("vm_types",), [], "vm_types", "can only be set in a cloud-config"),
]


@pytest.mark.parametrize("path, value, error_path, text", BAD, ids=[f"{b[2]}:{b[3]}" for b in BAD])
def test_bad_manifests_fail_naming_the_path(path, value, error_path, text):
    with pytest.raises(ManifestError) as exc:
        parse_manifest(_with(path, value))
    matching = [p for p, m in exc.value.errors if text in m]
    assert error_path in matching, exc.value.errors


def test_duplicates_and_unknown_references_are_all_reported():
    doc = copy.deepcopy(VALID)
    ig = doc["instance_groups"][0]
    ig["jobs"].append({"name": "zookeeper", "release": "zookeeper"})
    doc["instance_groups"].append(copy.deepcopy(ig))
    doc["instance_groups"].append({**copy.deepcopy(ig), "name": "other", "stemcell": "old"})
    with pytest.raises(ManifestError) as exc:
        parse_manifest(doc)
    assert exc.value.errors == [
        (
            "instance_groups/zookeeper/jobs/zookeeper",
            "Colocated job 'zookeeper' is already added to the instance group 'zookeeper'",
        ),
        ("instance_groups/zookeeper", "duplicate instance group name 'zookeeper'"),
        ("instance_groups/other/stemcell", "references an unknown stemcell 'old'"),
        (
            "instance_groups/other/jobs/zookeeper",
            "Colocated job 'zookeeper' is already added to the instance group 'other'",
        ),
        (
            "instance_groups/other/networks/default/static_ips",
            "static IP '10.0.0.10' is also assigned to instance group 'zookeeper'",
        ),
        (
            "instance_groups/other/networks/default/static_ips",
            "static IP '10.0.0.11' is also assigned to instance group 'zookeeper'",
        ),
        (
            "instance_groups/other/networks/default/static_ips",
            "static IP '10.0.0.12' is also assigned to instance group 'zookeeper'",
        ),
    ]
    assert (
        str(exc.value).splitlines()[1]
        == "instance_groups/zookeeper: duplicate instance group name 'zookeeper'"
    )


def test_several_networks_need_one_default_for_dns_and_gateway():
    nets = [{"name": "default"}, {"name": "private"}]
    with pytest.raises(ManifestError) as exc:
        parse_manifest(_with(IG + ("networks",), nets))
    assert [m for p, m in exc.value.errors if p == P + "networks"] == [
        "must specify which network is default for dns, since the instance group has more than one network configured",
        "must specify which network is default for gateway, since the instance group has more than one network configured",
    ]
    nets = [
        {"name": "default", "default": ["dns", "gateway"]},
        {"name": "private", "default": ["dns"]},
    ]
    with pytest.raises(
        ManifestError, match="'dns' has more than one default network: default, private"
    ):
        parse_manifest(_with(IG + ("networks",), nets))
    nets = [{"name": "default", "default": ["dns", "gateway"]}, {"name": "private"}]
    out = parse_manifest(_with(IG + ("networks",), nets))
    assert out["instance_groups"][0]["networks"][1]["default"] == []


def test_placeholders_pass_type_checks_before_interpolation():
    doc = _with(IG + ("instances",), "((zk_instances))")
    doc["instance_groups"][0]["azs"] = "((azs))"
    doc["instance_groups"][0]["networks"][0]["static_ips"] = "((zk_ips))"
    doc["update"]["max_in_flight"] = "((mif))"
    out = parse_manifest(doc)
    assert out["instance_groups"][0]["azs"] == "((azs))"


def test_legacy_properties_flow_to_jobs_without_their_own():
    doc = copy.deepcopy(VALID)
    doc["properties"] = {"zookeeper": {"port": 1, "x": 1}}
    ig = doc["instance_groups"][0]
    ig["properties"] = {"zookeeper": {"port": 2}}
    ig["jobs"].append({"name": "bpm", "release": "bpm"})
    warnings = []
    out = parse_manifest(doc, warnings=warnings)
    jobs = out["instance_groups"][0]["jobs"]
    assert jobs[0]["properties"] == {"port": 2181}
    assert jobs[1]["properties"] == {"zookeeper": {"port": 2, "x": 1}}
    assert (
        "properties",
        "Global 'properties' are deprecated. Please define 'properties' at the job level.",
    ) in warnings


def test_unknown_update_keys_and_features_are_warnings():
    doc = copy.deepcopy(VALID)
    doc["update"]["max_inflight"] = 3
    doc["features"] = {"future_flag": True}
    warnings = []
    out = parse_manifest(doc, warnings=warnings)
    assert [p for p, _ in warnings] == ["update/max_inflight", "features/future_flag"]
    assert out["features"]["future_flag"] is True


@pytest.mark.parametrize(
    "value, size, minimum, expected",
    [
        (1, 5, 0, 1),
        (10, 5, 0, 5),
        ("50%", 5, 1, 2),
        ("10%", 5, 1, 1),
        ("10%", 5, 0, 0),
        ("100%", 7, 1, 7),
        (0, 3, 1, 1),
        ("25%", 0, 1, 1),
    ],
)
def test_resolve_count(value, size, minimum, expected):
    assert resolve_count(value, size, minimum=minimum) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        (30000, (30000, 30000)),
        ("1000-30000", (1000, 30000)),
        ("1000 - 30000", (1000, 30000)),
        ("5000", (5000, 5000)),
    ],
)
def test_watch_time_range(value, expected):
    assert watch_time_range(value) == expected


CLOUD = parse_cloud_config(
    {
        "azs": [{"name": "z1"}, {"name": "z2"}],
        "vm_types": [{"name": "default"}],
        "vm_extensions": [{"name": "lb"}],
        "disk_types": [{"name": "10GB", "disk_size": 10240}],
        "networks": [
            {
                "name": "default",
                "subnets": [
                    {
                        "range": "10.0.0.0/24",
                        "gateway": "10.0.0.1",
                        "static": ["10.0.0.10 - 10.0.0.19"],
                        "az": "z1",
                    },
                    {
                        "range": "10.0.1.0/24",
                        "gateway": "10.0.1.1",
                        "static": ["10.0.1.10 - 10.0.1.19"],
                        "az": "z2",
                    },
                ],
            },
            {"name": "dyn", "type": "dynamic", "subnets": [{"azs": ["z1", "z2"]}]},
            {"name": "noaz", "subnets": [{"range": "10.1.0.0/24", "gateway": "10.1.0.1"}]},
        ],
        "compilation": {"workers": 1, "network": "default", "az": "z1", "vm_type": "default"},
    }
)

CC_BAD = [
    (IG + ("azs",), ["z1", "z3"], P + "azs", "unknown az 'z3'"),
    (IG + ("vm_type",), "large", P + "vm_type", "unknown vm type 'large'"),
    (IG + ("vm_extensions",), ["lb", "nsx"], P + "vm_extensions", "unknown vm_extension 'nsx'"),
    (IG + ("persistent_disk",), None, None, None),
    (IG + ("networks", 0, "name"), "public", P + "networks/public", "unknown network 'public'"),
    (
        IG + ("networks", 0, "static_ips"),
        ["10.0.0.10", "10.0.0.30", "10.0.1.11"],
        P + "networks/default/static_ips",
        "IP '10.0.0.30' is not in the static range",
    ),
    (
        IG + ("azs",),
        ["z1"],
        P + "networks/default/static_ips",
        "IP '10.0.1.10' belongs to a subnet in az z2",
    ),
    (IG + ("azs",), None, P + "azs", "is required: network 'default' has subnets in azs z1, z2"),
    (IG + ("networks",), [{"name": "noaz"}], P + "networks/noaz", "has no azs on its subnets"),
    (
        IG + ("networks",),
        [{"name": "dyn", "static_ips": ["10.0.0.10", "10.0.0.11", "10.0.0.12"]}],
        P + "networks/dyn/static_ips",
        "not supported on dynamic network",
    ),
]


@pytest.mark.parametrize("path, value, error_path, text", CC_BAD)
def test_manifest_against_cloud_config(path, value, error_path, text):
    base = _with(IG + ("networks", 0, "static_ips"), ["10.0.0.10", "10.0.0.11", "10.0.1.10"])
    doc = _with(path, value, base)
    errors = validate_against_cloud_config(parse_manifest(doc), CLOUD)
    if error_path is None:
        assert errors == []
    else:
        assert error_path in [p for p, m in errors if text in m], errors


def test_unknown_disk_types_and_missing_compilation():
    doc = _with(IG + ("persistent_disk",), None)
    doc["instance_groups"][0]["persistent_disk_type"] = "100GB"
    doc["instance_groups"][0]["networks"][0]["static_ips"] = ["10.0.0.10", "10.0.0.11", "10.0.1.10"]
    cloud = {**CLOUD, "compilation": None}
    assert validate_against_cloud_config(parse_manifest(doc), cloud) == [
        ("compilation", "the cloud-config has no compilation section (needed to compile packages)"),
        (P + "persistent_disk_type", "references an unknown disk type '100GB'"),
    ]


@pytest.mark.parametrize(
    "manifest, ops, cloud",
    [
        ("zookeeper-release/zookeeper.yml", None, "docs-bosh/update-cloud-config-bosh-lite.yml"),
        ("redis-boshrelease/redis.yml", None, "bosh-deployment/warden/cloud-config.yml"),
        (
            "cf-deployment/cf-deployment.yml",
            None,
            "cf-deployment/iaas-support/vsphere/cloud-config.yml",
        ),
        (
            "cf-deployment/cf-deployment.yml",
            "cf-deployment/operations/bosh-lite.yml",
            "cf-deployment/iaas-support/bosh-lite/cloud-config.yml",
        ),
    ],
)
@needs_corpus
def test_corpus_manifests_fit_their_cloud_configs(manifest, ops, cloud):
    doc = _load(D + manifest)
    if ops:
        doc = apply_ops(doc, load_yaml_document((CORPUS / "ops-files" / ops).read_text()))
    cc = parse_cloud_config(_load("cloud-configs/" + cloud))
    assert validate_against_cloud_config(parse_manifest(doc), cc) == []


@needs_corpus
def test_cf_deployment_without_bosh_lite_ops_misses_bosh_lite_extensions():
    cc = parse_cloud_config(
        _load("cloud-configs/cf-deployment/iaas-support/bosh-lite/cloud-config.yml")
    )
    errors = validate_against_cloud_config(
        parse_manifest(_load(D + "cf-deployment/cf-deployment.yml")), cc
    )
    assert (
        "instance_groups/router/vm_extensions",
        "references an unknown vm_extension 'cf-router-network-properties'",
    ) in errors
