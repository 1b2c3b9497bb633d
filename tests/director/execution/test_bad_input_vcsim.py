"""Bad releases and templates through the real path (vcsim, nats-server, the VM runtime, a worker),
and the settings a real stemcell reads (env.iso) on the VMs a deploy made.

Bad input gets a clear error and nothing half-stored: a template with a
Ruby error fails the deploy naming the job, the template and the line
before any VM is made; a ``packaging`` script that fails fails the deploy
with its output in the task's debug log, its compilation VM deleted and no
compiled package recorded; a release whose blob digest is wrong is refused
naming the blob (422 at the upload), with no release row, no task and no
blob left in the blobstore.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest
import yaml

from director import runner, services
from director.models import CompiledPackage, Deployment, Instance, Release, Task, Vm
from tests.cpi.test_agent_env import env_on_cdrom, guestinfo_settings
from tests.director.execution.conftest import wait_done, wait_terminal
from tests.director.execution.test_agents_vcsim import _job, _tgz

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def build(out: Path, name: str, jobs: dict[str, bytes], packages: dict, bad_digest: str = ""):
    """A release tarball; ``bad_digest`` names a member whose release.MF sha1 is wrong."""
    mf: dict = {"name": name, "version": "1", "commit_hash": "abc1234", "jobs": [], "packages": []}
    members = {}
    for pkg, (data, deps) in packages.items():
        fp = hashlib.sha1(data).hexdigest()
        members[f"packages/{pkg}.tgz"] = data
        mf["packages"].append(
            {"name": pkg, "version": fp, "fingerprint": fp, "sha1": fp, "dependencies": deps}
        )
    for job, data in jobs.items():
        fp = hashlib.sha1(data).hexdigest()
        members[f"jobs/{job}.tgz"] = data
        mf["jobs"].append({"name": job, "version": fp, "fingerprint": fp, "sha1": fp})
    for entry in mf["jobs"] + mf["packages"]:
        kind = "jobs" if entry in mf["jobs"] else "packages"
        if f"{kind}/{entry['name']}.tgz" == bad_digest:
            entry["sha1"] = hashlib.sha1(b"something else").hexdigest()
    with tarfile.open(out, "w:gz") as tar:
        for member, data in {"release.MF": yaml.safe_dump(mf).encode(), **members}.items():
            info = tarfile.TarInfo(f"./{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def manifest(name: str, release: str, job: str) -> dict:
    return {
        "name": name,
        "releases": [{"name": release, "version": "latest"}],
        "stemcells": [{"alias": "default", "os": "ubuntu-jammy", "version": "latest"}],
        "update": {
            "canaries": 1,
            "max_in_flight": 2,
            "canary_watch_time": "500-15000",
            "update_watch_time": "500-15000",
        },
        "instance_groups": [
            {
                "name": "g",
                "azs": ["z1"],
                "instances": 2,
                "jobs": [{"name": job, "release": release, "properties": {"port": 80}}],
                "vm_type": "small",
                "stemcell": "default",
                "persistent_disk_type": "1GB",
                "networks": [{"name": "default"}],
            }
        ],
    }


def _upload(tmp_path: Path, name: str, **kw):
    path = build(tmp_path / f"{name}.tgz", name, **kw)
    return wait_terminal(services.upload_release(path, "admin"), timeout=120)


def _blob_files(settings) -> set[str]:
    root = Path(settings.BLOBSTORE_DIR)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_a_template_with_a_ruby_error_names_job_template_and_line(director_env, tmp_path):
    env = director_env
    conf = "port=<%= p('port') %>\nhost=<%= spec.address.nosuch_method %>\n"
    job = _job(
        "api",
        {
            "templates": {"api.conf.erb": "config/api.conf"},
            "packages": [],
            "properties": {"port": {}},
        },
        {"api.conf.erb": conf},
    )
    wait_done(_upload(tmp_path, "rubyerr", jobs={"api": job}, packages={}))
    task = wait_terminal(env.deploy(manifest("rubyerr", "rubyerr", "api")), timeout=300)
    assert task.state == "error"
    assert "Error filling in template 'api.conf.erb' (line 2:" in task.result
    assert "Unable to render templates for job 'api'" in task.result
    assert "Unable to render jobs for instance group 'g'" in task.result
    assert "nosuch_method" in task.result
    # nothing made or stored: no VM in vCenter, no instance, the manifest not recorded
    assert env.vms() == {}
    assert not Instance.objects.filter(deployment__name="rubyerr").exists()
    assert not Deployment.objects.filter(name="rubyerr").exclude(manifest_text="").exists()


def test_a_failing_packaging_script_fails_with_its_output_in_the_debug_log(director_env, tmp_path):
    env = director_env
    package = _tgz(
        {
            "packaging": "echo 'configure: checking for gizmo... no' \n"
            "echo 'error: gizmo is required' >&2\nexit 7\n",
            "src/README": "x",
        }
    )
    job = _job(
        "api",
        {"templates": {"ctl.erb": "bin/ctl"}, "packages": ["gizmo"], "properties": {"port": {}}},
        {"ctl.erb": "#!/bin/sh\n"},
    )
    wait_done(_upload(tmp_path, "pkgerr", jobs={"api": job}, packages={"gizmo": (package, [])}))
    task = wait_terminal(env.deploy(manifest("pkgerr", "pkgerr", "api")), timeout=300)
    assert task.state == "error"
    assert "gizmo" in task.result
    debug = runner.read_output(task, "debug").text
    assert "configure: checking for gizmo... no" in debug
    assert "error: gizmo is required" in debug
    assert "7" in debug
    # the compilation VM is gone; no compiled package, no instance VM
    assert env.vms() == {}
    assert not Vm.objects.filter(instance__deployment__name="pkgerr").exists()
    assert not CompiledPackage.objects.filter(name="gizmo").exists()


def test_a_release_whose_blob_digest_is_wrong_is_refused_and_nothing_stored(
    director_env, tmp_path, settings, admin_api
):
    job = _job("api", {"templates": {}, "packages": ["gizmo"], "properties": {}}, {})
    package = _tgz({"packaging": "true\n"})
    before = _blob_files(settings)
    path = build(
        tmp_path / "digesterr.tgz",
        "digesterr",
        jobs={"api": job},
        packages={"gizmo": (package, [])},
        bad_digest="packages/gizmo.tgz",
    )
    with path.open("rb") as fh:
        response = admin_api.post(
            "/api/v0/director/releases", {"release[file]": fh}, format="multipart"
        )
    assert response.status_code == 422
    (message,) = response.json()["errors"]["release"]
    assert message.startswith("packages/gizmo.tgz: sha1 mismatch (manifest says ")
    assert not Release.objects.filter(name="digesterr").exists()
    assert _blob_files(settings) == before
    assert not Task.objects.filter(type="update_release", description__contains="digesterr")


def test_env_iso_on_each_vm_decodes_to_the_settings_in_guestinfo(director_env, vcsim, tmp_path):
    """A real stemcell's agent reads its settings from the env.iso CD-ROM: on every VM the
    deploy made (persistent disk attached), it holds exactly what guestinfo holds, and the
    agent that answered the director was configured from it."""
    env = director_env
    job = _job(
        "api",
        {"templates": {"ctl.erb": "bin/ctl"}, "packages": [], "properties": {"port": {}}},
        {"ctl.erb": "#!/bin/sh\n"},
    )
    wait_done(_upload(tmp_path, "isorel", jobs={"api": job}, packages={}))
    wait_done(env.deploy(manifest("iso", "isorel", "api")), timeout=300)
    vms = Vm.objects.filter(instance__deployment__name="iso", active=True)
    assert vms.count() == 2
    index = env.si.content.searchIndex
    for row in vms:
        vm = index.FindByInventoryPath(f"{env.datacenter}/vm/{env.folder}/{row.cid}")
        assert vm is not None
        on_cdrom = env_on_cdrom(vcsim, vm)
        assert on_cdrom == guestinfo_settings(vm)
        assert on_cdrom["agent_id"] == row.agent_id and on_cdrom["vm"]["name"] == row.cid
        disk = row.instance.persistent_disks.get(active=True)
        assert disk.disk_cid in on_cdrom["disks"]["persistent"]
        assert on_cdrom["env"]["bosh"]["mbus"]["urls"]
