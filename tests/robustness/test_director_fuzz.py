"""Bad manifests never crash: the director's pure parsers under structural fuzzing.

Real manifests, cloud-configs, runtime-configs, ops files and job specs from
the corpus are broken structurally (a node replaced by a value of another
type, a key deleted, junk added) and fed to the entry points of
``director.manifest`` and ``director.planning``. Each call must either
succeed or raise ManifestError / PlanError whose errors name a path, so the
API answers 4xx with the field that is wrong, never a 500.
"""

from __future__ import annotations

import os
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from director import manifest as m
from director.manifest import ManifestError
from director.planning import PlanError, StemcellRef, plan_deployment
from tests.corpus import CORPUS, PRESENT, needs_corpus
from tests.robustness.mutate import mutate, mutations

MANIFESTS = [
    "deployments/cf-deployment/cf-deployment.yml",
    "deployments/concourse-bosh-deployment/cluster/concourse.yml",
    "deployments/docs-bosh/deployment-basics-zookeeper.yml",
    "deployments/kubo-deployment/cfcr.yml",
    "deployments/postgres-release/postgres.yml",
    "deployments/prometheus-boshrelease/prometheus.yml",
    "deployments/redis-boshrelease/redis.yml",
    "deployments/zookeeper-release/zookeeper.yml",
]
CLOUD_CONFIGS = [
    "cloud-configs/bosh-deployment/vsphere/cloud-config.yml",
    "cloud-configs/cf-deployment/iaas-support/vsphere/cloud-config.yml",
    "cloud-configs/concourse-bosh-deployment/vbox.yml",
    "cloud-configs/docs-bosh/networks-manual-reserved-static.yml",
    "cloud-configs/docs-bosh/vsphere-cloud-config-example.yml",
    "cloud-configs/kubo-deployment/vsphere-use-vm-extensions.yml",
]
RUNTIME_CONFIGS = [
    "runtime-configs/bosh-deployment/dns.yml",
    "runtime-configs/bosh-deployment/syslog.yml",
    "runtime-configs/docs-bosh/runtime-config-strongswan-tags.yml",
]
# (base manifest, ops file) pairs that apply cleanly (corpus INDEX).
OPS = [
    ("deployments/bosh-deployment/bosh.yml", "ops-files/bosh-deployment/vsphere/cpi.yml"),
    ("deployments/bosh-deployment/bosh.yml", "ops-files/bosh-deployment/bosh-lite.yml"),
    (
        "deployments/cf-deployment/cf-deployment.yml",
        "ops-files/cf-deployment/operations/scale-to-one-az.yml",
    ),
    (
        "deployments/concourse-bosh-deployment/cluster/concourse.yml",
        "ops-files/concourse-bosh-deployment/cluster/operations/tls-vars.yml",
    ),
]
JOB_SPEC = "release-job-specs/zookeeper-release/jobs/zookeeper/spec.yml"


