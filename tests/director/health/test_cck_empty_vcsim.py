"""Cloud check after vCenter lost everything: a vcsim restarted empty, one ``manage.py cck``.

The test runs its own vcsim (the session's is shared by every test) and
its own VM runtime watching it, with the session's worker, PostgreSQL and
NATS. It deploys, restarts that vcsim on the same port with its inventory
as new (no stemcell template, none of the deployment's VMs, its datastores
and so the persistent disks gone). Plain ``manage.py cck DEPLOYMENT --auto``
uploads the stemcell again but keeps the lost disks (BOSH's automatic
resolution of ``missing_disk`` is ``ignore``), so it recreates nothing and
prints the one command that does::

    manage.py cck DEPLOYMENT --auto --resolution delete_disk_reference

which the test runs, then checks that vCenter holds the deployment's VMs
again: new cids, the same instances and IPs, a new empty persistent disk
each, agents running.
"""

from __future__ import annotations

import io
import time
import uuid

import pytest
from django.core.management import CommandError, call_command
from pyVim.connect import Disconnect, SmartConnect

from director import services
from director.agent import agent_for
from director.models import (
    Config,
    DeploymentProblem,
    Instance,
    IpAddress,
    PersistentDisk,
    Stemcell,
    Vm,
)
from director.uploads import stored_stemcell
from opsconsole.localservices.vcsim import start_vcsim
from opsconsole.localservices.vmruntime import start_vmruntime, write_vcenter_file
from tests.director.execution.conftest import CLOUD_CONFIG, DirectorEnv, cpi_config

from .conftest import wait_done, zookeeper_manifest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SHAPE = {"datacenters": 1, "clusters": 2, "hosts": 3, "datastores": 2, "portgroups": 2}


class OwnVcenter:
    """A vcsim of this test's own, with a VM runtime playing its VMs' agents."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.sim = start_vcsim(**SHAPE, workdir=workdir / "vcsim")
        self.si = None
        self.connect()
        vcenter_file = write_vcenter_file(workdir / "vcenter.json", self.sim)
        self.runtime = start_vmruntime(
            workdir / "vmruntime",
            vcenter_file,
            log_path=workdir / "vmruntime.log",
            heartbeat_interval=1.0,
            monit_interval=0.5,
        )

    def connect(self):
        if self.si is not None:
            Disconnect(self.si)
        self.si = SmartConnect(
            host="127.0.0.1",
            port=self.sim.port,
            user=self.sim.username,
            pwd=self.sim.password,
            sslContext=self.sim.ssl_context(),
        )

    def restart_empty(self):
        """Stop vcsim (its datastores go with it) and start it again on the same port.

        vcsim serves a new certificate; the VM runtime reads it again when it
        reconnects, as it does under ``make run``.
        """
        self.sim.stop()
        self.sim = start_vcsim(
            **SHAPE, listen=f"127.0.0.1:{self.sim.port}", workdir=self.workdir / "vcsim"
        )
        self.connect()

    def close(self):
        try:
            if self.si is not None:
                Disconnect(self.si)
        finally:
            self.runtime.stop(timeout=30)
            self.sim.stop()


@pytest.fixture
def own_vcenter(celery_worker, tmp_path):
    vc = OwnVcenter(tmp_path)
    try:
        yield vc
    finally:
        vc.close()


@pytest.fixture
def env(own_vcenter, stemcell_tgz, release_tgz) -> DirectorEnv:
    """``director_env`` on this test's vcsim."""
    suffix = uuid.uuid4().hex[:8]
    folder, disk_path = f"it-{suffix}", f"it-disks-{suffix}"
    sim = own_vcenter.sim
    Config.objects.create(type="cpi", name="default", content=cpi_config(sim, folder, disk_path))
    Config.objects.create(type="cloud", name="default", content=CLOUD_CONFIG)
    wait_done(services.upload_stemcell(stemcell_tgz, "admin"))
    wait_done(services.upload_release(release_tgz, "admin"))
    return DirectorEnv(own_vcenter.si, folder, disk_path, sim.inventory["datacenters"][0])


def template(vc: OwnVcenter, cid: str):
    dc = vc.sim.inventory["datacenters"][0]
    return vc.si.content.searchIndex.FindByInventoryPath(f"{dc}/vm/BOSH_Templates/{cid}")


def ips(instance: Instance) -> list[str]:
    return sorted(IpAddress.objects.filter(instance=instance).values_list("address", flat=True))


