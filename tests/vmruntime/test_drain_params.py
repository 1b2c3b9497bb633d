"""A drain script's arguments and job states, as bosh-agent computes them (no VM needed)."""

from __future__ import annotations

import pytest

from tools.vmruntime.drain import _drain_params, _job_state

JOBS = {"templates": [{"name": "web", "sha1": "a"}]}
OLD = {
    "job": JOBS,
    "configuration_hash": "h1",
    "persistent_disk": 1024,
    "packages": {"ruby": {"sha1": "r1"}, "app": {"sha1": "a1"}},
}


@pytest.mark.parametrize(
    ("old", "new", "kind", "expected"),
    [
        # a VM that never ran jobs (the director's first apply was partial)
        ({}, OLD, "update", ["job_new", "hash_new", "app", "ruby"]),
        (OLD, dict(OLD), "update", ["job_changed", "hash_unchanged"]),
        (
            OLD,
            dict(
                OLD,
                configuration_hash="h2",
                packages={"ruby": {"sha1": "r2"}, "app": {"sha1": "a1"}, "zlib": {"sha1": "z"}},
            ),
            "update",
            ["job_changed", "hash_changed", "ruby", "zlib"],
        ),
        # a shutdown says nothing about the next spec, even when there is one
        (OLD, None, "shutdown", ["job_shutdown", "hash_unchanged"]),
        (
            OLD,
            dict(OLD, configuration_hash="h2", packages={}),
            "shutdown",
            ["job_shutdown", "hash_unchanged"],
        ),
        ({}, None, "shutdown", ["job_shutdown", "hash_unchanged"]),
    ],
)
def test_drain_arguments(old, new, kind, expected):
    assert _drain_params(old, new, kind) == expected


def test_job_states_are_compact_json_of_the_persistent_disk():
    assert _job_state(OLD) == '{"persistent_disk":1024}'
    assert _job_state({}) == '{"persistent_disk":0}'
