"""Addon placement rules (include/exclude) and runtime-config merging."""

import copy

import pytest

from director.manifest.addon_filters import addon_applies
from director.manifest.addons import apply_addons, consolidate_runtime_configs, validate_addons
from director.manifest.errors import ErrorCollector, ManifestError
from director.manifest.parse import parse_manifest
from director.manifest.yaml import load_yaml
from tests.corpus import CORPUS, needs_corpus


def _load(rel):
    return load_yaml((CORPUS / rel).read_text(), rel)


def _addon(include=None, exclude=None, level="runtime"):
    raw = {"name": "a", "jobs": [{"name": "j", "release": "r"}]}
    if include is not None:
        raw["include"] = include
    if exclude is not None:
        raw["exclude"] = exclude
    e = ErrorCollector()
    (addon,) = validate_addons([raw], "addons", e, level)
    assert not e.errors, e.errors
    return addon


IG = {
    "name": "web",
    "lifecycle": "service",
    "azs": ["z1", "z2"],
    "jobs": [{"name": "nginx", "release": "web"}, {"name": "bpm", "release": "bpm"}],
    "networks": [{"name": "default"}],
}
ERRAND = {
    **IG,
    "name": "smoke",
    "lifecycle": "errand",
    "jobs": [{"name": "tests", "release": "web"}],
}

# (include, exclude, deployment, teams, ig, stemcell os, applies?)
RULES = [
    (None, None, "cf", [], IG, "ubuntu-jammy", True),  # no filters: everywhere
    (
        {},
        {},
        "cf",
        [],
        IG,
        "ubuntu-jammy",
        True,
    ),  # empty include matches, empty exclude excludes nothing
    ({"deployments": ["cf"]}, None, "cf", [], IG, None, True),
    ({"deployments": ["cf"]}, None, "zk", [], IG, None, False),
    ({"jobs": [{"name": "nginx", "release": "web"}]}, None, "cf", [], IG, None, True),
    (
        {"jobs": [{"name": "nginx", "release": "other"}]},
        None,
        "cf",
        [],
        IG,
        None,
        False,
    ),  # release must match too
    ({"instance_groups": ["web"]}, None, "cf", [], IG, None, True),
    ({"instance_groups": ["web"]}, None, "cf", [], ERRAND, None, False),
    ({"deployments": ["cf"], "instance_groups": ["api"]}, None, "cf", [], IG, None, False),  # AND
    (
        {"deployments": ["cf"], "jobs": [{"name": "bpm", "release": "bpm"}]},
        None,
        "cf",
        [],
        IG,
        None,
        True,
    ),
    ({"stemcell": [{"os": "ubuntu-jammy"}]}, None, "cf", [], IG, "ubuntu-jammy", True),
    ({"stemcell": [{"os": "ubuntu-jammy"}]}, None, "cf", [], IG, "ubuntu-noble", False),
    (
        {"stemcell": [{"os": "ubuntu-jammy"}]},
        None,
        "cf",
        [],
        IG,
        "bosh-vsphere-esxi-ubuntu-jammy-go_agent",
        True,
    ),
    (
        {"stemcell": [{"os": "ubuntu-jammy"}], "deployments": ["cf"]},
        None,
        "cf",
        [],
        IG,
        "ubuntu-noble",
        False,
    ),  # hard filter first
    ({"lifecycle": "errand"}, None, "cf", [], ERRAND, None, True),
    ({"lifecycle": "errand"}, None, "cf", [], IG, None, False),
    ({"azs": ["z2", "z9"]}, None, "cf", [], IG, None, True),
    ({"azs": ["z9"]}, None, "cf", [], IG, None, False),
    ({"networks": ["default"]}, None, "cf", [], IG, None, True),
    ({"networks": ["private"]}, None, "cf", [], IG, None, False),
    ({"teams": ["ops"]}, None, "cf", ["ops", "dev"], IG, None, True),
    ({"teams": ["ops"]}, None, "cf", [], IG, None, False),
    (None, {"deployments": ["cf"]}, "cf", [], IG, None, False),
    (None, {"deployments": ["cf"]}, "zk", [], IG, None, True),
    (None, {"jobs": [{"name": "tests", "release": "web"}]}, "cf", [], ERRAND, None, False),
    (
        None,
        {"lifecycle": "errand"},
        "cf",
        [],
        ERRAND,
        None,
        False,
    ),  # exclude with only a hard filter
    (None, {"lifecycle": "errand"}, "cf", [], IG, None, True),
    (None, {"stemcell": [{"os": "windows2019"}]}, "cf", [], IG, "ubuntu-jammy", True),
    (None, {"azs": ["z1"]}, "cf", [], IG, None, False),
    ({"deployments": ["cf"]}, {"instance_groups": ["web"]}, "cf", [], IG, None, False),
    ({"deployments": ["cf"]}, {"instance_groups": ["web"]}, "cf", [], ERRAND, None, True),
]


