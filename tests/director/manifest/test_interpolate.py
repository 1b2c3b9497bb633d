"""((variable)) interpolation."""

import pytest

from director.manifest.errors import ManifestError
from director.manifest.interpolate import (
    MISSING,
    deferred_to_render,
    find_variables,
    interpolate,
    variable_name_error,
)
from director.manifest.yaml import load_yaml
from tests.corpus import CORPUS, needs_corpus

VARS = {
    "n": 3,
    "azs": ["z1", "z2"],
    "props": {"port": 2181},
    "ip": "10.0.0.5",
    "port": 8443,
    "flag": True,
    "cert": {"ca": "CA-PEM", "certificate": "CERT-PEM", "private_key": "KEY-PEM"},
    "cluster": "cl-1",
    "/dns_ca": {"ca": "DNS-CA"},
}

CASES = [
    ({"instances": "((n))"}, {"instances": 3}),
    ({"azs": "((azs))"}, {"azs": ["z1", "z2"]}),
    ({"p": "((props))"}, {"p": {"port": 2181}}),
    ({"p": "(( n ))"}, {"p": 3}),
    ({"p": "((!n))"}, {"p": 3}),
    ({"url": "https://((ip)):((port))/x"}, {"url": "https://10.0.0.5:8443/x"}),
    ({"ca": "((cert.ca))"}, {"ca": "CA-PEM"}),
    ({"first": "((azs.0))", "last": "((azs.-1))"}, {"first": "z1", "last": "z2"}),
    ({"pem": "key:\n((cert.private_key))\n"}, {"pem": "key:\nKEY-PEM\n"}),
    (
        {"clusters": [{"((cluster))": {"resource_pool": "rp"}}]},
        {"clusters": [{"cl-1": {"resource_pool": "rp"}}]},
    ),
    ({"ca": "((/dns_ca.ca))"}, {"ca": "DNS-CA"}),
    (
        {"plain": "no vars", "n": 1, "b": False, "none": None},
        {"plain": "no vars", "n": 1, "b": False, "none": None},
    ),
]


@pytest.mark.parametrize("doc, expected", CASES)
def test_interpolation_cases(doc, expected):
    assert interpolate(doc, VARS) == expected


ERROR_CASES = [
    (
        {
            "instance_groups": [
                {"name": "zk", "instances": "((missing))", "azs": "((also_missing))"}
            ]
        },
        [
            ("instance_groups/zk/instances", "Expected to find variable 'missing'"),
            ("instance_groups/zk/azs", "Expected to find variable 'also_missing'"),
        ],
    ),
    ({"url": "https://((azs))/"}, [("url", "not a string or an integer")]),
    ({"url": "on=((flag))"}, [("url", "not a string or an integer")]),
    ({"x": "((cert.nope))"}, [("x", "Expected to find key 'nope' in variable 'cert'")]),
    ({"x": "((ip.nope))"}, [("x", "Expected variable 'ip' to be a map")]),
    ({"x": "((azs.5))"}, [("x", "index 5")]),
    ({"x": "(( .properties.x.value ))"}, [("x", "must not be empty or start with '.'")]),
    ({"x": "((a//b))"}, [("x", "must not contain '//'")]),
    ({"x": "((a/))"}, [("x", "must not end with a '/'")]),
    ({"x": "((a..b))"}, [("x", "empty key segments")]),
    ({"x": "((ünï))"}, [("x", "must only contain alphanumeric")]),
]


@pytest.mark.parametrize("doc, expected", ERROR_CASES)
def test_interpolation_errors_name_every_path(doc, expected):
    with pytest.raises(ManifestError) as exc:
        interpolate(doc, VARS)
    assert len(exc.value.errors) == len(expected)
    for (path, message), (want_path, want_text) in zip(exc.value.errors, expected, strict=True):
        assert path == want_path
        assert want_text in message


def test_text_that_is_not_a_placeholder_stays_literal():
    doc = {"script": "echo $((1+2)) ((a!b)) (( two words ))"}
    assert interpolate(doc, VARS) == doc
    assert find_variables(doc) == set()


def test_secret_values_never_appear_in_errors():
    with pytest.raises(ManifestError) as exc:
        interpolate({"a": "x((cert))", "b": "((nope))"}, VARS)
    assert "KEY-PEM" not in str(exc.value)


