"""go-patch ops: the derived go-patch vectors, go-patch's own integration case,
and every corpus ops file against the base manifest INDEX.md names."""

from pathlib import Path

import pytest

from director.manifest.errors import ManifestError
from director.manifest.ops import apply_ops, find_path
from director.manifest.pointer import parse_pointer
from director.manifest.yaml import load_yaml, load_yaml_document
from tests.corpus import CORPUS, PRESENT, needs_corpus

VECTORS = (
    load_yaml((CORPUS / "ops-files/_derived/go-patch-doc-cases.yml").read_text())
    if PRESENT
    else {"base": {}, "cases": []}
)


def _load(rel):
    return load_yaml_document((CORPUS / rel).read_text(), rel)


@pytest.mark.parametrize("case", VECTORS["cases"], ids=[c["id"] for c in VECTORS["cases"]])
def test_go_patch_doc_vectors(case):
    base = case.get("base", VECTORS["base"])
    if case["expect"].get("error"):
        with pytest.raises(ManifestError) as exc:
            apply_ops(base, case["ops"])
        assert case["expect"]["message"] in str(exc.value)
    else:
        assert apply_ops(base, case["ops"]) == case["expect"]["result"]


@needs_corpus
def test_go_patch_integration_basic():
    d = "ops-files/_derived/go-patch-integration-basic/"
    doc = apply_ops(_load(d + "base.yml"), _load(d + "ops1.yml"))
    doc = apply_ops(doc, _load(d + "ops2.yml"))
    assert doc == _load(d + "expected.yml")


BOSH = "deployments/bosh-deployment/bosh.yml"
CF = "deployments/cf-deployment/cf-deployment.yml"
CONCOURSE = "deployments/concourse-bosh-deployment/cluster/concourse.yml"
PRODUCT = "tiles/om-config-template/cf-2.8.6/product.yml"
BASES = {
    "ops-files/bosh-deployment/": BOSH,
    "ops-files/docs-bosh/": BOSH,
    "ops-files/cf-deployment/": CF,
    "ops-files/concourse-bosh-deployment/cluster/": CONCOURSE,
    "ops-files/concourse-bosh-deployment/lite/": "deployments/concourse-bosh-deployment/lite/concourse.yml",
    "ops-files/kubo-deployment/": "deployments/kubo-deployment/cfcr.yml",
    "ops-files/postgres-release/": "deployments/postgres-release/postgres.yml",
    "ops-files/prometheus-boshrelease/": "deployments/prometheus-boshrelease/prometheus.yml",
    "ops-files/redis-boshrelease/": "deployments/redis-boshrelease/redis.yml",
    "ops-files/zookeeper-release/": "deployments/zookeeper-release/zookeeper.yml",
    "tiles/om-config-template/cf-2.8.6/": PRODUCT,
}
# Ops files that only apply on top of another one (INDEX.md "Verified ops combinations").
PREREQUISITES = {
    "ops-files/bosh-deployment/credhub.yml": ["ops-files/bosh-deployment/uaa.yml"],
    "ops-files/bosh-deployment/misc/config-server.yml": ["ops-files/bosh-deployment/uaa.yml"],
    "ops-files/bosh-deployment/vsphere/custom-ca.yml": [
        "ops-files/bosh-deployment/vsphere/cpi.yml"
    ],
    "ops-files/bosh-deployment/vsphere/resource-pool.yml": [
        "ops-files/bosh-deployment/vsphere/cpi.yml"
    ],
    "ops-files/docs-bosh/vsphere-scsi-controller-ops.yml": [
        "ops-files/bosh-deployment/vsphere/cpi.yml"
    ],
    "ops-files/bosh-deployment/vsphere/second-network.yml": [
        "ops-files/bosh-deployment/misc/second-network.yml"
    ],
    "ops-files/concourse-bosh-deployment/cluster/operations/credhub-colocated.yml": [
        "ops-files/concourse-bosh-deployment/cluster/operations/uaa.yml"
    ],
}


def _ops_files():
    out = []
    for prefix, base in BASES.items():
        folder = "ops-files" if prefix.startswith("ops-files") else prefix.rstrip("/")
        for path in sorted((CORPUS / prefix).rglob("*.yml")):
            rel = str(path.relative_to(CORPUS))
            if folder.startswith("tiles") and not any(
                f"/{d}/" in rel for d in ("features", "network", "optional", "resource")
            ):
                continue  # vars files and the base itself, not ops
            out.append((rel, base))
    return out


OPS_FILES = _ops_files()


@needs_corpus
def test_the_ops_table_covers_the_corpus():
    listed = {rel for rel, _ in OPS_FILES}
    on_disk = {
        str(p.relative_to(CORPUS))
        for p in (CORPUS / "ops-files").rglob("*.yml")
        if "_derived" not in p.parts
    }
    assert on_disk <= listed
    assert len(OPS_FILES) >= 60