def fuzz(examples: int) -> settings:
    """Bounded runs (the directory stays under a minute); FUZZ_SCALE=10 digs deeper."""
    deadline = os.environ.get("FUZZ_DEADLINE")
    return settings(
        max_examples=examples * int(os.environ.get("FUZZ_SCALE", "1")),
        deadline=None if deadline is None else int(deadline),
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


_DOCS: dict[str, object] = {}


def doc(path: str):
    """A corpus document, parsed once (callers get it read-only; mutate() copies)."""
    if path not in _DOCS:
        _DOCS[path] = m.load_yaml_document((CORPUS / path).read_text(), path)
    return _DOCS[path]


def assert_named(exc: ManifestError, root_is_mapping: bool = True) -> None:
    """Every problem is a (path, message) pair; paths are given unless the
    document as a whole is wrong."""
    assert exc.errors, exc
    for path, message in exc.errors:
        assert isinstance(path, str) and isinstance(message, str) and message, exc.errors
    if root_is_mapping:
        assert any(path for path, _ in exc.errors), exc.errors


def assert_plan_error(exc: PlanError) -> None:
    assert isinstance(exc.path, str) and exc.message and str(exc), exc


# --------------------------------------------------------------------------
# Known crashes


@pytest.mark.parametrize(
    ("call", "path"),
    [
        # An unhashable release / stemcell name in a job or group.
        (
            lambda: m.parse_manifest(_with(MANIFESTS[2], ["instance_groups", 0, "stemcell"], [1])),
            "instance_groups/zookeeper/stemcell",
        ),
        (
            lambda: m.parse_manifest(
                _with(MANIFESTS[2], ["instance_groups", 0, "jobs", 0, "release"], {})
            ),
            "instance_groups/zookeeper/jobs/zookeeper/release",
        ),
        (
            lambda: m.parse_cloud_config(
                _with(CLOUD_CONFIGS[4], ["compilation", "network"], ["x"])
            ),
            "compilation/network",
        ),
        (
            lambda: m.parse_cloud_config(_with(CLOUD_CONFIGS[4], ["compilation", "az"], ["x"])),
            "compilation/az",
        ),
        (
            lambda: m.apply_ops({}, [{"type": ["replace"], "path": "/a", "value": 1}]),
            "ops file[0]",
        ),
        (
            lambda: m.apply_addons(
                m.parse_manifest(doc(MANIFESTS[7])), "zookeeper", [{"releases": 1}]
            ),
            "releases",
        ),
        (
            lambda: m.apply_addons(
                m.parse_manifest(doc(MANIFESTS[7])),
                "zookeeper",
                [{"releases": [{"name": ["bpm"]}], "addons": []}],
            ),
            "releases/0",
        ),
        (
            lambda: m.apply_addons(
                m.parse_manifest(doc(MANIFESTS[7])), "zookeeper", [{"variables": 7}]
            ),
            "variables",
        ),
        (
            lambda: m.resolve_job_properties(None, {}, "ig/jobs/zk/properties"),
            "ig/jobs/zk/properties",
        ),
        (
            lambda: m.parse_manifest(_with(MANIFESTS[0], ["addons", 0, "jobs"], 1)),
            "addons/loggregator_agent/jobs",
        ),
    ],
)
@needs_corpus
def test_known_crashes_are_manifest_errors(call, path):
    with pytest.raises(ManifestError) as info:
        call()
    assert path in info.value.paths


@pytest.mark.parametrize("parsed", [True, False])
@needs_corpus
def test_a_huge_instance_count_is_refused_not_planned(parsed):
    manifest = _with(MANIFESTS[2], ["instance_groups", 0, "instances"], 10**30)
    if parsed:
        with pytest.raises(ManifestError) as info:
            m.parse_manifest(manifest)
        assert "instance_groups/zookeeper/instances" in info.value.paths
    else:
        with pytest.raises(PlanError) as plan_info:
            plan_deployment(manifest, CLOUD, (), STEMCELLS)
        assert plan_info.value.path == "instance_groups/zookeeper/instances"


@needs_corpus
def test_addon_filters_skip_a_networks_placeholder():
    """Addons are applied before interpolation: ``networks: ((nets))`` cannot match
    a networks filter, and used to raise AttributeError."""
    manifest = m.parse_manifest(_with(MANIFESTS[2], ["instance_groups", 0, "networks"], "((nets))"))
    runtime = {
        "releases": [{"name": "os-conf", "version": "1"}],
        "addons": [
            {
                "name": "a",
                "jobs": [{"name": "j", "release": "os-conf"}],
                "include": {"networks": ["default"]},
            }
        ],
    }
    out = m.apply_addons(manifest, "zookeeper", [runtime])
    jobs = {ig["name"]: [j["name"] for j in ig["jobs"]] for ig in out["instance_groups"]}
    assert jobs == {"zookeeper": ["zookeeper"], "smoke-tests": ["smoke-tests", "j"]}


def _with(path: str, where: list, value):
    out = mutate(doc(path), [])
    node = out
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    return out


# --------------------------------------------------------------------------
# Structural fuzzing


@pytest.mark.parametrize("path", MANIFESTS)
@fuzz(60)
@given(muts=mutations())
@needs_corpus
def test_parse_manifest(path, muts):
    broken = mutate(doc(path), muts)
    try:
        m.parse_manifest(broken)
    except ManifestError as e:
        assert_named(e, isinstance(broken, dict))


def _lookup(name: str):
    # Typed values, as a vars store holds them.
    return {"a": [1, None], "ca": "-----BEGIN", "n": 3}.get(name.rsplit(".", 1)[-1], name)


@pytest.mark.parametrize("path", MANIFESTS[:4])
@fuzz(60)
@given(muts=mutations())
@needs_corpus
def test_interpolate_then_parse(path, muts):
    broken = mutate(doc(path), muts)
    try:
        m.parse_manifest(m.interpolate(broken, _lookup, skip=m.deferred_to_render))
    except ManifestError as e:
        assert_named(e, isinstance(broken, dict))


VARS = {
    **(mutate(doc("vars-files/concourse-bosh-deployment/versions.yml"), []) if PRESENT else {}),
    "deployment_name": "concourse",
    "azs": ["z1"],
    "network_name": "concourse",
    "web_vm_type": "concourse",
    "worker_vm_type": "concourse",
    "db_vm_type": "concourse",
    "db_persistent_disk_type": "db",
    "external_url": "https://10.244.15.2",
    "external_host": "10.244.15.2",
    "web_instances": 1,
    "worker_instances": 2,
    "token_signing_key": {"private_key": "k", "public_key": "p"},
    "worker_key": {"private_key": "k", "public_key": "p", "public_key_fingerprint": "f"},
}


@fuzz(100)
@given(muts=mutations())
@needs_corpus
def test_interpolate_with_a_mutated_vars_store(muts):
    """A vars store (CredHub, a vars file) holding values of the wrong shape."""
    store = mutate(VARS, muts)
    if not isinstance(store, dict):
        return
    try:
        m.parse_manifest(m.interpolate(doc(MANIFESTS[1]), store))
    except ManifestError as e:
        assert_named(e)


@pytest.mark.parametrize(("base", "ops"), OPS)
@fuzz(40)
@given(muts=mutations())
@needs_corpus
def test_apply_mutated_ops(base, ops, muts):
    broken = mutate(doc(ops), muts)
    try:
        m.apply_ops(doc(base), broken, ops)
    except ManifestError as e:
        assert_named(e, root_is_mapping=False)
        assert all(p in ("", ops) or p.startswith(f"{ops}[") for p in e.paths), e.paths


@pytest.mark.parametrize(("base", "ops"), OPS[:2])
@fuzz(40)
@given(muts=mutations())
@needs_corpus
def test_apply_ops_to_a_mutated_manifest(base, ops, muts):
    broken = mutate(doc(base), muts)
    try:
        m.apply_ops(broken, doc(ops), ops)
    except ManifestError as e:
        assert_named(e, root_is_mapping=False)


@pytest.mark.parametrize("path", RUNTIME_CONFIGS)
@fuzz(40)
@given(muts=mutations())
@needs_corpus
def test_apply_mutated_runtime_configs(path, muts):
    manifest = _parsed(MANIFESTS[7])
    broken = mutate(doc(path), muts)
    try:
        m.apply_addons(manifest, manifest["name"], [broken])
    except ManifestError as e:
        assert_named(e, isinstance(broken, dict))


@fuzz(60)
@given(muts=mutations())
@needs_corpus
def test_apply_addons_to_a_mutated_manifest(muts):
    broken = mutate(doc(MANIFESTS[0]), muts)
    try:
        manifest = m.parse_manifest(broken)
        m.apply_addons(manifest, "cf", [doc(RUNTIME_CONFIGS[0]), doc(RUNTIME_CONFIGS[1])])
    except ManifestError as e:
        assert_named(e, isinstance(broken, dict))


PROPERTIES = {"zookeeper": {"tick_time": 3000, "init_limit": 10}, "extra": {"a": [1]}}


@fuzz(80)
@given(muts=mutations())
@needs_corpus
def test_resolve_job_properties_with_a_mutated_spec(muts):
    spec = mutate(doc(JOB_SPEC), muts)
    try:
        props, warnings = m.resolve_job_properties(spec, PROPERTIES, "ig/jobs/zk/properties")
    except ManifestError as e:
        assert e.paths == ["ig/jobs/zk/properties"]
        return
    assert isinstance(props, dict)
    assert all(p.startswith("ig/jobs/zk/properties") for p, _ in warnings)


@fuzz(80)
@given(muts=mutations())
@needs_corpus
def test_resolve_mutated_job_properties(muts):
    props = mutate(PROPERTIES, muts)
    resolved, warnings = m.resolve_job_properties(doc(JOB_SPEC), props, "ig/jobs/zk/properties")
    assert isinstance(resolved, dict)
    assert all(p.startswith("ig/jobs/zk/properties") for p, _ in warnings)


@pytest.mark.parametrize("path", CLOUD_CONFIGS)
@fuzz(60)
@given(muts=mutations())
@needs_corpus
def test_parse_mutated_cloud_configs(path, muts):
    broken = mutate(doc(path), muts)
    try:
        m.parse_cloud_config(broken)
    except ManifestError as e:
        assert_named(e, isinstance(broken, dict))
    try:
        m.parse_cloud_config(m.consolidate_cloud_configs([broken, doc(CLOUD_CONFIGS[2])]))
    except ManifestError as e:
        assert_named(e, root_is_mapping=False)


# --------------------------------------------------------------------------
# Planning: what parse_manifest / parse_cloud_config accept, the planner plans
# or refuses with a PlanError.


def _vsphere_cloud() -> dict:
    text = (CORPUS / CLOUD_CONFIGS[0]).read_text()
    for var, value in {
        "((vcenter_cluster))": "cluster1",
        "((internal_cidr))": "10.0.0.0/24",
        "((internal_gw))": "10.0.0.1",
        "((network_name))": "VM Network",
    }.items():
        text = text.replace(var, value)
    cloud = yaml.safe_load(text)
    subnet = cloud["networks"][0]["subnets"][0]
    subnet["reserved"] = ["10.0.0.2 - 10.0.0.9"]
    subnet["static"] = ["10.0.0.100 - 10.0.0.120"]
    return cloud


def _zookeeper() -> dict:
    manifest = mutate(doc(MANIFESTS[2]), [])
    manifest["instance_groups"][1]["networks"][0]["static_ips"] = ["10.0.0.100"]
    return manifest


# Values that mean something to the planner, so mutated documents still parse.
PLAN_VALUES = st.one_of(
    st.sampled_from(["z1", "z2", "z3", "z9", "default", "other", "service", "errand"]),
    st.sampled_from(["10.0.0.100", "10.0.0.5", "10.0.0.1", "10.0.0.255", "10.0.1.5", "::1"]),
    st.sampled_from(["10.0.0.100 - 10.0.0.110", "10.0.0.0/28", "10.0.0.0/24", "10.0.0.200"]),
    st.sampled_from([0, 1, 2, 5, 300, 70_000, -1, "50%", "0%", "1000-2000"]),
    st.lists(st.sampled_from(["z1", "z2", "z3", "z9", "10.0.0.101", "dns", "gateway"]), max_size=4),
    st.fixed_dictionaries({"name": st.sampled_from(["default", "other", "z1"])}),
)
CLOUD = _vsphere_cloud() if PRESENT else {}
ZOOKEEPER = _zookeeper() if PRESENT else {}
STEMCELLS = {"default": StemcellRef("default", "bosh-vsphere-esxi-ubuntu-xenial-go_agent", "1.0")}


def _plan(manifest, cloud) -> None:
    """The prepare pipeline's order: parse both, cross-check, plan."""
    try:
        parsed = m.parse_manifest(manifest)
        parsed_cloud = m.parse_cloud_config(cloud)
    except ManifestError as e:
        assert_named(e, isinstance(manifest, dict) and isinstance(cloud, dict))
        return
    if m.validate_against_cloud_config(parsed, parsed_cloud):
        return
    try:
        plan_deployment(parsed, parsed_cloud, (), STEMCELLS)
    except PlanError as e:
        assert_plan_error(e)


@needs_corpus
def test_the_unbroken_pair_plans():
    plan = plan_deployment(m.parse_manifest(ZOOKEEPER), m.parse_cloud_config(CLOUD), (), STEMCELLS)
    assert plan.summary() == {"create": 5, "recreate": 0, "update": 0, "delete": 0, "none": 1}


@fuzz(400)
@given(muts=mutations(max_size=2, values=PLAN_VALUES))
def test_plan_a_mutated_manifest(muts):
    _plan(mutate(ZOOKEEPER, muts), CLOUD)


@fuzz(400)
@given(muts=mutations(max_size=2, values=PLAN_VALUES))
def test_plan_a_mutated_cloud_config(muts):
    _plan(ZOOKEEPER, mutate(CLOUD, muts))


@fuzz(300)
@given(muts=mutations(max_size=2, values=PLAN_VALUES))
def test_plan_unparsed_mutated_input(muts):
    """The planner does not trust its caller either (raw dicts, as in its own tests)."""
    for manifest, cloud in ((mutate(ZOOKEEPER, muts), CLOUD), (ZOOKEEPER, mutate(CLOUD, muts))):
        try:
            plan_deployment(manifest, cloud, (), STEMCELLS)
        except PlanError as e:
            assert_plan_error(e)


def _parsed(path: str) -> dict:
    key = f"parsed:{path}"
    if key not in _DOCS:
        _DOCS[key] = m.parse_manifest(doc(path))
    return _DOCS[key]


# --------------------------------------------------------------------------
# Hostile text


def _billion_laughs(levels: int = 9) -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    return "\n".join(lines) + "\nname: x\n"


HOSTILE = [
    pytest.param(_billion_laughs(), "expands to more than", id="billion-laughs"),
    pytest.param("a: " + "[" * 100_000 + "]" * 100_000, "levels deep", id="deep-lists"),
    pytest.param("a: " + "{a: " * 5_000 + "1" + "}" * 5_000, "levels deep", id="deep-maps"),
    pytest.param(b"name: \xff\xfe\n", "not UTF-8", id="not-utf8"),
    pytest.param("name: x\x00\n", "not valid YAML", id="nul"),
    pytest.param("a: 1\na: 2\n", "duplicate key", id="duplicate-key"),
    pytest.param("a: &a [*a]\n", "recursive YAML alias", id="recursive-alias"),
    pytest.param("a: *nope\n", "not valid YAML", id="undefined-alias"),
    pytest.param("- 1\n", "must be a YAML mapping", id="a-list"),
    pytest.param("", "is empty", id="empty"),
    pytest.param("name: !!python/object:os.system x\n", "not valid YAML", id="python-tag"),
]


@pytest.mark.parametrize(("text", "message"), HOSTILE)
def test_hostile_yaml_is_refused_quickly(text, message):
    start = time.monotonic()
    with pytest.raises(ManifestError) as info:
        m.load_yaml(text)
    assert time.monotonic() - start < 5
    assert message in str(info.value)


def test_real_documents_are_within_the_yaml_bounds():
    for path in CORPUS.rglob("*.yml"):
        m.load_yaml_document(path.read_text(), str(path))  # raises if refused


def test_a_huge_string_value_is_just_a_value():
    text = "name: " + "A" * 5_000_000 + "\n"
    assert len(m.load_yaml(text)["name"]) == 5_000_000
    with pytest.raises(ManifestError) as info:
        m.parse_manifest(text)
    assert "name" not in info.value.paths  # a long name is still a name