@pytest.mark.parametrize("include, exclude, deployment, teams, ig, os_name, expected", RULES)
def test_placement_rules(include, exclude, deployment, teams, ig, os_name, expected):
    assert addon_applies(_addon(include, exclude), deployment, teams, ig, os_name) is expected


def test_deployment_level_addons_ignore_teams_and_refuse_deployments():
    addon = _addon({"teams": ["ops"]}, level="deployment")
    assert addon_applies(addon, "cf", [], IG, None) is True
    e = ErrorCollector()
    validate_addons(
        [{"name": "a", "jobs": [], "include": {"deployments": ["cf"]}}], "addons", e, "deployment"
    )
    assert e.errors == [
        (
            "addons/a/include/deployments",
            "Deployment filter is not allowed for deployment level addons.",
        )
    ]


@needs_corpus
def test_cf_deployment_addons_skip_the_smoke_tests_errand():
    out = apply_addons(parse_manifest(_load("deployments/cf-deployment/cf-deployment.yml")), "cf")
    for ig in out["instance_groups"]:
        names = [j["name"] for j in ig["jobs"]]
        if ig["name"] == "smoke-tests":
            assert "loggregator_agent" not in names
        else:
            assert names.count("loggregator_agent") == 1, ig["name"]
    api = next(ig for ig in out["instance_groups"] if ig["name"] == "api")
    agent = next(j for j in api["jobs"] if j["name"] == "loggregator_agent")
    assert agent["release"] == "loggregator-agent"
    assert "loggregator" in agent["properties"]


@needs_corpus
def test_redis_deployment_addon_and_runtime_configs():
    manifest = parse_manifest(_load("deployments/redis-boshrelease/redis.yml"))
    dns = _load("runtime-configs/bosh-deployment/dns.yml")
    syslog = _load("runtime-configs/bosh-deployment/syslog.yml")
    out = apply_addons(manifest, "redis", [dns, syslog])
    redis = out["instance_groups"][0]
    assert [j["name"] for j in redis["jobs"]] == ["redis", "bpm", "bosh-dns", "syslog_forwarder"]
    assert redis["jobs"][2]["properties"]["api"]["client"]["tls"] == "((/dns_api_client_tls))"
    assert {r["name"]: r["version"] for r in out["releases"]}["bosh-dns"] == "1.39.28"
    assert "/dns_api_tls_ca" in {v["name"] for v in out["variables"]}
    assert manifest["instance_groups"][0]["jobs"] == [redis["jobs"][0]]  # input untouched


@needs_corpus
def test_runtime_release_unused_by_any_applied_addon_is_not_added():
    manifest = parse_manifest(_load("deployments/zookeeper-release/zookeeper.yml"))  # ubuntu-xenial
    rc = {
        "releases": [{"name": "win", "version": "1"}],
        "addons": [
            {
                "name": "w",
                "jobs": [{"name": "w", "release": "win"}],
                "include": {"stemcell": [{"os": "windows2019"}]},
            }
        ],
    }
    out = apply_addons(manifest, "zookeeper", [rc])
    assert [r["name"] for r in out["releases"]] == [r["name"] for r in manifest["releases"]]


