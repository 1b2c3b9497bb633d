"""Two deployments compiling the same packages at once compile each of them once.

Both deployments use the greeter release (``libgreet``, then ``greeter``
which needs it) on the same stemcell and are deployed at the same time by
the session's worker (two processes). Whichever task takes a package's
compile lock first compiles it on a compilation VM; the other task waits
for the lock and then uses the compiled package instead of compiling it
again. What is asserted is what the director and vCenter show: one
``compile_package`` per package over both tasks (the task debug logs), the
waiting task saying whom it waited for, one compiled package row per
package, both deployments' VMs running the same compiled blobs, and no
compilation VM left in vCenter or in the database.
"""

from __future__ import annotations

import json
import re

import pytest

from director import runner
from director.models import CompiledPackage, Instance, Lock, Vm
from tests.director.execution.conftest import wait_done
from tests.director.execution.test_agents_vcsim import (  # noqa: F401
    _alive,
    _pid,
    _root,
    greeter_env,
    greeter_manifest,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def idle_only(name: str, az: str) -> dict:
    """One ``idle`` instance (it needs ``greeter``, so ``libgreet`` too) in its own AZ, so
    the two deployments' instance addresses come from different subnets."""
    manifest = greeter_manifest(name)
    (idle,) = [g for g in manifest["instance_groups"] if g["name"] == "idle"]
    manifest["instance_groups"] = [dict(idle, azs=[az])]
    return manifest


def debug_log(task) -> str:
    return runner.read_output(task, "debug").text


def test_two_deploys_needing_the_same_packages_compile_them_once(
    greeter_env,  # noqa: F811
    vm_runtime,
):
    env = greeter_env
    first = env.deploy(idle_only("lock-a", "z2"))
    second = env.deploy(idle_only("lock-b", "z3"))
    first, second = wait_done(first, timeout=600), wait_done(second, timeout=600)

    logs = {first.id: debug_log(first), second.id: debug_log(second)}
    compiled_on_vm = {
        task_id: re.findall(r"compiling (\S+)/\S+ for \S+ on VM ", text)
        for task_id, text in logs.items()
    }
    # each package was sent to an agent once over both tasks; the other task used it
    for package in ("libgreet", "greeter"):
        (compiler,) = [t for t, names in compiled_on_vm.items() if package in names]
        (other,) = [t for t in logs if t != compiler]
        assert re.search(rf"{package}/\S+ for \S+ was compiled meanwhile \(build 1\)", logs[other])
    # both tasks reached the stage together: the other one waited for the compiling one's
    # lock (libgreet comes first, as greeter needs it)
    (compiler,) = [t for t, names in compiled_on_vm.items() if "libgreet" in names]
    (waiter,) = [t for t in logs if t != compiler]
    assert re.search(
        rf"libgreet/\S+ for \S+ is being compiled by task {compiler}: waiting", logs[waiter]
    )
    assert sorted(sum(compiled_on_vm.values(), [])) == ["greeter", "libgreet"]

    rows = CompiledPackage.objects.order_by("name")
    assert [(r.name, r.build) for r in rows] == [("greeter", 1), ("libgreet", 1)]
    blobs = {r.name: r.blobstore_id for r in rows}
    for deployment in ("lock-a", "lock-b"):
        (inst,) = Instance.objects.filter(deployment__name=deployment, group="idle")
        root = _root(vm_runtime, inst)  # the VM's /var/vcap
        applied = json.loads((root / "bosh" / "spec.json").read_text())  # what its agent holds
        # the job's package (libgreet was only needed to compile it)
        assert applied["packages"]["greeter"]["blobstore_id"] == blobs["greeter"]
        assert _alive(_pid(root, "idle"))  # the compiled program runs

    # no compilation VM left, in vCenter or in the database, and no compile lock held
    assert not Instance.objects.filter(compilation=True).exists()
    assert set(env.vms()) == set(Vm.objects.values_list("cid", flat=True))
    assert len(env.vms()) == 2
    assert not Lock.objects.filter(name__startswith="lock:compile:").exists()
