"""Deploys that fail, are interrupted or are left half-done converge when run again.

A failure on one instance fails the task naming the instance and the cause;
VMs created but never recorded (a worker killed right after ``create_vm``)
are found in vCenter by their tags and deleted; a worker killed mid-deploy
leaves a task that ends as ``timeout``, and the re-run leaks nothing.
"""

import os
import signal
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import yaml
from django.conf import settings as django_settings

from director import runner
from director.cloud import cloud_for_director
from director.models import (
    CompiledPackage,
    Config,
    Event,
    Instance,
    IpAddress,
    OrphanDisk,
    PersistentDisk,
    ReleaseJob,
    ReleasePackage,
    Task,
    TaskState,
    Vm,
)
from director.services import deployments

from .conftest import CLOUD_CONFIG, events, wait_done, wait_terminal, zookeeper_manifest
from .test_deploy_vcsim import check_vcenter_matches_db

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def archive_blobs() -> list[str]:
    """The rendered templates archives the instances' recorded specs refer to."""
    ids = []
    for spec in Instance.objects.values_list("spec_json", flat=True):
        archive = (spec or {}).get("rendered_templates_archive") or {}
        if archive.get("blobstore_id"):
            ids.append(archive["blobstore_id"])
    return ids


def referenced_blobs() -> list[str]:
    """Every blob id the director refers to (compiled packages, releases, archives)."""
    ids = list(CompiledPackage.objects.values_list("blobstore_id", flat=True))
    ids += list(ReleasePackage.objects.values_list("blobstore_id", flat=True))
    ids += list(ReleaseJob.objects.values_list("blobstore_id", flat=True))
    return ids + archive_blobs()


def stored_blobs() -> set[str]:
    """The blob ids in the (session's) local blobstore directory."""
    from director.blobstore import BLOB_ID_RE

    root = Path(django_settings.BLOBSTORE_DIR)
    return {p.name for p in root.rglob("*") if p.is_file() and BLOB_ID_RE.fullmatch(p.name)}


def assert_nothing_leaked(env, name, killed=None):
    """vCenter holds exactly the recorded VMs; every IP and disk belongs to something.

    ``killed``: a task whose worker was killed. A ``create_disk`` it had begun
    and never saw return (its "create disk" event has no end) may have left
    the disk's file in vCenter with no row: the CPI names the disk only when
    it returns, so nothing can recognise that file (BOSH leaks it the same
    way). At most that many unrecorded disk files are allowed, no more.
    """
    check_vcenter_matches_db(env, name)
    vm_ips = {ip for vm in env.vms().values() for ip in vm.ips}
    assert set(IpAddress.objects.values_list("address", flat=True)) == vm_ips
    assert not IpAddress.objects.filter(vm__isnull=True).exists()
    recorded = set(PersistentDisk.objects.values_list("disk_cid", flat=True)) | set(
        OrphanDisk.objects.values_list("disk_cid", flat=True)
    )
    files = env.disk_files()
    assert recorded <= files
    cut = 0
    if killed is not None:
        starts = Event.objects.filter(
            task=killed.id, action="create", object_type="disk", parent__isnull=True
        )
        cut = sum(1 for e in starts if not Event.objects.filter(parent=e).exists())
    assert len(files - recorded) <= cut, (files - recorded, cut)


