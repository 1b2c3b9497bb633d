"""The resurrector's pure rules: BOSH's meltdown arithmetic and resurrection config rules."""

from __future__ import annotations

import pytest

from director.health.rules import (
    MeltdownThresholds,
    ResurrectionRules,
    RuleError,
    in_meltdown,
    parse_rules,
)

T = MeltdownThresholds(minimum_down_jobs=5, percent_threshold=20, time_threshold=600)


@pytest.mark.parametrize(
    "unhealthy,total,thresholds,expected",
    [
        (0, 10, T, False),  # normal
        (4, 10, T, False),  # below the minimum count, however large the share
        (5, 10, T, True),  # 5 >= 5 and 50% >= 20%
        (5, 30, T, False),  # 5 >= 5 but 16.7% < 20%
        (6, 30, T, True),  # exactly 20%
        (2, 3, MeltdownThresholds(2, 50, 600), True),
        (1, 3, MeltdownThresholds(2, 50, 600), False),
        (2, 5, MeltdownThresholds(2, 50, 600), False),  # 40% < 50%
        (3, 0, T, False),  # no instances: nothing to melt
    ],
)
def test_meltdown_needs_both_the_count_and_the_share(unhealthy, total, thresholds, expected):
    assert in_meltdown(unhealthy, total, thresholds) is expected


@pytest.mark.parametrize(
    "stored,expected",
    [
        (None, MeltdownThresholds(5, 20, 600)),  # BOSH's defaults
        (
            {"minimum_down_jobs": 2, "percent_threshold": 50, "time_threshold": 60},
            MeltdownThresholds(2, 50, 60),
        ),
        ({"minimum_down_jobs": "x", "percent_threshold": 150}, MeltdownThresholds(5, 20, 600)),
        ({"time_threshold": 0, "minimum_down_jobs": True}, MeltdownThresholds(5, 20, 600)),
    ],
)
def test_thresholds_from_the_tile_keep_defaults_for_unusable_values(stored, expected):
    assert MeltdownThresholds.from_mapping(stored) == expected


def rules(*docs):
    return ResurrectionRules.from_documents(docs)


@pytest.mark.parametrize(
    "docs,deployment,group,expected",
    [
        ((), "zk", "zookeeper", True),  # no config: enabled
        (({"rules": [{"enabled": False}]},), "zk", "zookeeper", False),  # empty include = all
        (
            ({"rules": [{"enabled": False, "include": {"deployments": ["zk"]}}]},),
            "other",
            "zookeeper",
            True,
        ),
        (
            (
                {
                    "rules": [
                        {
                            "enabled": False,
                            "include": {"deployments": ["zk"], "instance_groups": ["zookeeper"]},
                        }
                    ]
                },
            ),
            "zk",
            "smoke",
            True,  # both lists given: both must match
        ),
        (
            ({"rules": [{"enabled": False, "exclude": {"instance_groups": ["zookeeper"]}}]},),
            "zk",
            "zookeeper",
            True,  # excluded
        ),
        (
            ({"rules": [{"enabled": False, "exclude": {"instance_groups": ["zookeeper"]}}]},),
            "zk",
            "other",
            False,
        ),
        (
            (
                {"rules": [{"enabled": True}]},
                {"rules": [{"enabled": False, "include": {"instance_groups": ["zookeeper"]}}]},
            ),
            "zk",
            "zookeeper",
            False,  # AND across configs
        ),
    ],
)
def test_resurrection_config_rules(docs, deployment, group, expected):
    assert rules(*docs).enabled(deployment, group) is expected


@pytest.mark.parametrize(
    "doc,path",
    [
        ([], "content"),
        ({"rules": {}}, "rules"),
        ({"rules": [{"enabled": "no"}]}, "rules/0/enabled"),
        ({"rules": [{"enabled": True, "include": ["zk"]}]}, "rules/0/include"),
        (
            {"rules": [{"enabled": True, "include": {"deployments": "zk"}}]},
            "rules/0/include/deployments",
        ),
        ({"rules": [{"enabled": True, "exclude": {"jobs": ["a"]}}]}, "rules/0/exclude/jobs"),
        ({"rules": [{"enabled": True, "when": 1}]}, "rules/0/when"),
    ],
)
def test_a_bad_config_names_the_path(doc, path):
    with pytest.raises(RuleError) as err:
        parse_rules(doc)
    assert err.value.path == path
