"""Which errand a name means in a manifest (pure): lifecycle errand groups first, then jobs."""

import pytest

from director.errands import errands_of, find_errand

RUNNABLE = {("zk", "smoke-tests"), ("zk", "status"), ("other", "cleanup")}


def runnable(release, job):
    return (release, job) in RUNNABLE


def group(name, jobs, lifecycle=None):
    g = {"name": name, "jobs": [{"name": j, "release": r} for r, j in jobs]}
    if lifecycle:
        g["lifecycle"] = lifecycle
    return g


MANIFEST = {
    "instance_groups": [
        group("zookeeper", [("zk", "zookeeper"), ("zk", "status")]),
        group("smoke-tests", [("zk", "smoke-tests")], "errand"),
        group("cleaner", [("other", "cleanup"), ("zk", "zookeeper")], "errand"),
        group("workers", [("zk", "status")]),
        group("zookeeper-errand", [("zk", "zookeeper")], "errand"),  # no bin/run job
    ]
}


@pytest.mark.parametrize(
    "name, kind, groups",
    [
        # a lifecycle errand group by its name: its bin/run jobs
        ("smoke-tests", "instance_group", [("smoke-tests", "errand", ("smoke-tests",))]),
        ("cleaner", "instance_group", [("cleaner", "errand", ("cleanup",))]),
        # a group without a bin/run job still is an errand group (all its jobs)
        ("zookeeper-errand", "instance_group", [("zookeeper-errand", "errand", ("zookeeper",))]),
        # a bin/run job by name: every group that has it
        (
            "status",
            "job",
            [("zookeeper", "service", ("status",)), ("workers", "service", ("status",))],
        ),
        ("cleanup", "job", [("cleaner", "errand", ("cleanup",))]),
    ],
)
def test_find_errand(name, kind, groups):
    errand = find_errand(MANIFEST, name, runnable)
    assert errand is not None
    assert errand.kind == kind
    assert [(g.name, g.lifecycle, g.jobs) for g in errand.groups] == groups


@pytest.mark.parametrize("name", ["zookeeper", "workers", "nope", ""])
def test_not_an_errand(name):
    # a service group's name, a job without bin/run, an unknown name
    assert find_errand(MANIFEST, name, runnable) is None


def test_errands_of_lists_groups_then_jobs_once_each():
    assert [e.name for e in errands_of(MANIFEST, runnable)] == [
        "smoke-tests",
        "cleaner",
        "zookeeper-errand",
        "status",
        "cleanup",
    ]
    assert errands_of({"instance_groups": []}, runnable) == []