def test_a_failing_instance_fails_the_task_naming_it_and_the_rerun_converges(director_env):
    env = director_env
    Config.objects.create(
        type="cloud", name="default", content=CLOUD_CONFIG.replace("DC0_DVPG1", "no-such-pg")
    )
    task = wait_terminal(env.deploy(zookeeper_manifest("zkf")))
    assert task.state == TaskState.ERROR
    [z3] = Instance.objects.filter(deployment__name="zkf", az="z3")
    assert task.result.startswith(f"zookeeper/{z3.uuid} ({z3.index}): NetworkNotFound: ")
    assert "no-such-pg" in task.result
    failed = [e for e in events(task) if e.get("state") == "failed"]
    assert [(e["stage"], e["task"]) for e in failed] == [
        ("Creating missing vms", f"zookeeper/{z3.uuid} ({z3.index})")
    ]
    assert events(task)[-1]["error"]["message"] == task.result
    assert not Vm.objects.filter(instance=z3).exists()
    assert not IpAddress.objects.filter(instance=z3).exists()  # the failed create's IP is released
    end = Event.objects.get(task=task.id, object_type="deployment", parent__isnull=False)
    assert "NetworkNotFound" in end.error

    Config.objects.create(type="cloud", name="default", content=CLOUD_CONFIG)
    wait_done(env.deploy(zookeeper_manifest("zkf")))
    assert Instance.objects.filter(deployment__name="zkf").count() == 5
    assert Instance.objects.get(id=z3.id).active_vm is not None  # same instance, now with a VM
    assert_nothing_leaked(env, "zkf")


def test_vms_created_but_never_recorded_are_found_and_deleted(director_env):
    env = director_env
    wait_done(env.deploy(zookeeper_manifest("zkl", instances=1)))
    # A run killed between create_vm and writing its row left this VM behind.
    task = runner.create_task("noop", "noop", "admin")
    from director.runner import TaskContext

    ctx = TaskContext(task)
    cloud = cloud_for_director(ctx)
    stemcell = Vm.objects.get().stemcell_name
    assert stemcell
    from director.models import Stemcell

    cid, _ = cloud.create_vm(
        str(uuid.uuid4()),
        Stemcell.objects.get().cid,
        {"cpu": 1, "ram": 256, "disk": 256},
        {
            "default": {
                "type": "manual",
                "ip": "10.10.1.77",
                "netmask": "255.255.255.0",
                "gateway": "10.10.1.1",
                "cloud_properties": {"name": "DC0_DVPG0"},
            }
        },
        [],
        {"bosh": {"groups": ["opsconsole", "zkl", "zookeeper", "opsconsole-zkl"]}},
    )
    cloud.close()
    assert cid in env.vms()

    again = wait_done(env.deploy(zookeeper_manifest("zkl", instances=1)))
    assert cid not in env.vms()
    warnings = [e["message"] for e in events(again) if e.get("type") == "warning"]
    assert any(cid in w for w in warnings)
    assert_nothing_leaked(env, "zkl")


def _start_dedicated_worker(tmp_path, queue, celery_worker):
    from opsconsole.localservices.process import ManagedProcess

    db = django_settings.DATABASES["default"]
    env = {
        **celery_worker.env,  # the message bus and the blobstore endpoint agents reach
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": django_settings.CELERY_RESULT_BACKEND,
        "OPSCONSOLE_DATA_DIR": str(django_settings.DATA_DIR),
        "OPSCONSOLE_ENCRYPTION_KEY": django_settings.ENCRYPTION_KEY,
        "SECRET_KEY": django_settings.SECRET_KEY,
        "DJANGO_SETTINGS_MODULE": "opsconsole.settings",
        "OPSCONSOLE_TASK_CHECKPOINT_INTERVAL": "1",
    }
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "opsconsole",
        "worker",
        "--loglevel=INFO",
        "--concurrency=1",
        "--pool=prefork",
        "-n",
        f"{queue}@%h",
        "-Q",
        queue,
        "--without-gossip",
        "--without-mingle",
    ]
    return ManagedProcess(
        queue, argv, tmp_path / "killed-worker.log", env=env, cwd=str(django_settings.BASE_DIR)
    )


