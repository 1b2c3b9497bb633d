"""Errand tests reuse the deploy tests' director on vcsim (``director_env``) and helpers.

Importing the fixtures here makes them visible to this directory too.
"""

from tests.director.execution.conftest import (  # noqa: F401  (fixtures and helpers)
    CLOUD_CONFIG,
    DirectorEnv,
    cpi_calls,
    director_env,
    events,
    release_tgz,
    stemcell_tgz,
    wait_done,
    wait_terminal,
)


def errand_manifest(name: str, colocated: bool = False) -> dict:
    """A service group ``zookeeper`` and a lifecycle errand group.

    Plain: the errand group is ``smoke-tests`` (job ``smoke-tests``).
    ``colocated``: ``zookeeper`` also has the ``smoke-tests`` job and the
    errand group is called ``smoke``, so errand ``smoke-tests`` (a job name)
    runs on both.
    """
    zk_jobs = [
        {"name": "zookeeper", "release": "zookeeper", "properties": {"password": "((zk_password))"}}
    ]
    if colocated:
        zk_jobs.append({"name": "smoke-tests", "release": "zookeeper", "properties": {}})
    common = {"vm_type": "small", "stemcell": "default", "networks": [{"name": "default"}]}
    return {
        "name": name,
        "releases": [{"name": "zookeeper", "version": "latest"}],
        "stemcells": [{"alias": "default", "os": "ubuntu-jammy", "version": "latest"}],
        "update": {
            "canaries": 1,
            "max_in_flight": 1,
            "canary_watch_time": 50,
            "update_watch_time": 50,
        },
        "instance_groups": [
            {
                "name": "zookeeper",
                "azs": ["z1"],
                "instances": 1,
                "jobs": zk_jobs,
                "persistent_disk_type": "1GB",
                **common,
            },
            {
                "name": "smoke" if colocated else "smoke-tests",
                "lifecycle": "errand",
                "azs": ["z2"],
                "instances": 1,
                "jobs": [{"name": "smoke-tests", "release": "zookeeper", "properties": {}}],
                "persistent_disk_type": "1GB",
                **common,
            },
        ],
        "variables": [{"name": "zk_password", "type": "password"}],
    }