@pytest.mark.parametrize("rel, base", OPS_FILES, ids=[r for r, _ in OPS_FILES])
def test_every_corpus_ops_file_applies_to_its_base(rel, base):
    doc = _load(base)
    for pre in PREREQUISITES.get(rel, []):
        doc = apply_ops(doc, _load(pre), pre)
    ops = _load(rel) or []
    result = apply_ops(doc, ops, rel)
    if ops:
        assert result != doc, "a non-empty ops file changed nothing"
    # The last replace op's value is now found at its path (unless it appended or inserted).
    last = next((op for op in reversed(ops) if op["type"] == "replace"), None)
    if last and not last["path"].endswith(("/-", ":before", ":after")) and "?" not in last["path"]:
        assert find_path(result, last["path"]) == last["value"]


def _chain(base, *ops_files):
    doc = _load(base)
    for rel in ops_files:
        doc = apply_ops(doc, _load(rel), rel)
    return doc


B = "ops-files/bosh-deployment/"
CFO = "ops-files/cf-deployment/operations/"
CO = "ops-files/concourse-bosh-deployment/cluster/operations/"
COMBINATIONS_OK = [
    (
        BOSH,
        [
            B + f
            for f in (
                "vsphere/cpi.yml",
                "vsphere/resource-pool.yml",
                "vsphere/custom-ca.yml",
                "uaa.yml",
                "credhub.yml",
                "jumpbox-user.yml",
                "misc/dns.yml",
                "misc/ntp.yml",
                "misc/config-server.yml",
                "syslog.yml",
            )
        ],
    ),
    (
        BOSH,
        [
            B + f
            for f in (
                "vsphere/cpi.yml",
                "misc/second-network.yml",
                "vsphere/second-network.yml",
                "misc/dns-addon.yml",
            )
        ],
    ),
    (BOSH, [B + "bosh-lite.yml"]),
    (
        CF,
        [
            CFO + f
            for f in (
                "scale-to-one-az.yml",
                "experimental/use-create-swap-delete-vm-strategy.yml",
                "set-router-static-ips.yml",
                "rename-network-and-deployment.yml",
                "stop-skipping-tls-validation.yml",
                "add-persistent-isolation-segment-diego-cell.yml",
                "scale-database-cluster.yml",
            )
        ],
    ),
    (CF, [CFO + "use-external-dbs.yml"]),
    (
        CONCOURSE,
        [
            CO + f
            for f in (
                "static-web.yml",
                "scale.yml",
                "max-in-flight.yml",
                "worker-max-in-flight.yml",
                "tls-vars.yml",
                "tls.yml",
                "postgres-link.yml",
                "tagged-worker.yml",
                "backup-atc.yml",
            )
        ],
    ),
    (CONCOURSE, [CO + f for f in ("tls-vars.yml", "tls.yml", "uaa.yml", "credhub-colocated.yml")]),
    (
        PRODUCT,
        [
            "tiles/om-config-template/cf-2.8.6/" + f
            for f in (
                "network/3-az-configuration.yml",
                "features/uaa-ldap.yml",
                "features/system_blobstore-external.yml",
                "features/tcp_routing-enable.yml",
                "optional/add-router-static_ips.yml",
                "optional/add-2-cloud_controller_encryption_keys.yml",
                "resource/router_elb_names.yml",
            )
        ],
    ),
]


@pytest.mark.parametrize(
    "base, files",
    COMBINATIONS_OK,
    ids=lambda v: v if isinstance(v, str) else "+".join(Path(f).stem for f in v),
)
@needs_corpus
def test_verified_combinations_apply(base, files):
    _chain(base, *files)


COMBINATIONS_FAIL = [
    (
        BOSH,
        ["ops-files/docs-bosh/vsphere-scsi-controller-ops.yml"],
        "Expected to find a map key 'vcenter'",
    ),
    (
        CF,
        [
            CFO + "bosh-lite.yml",
            CFO + "use-external-dbs.yml",
            CFO + "experimental/fast-deploy-with-downtime-and-danger.yml",
        ],
        "path '/instance_groups/name=database' but found 0",
    ),
    (
        CONCOURSE,
        [CO + "credhub-colocated.yml"],
        "'/instance_groups/name=web/jobs/name=uaa' but found 0",
    ),
]


@pytest.mark.parametrize("base, files, message", COMBINATIONS_FAIL)
@needs_corpus
def test_known_bad_combinations_fail_naming_the_op(base, files, message):
    with pytest.raises(ManifestError) as exc:
        _chain(base, *files)
    assert message in str(exc.value)
    path, text = exc.value.errors[0]
    assert path.startswith(files[-1] + "[")
    assert text.startswith("operation [")


