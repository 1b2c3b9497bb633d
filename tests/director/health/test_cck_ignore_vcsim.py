"""Cloud check resolutions the other vcsim tests leave out, through the API an operator uses.

* ``ignore`` for ``missing_vm`` and for ``missing_stemcell``: as BOSH does,
  the problem is closed as resolved (``ignore``) and nothing changes in
  vCenter or the database; the next scan finds it again.
* ``recreate_vm_without_wait`` for an ``unresponsive_agent``: a new VM (new
  cid, same IP and persistent disk) whose jobs are started but not waited
  for. The test's job (release ``gated``) runs only while a file on its
  persistent disk says so; the test removes that file, so on the new VM the
  job never runs, and the resolution still ends done.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
import uuid

import pytest
import yaml
from pyVim.task import WaitForTask

from director import services
from director.agent import agent_for
from director.models import DeploymentProblem, Instance, IpAddress, PersistentDisk, Stemcell, Vm
from tests.director.execution.test_agents_vcsim import MONIT, _job

from .conftest import unregister, wait_done, zookeeper_manifest
from .test_cck_vcsim import D, problems, run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def deploy(env, name, instances=1):
    wait_done(env.deploy(zookeeper_manifest(name, instances=instances)))
    return list(Instance.objects.filter(deployment__name=name).order_by("index"))


def template(env, cid: str):
    return env.si.content.searchIndex.FindByInventoryPath(
        f"{env.datacenter}/vm/BOSH_Templates/{cid}"
    )


def ignored(name: str) -> list[tuple[str, str, str]]:
    return list(
        DeploymentProblem.objects.filter(deployment__name=name).values_list(
            "type", "state", "data__resolution"
        )
    )


def test_ignore_leaves_a_missing_vm_missing_and_the_next_scan_finds_it_again(
    director_env, admin_api
):
    env, name = director_env, "cck-ignore-vm"
    victim, other = deploy(env, name, instances=2)
    old = Vm.objects.get(instance=victim, active=True)
    unregister(env, old.cid)
    before = env.vms()

    run(admin_api, "post", f"{D}/{name}/scans")
    [problem] = problems(admin_api, name)
    assert problem["type"] == "missing_vm"
    run(admin_api, "put", f"{D}/{name}/problems", {"resolutions": {problem["id"]: "ignore"}})

    assert problems(admin_api, name) == []  # closed, as BOSH closes an ignored problem
    assert ignored(name) == [("missing_vm", "resolved", "ignore")]
    assert env.vms().keys() == before.keys() and old.cid not in before  # nothing recreated
    assert Vm.objects.get(instance=victim, active=True).cid == old.cid  # the reference kept
    # the next scan finds it again, as a new problem
    run(admin_api, "post", f"{D}/{name}/scans")
    [again] = problems(admin_api, name)
    assert again["type"] == "missing_vm" and again["id"] != problem["id"]
    assert old.cid in again["description"]


def test_ignore_leaves_a_missing_stemcell_missing_and_the_next_scan_finds_it_again(
    director_env, admin_api
):
    env, name = director_env, "cck-ignore-stemcell"
    [instance] = deploy(env, name)
    stemcell = Stemcell.objects.get()
    vm_cid = Vm.objects.get(instance=instance, active=True).cid
    WaitForTask(template(env, stemcell.cid).Destroy_Task())  # the template is gone from vCenter
    assert template(env, stemcell.cid) is None

    run(admin_api, "post", f"{D}/{name}/scans")
    [problem] = problems(admin_api, name)
    assert problem["type"] == "missing_stemcell" and stemcell.cid in problem["description"]
    assert [r["name"] for r in problem["resolutions"]] == ["ignore", "reupload_stemcell"]
    run(admin_api, "put", f"{D}/{name}/problems", {"resolutions": {problem["id"]: "ignore"}})

    assert problems(admin_api, name) == []
    assert ignored(name) == [("missing_stemcell", "resolved", "ignore")]
    stemcell.refresh_from_db()
    assert template(env, stemcell.cid) is None  # not uploaded again
    assert Stemcell.objects.get().cid == stemcell.cid
    assert list(env.vms()) == [vm_cid] and env.vms()[vm_cid].power == "poweredOn"
    run(admin_api, "post", f"{D}/{name}/scans")
    assert [p["type"] for p in problems(admin_api, name)] == ["missing_stemcell"]


GATED_CTL = """#!/bin/bash
RUN=/var/vcap/sys/run/gated
STORE=/var/vcap/store/gated
mkdir -p $RUN $STORE
case $1 in
  start)
    # The first start opens the gate; a start with the gate removed fails.
    [ -f $STORE/first ] || { touch $STORE/first $STORE/gate; }
    [ -f $STORE/gate ] || { echo 'the gate is closed' >&2; exit 1; }
    sleep 100000 >/dev/null 2>&1 &
    echo $! > $RUN/gated.pid
    ;;
  stop)
    kill $(cat $RUN/gated.pid)
    ;;