def test_lookup_callable_is_asked_once_per_name_and_may_say_missing():
    calls = []

    def lookup(name):
        calls.append(name)
        return {"a": "A"}.get(name, MISSING)

    assert interpolate({"x": "((a))", "y": ["((a))-((a))"]}, lookup) == {"x": "A", "y": ["A-A"]}
    assert calls == ["a"]
    with pytest.raises(ManifestError):
        interpolate({"x": "((b))"}, lookup)

    def raising(name):
        raise KeyError(name)

    with pytest.raises(ManifestError, match="Expected to find variable 'b'"):
        interpolate({"x": "((b))"}, raising)


def test_full_value_results_are_not_shared_between_paths():
    out = interpolate({"a": "((azs))", "b": "((azs))"}, VARS)
    out["a"].append("z3")
    assert out["b"] == ["z1", "z2"] and VARS["azs"] == ["z1", "z2"]


def test_director_defers_properties_and_env_to_rendering():
    doc = {
        "name": "d",
        "properties": {"p": "((a))"},
        "instance_groups": [
            {
                "name": "zk",
                "instances": "((n))",
                "env": {"bosh": {"password": "((a))"}},
                "properties": {"x": "((a))"},
                "jobs": [
                    {
                        "name": "zookeeper",
                        "properties": {"x": "((a))"},
                        "consumes": {"db": {"from": "((ip))", "properties": {"x": "((a))"}}},
                    }
                ],
            }
        ],
    }
    out = interpolate(doc, VARS, skip=deferred_to_render)
    ig = out["instance_groups"][0]
    assert ig["instances"] == 3
    assert ig["jobs"][0]["consumes"]["db"]["from"] == "10.0.0.5"
    assert ig["jobs"][0]["properties"] == {"x": "((a))"}
    assert ig["jobs"][0]["consumes"]["db"]["properties"] == {"x": "((a))"}
    assert ig["env"] == {"bosh": {"password": "((a))"}} and out["properties"] == {"p": "((a))"}
    assert find_variables(doc, skip=deferred_to_render) == {"n", "ip"}
    assert find_variables(doc) == {"n", "ip", "a"}


@needs_corpus
def test_concourse_interpolates_with_its_versions_file():
    doc = load_yaml(
        (CORPUS / "deployments/concourse-bosh-deployment/cluster/concourse.yml").read_text()
    )
    versions = load_yaml((CORPUS / "vars-files/concourse-bosh-deployment/versions.yml").read_text())
    declared = {v["name"] for v in doc["variables"]}
    needed = find_variables(doc) - declared - set(versions)
    assert needed == {
        "azs", "db_persistent_disk_type", "db_vm_type", "deployment_name", "external_url",
        "network_name", "web_vm_type", "worker_vm_type",
    }  # fmt: skip
    supplied = {
        **versions,
        "azs": ["z1", "z2"],
        "db_persistent_disk_type": "10GB",
        "db_vm_type": "small",
        "deployment_name": "concourse",
        "external_url": "https://ci.example.com",
        "network_name": "default",
        "web_vm_type": "small",
        "worker_vm_type": "large",
    }

    def lookup(name):
        if name in supplied:
            return supplied[name]
        if name in declared:
            return {"private_key": "K", "public_key": "P", "public_key_fingerprint": "F"}
        raise KeyError(name)

    out = interpolate(doc, lookup)
    assert out["name"] == "concourse"
    assert out["instance_groups"][0]["azs"] == ["z1", "z2"]
    assert find_variables(out) == set()


@needs_corpus
def test_cf_deployment_declares_everything_but_the_system_domain():
    doc = load_yaml((CORPUS / "deployments/cf-deployment/cf-deployment.yml").read_text())
    declared = {v["name"] for v in doc["variables"]}
    assert find_variables(doc) - declared == {"system_domain"}


@pytest.mark.parametrize(
    "name, ok",
    [("a", True), ("a_b-c", True), ("/d/dep/x", True), ("!x", True), ("x.y", True),
     ("a!b", False), ("a//b", False), ("a/", False), (".a", False), ("a b", False)],
)  # fmt: skip
def test_variable_name_validation(name, ok):
    assert (variable_name_error(name) is None) is ok
