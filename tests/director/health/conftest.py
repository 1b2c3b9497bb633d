"""Health tests reuse the deploy tests' director on vcsim (``director_env``) and helpers."""

from __future__ import annotations

import time

import pytest
from pyVim.task import WaitForTask

from director.models import Task
from tests.director.execution.conftest import (  # noqa: F401  (fixtures and helpers)
    DirectorEnv,
    director_env,
    release_tgz,
    stemcell_tgz,
    wait_done,
    wait_terminal,
    zookeeper_manifest,
)


def vc_vm(env: DirectorEnv, cid: str):
    """The VM ``cid`` as a pyVmomi object, read with the test's own session."""
    return env.si.content.searchIndex.FindChild(env.vm_folder(), cid)


def unregister(env: DirectorEnv, cid: str) -> None:
    """The VM is powered off and removed from vCenter's inventory behind the director's back.

    "Remove from Inventory" keeps the VM's files, the persistent disk among
    them (vSphere's "Delete from Disk" would delete an attached disk too).
    """
    vm = vc_vm(env, cid)
    WaitForTask(vm.PowerOffVM_Task())
    vm.UnregisterVM()


def power_off(env: DirectorEnv, cid: str) -> None:
    WaitForTask(vc_vm(env, cid).PowerOffVM_Task())


def fix_tasks(deployment: str):
    return Task.objects.filter(type="scan_and_fix", deployment_name=deployment).order_by("id")


def wait_fix(deployment: str, count: int = 1, timeout: float = 120) -> Task:
    """The ``count``-th scan and fix task of the deployment, once it has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = list(fix_tasks(deployment))
        if len(tasks) >= count:
            return wait_terminal(tasks[count - 1], timeout)
        time.sleep(0.1)
    raise AssertionError(f"no scan and fix task #{count} for {deployment}")


@pytest.fixture
def meltdown(db):
    """Set the Director tile's meltdown thresholds as Apply Changes stores them."""
    import json

    from director.models import DirectorAttribute

    def set_(minimum_down_jobs=5, percent_threshold=50, time_threshold=600):
        DirectorAttribute.set(
            "hm_meltdown",
            json.dumps(
                {
                    "minimum_down_jobs": minimum_down_jobs,
                    "percent_threshold": percent_threshold,
                    "time_threshold": time_threshold,
                }
            ),
        )

    return set_