esac
"""


def build_gated_release(out) -> None:
    job = _job(
        "gated",
        {"templates": {"ctl.erb": "bin/ctl"}, "packages": [], "properties": {}},
        {"ctl.erb": GATED_CTL},
        MONIT.format(name="gated"),
    )
    fp = hashlib.sha1(job).hexdigest()
    mf = {
        "name": "gated",
        "version": "1",
        "commit_hash": "abc1234",
        "jobs": [{"name": "gated", "version": fp, "fingerprint": fp, "sha1": fp}],
        "packages": [],
    }
    with tarfile.open(out, "w:gz") as tar:
        for member, data in (("release.MF", yaml.safe_dump(mf).encode()), ("jobs/gated.tgz", job)):
            info = tarfile.TarInfo(f"./{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def gated_manifest(name: str) -> dict:
    manifest = zookeeper_manifest(
        name,
        instances=1,
        azs=["z1"],
        jobs=[{"name": "gated", "release": "gated", "properties": {}}],
        update={"canary_watch_time": "500-15000", "update_watch_time": "500-15000"},
    )
    manifest["releases"] = [{"name": "gated", "version": "latest"}]
    manifest.pop("variables")
    return manifest


def job_state(agent, until: str, wait: float = 60) -> str:
    deadline = time.monotonic() + wait
    while True:
        state = agent.get_state()["job_state"]
        if state == until or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


def test_recreate_vm_without_wait_replaces_a_silent_agents_vm_and_does_not_wait_for_its_jobs(
    director_env, admin_api, vm_runtime, nats_server, settings, tmp_path
):
    settings.NATS_URL = nats_server.url  # the test asks the agents itself
    env, name = director_env, "cck-nowait"
    build_gated_release(tmp_path / "gated.tgz")
    wait_done(services.upload_release(tmp_path / "gated.tgz", "admin"))
    wait_done(env.deploy(gated_manifest(name)), timeout=600)
    [instance] = Instance.objects.filter(deployment__name=name)
    old = Vm.objects.get(instance=instance, active=True)
    assert agent_for(old).get_state()["job_state"] == "running"
    ips = sorted(IpAddress.objects.filter(instance=instance).values_list("address", flat=True))
    disk = PersistentDisk.objects.get(instance=instance, active=True).disk_cid
    (vm_runtime.disk(disk) / "gated" / "gate").unlink()  # a new VM's job will not start
    Vm.objects.filter(id=old.id).update(agent_id=str(uuid.uuid4()))  # nobody answers

    run(admin_api, "post", f"{D}/{name}/scans")
    [problem] = problems(admin_api, name)
    assert problem["type"] == "unresponsive_agent" and problem["data"]["vm_cid"] == old.cid
    body = {"resolutions": {problem["id"]: "recreate_vm_without_wait"}}
    run(admin_api, "put", f"{D}/{name}/problems", body)  # done, its job not running

    new = Vm.objects.get(instance=instance, active=True)
    in_vcenter = env.vms()
    assert new.cid != old.cid and old.cid not in in_vcenter
    seen = in_vcenter[new.cid]
    assert seen.power == "poweredOn" and seen.ips == ips and seen.disks == [disk]
    agent = agent_for(new)
    assert disk in agent.list_disk()
    assert job_state(agent, until="failing") == "failing"
    assert not (vm_runtime.root(new.cid) / "data" / "sys" / "run" / "gated" / "gated.pid").exists()
    assert ignored(name) == [("unresponsive_agent", "resolved", "recreate_vm_without_wait")]