def job_state(agent, wait: float = 60) -> str:
    """The agent's job state once it is running (``recreate_vm_without_wait`` did not wait)."""
    deadline = time.monotonic() + wait
    while True:
        state = agent.get_state()["job_state"]
        if state == "running" or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


def test_after_vcsim_restarts_empty_one_cck_brings_the_deployment_back(
    own_vcenter, env, nats_server, settings
):
    settings.NATS_URL = nats_server.url  # the test asks the new VMs' agents itself
    name = "cck-empty"
    wait_done(env.deploy(zookeeper_manifest(name, instances=2)))
    instances = list(Instance.objects.filter(deployment__name=name).order_by("index"))
    before = {
        i.uuid: (
            Vm.objects.get(instance=i, active=True).cid,
            ips(i),
            PersistentDisk.objects.get(instance=i, active=True).disk_cid,
        )
        for i in instances
    }
    stemcell = Stemcell.objects.get()
    old_template = stemcell.cid
    assert template(own_vcenter, stemcell.cid) is not None
    assert set(env.vms()) == {cid for cid, _, _ in before.values()}

    own_vcenter.restart_empty()
    env.si = own_vcenter.si
    assert env.vms() == {}  # none of the deployment's VMs
    assert template(own_vcenter, stemcell.cid) is None  # nor the stemcell
    # The director is told the restarted vCenter's certificate (``make run`` reads it itself).
    Config.objects.create(
        type="cpi",
        name="default",
        content=cpi_config(own_vcenter.sim, env.folder, env.disk_path),
    )

    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("cck", name, "--auto", stdout=out, stderr=out)
    text = out.getvalue()
    assert "5 problem(s)" in text, text
    assert f"Stemcell '{stemcell}' with cloud ID '{stemcell.cid}' is missing" in text
    # the lost disks are kept, so no VM came back; the output names the next command
    assert "2 persistent disk(s) missing from vCenter were kept" in text
    next_command = f"manage.py cck {name} --auto --resolution delete_disk_reference"
    assert next_command in text
    assert env.vms() == {}

    out = io.StringIO()
    call_command("cck", *next_command.split()[2:], stdout=out, stderr=out)
    text = out.getvalue()
    assert "4 problem(s)" in text, text  # the stemcell is back since the first command
    resolved = sorted(
        DeploymentProblem.objects.filter(deployment__name=name).values_list(
            "type", "state", "data__resolution"
        )
    )
    assert resolved == sorted(
        [("missing_stemcell", "resolved", "reupload_stemcell")]
        + [("missing_vm", "resolved", "recreate_vm_without_wait")] * 2
        + [("missing_disk", "resolved", "delete_disk_reference")] * 2
        + [("missing_disk", "resolved", "ignore")] * 2  # by the first, plain --auto
    )

    # The stemcell is in vCenter again, under a new cid.
    stemcell.refresh_from_db()
    assert stemcell.cid != old_template and template(own_vcenter, stemcell.cid) is not None
    # vCenter holds the deployment's VMs again: new cids, same instances and IPs, a new disk.
    in_vcenter = env.vms()
    assert {v.metadata["id"] for v in in_vcenter.values()} == set(before)
    for i in instances:
        old_cid, old_ips, old_disk = before[i.uuid]
        vm = Vm.objects.get(instance=i, active=True)
        disk = PersistentDisk.objects.get(instance=i, active=True).disk_cid
        assert vm.cid != old_cid and disk != old_disk
        seen = in_vcenter[vm.cid]
        assert seen.metadata["id"] == i.uuid and seen.metadata["deployment"] == name
        assert seen.power == "poweredOn"
        assert seen.ips == old_ips == ips(i)
        assert seen.disks == [disk]
        agent = agent_for(vm)
        assert job_state(agent) == "running"
        assert disk in agent.list_disk()

    # A scan now finds nothing.
    out = io.StringIO()
    call_command("cck", name, "--report", stdout=out, stderr=out)
    assert "No problems found" in out.getvalue()


def test_the_director_keeps_a_stemcell_tarball_until_the_stemcell_is_deleted(
    director_env, stemcell_tgz
):
    stemcell = Stemcell.objects.get()  # uploaded by director_env
    kept = stored_stemcell(stemcell.name, stemcell.version)
    assert kept.read_bytes() == stemcell_tgz.read_bytes()  # what cck re-uploads from

    wait_done(services.delete_stemcell(stemcell.name, stemcell.version, "admin"))
    assert not kept.exists()