def test_a_worker_killed_mid_deploy_times_out_and_the_rerun_leaks_nothing(
    director_env, tmp_path, settings, celery_worker
):
    if not django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        pytest.skip("needs the PostgreSQL test database shared with a second worker")
    from director import tasks

    env = director_env
    manifest = zookeeper_manifest(
        "zkk", update={"canary_watch_time": 1500, "update_watch_time": 1500}
    )
    queue = f"kill-{uuid.uuid4().hex[:6]}"
    # the blobstore directory is the session's: earlier tests' blobs stay on disk after
    # their rows are flushed, so only what this test stores is compared
    before = stored_blobs()
    worker = _start_dedicated_worker(tmp_path, queue, celery_worker)
    try:
        task = Task.objects.create(
            type="update_deployment",
            description="create deployment",
            username="admin",
            deployment_name="zkk",
            args={"manifest_text": yaml.safe_dump(manifest)},
        )
        tasks.run_task.apply_async((task.id,), queue=queue)
        # killed while an instance's rendered archive is in the blobstore and its apply not
        # yet recorded (packages are compiled before any instance is updated, so a blob the
        # director does not refer to once updating has begun is such an archive)
        deadline = time.monotonic() + 120
        unrecorded = set()
        while time.monotonic() < deadline:
            updating = any(
                e.get("stage") == "Updating instance"
                for e in runner.read_output(task, "event").events
            )
            if updating:
                unrecorded = stored_blobs() - before - set(referenced_blobs())
                if unrecorded:
                    break
            assert worker.alive(), worker.tail()
            time.sleep(0.01 if updating else 0.05)
        else:
            raise AssertionError(
                f"never saw an archive stored before its apply was recorded:\n{worker.tail()}"
            )
        os.killpg(worker.pid, signal.SIGKILL)
        worker.proc.wait(10)
    finally:
        worker.stop()
    assert Task.objects.get(id=task.id).state == TaskState.PROCESSING
    assert unrecorded <= stored_blobs()  # the killed run left them in the blobstore

    interval = settings.TASK_CHECKPOINT_INTERVAL
    settings.TASK_CHECKPOINT_INTERVAL = 1  # as the killed worker ran: stale after 6 s
    deadline = time.monotonic() + 30
    from director import services

    while services.get_task(task.id).state != TaskState.TIMEOUT:
        assert time.monotonic() < deadline, "the killed task never timed out"
        time.sleep(0.5)
    settings.TASK_CHECKPOINT_INTERVAL = interval  # the session worker checkpoints as usual
    half_done = Instance.objects.filter(deployment__name="zkk", update_completed=False).count()
    assert half_done >= 1  # killed before every instance was updated

    rerun = wait_done(deployments.deploy(yaml.safe_dump(manifest), "admin"), timeout=180)
    assert rerun.state == TaskState.DONE
    assert not Instance.objects.filter(deployment__name="zkk", update_completed=False).exists()
    assert Instance.objects.filter(deployment__name="zkk").count() == 5
    assert_nothing_leaked(env, "zkk", killed=task)
    # the blobstore converged too: the archives the killed run stored and never recorded
    # are gone, each instance refers to an archive of its own, and every blob stored since
    # the test began is one the director refers to, once
    assert not unrecorded & stored_blobs()
    archives = archive_blobs()
    assert len(archives) == 5 and len(set(archives)) == 5, archives
    refs = referenced_blobs()
    assert len(refs) == len(set(refs)), Counter(refs).most_common(3)
    assert stored_blobs() - before == set(refs) - before


def test_cancel_stops_between_steps_and_the_rerun_converges(director_env):
    from director import services

    env = director_env
    manifest = zookeeper_manifest(
        "zkc", update={"canary_watch_time": 1000, "update_watch_time": 1000}
    )
    task = env.deploy(manifest)
    deadline = time.monotonic() + 90
    while not any(
        e.get("stage") == "Updating instance" and e.get("state") == "started" for e in events(task)
    ):
        assert time.monotonic() < deadline, "the deploy never started updating"
        time.sleep(0.05)
    services.cancel_task(task.id, "admin")
    task = wait_terminal(task)
    assert task.state == TaskState.CANCELLED
    updating = [e for e in events(task) if e.get("stage") == "Updating instance"]
    assert len([e for e in updating if e["state"] == "finished"]) < 5  # stopped before the end
    # the step in flight finished; the task stopped at the next checkpoint
    assert [e for e in updating if e["state"] == "finished"]
    assert Instance.objects.filter(deployment__name="zkc", update_completed=False).exists()

    wait_done(env.deploy(manifest))
    assert not Instance.objects.filter(deployment__name="zkc", update_completed=False).exists()
    assert_nothing_leaked(env, "zkc")


