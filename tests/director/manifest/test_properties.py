"""Job property defaults from release job specs."""

import pytest

from director.manifest.parse import parse_manifest
from director.manifest.properties import resolve_job_properties
from director.manifest.yaml import load_yaml
from tests.corpus import CORPUS, PRESENT, needs_corpus, read_text

SPECS = CORPUS / "release-job-specs/zookeeper-release/jobs"
ZK = load_yaml(read_text(SPECS / "zookeeper/spec.yml")) if PRESENT else {}
SMOKE = load_yaml(read_text(SPECS / "smoke-tests/spec.yml")) if PRESENT else {}
PATH = "instance_groups/zookeeper/jobs/zookeeper/properties"


@needs_corpus
def test_zookeeper_manifest_gets_every_spec_default():
    manifest = parse_manifest((CORPUS / "deployments/zookeeper-release/zookeeper.yml").read_text())
    job = manifest["instance_groups"][0]["jobs"][0]
    resolved, warnings = resolve_job_properties(ZK, job["properties"], PATH)
    assert warnings == []
    assert set(resolved) == set(ZK["properties"])
    for name, definition in ZK["properties"].items():
        assert resolved[name] == definition["default"]
    assert resolved["client_port"] == 2181 and resolved["leader_serves"] == "yes"


@needs_corpus
def test_manifest_values_win_and_unknown_ones_are_warnings():
    given = {"client_port": 12181, "tick_time": None, "clientport": 1, "jvm": {"heap": "1g"}}
    resolved, warnings = resolve_job_properties(ZK, given, PATH)
    assert resolved["client_port"] == 12181
    assert resolved["tick_time"] == 2000  # null means "not set"
    assert "clientport" not in resolved and "jvm" not in resolved
    assert warnings == [
        (f"{PATH}/clientport", "'clientport' is not a property of job 'zookeeper' (ignored)"),
        (f"{PATH}/jvm", "'jvm' is not a property of job 'zookeeper' (ignored)"),
    ]


def test_a_job_without_properties():
    assert resolve_job_properties(SMOKE, {}, "x") == ({}, [])
    resolved, warnings = resolve_job_properties(SMOKE, {"a": 1}, "x")
    assert resolved == {} and [p for p, _ in warnings] == ["x/a"]


DOTTED = {
    "name": "web",
    "properties": {
        "web.port": {"default": 8080, "type": "integer"},
        "web.tls.enabled": {"default": False},
        "web.tls.cert": {"description": "PEM"},
        "web.headers": {"default": {"X-Frame": "deny"}},
        "log_level": {"default": "info"},
        "bare": None,
    },
}

CASES = [
    (
        {},
        {
            "web": {
                "port": 8080,
                "tls": {"enabled": False, "cert": None},
                "headers": {"X-Frame": "deny"},
            },
            "log_level": "info",
            "bare": None,
        },
        [],
    ),
    (
        {"web": {"port": 443, "tls": {"cert": "PEM"}}},
        {
            "web": {
                "port": 443,
                "tls": {"enabled": False, "cert": "PEM"},
                "headers": {"X-Frame": "deny"},
            },
            "log_level": "info",
            "bare": None,
        },
        [],
    ),
    # a map-valued property given in the manifest replaces its default whole
    (
        {"web": {"headers": {"X-Other": "1"}}},
        {
            "web": {
                "port": 8080,
                "tls": {"enabled": False, "cert": None},
                "headers": {"X-Other": "1"},
            },
            "log_level": "info",
            "bare": None,
        },
        [],
    ),
    ({"web": {"prot": 1}}, None, ["p/web/prot"]),
    ({"web": {"tls": True}}, None, ["p/web/tls"]),
    ({"web": 5}, None, ["p/web"]),
]


@pytest.mark.parametrize("given, expected, warning_paths", CASES)
def test_dotted_property_names(given, expected, warning_paths):
    resolved, warnings = resolve_job_properties(DOTTED, given, "p")
    if expected is not None:
        assert resolved == expected
    assert [p for p, _ in warnings] == warning_paths


def test_defaults_are_copies():
    resolved, _ = resolve_job_properties(DOTTED, {}, "p")
    resolved["web"]["headers"]["X-Frame"] = "allow"
    assert DOTTED["properties"]["web.headers"]["default"] == {"X-Frame": "deny"}
