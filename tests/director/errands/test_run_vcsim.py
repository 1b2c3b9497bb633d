"""Errands on vcsim through the real Celery worker: what vCenter holds before, during and after.

A deployment with a service group (``zookeeper``) and a lifecycle errand group
(``smoke-tests``): the deploy makes no errand VM; a run creates it, runs the
errand on it (the CPI log shows the VM being created in vCenter, the
errand's stdout names it powered on), writes the BOSH result JSON and
deletes it again; ``keep_alive`` leaves it; ``when_changed`` skips a run
when nothing changed; a VM that is not running fails the errand with its
exit code. Then a colocated errand (a ``bin/run`` job on the service group)
runs on the existing VM without creating one.
"""

import io
import json
import re

import pytest
from django.core.management import CommandError, call_command
from pyVim.task import WaitForTask

from director import runner
from director.models import Event, Instance, IpAddress, OrphanDisk, PersistentDisk, Vm
from director.services import errands

from .conftest import cpi_calls, errand_manifest, events, wait_done

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def results(task):
    return [json.loads(line) for line in runner.read_output(task, "result").text.splitlines()]


def vm_calls(task):
    return [
        (c["method"], c["request"]["arguments"][0] if c["method"] == "delete_vm" else None)
        for c in cpi_calls(task)
        if c["method"] in ("create_vm", "delete_vm")
    ]


def created_cids(task):
    return [
        c["response"]["result"]
        if isinstance(c["response"]["result"], str)
        else c["response"]["result"][0]
        for c in cpi_calls(task)
        if c["method"] == "create_vm" and "result" in c["response"]
    ]


def groups_in_vcenter(env):
    return sorted(v.metadata.get("instance_group") for v in env.vms().values())


def stages(task):
    seen = []
    for e in events(task):
        stage = e.get("stage")
        if stage and stage not in seen:
            seen.append(stage)
    return seen


