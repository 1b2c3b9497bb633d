"""Instance operations through the real agent path: vcsim, nats-server, the VM runtime, a worker.

A release built here (job ``keeper``: on its first start it writes a token
to its persistent disk, ``/var/vcap/store/keeper/token``, then logs the
token it finds and runs a process) is deployed to three instances with
persistent disks. What is asserted is what an operator sees: VMs, IPs and
disks in vCenter, the job processes and files inside each VM (the VM
runtime's root of that VM), the logs bundle a user downloads, the events.
"""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest
import yaml

from director import instance_actions, logs
from director.models import Event, Instance, PersistentDisk, Task, Vm
from tests.director.execution.conftest import wait_done, wait_terminal
from tests.director.execution.test_agents_vcsim import MONIT, _alive, _job, _pid, _wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

KEEPER_CTL = """#!/bin/bash
RUN=/var/vcap/sys/run/keeper
LOG=/var/vcap/sys/log/keeper
STORE=/var/vcap/store/keeper
mkdir -p $RUN $LOG $STORE
case $1 in
  start)
    [ -f $STORE/token ] || head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \\n' > $STORE/token
    echo "<%= p('label') %> token=$(cat $STORE/token) at <%= spec.address %>" >> $LOG/keeper.stdout.log
    sleep 100000 >/dev/null 2>&1 &
    echo $! > $RUN/keeper.pid
    ;;
  stop)
    kill $(cat $RUN/keeper.pid)
    ;;
esac
"""


def build_keeper_release(out) -> None:
    job = _job(
        "keeper",
        {"templates": {"ctl.erb": "bin/ctl"}, "packages": [], "properties": {"label": {}}},
        {"ctl.erb": KEEPER_CTL},
        MONIT.format(name="keeper"),
    )
    fp = hashlib.sha1(job).hexdigest()
    mf = {
        "name": "keeper",
        "version": "1",
        "commit_hash": "abc1234",
        "jobs": [{"name": "keeper", "version": fp, "fingerprint": fp, "sha1": fp}],
        "packages": [],
    }
    with tarfile.open(out, "w:gz") as tar:
        for name, data in (("release.MF", yaml.safe_dump(mf).encode()), ("jobs/keeper.tgz", job)):
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def keeper_manifest(name: str) -> dict:
    return {
        "name": name,
        "releases": [{"name": "keeper", "version": "latest"}],
        "stemcells": [{"alias": "default", "os": "ubuntu-jammy", "version": "latest"}],
        "update": {
            "canaries": 1,
            "max_in_flight": 3,
            "canary_watch_time": "500-15000",
            "update_watch_time": "500-15000",
        },
        "instance_groups": [
            {
                "name": "keeper",
                "azs": ["z1", "z2"],
                "instances": 3,
                "jobs": [{"name": "keeper", "release": "keeper", "properties": {"label": "kept"}}],
                "vm_type": "small",
                "stemcell": "default",
                "persistent_disk_type": "1GB",
                "networks": [{"name": "default"}],
            }
        ],
    }


@pytest.fixture
def keeper(director_env, tmp_path):
    from director import services

    build_keeper_release(tmp_path / "keeper.tgz")
    wait_done(services.upload_release(tmp_path / "keeper.tgz", "admin"))
    wait_done(director_env.deploy(keeper_manifest("keep")), timeout=600)
    return director_env


def _state(vm_runtime, instance: Instance) -> dict:
    """What an operator would check of one instance: VM, IP, disk, token on it, job pid."""
    instance.refresh_from_db()
    vm = Vm.objects.filter(instance=instance, active=True).first()
    disk = PersistentDisk.objects.get(instance=instance, active=True)
    out = {
        "cid": vm.cid if vm else None,
        "ip": sorted(instance.ip_addresses.values_list("address", flat=True)),
        "disk": disk.disk_cid,
        "token": (vm_runtime.disk(disk.disk_cid) / "keeper" / "token").read_text(),
        "state": instance.state,
        "pid": None,
    }
    if vm is not None:
        root = vm_runtime.root(vm.cid)
        if (root / "data" / "sys" / "run" / "keeper" / "keeper.pid").exists():
            out["pid"] = _pid(root, "keeper")
    return out


def _act(action: str, instance: Instance, hard: bool = False):
    task = instance_actions.change_instance_state(
        "keep", instance.group, instance.uuid, action, "admin", hard=hard
    )
    return wait_done(task, timeout=300)


def _untouched(before: dict, others: list[Instance], vm_runtime) -> None:
    for inst in others:
        now = _state(vm_runtime, inst)
        assert now == before[inst.uuid], f"{inst} changed"
        assert _alive(now["pid"])


