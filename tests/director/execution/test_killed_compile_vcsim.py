"""A worker killed in the middle of "Compiling packages", on vcsim with the real agents.

The greeter release compiles ``libgreet`` then ``greeter`` (which needs it).
The worker running the deploy is SIGKILLed once ``greeter``'s compilation
has started on its compilation VM; the task times out, and a re-run
converges: its compilation VM is gone from vCenter and from the database,
each package is compiled once (the one compiled before the kill is
reused), no compiled package shares its blob with another, and every blob
in the blobstore is one the director references (nothing the killed run
uploaded is left behind unreferenced). (Killing mid-update is
``test_failures_vcsim``'s.)
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter

import pytest
import yaml
from django.conf import settings as django_settings

from director import runner, services
from director.models import (
    CompiledPackage,
    Instance,
    Task,
    TaskState,
    Vm,
)
from tests.director.execution.conftest import events, wait_done
from tests.director.execution.test_agents_vcsim import greeter_env, greeter_manifest  # noqa: F401
from tests.director.execution.test_failures_vcsim import (
    _start_dedicated_worker,
    referenced_blobs,
    stored_blobs,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_worker_killed_mid_compilation_and_the_rerun_converge(
    greeter_env,  # noqa: F811
    tmp_path,
    settings,
    celery_worker,
):
    if not django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        pytest.skip("needs the PostgreSQL test database shared with a second worker")
    from director import tasks

    env = greeter_env
    manifest = greeter_manifest("killc")
    queue = f"killc-{uuid.uuid4().hex[:6]}"
    # the blobstore directory is the session's: earlier tests' blobs stay on disk
    # after their rows are flushed, so only what this test stores is compared
    before = stored_blobs()
    worker = _start_dedicated_worker(tmp_path, queue, celery_worker)
    try:
        task = Task.objects.create(
            type="update_deployment",
            description="create deployment",
            username="admin",
            deployment_name="killc",
            args={"manifest_text": yaml.safe_dump(manifest)},
        )
        tasks.run_task.apply_async((task.id,), queue=queue)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            started = [
                e
                for e in runner.read_output(task, "event").events
                if e.get("stage") == "Compiling packages"
                and e.get("state") == "started"
                and str(e.get("task", "")).startswith("greeter/")
            ]
            if started:
                break
            assert worker.alive(), worker.tail()
            time.sleep(0.05)
        else:
            raise AssertionError(f"the compile of greeter never started:\n{worker.tail()}")
        time.sleep(0.5)  # let the agent get going on it
        os.killpg(worker.pid, signal.SIGKILL)
        worker.proc.wait(10)
    finally:
        worker.stop()
    assert Task.objects.get(id=task.id).state == TaskState.PROCESSING
    # the killed run left its compilation instance (and VM) behind
    assert Instance.objects.filter(deployment__name="killc", compilation=True).exists()

    interval = settings.TASK_CHECKPOINT_INTERVAL
    settings.TASK_CHECKPOINT_INTERVAL = 1  # as the killed worker ran: stale after 6 s
    deadline = time.monotonic() + 30
    while services.get_task(task.id).state != TaskState.TIMEOUT:
        assert time.monotonic() < deadline, "the killed task never timed out"
        time.sleep(0.5)
    settings.TASK_CHECKPOINT_INTERVAL = interval

    rerun = wait_done(env.deploy(manifest), timeout=600)
    compiled = [
        e["task"]
        for e in events(rerun)
        if e.get("stage") == "Compiling packages" and e.get("state") == "finished"
    ]
    assert [c.split("/")[0] for c in compiled] == ["greeter"]  # libgreet's compile is reused

    # no compilation VM in vCenter or the database; vCenter holds the deployment's VMs only
    assert not Instance.objects.filter(compilation=True).exists()
    recorded = set(
        Vm.objects.filter(instance__deployment__name="killc").values_list("cid", flat=True)
    )
    extra = {
        k: (v.settings, v.metadata, v.power) for k, v in env.vms().items() if k not in recorded
    }
    assert set(env.vms()) == recorded and len(recorded) == 4, extra
    # one compiled package per package, no blob referenced twice, none left unreferenced
    rows = CompiledPackage.objects.filter(name__in=["libgreet", "greeter"])
    assert Counter(rows.values_list("name", flat=True)) == {"libgreet": 1, "greeter": 1}
    refs = referenced_blobs()
    assert len(refs) == len(set(refs)), Counter(refs).most_common(3)
    assert stored_blobs() - before == set(refs) - before