@needs_corpus
def test_use_external_dbs_edits_one_alias_only():
    doc = _chain(CF, CFO + "use-external-dbs.yml")
    api = find_path(doc, "/instance_groups/name=api/jobs/name=cloud_controller_ng/properties/ccdb")
    worker = find_path(
        doc, "/instance_groups/name=cc-worker/jobs/name=cloud_controller_worker/properties/ccdb"
    )
    assert api is not worker


CASES = [
    # (doc, ops, expected result or error text)
    ({"a": [1, 2, 3]}, [{"type": "replace", "path": "/a/-1", "value": 9}], {"a": [1, 2, 9]}),
    ({"a": [1, 2, 3]}, [{"type": "remove", "path": "/a/1:next"}], {"a": [1, 2]}),
    (
        {"a": [{"n": "x"}]},
        [{"type": "replace", "path": "/a/n=x:after", "value": 2}],
        {"a": [{"n": "x"}, 2]},
    ),
    ({}, [{"type": "replace", "path": "/a?/b/c", "value": 1}], {"a": {"b": {"c": 1}}}),
    (
        {},
        [{"type": "replace", "path": "/list?/name=x/v", "value": 1}],
        {"list": [{"name": "x", "v": 1}]},
    ),
    ({}, [{"type": "replace", "path": "/x~1y~0z?", "value": 1}], {"x/y~z": 1}),
    ({"a": 1}, [{"type": "replace", "path": "", "value": {"b": 2}}], {"b": 2}),
    ({"a": 1}, [{"type": "remove", "path": "/b?"}], {"a": 1}),
    ({"a": []}, [{"type": "remove", "path": "/a/name=x?"}], {"a": []}),
    ({"a": [{"name": 1}]}, [{"type": "remove", "path": "/a/name=1"}], "found 0"),
    (
        {"a": 1},
        [{"type": "replace", "path": "/a/b", "value": 1}],
        "Expected to find a map at path '/a/b' but found 'int'",
    ),
    (
        {"a": {}},
        [{"type": "replace", "path": "/a/0", "value": 1}],
        "Expected to find an array at path '/a/0' but found 'map[interface {}]interface {}'",
    ),
    (
        {"a": [1]},
        [{"type": "replace", "path": "/a/5", "value": 1}],
        "Expected to find array index '5' but found array of length '1' for path '/a/5'",
    ),
    ({"a": 1}, [{"type": "remove", "path": ""}], "Cannot remove entire document"),
    ({"a": 1}, [{"type": "replace", "path": "/a"}], "Replace operation [0]: Missing value"),
    (
        {"a": 1},
        [{"type": "remove", "path": "/a", "value": 2}],
        "Remove operation [0]: Cannot specify value",
    ),
    ({"a": 1}, [{"type": "move", "path": "/a"}], "Unknown operation [0] with type 'move'"),
    (
        {"a": 1},
        [{"type": "replace", "path": "a", "value": 1}],
        "Invalid path: Expected to start with '/'",
    ),
    ({"a": 1}, [{"type": "replace", "path": "/a:later", "value": 1}], "but found 'later'"),
    (
        {"a": 1},
        [{"type": "replace", "path": "/b", "value": 1, "error": "needs b"}],
        "needs b: Expected to find a map key 'b'",
    ),
    ({"a": 1}, [{"type": "test", "path": "/a", "value": 2}], "does not match"),
    ({"a": 1}, [{"type": "test", "path": "/a", "absent": True}], "Expected to not find '/a'"),
    ({"a": 1}, [{"type": "replace", "path": "/a", "value": 2, "name": "ignored"}], {"a": 2}),
    ({"a": 1}, "not a list", "must be a YAML list of operations"),
]


@pytest.mark.parametrize("doc, ops, expected", CASES)
def test_op_cases(doc, ops, expected):
    if isinstance(expected, str):
        with pytest.raises(ManifestError) as exc:
            apply_ops(doc, ops)
        assert expected in str(exc.value)
    else:
        assert apply_ops(doc, ops) == expected


def test_apply_ops_is_pure_and_values_are_not_shared():
    doc = {"a": {"b": 1}}
    value = {"v": [1]}
    out = apply_ops(
        doc,
        [
            {"type": "replace", "path": "/c?", "value": value},
            {"type": "replace", "path": "/d?", "value": value},
        ],
    )
    assert doc == {"a": {"b": 1}}
    out["c"]["v"].append(2)
    assert out["d"] == {"v": [1]} and value == {"v": [1]}


def test_pointer_round_trips():
    for p in ["/a/0/-", "/a/name=x?/b", "/x~1y/k=v:after", "/a/-1:prev"]:
        assert str(parse_pointer(p)) == p
