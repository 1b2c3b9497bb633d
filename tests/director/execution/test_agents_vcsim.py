"""A real release through the real agent path: vcsim, nats-server, the VM runtime, a worker.

The test builds a release in BOSH's tarball format: package ``libgreet``
(a header) and package ``greeter`` (a C program compiled by its
``packaging`` script against ``libgreet``), job ``web`` (ERB templates using
``p``, a spec default, ``spec.address``, ``spec.bootstrap`` and a link; a
monit process running the compiled program with the rendered config), job
``idle`` (another monit process), job ``smoke`` (an errand whose ``bin/run``
prints the peers it was linked to and exits with a property) and job
``broken`` (a process that dies at once). What is asserted is what an
operator sees: the task's event log, what vCenter holds, the processes and
logs inside each VM (the VM runtime's root of that VM).
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from director import runner
from director.models import CompiledPackage, Instance, Vm
from director.services import errands
from tests.director.execution.conftest import events, wait_done, wait_terminal

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MONIT = """check process {name}
  with pidfile /var/vcap/sys/run/{name}/{name}.pid
  start program "/var/vcap/jobs/{name}/bin/ctl start"
  stop program "/var/vcap/jobs/{name}/bin/ctl stop"
  group vcap
"""

CTL = """#!/bin/bash
RUN=/var/vcap/sys/run/{name}
LOG=/var/vcap/sys/log/{name}
mkdir -p $RUN $LOG
case $1 in
  start)
    {command} >>$LOG/{name}.stdout.log 2>>$LOG/{name}.stderr.log &
    echo $! > $RUN/{name}.pid
    ;;
  stop)
    kill $(cat $RUN/{name}.pid)
    ;;