def test_start_stop_restart_recreate_one_instance_and_leave_the_others(keeper, vm_runtime):
    env = keeper
    insts = list(Instance.objects.filter(deployment__name="keep").order_by("index"))
    first = {i.uuid: _state(vm_runtime, i) for i in insts}
    for s in first.values():
        assert s["token"] and _alive(s["pid"])
    a, b, c = insts

    # -- recreate: a new VM in vCenter, same IP, same disk, the data on it survives -------------
    task = _act("recreate", a)
    after = _state(vm_runtime, a)
    assert after["cid"] != first[a.uuid]["cid"]
    assert after["cid"] in env.vms() and first[a.uuid]["cid"] not in env.vms()
    assert after["ip"] == first[a.uuid]["ip"] and after["disk"] == first[a.uuid]["disk"]
    assert after["token"] == first[a.uuid]["token"]
    assert _wait_for(lambda: _alive(_state(vm_runtime, a)["pid"]))
    vm = env.vms()[after["cid"]]
    assert first[a.uuid]["disk"] in vm.disks
    log = (vm_runtime.root(after["cid"]) / "data/sys/log/keeper/keeper.stdout.log").read_text()
    assert f"kept token={first[a.uuid]['token']} at {after['ip'][0]}" in log
    assert Event.objects.filter(task=task.id, action="recreate", object_type="instance").exists()
    _untouched(first, [b, c], vm_runtime)

    # -- stop: jobs stop, the VM stays (powered on); start brings them back ---------------------
    before = {i.uuid: _state(vm_runtime, i) for i in insts}
    _act("stop", b)
    stopped = _state(vm_runtime, b)
    assert stopped["state"] == "stopped" and stopped["cid"] == before[b.uuid]["cid"]
    assert env.vms()[stopped["cid"]].power == "poweredOn"
    assert _wait_for(lambda: not _alive(before[b.uuid]["pid"]))
    _untouched(before, [a, c], vm_runtime)
    task = _act("start", b)
    started = _state(vm_runtime, b)
    assert started["state"] == "started" and started["cid"] == before[b.uuid]["cid"]
    assert started["pid"] != before[b.uuid]["pid"] and _alive(started["pid"])
    assert list(
        Event.objects.filter(task=task.id, object_type="instance", parent__isnull=True).values_list(
            "action", flat=True
        )
    ) == ["start"]
    _untouched(before, [a, c], vm_runtime)

    # -- restart: a new process on the same VM --------------------------------------------------
    before = {i.uuid: _state(vm_runtime, i) for i in insts}
    _act("restart", c)
    restarted = _state(vm_runtime, c)
    assert restarted["cid"] == before[c.uuid]["cid"]
    assert restarted["pid"] != before[c.uuid]["pid"] and _alive(restarted["pid"])
    assert not _alive(before[c.uuid]["pid"])
    _untouched(before, [a, b], vm_runtime)

    # -- stop --hard: the VM goes, disk and IP stay; start gives a new VM with the same data ----
    before = {i.uuid: _state(vm_runtime, i) for i in insts}
    _act("stop", b, hard=True)
    detached = _state(vm_runtime, b)
    assert detached["state"] == "detached" and detached["cid"] is None
    assert before[b.uuid]["cid"] not in env.vms()
    assert before[b.uuid]["disk"] in env.disk_files()
    assert detached["ip"] == before[b.uuid]["ip"]
    _untouched(before, [a, c], vm_runtime)
    _act("start", b)
    back = _state(vm_runtime, b)
    assert back["state"] == "started" and back["cid"] not in (None, before[b.uuid]["cid"])
    assert back["ip"] == before[b.uuid]["ip"] and back["disk"] == before[b.uuid]["disk"]
    assert back["token"] == before[b.uuid]["token"]
    assert _wait_for(lambda: _alive(_state(vm_runtime, b)["pid"]))
    assert len(env.vms()) == 3


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {
            m.name.removeprefix("./"): tar.extractfile(m).read()
            for m in tar.getmembers()
            if m.isfile()
        }


def test_logs_of_one_instance_and_of_the_deployment_as_a_tgz(keeper, vm_runtime, admin_api):
    insts = list(Instance.objects.filter(deployment__name="keep").order_by("index"))
    tokens = {i.uuid: _state(vm_runtime, i)["token"] for i in insts}

    # one instance, through the API as a user would: 202, the task, the bundle's download
    response = admin_api.post(
        "/api/v0/director/deployments/keep/logs",
        {"instances": [f"keeper/{insts[0].uuid}"]},
        format="json",
    )
    assert response.status_code == 202, response.content
    task = wait_done(Task.objects.get(id=response.json()["id"]), timeout=120)
    blob = logs.bundle_of(task)
    download = admin_api.get(f"/api/v0/director/resources/{blob}")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/gzip"
    files = _members(b"".join(download.streaming_content))
    assert f"token={tokens[insts[0].uuid]}" in files["keeper/keeper.stdout.log"].decode()
    assert Event.objects.filter(
        task=task.id, action="fetch_logs", instance=insts[0].name, parent__isnull=False, error=""
    ).exists()

    # the whole deployment: a tgz holding one tgz per instance, each with that instance's log
    task = wait_done(logs.fetch_logs("keep", "admin"), timeout=120)
    with logs.open_bundle(logs.bundle_of(task))[0] as fh:
        outer = _members(fh.read())
    assert sorted(outer) == sorted(f"keeper.{i.uuid}.tgz" for i in insts)
    for i in insts:
        inner = _members(outer[f"keeper.{i.uuid}.tgz"])
        assert f"token={tokens[i.uuid]}" in inner["keeper/keeper.stdout.log"].decode()

    # a blob that is not a logs bundle (a release's job) is not served
    from director.models import ReleaseJob

    job_blob = ReleaseJob.objects.filter(name="keeper").first().blobstore_id
    assert admin_api.get(f"/api/v0/director/resources/{job_blob}").status_code == 404


def test_an_action_while_the_deployment_changes_is_refused(keeper):
    inst = Instance.objects.filter(deployment__name="keep").first()
    task = instance_actions.change_instance_state("keep", "keeper", inst.uuid, "restart", "admin")
    from opsconsole.errors import Conflict

    with pytest.raises(Conflict) as err:
        instance_actions.change_instance_state("keep", "keeper", str(inst.index), "stop", "admin")
    assert f"being changed by task {task.id}" in str(err.value.errors)
    wait_terminal(task, timeout=300)