class FaultyCloud:
    """The director's real cloud, with CPI errors vcsim cannot produce injected by method."""

    def __init__(self, cloud, faults):
        self.cloud = cloud
        self.faults = dict(faults)  # method -> exception, raised on every call

    def __getattr__(self, name):
        fault = self.faults.get(name)
        if fault is None:
            return getattr(self.cloud, name)

        def fail(*args, **kwargs):
            raise fault

        return fail


def run_in_process(monkeypatch, module, faults, task):
    """Run ``task`` here (not on the worker) with ``faults`` injected into its cloud."""
    import importlib

    target = importlib.import_module(module)
    real = target.cloud_for_director
    monkeypatch.setattr(target, "cloud_for_director", lambda ctx: FaultyCloud(real(ctx), faults))
    runner.run_task(task.id)
    return Task.objects.get(id=task.id)


def test_injected_cpi_faults_fail_naming_the_instance_and_force_delete_ignores_them(
    director_env, monkeypatch, settings, celery_worker
):
    from cpi.base import CloudError

    env = director_env
    # tasks run in this process too: they reach the agents as the worker does
    settings.NATS_URL = celery_worker.env["OPSCONSOLE_NATS_URL"]
    settings.BLOBSTORE_ENDPOINT = celery_worker.env["OPSCONSOLE_BLOBSTORE_ENDPOINT"]
    wait_done(env.deploy(zookeeper_manifest("zkx", instances=1)))
    [inst] = Instance.objects.filter(deployment__name="zkx")

    # a disk that cannot be attached to the new VM of a recreate
    bigger = zookeeper_manifest("zkx", instances=1, vm_type="large")
    task = Task.objects.create(
        type="update_deployment",
        description="update deployment",
        username="admin",
        deployment_name="zkx",
        args={"manifest_text": yaml.safe_dump(bigger)},
    )
    faults = {"attach_disk": CloudError("datastore LocalDS_0 is in maintenance")}
    task = run_in_process(monkeypatch, "director.execution.deploy", faults, task)
    assert task.state == TaskState.ERROR
    assert task.result == (
        f"zookeeper/{inst.uuid} (0): CloudError: datastore LocalDS_0 is in maintenance"
    )
    monkeypatch.undo()
    wait_done(env.deploy(bigger))  # the re-run converges
    assert {(v.cpu, v.ram) for v in env.vms().values()} == {(2, 512)}
    assert_nothing_leaked(env, "zkx")

    # a VM that cannot be deleted: delete fails, unless forced
    faults = {"delete_vm": CloudError("vCenter refused: HostCommunication")}
    task = Task.objects.create(
        type="delete_deployment",
        description="delete deployment",
        username="admin",
        deployment_name="zkx",
        args={"force": False},
    )
    task = run_in_process(monkeypatch, "director.execution.delete", faults, task)
    assert task.state == TaskState.ERROR
    assert f"zookeeper/{inst.uuid} (0): CloudError: vCenter refused" in task.result
    assert Instance.objects.filter(deployment__name="zkx").exists()
    left = set(env.vms())
    task = Task.objects.create(
        type="delete_deployment",
        description="delete deployment",
        username="admin",
        deployment_name="zkx",
        args={"force": True},
    )
    task = run_in_process(monkeypatch, "director.execution.delete", faults, task)
    assert task.state == TaskState.DONE, task.result
    assert not Instance.objects.exists() and not IpAddress.objects.exists()
    warnings = [e["message"] for e in events(task) if e.get("type") == "warning"]
    assert any("ignoring CPI error deleting VM" in w for w in warnings)
    monkeypatch.undo()
    cloud_task = runner.create_task("noop", "noop", "admin")
    cloud = cloud_for_director(runner.TaskContext(cloud_task))
    for cid in left:  # force left them in vCenter, as BOSH does
        cloud.delete_vm(cid)
    cloud.close()