esac
"""

WEB_CONFIG = """greeting=<%= p('greeting') %>
port=<%= p('port') %>
address=<%= spec.address %>
bootstrap=<%= spec.bootstrap %>
peers=<%= link('peers').instances.map { |i| i.address }.sort.join(',') %>
"""

SMOKE_RUN = """#!/bin/bash
echo "smoke: <%= link('web').instances.size %> web instances on port <%= link('web').p('port') %>"
echo "smoke stderr" >&2
exit <%= p('exit_code') %>
"""

GREETER_C = """#include <stdio.h>
#include <unistd.h>
#include "greet.h"
int main(int argc, char **argv) {
  printf("%s pid %d\\n%s", GREET_PREFIX, (int)getpid(), argc > 1 ? argv[1] : "");
  fflush(stdout);
  for (;;) pause();
}
"""


def _tgz(files: dict[str, str], modes: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            info.mode = (modes or {}).get(name, 0o644)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _job(name: str, spec: dict, templates: dict[str, str], monit: str = "") -> bytes:
    files = {"job.MF": yaml.safe_dump({"name": name, **spec}), "monit": monit}
    files.update({f"templates/{src}": text for src, text in templates.items()})
    return _tgz(files)


def build_greeter_release(out: Path, version: str = "1") -> Path:
    """The test release, in BOSH's release tarball format (release.MF digests right)."""
    packages = {
        "libgreet": (
            _tgz(
                {
                    "packaging": "set -e\nmkdir -p $BOSH_INSTALL_TARGET/include\n"
                    "cp libgreet/greet.h $BOSH_INSTALL_TARGET/include/\n",
                    "libgreet/greet.h": '#define GREET_PREFIX "greeter built with libgreet"\n',
                }
            ),
            [],
        ),
        "greeter": (
            _tgz(
                {
                    "packaging": "set -e\nmkdir -p $BOSH_INSTALL_TARGET/bin\n"
                    "cc -I/var/vcap/packages/libgreet/include -o $BOSH_INSTALL_TARGET/bin/greeter "
                    "greeter/greeter.c\n",
                    "greeter/greeter.c": GREETER_C,
                }
            ),
            ["libgreet"],
        ),
    }
    greeter = "/var/vcap/packages/greeter/bin/greeter"
    jobs = {
        "web": _job(
            "web",
            {
                "templates": {"ctl.erb": "bin/ctl", "web.conf.erb": "config/web.conf"},
                "packages": ["greeter"],
                "properties": {"greeting": {"default": "hello"}, "port": {}},
                "provides": [{"name": "web", "type": "web", "properties": ["port"]}],
                "consumes": [{"name": "peers", "type": "web"}],
            },
            {
                "ctl.erb": CTL.format(
                    name="web", command=f'{greeter} "$(cat /var/vcap/jobs/web/config/web.conf)"'
                ),
                "web.conf.erb": WEB_CONFIG,
            },
            MONIT.format(name="web"),
        ),
        "idle": _job(
            "idle",
            {"templates": {"ctl.erb": "bin/ctl"}, "packages": ["greeter"], "properties": {}},
            {"ctl.erb": CTL.format(name="idle", command=f"{greeter} idle")},
            MONIT.format(name="idle"),
        ),
        "broken": _job(
            "broken",
            {"templates": {"ctl.erb": "bin/ctl"}, "packages": [], "properties": {}},
            {"ctl.erb": CTL.format(name="broken", command="false")},
            MONIT.format(name="broken"),
        ),
        "smoke": _job(
            "smoke",
            {
                "templates": {"run.erb": "bin/run"},
                "packages": [],
                "properties": {"exit_code": {"default": 0}},
                "consumes": [{"name": "web", "type": "web"}],
            },
            {"run.erb": SMOKE_RUN},
        ),
    }
    mf = {
        "name": "greeter",
        "version": version,
        "commit_hash": "abc1234",
        "jobs": [],
        "packages": [],
    }
    members = {}
    for name, (data, deps) in packages.items():
        fp = hashlib.sha1(data).hexdigest()
        members[f"packages/{name}.tgz"] = data
        mf["packages"].append(
            {
                "name": name,
                "version": fp,
                "fingerprint": fp,
                "sha1": hashlib.sha1(data).hexdigest(),
                "dependencies": deps,
            }
        )
    for name, data in jobs.items():
        fp = hashlib.sha1(data).hexdigest()
        members[f"jobs/{name}.tgz"] = data
        mf["jobs"].append(
            {"name": name, "version": fp, "fingerprint": fp, "sha1": hashlib.sha1(data).hexdigest()}
        )
    members = {"release.MF": yaml.safe_dump(mf).encode(), **members}
    with tarfile.open(out, "w:gz") as tar:
        for member, data in members.items():
            info = tarfile.TarInfo(f"./{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def greeter_manifest(name: str, greeting: str = "hi", smoke_exit: int = 0, web_jobs=None) -> dict:
    common = {"vm_type": "small", "stemcell": "default", "networks": [{"name": "default"}]}
    return {
        "name": name,
        "releases": [{"name": "greeter", "version": "latest"}],
        "stemcells": [{"alias": "default", "os": "ubuntu-jammy", "version": "latest"}],
        "update": {
            "canaries": 1,
            "max_in_flight": 2,
            "canary_watch_time": "500-15000",
            "update_watch_time": "500-15000",
        },
        "instance_groups": [
            {
                "name": "web",
                "azs": ["z1", "z2"],
                "instances": 3,
                "jobs": web_jobs
                or [
                    {
                        "name": "web",
                        "release": "greeter",
                        "properties": {"greeting": greeting, "port": 8080},
                    }
                ],
                **common,
            },
            {
                "name": "idle",
                "azs": ["z1"],
                "instances": 1,
                "jobs": [{"name": "idle", "release": "greeter", "properties": {}}],
                **common,
            },
            {
                "name": "smoke",
                "lifecycle": "errand",
                "azs": ["z1"],
                "instances": 1,
                "jobs": [
                    {"name": "smoke", "release": "greeter", "properties": {"exit_code": smoke_exit}}
                ],
                **common,
            },
        ],
    }


@pytest.fixture
def greeter_env(director_env, tmp_path):
    from director import services

    tgz = build_greeter_release(tmp_path / "greeter.tgz")
    wait_done(services.upload_release(tgz, "admin"))
    return director_env


def _root(vm_runtime, instance: Instance) -> Path:
    vm = Vm.objects.get(instance=instance, active=True)
    return vm_runtime.root(vm.cid)


def _pid(root: Path, job: str) -> int:
    return int((root / "data" / "sys" / "run" / job / f"{job}.pid").read_text().strip())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _log(root: Path, job: str) -> str:
    return (root / "data" / "sys" / "log" / job / f"{job}.stdout.log").read_text()


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_release_compiled_rendered_and_running_on_three_instances(greeter_env, vm_runtime):
    env = greeter_env
    task = wait_done(env.deploy(greeter_manifest("greet")), timeout=600)

    # -- "Compiling packages": one compilation per package, dependencies first ----------------
    compiled = [e for e in events(task) if e.get("stage") == "Compiling packages"]
    finished = [e["task"] for e in compiled if e["state"] == "finished"]
    assert len(finished) == 2
    assert finished[0].startswith("libgreet/") and finished[1].startswith("greeter/")
    assert {e["total"] for e in compiled} == {2}
    assert CompiledPackage.objects.filter(stemcell_os="ubuntu-jammy").count() == 2
    # the compilation VMs are gone, from vCenter and from the database
    in_vcenter = env.vms()
    assert not Instance.objects.filter(compilation=True).exists()
    vms = Vm.objects.filter(instance__deployment__name="greet")
    assert set(in_vcenter) == set(vms.values_list("cid", flat=True))
    assert len(in_vcenter) == 4  # 3 web + 1 idle; the errand has no VM between runs

    # -- each job process runs, with the values rendered from the manifest --------------------
    web = list(Instance.objects.filter(deployment__name="greet", group="web").order_by("index"))
    assert sorted(i.az for i in web) == ["z1", "z1", "z2"]
    addresses = sorted(Vm.objects.get(instance=i).network_spec["default"]["ip"] for i in web)
    pids = {}
    for inst in web:
        root = _root(vm_runtime, inst)
        pids[inst.uuid] = _pid(root, "web")
        assert _alive(pids[inst.uuid])
        assert _wait_for(lambda root=root: "port=8080" in _log(root, "web"))
        text = _log(root, "web")
        ip = Vm.objects.get(instance=inst).network_spec["default"]["ip"]
        assert "greeter built with libgreet" in text  # the compiled program ran
        assert "greeting=hi" in text
        assert f"address={ip}" in text
        assert f"bootstrap={'true' if inst.bootstrap else 'false'}" in text
        assert f"peers={','.join(addresses)}" in text
    assert sum(i.bootstrap for i in web) == 1
    idle = Instance.objects.get(deployment__name="greet", group="idle")
    idle_pid = _pid(_root(vm_runtime, idle), "idle")
    assert _alive(idle_pid)

    # -- a re-deploy with a changed property restarts only the jobs that changed --------------
    task = wait_done(env.deploy(greeter_manifest("greet", greeting="bonjour")), timeout=600)
    assert not [e for e in events(task) if e.get("stage") == "Compiling packages"]
    updated = {e["task"] for e in events(task) if e.get("stage") == "Updating instance"}
    assert all(t.startswith("web/") for t in updated) and len(updated) == 3
    for inst in web:
        root = _root(vm_runtime, inst)
        new_pid = _pid(root, "web")
        assert new_pid != pids[inst.uuid] and _alive(new_pid)
        assert not _alive(pids[inst.uuid])
        assert _wait_for(lambda root=root: "greeting=bonjour" in _log(root, "web"))
    assert _pid(_root(vm_runtime, idle), "idle") == idle_pid and _alive(idle_pid)

    # -- the errand runs its bin/run: real stdout, stderr and exit code ------------------------
    task = wait_done(errands.run_errand("greet", "smoke", "admin"), timeout=300)
    (result,) = [r for r in runner.read_output(task, "result").text.splitlines() if r.strip()]
    result = yaml.safe_load(result)
    assert result["exit_code"] == 0
    assert result["stdout"] == "smoke: 3 web instances on port 8080\n"
    assert result["stderr"] == "smoke stderr\n"
    assert len(env.vms()) == 4  # the errand VM is deleted again

    wait_done(env.deploy(greeter_manifest("greet", greeting="bonjour", smoke_exit=3)), timeout=600)
    task = wait_terminal(errands.run_errand("greet", "smoke", "admin"), timeout=300)
    assert task.state == "error"
    assert "exit code 3" in task.result


def test_a_job_that_does_not_start_fails_the_deploy_after_the_watch_time(greeter_env):
    env = greeter_env
    manifest = greeter_manifest(
        "broken", web_jobs=[{"name": "broken", "release": "greeter", "properties": {}}]
    )
    manifest["instance_groups"] = manifest["instance_groups"][:1]
    manifest["instance_groups"][0]["instances"] = 1
    manifest["update"]["canary_watch_time"] = "1000-3000"
    task = wait_terminal(env.deploy(manifest), timeout=600)
    assert task.state == "error"
    assert "is not running after update" in task.result
    assert "broken" in task.result