@needs_corpus
def test_conflicting_release_versions_are_an_error():
    manifest = parse_manifest(_load("deployments/redis-boshrelease/redis.yml"))
    bpm = _load("runtime-configs/bosh-deployment/bpm.yml")
    mine = next(r for r in manifest["releases"] if r["name"] == "bpm")
    manifest["addons"] = []  # else bpm would be colocated twice
    with pytest.raises(ManifestError) as exc:
        apply_addons(manifest, "redis", [bpm])
    assert exc.value.errors == [
        (
            "releases/bpm/version",
            f"Runtime manifest specifies release 'bpm' with version as '0.8.0'. "
            f"This conflicts with version '{mine['version']}' specified in the deployment manifest.",
        )
    ]


@needs_corpus
def test_colocating_a_job_twice_is_an_error():
    manifest = parse_manifest(_load("deployments/redis-boshrelease/redis.yml"))
    manifest = apply_addons(manifest, "redis")
    with pytest.raises(
        ManifestError, match="Colocated job 'bpm' is already added to the instance group 'redis'"
    ):
        apply_addons(manifest, "redis")


@needs_corpus
def test_docs_runtime_config_fragments():
    manifest = parse_manifest(_load("deployments/zookeeper-release/zookeeper.yml"))
    with pytest.raises(ManifestError) as exc:
        apply_addons(
            manifest,
            "zookeeper",
            [_load("runtime-configs/docs-bosh/runtime-config-include-exclude.yml")],
        )
    assert set(exc.value.paths) == {
        "addons/my-addon/jobs/my-addon-job/properties",  # '...' placeholder text, not a map
        "addons/my-addon/exclude/jobs/0",  # a bare name: jobs filters need name and release
        "addons/my-addon/jobs/my-addon-job/release",  # the fragment lists no releases
    }

    deps = _load("runtime-configs/docs-bosh/runtime-config-include-deployments.yml")
    with pytest.raises(ManifestError) as exc:
        apply_addons(manifest, "dep1", [deps])
    assert "references release 'strongswan' which the runtime-config does not list" in str(
        exc.value
    )

    releases = {
        "releases": [
            {"name": "strongswan", "version": "6.0.0"},
            {"name": "syslog", "version": "11"},
        ]
    }
    for name, expected in (("dep1", True), ("zookeeper", False)):
        out = apply_addons(manifest, name, [deps, releases])
        names = [j["name"] for j in out["instance_groups"][0]["jobs"]]
        assert ("strongswan" in names and "syslog_drain" in names) is expected

    tags = _load("runtime-configs/docs-bosh/runtime-config-strongswan-tags.yml")
    manifest["tags"] = {"business_unit": "platform"}
    out = apply_addons(manifest, "zookeeper", [tags])
    assert out["tags"] == {"business_unit": "platform", "email_contact": "ops@marketing.co.com"}


def test_consolidate_runtime_configs():
    a = {
        "releases": [{"name": "bpm", "version": "1"}],
        "addons": [{"name": "x", "jobs": []}],
        "tags": {"a": "1"},
    }
    b = {
        "releases": [{"name": "bpm", "version": "1"}],
        "addons": [{"name": "y", "jobs": []}],
        "tags": {"a": "2"},
    }
    out = consolidate_runtime_configs([a, b])
    assert out["releases"] == [{"name": "bpm", "version": "1"}]
    assert [x["name"] for x in out["addons"]] == ["x", "y"] and out["tags"] == {"a": "2"}
    c = copy.deepcopy(b)
    c["releases"][0]["version"] = "2"
    with pytest.raises(ManifestError, match="different versions '1' and '2'"):
        consolidate_runtime_configs([a, c], names=["a", "c"])


@needs_corpus
def test_latest_is_not_allowed_in_runtime_configs():
    manifest = parse_manifest(_load("deployments/zookeeper-release/zookeeper.yml"))
    rc = {
        "releases": [{"name": "bpm", "version": "latest"}],
        "addons": [{"name": "b", "jobs": [{"name": "bpm", "release": "bpm"}]}],
    }
    with pytest.raises(ManifestError) as exc:
        apply_addons(manifest, "zookeeper", [rc])
    assert exc.value.paths == ["releases/bpm/version"]
