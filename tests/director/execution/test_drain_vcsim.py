"""Drain through the real agent path: vcsim, nats-server, the VM runtime, a worker.

A release built here has one job, ``drainer``: a monit process and a
``bin/drain`` that appends its arguments, ``BOSH_JOB_STATE`` and
``BOSH_JOB_NEXT_STATE`` to a file in the VM (``unset`` when absent) and asks
for dynamic drain (``-1``) until it is called with ``job_check_status``.
What the VM's drain script saw is what is asserted, for each kind of drain
the director asks for: ``update`` on a change of properties, ``shutdown``
(with the next persistent disk) on a change of disk, ``shutdown`` on a stop.
"""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest
import yaml

from director import instance_actions
from director.models import Instance, Vm
from tests.director.execution.conftest import wait_done
from tests.director.execution.test_agents_vcsim import MONIT, _job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CTL = """#!/bin/bash
RUN=/var/vcap/sys/run/drainer
mkdir -p $RUN
case $1 in
  start) sleep 100000 >/dev/null 2>&1 & echo $! > $RUN/drainer.pid ;;
  stop) kill $(cat $RUN/drainer.pid) ;;
esac
"""

DRAIN = """#!/bin/bash
# label: <%= p('label') %>
echo "$* state=${BOSH_JOB_STATE-unset} next=${BOSH_JOB_NEXT_STATE-unset}" \\
  >> /var/vcap/data/drainer/drain.log
if [ "$1" = job_check_status ]; then echo 0; else echo -1; fi
"""


def build_drainer_release(out) -> None:
    job = _job(
        "drainer",
        {
            "templates": {"ctl.erb": "bin/ctl", "drain.erb": "bin/drain"},
            "packages": [],
            "properties": {"label": {}},
        },
        {"ctl.erb": CTL, "drain.erb": DRAIN},
        MONIT.format(name="drainer"),
    )
    fp = hashlib.sha1(job).hexdigest()
    mf = {
        "name": "drainer",
        "version": "1",
        "commit_hash": "abc1234",
        "jobs": [{"name": "drainer", "version": fp, "fingerprint": fp, "sha1": fp}],
        "packages": [],
    }
    with tarfile.open(out, "w:gz") as tar:
        for name, data in (("release.MF", yaml.safe_dump(mf).encode()), ("jobs/drainer.tgz", job)):
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def drainer_manifest(label: str = "one", disk: str = "1GB") -> dict:
    return {
        "name": "drn",
        "releases": [{"name": "drainer", "version": "latest"}],
        "stemcells": [{"alias": "default", "os": "ubuntu-jammy", "version": "latest"}],
        "update": {
            "canaries": 1,
            "max_in_flight": 1,
            "canary_watch_time": "500-15000",
            "update_watch_time": "500-15000",
        },
        "instance_groups": [
            {
                "name": "drainer",
                "azs": ["z1"],
                "instances": 1,
                "jobs": [{"name": "drainer", "release": "drainer", "properties": {"label": label}}],
                "vm_type": "small",
                "stemcell": "default",
                "persistent_disk_type": disk,
                "networks": [{"name": "default"}],
            }
        ],
    }


def test_the_director_drains_with_boshs_types_and_states(director_env, vm_runtime, tmp_path):
    from director import services

    env = director_env
    build_drainer_release(tmp_path / "drainer.tgz")
    wait_done(services.upload_release(tmp_path / "drainer.tgz", "admin"))
    wait_done(env.deploy(drainer_manifest()), timeout=600)
    (inst,) = Instance.objects.filter(deployment__name="drn")
    cid = Vm.objects.get(instance=inst, active=True).cid
    log = vm_runtime.root(cid) / "data" / "drainer" / "drain.log"
    assert not log.exists()  # a new VM is not drained

    def lines() -> list[str]:
        return log.read_text().splitlines()

    # a property changed: drain update with the next spec; -1 asks again with check_status
    wait_done(env.deploy(drainer_manifest(label="two")), timeout=600)
    assert lines() == [
        'job_changed hash_changed state={"persistent_disk":1024} next={"persistent_disk":1024}',
        'job_check_status hash_unchanged state={"persistent_disk":1024} next=unset',
    ]

    # the persistent disk changes: drain shutdown, the script sees the next disk size
    wait_done(env.deploy(drainer_manifest(label="two", disk="2GB")), timeout=600)
    assert Vm.objects.get(instance=inst, active=True).cid == cid  # the same VM
    assert lines()[2:] == [
        'job_shutdown hash_unchanged state={"persistent_disk":1024} next={"persistent_disk":2048}',
        'job_check_status hash_unchanged state={"persistent_disk":1024} next=unset',
    ]

    # bosh stop: drain shutdown
    task = instance_actions.change_instance_state("drn", "drainer", inst.uuid, "stop", "admin")
    wait_done(task, timeout=300)
    assert [line.split(" state=")[0] for line in lines()[4:]] == [
        "job_shutdown hash_unchanged",
        "job_check_status hash_unchanged",
    ]
    assert 'state={"persistent_disk":2048}' in lines()[4]