def command(*args):
    out = io.StringIO()
    try:
        call_command(*args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def test_lifecycle_errand(director_env, admin_api):
    env = director_env
    name = "zk-errands"
    manifest = errand_manifest(name)

    # -- deploy: the errand group gets no VM ----------------------------------------------
    deploy = wait_done(env.deploy(manifest))
    assert groups_in_vcenter(env) == ["zookeeper"]
    assert not Instance.objects.filter(group="smoke-tests").exists()
    # two compilation VMs (java, then zookeeper), one at a time, then the service VM
    assert [c for c, _ in vm_calls(deploy)] == [
        "create_vm",
        "delete_vm",
        "create_vm",
        "delete_vm",
        "create_vm",
    ]
    assert [e["name"] for e in errands.list_errands(name)] == ["smoke-tests"]

    # -- run: VM created, errand run on it, VM deleted ------------------------------------
    task = wait_done(errands.run_errand(name, "smoke-tests", "admin"))
    assert task.result == "Errand 'smoke-tests' completed successfully (exit code 0)"
    (cid,) = created_cids(task)
    assert vm_calls(task) == [("create_vm", None), ("delete_vm", cid)]
    (result,) = results(task)
    instance = Instance.objects.get(deployment__name=name, group="smoke-tests")
    assert result["instance"] == {"group": "smoke-tests", "id": instance.uuid}
    assert result["errand_name"] == "smoke-tests"
    assert result["exit_code"] == 0 and result["stderr"] == ""
    assert result["logs"] == {"blobstore_id": None}
    # what the errand's bin/run printed on the VM
    assert result["stdout"] == "smoke-tests run.erb ran\n"
    assert stages(task) == [
        "Preparing deployment",
        "Creating missing vms",
        "Updating instance",
        "Running errand",
        "Deleting errand instances",
    ]
    running = [e for e in events(task) if e.get("stage") == "Running errand"]
    assert running[0]["task"] == f"smoke-tests/{instance.uuid} (0)"
    assert running[-1]["state"] == "finished"
    # afterwards vCenter holds only the service VM; the errand's disk is orphaned, its IP freed
    assert groups_in_vcenter(env) == ["zookeeper"]
    assert cid not in env.vms()
    assert not Vm.objects.filter(instance=instance).exists()
    assert not PersistentDisk.objects.filter(instance=instance).exists()
    assert OrphanDisk.objects.filter(instance_name=instance.name).count() == 1
    assert not IpAddress.objects.filter(instance=instance).exists()
    run_events = Event.objects.filter(object_type="errand", action="run", task=task.id)
    assert run_events.count() == 2
    end = run_events.get(parent__isnull=False)
    assert end.object_name == "smoke-tests" and end.deployment == name and end.error == ""
    assert end.context["exit_code"] == 0

    # -- when_changed: nothing changed, nothing runs (through the command) ----------------
    out, error = command("run-errand", name, "smoke-tests", "--when-changed")
    assert error is None, out
    task2 = errands_task(name, after=task.id)
    assert "skipped: the deployment has not changed since its last successful run" in out
    assert f"(task {task.id})" in task2.result
    assert cpi_calls(task2) == []
    assert not Event.objects.filter(object_type="errand", task=task2.id).exists()

    # -- keep_alive (through the API): the VM stays, powered on ---------------------------
    api_task = api_run(admin_api, name, {"keep_alive": True})
    wait_done(api_task)
    (kept,) = created_cids(api_task)
    assert vm_calls(api_task) == [("create_vm", None)]
    assert groups_in_vcenter(env) == ["smoke-tests", "zookeeper"]
    assert env.vms()[kept].power == "poweredOn"
    assert Instance.objects.get(group="smoke-tests").uuid == instance.uuid  # same instance
    assert Vm.objects.get(instance=instance, active=True).cid == kept

    # a redeploy leaves the kept VM as it is (it is up to date)
    again = wait_done(env.deploy(manifest))
    assert vm_calls(again) == []
    assert kept in env.vms()

    # -- the VM is off: its agent does not answer, the errand fails, the VM is deleted anyway
    vc_vm = env.vm_folder().childEntity
    vc_vm = next(v for v in vc_vm if v.name == kept)
    WaitForTask(vc_vm.PowerOffVM_Task())
    out, error = command("run-errand", name, "smoke-tests")
    assert error is not None
    failed = errands_task(name, after=api_task.id)
    assert failed.state == "error"
    # the director notices the silent agent when it pings before the errand, when
    # run_errand itself goes unanswered, or when run_errand was still answered (under
    # load the VM runtime stops the VM's agent a moment after the power-off) and polling
    # its task with get_task goes unanswered: which one depends on the heartbeat's age
    # and the timing; each names the instance whose agent is silent and the call
    assert re.fullmatch(
        rf"smoke-tests/{instance.uuid} \(0\): AgentUnresponsive: timed out "
        r"(pinging the agent|sending '(run_errand|get_task)') after [\d.]+ seconds",
        failed.result,
    ), failed.result
    assert results(failed) == []
    assert vm_calls(failed) == [("delete_vm", kept)]
    assert groups_in_vcenter(env) == ["zookeeper"]
    end = Event.objects.get(object_type="errand", task=failed.id, parent__isnull=False)
    assert "AgentUnresponsive" in end.error

    # -- when_changed runs again once the deployment changed -------------------------------
    manifest["instance_groups"][0]["jobs"][0]["properties"]["tick_time"] = 3000
    wait_done(env.deploy(manifest))
    task = wait_done(errands.run_errand(name, "smoke-tests", "admin", when_changed=True))
    assert task.result == "Errand 'smoke-tests' completed successfully (exit code 0)"
    assert [c for c, _ in vm_calls(task)] == ["create_vm", "delete_vm"]
    assert groups_in_vcenter(env) == ["zookeeper"]


def errands_task(name, after):
    from director.models import Task

    return Task.objects.filter(type="run_errand", deployment_name=name, id__gt=after).latest("id")


def api_run(client, name, body):
    from director.models import Task

    response = client.post(
        f"/api/v0/director/deployments/{name}/errands/smoke-tests/runs", body, format="json"
    )
    assert response.status_code == 202, response.content
    task = Task.objects.get(id=response.json()["id"])
    assert response["Location"].endswith(f"/api/v0/director/tasks/{task.id}")
    return task


def test_unknown_errand_is_named(director_env):
    name = "zk-unknown"
    wait_done(director_env.deploy(errand_manifest(name)))
    out, error = command("run-errand", name, "zookeeper")
    assert error is not None
    assert str(error) == (
        f"errand: Errand 'zookeeper' does not exist in deployment '{name}' "
        "(its errands: smoke-tests)"
    )


def test_colocated_errand_runs_on_the_existing_vms(director_env):
    env = director_env
    name = "zk-colocated"
    wait_done(env.deploy(errand_manifest(name, colocated=True)))
    (zk_vm,) = env.vms()
    assert [e["name"] for e in errands.list_errands(name)] == ["smoke", "smoke-tests"]

    # by job name, only on the service group: no VM created or deleted
    task = wait_done(errands.run_errand(name, "smoke-tests", "admin", instances=["zookeeper"]))
    assert vm_calls(task) == []
    (result,) = results(task)
    zk = Instance.objects.get(deployment__name=name, group="zookeeper")
    assert result["instance"] == {"group": "zookeeper", "id": zk.uuid}
    assert result["exit_code"] == 0 and result["stdout"] == "smoke-tests run.erb ran\n"
    assert "Creating missing vms" not in stages(task)
    assert list(env.vms()) == [zk_vm]

    # by job name everywhere: on the service VM and on a new VM of the errand group ``smoke``
    task = wait_done(errands.run_errand(name, "smoke-tests", "admin"))
    groups = sorted(r["instance"]["group"] for r in results(task))
    assert groups == ["smoke", "zookeeper"]
    assert all(r["exit_code"] == 0 for r in results(task))
    (cid,) = created_cids(task)
    assert vm_calls(task) == [("create_vm", None), ("delete_vm", cid)]
    assert list(env.vms()) == [zk_vm]
