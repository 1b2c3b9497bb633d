"""Jobs for real inside a simulated VM: compile, apply, start, supervise, errands, drain, logs."""

from __future__ import annotations

import io
import os
import signal
import tarfile
import time

import pytest

from director.agents.errors import AgentTaskFailed
from tests.vmruntime.helpers import running_pid, wait_for
from tests.vmruntime.release import source_package


def test_compile_package_runs_packaging_with_boshs_environment(compiled_hello, blob_server):
    package = compiled_hello["package"]
    data = blob_server.get(package["blobstore_id"])
    import hashlib

    assert hashlib.sha1(data).hexdigest() == package["sha1"]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        hello = tar.getmember("./bin/hello")
        assert hello.mode & 0o111
        assert tar.extractfile(hello).read()[:4] == b"\x7fELF"  # gcc really compiled it
    log = compiled_hello["packaging_log"]
    assert "compiling hello 1.0.1 in /var/vcap/data/compile/hello" in log
    assert "gcc -O2 -o /var/vcap/packages/hello/bin/hello hello/hello.c" in log  # bash -x


def test_a_failing_packaging_script_fails_the_task_with_its_output(agent_vm, blob_server):
    vm = agent_vm(ip="10.0.0.21")
    blob_id, sha1 = blob_server.put(source_package("echo about to fail\nexit 7\n"))
    with pytest.raises(AgentTaskFailed) as err:
        vm.client.compile_package(blob_id, sha1, "hello", "1.0.2", {})
    assert "Command exited with 7" in str(err.value)
    assert "about to fail" in str(err.value)


def test_a_blob_with_the_wrong_digest_is_refused(agent_vm, blob_server):
    vm = agent_vm(ip="10.0.0.22")
    blob_id, _ = blob_server.put(source_package())
    with pytest.raises(AgentTaskFailed) as err:
        vm.client.compile_package(blob_id, "0" * 40, "hello", "1.0.3", {})
    assert "expected sha1 digest 0000000000000000000000000000000000000000" in str(err.value)


def test_started_job_runs_with_rendered_values_and_monit_restarts_it(deployed, vm_runtime, hm):
    vm, spec, pid = deployed()
    root = vm_runtime.root(vm.cid)
    os.kill(pid, 0)  # a real process on this machine
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        assert fh.read().split(b"\0")[0] == b"/var/vcap/packages/hello/bin/hello"
    log = root / "sys" / "log" / "ticker" / "ticker.log"
    wait_for(lambda: log.exists() and "ticker started: hello from the manifest" in log.read_text())
    assert (
        "pre-start sees hello from the manifest"
        in (root / "sys" / "log" / "ticker" / "pre-start.stdout.log").read_text()
    )
    state = vm.client.get_state(full=True)
    assert state["job_state"] == "running"
    assert state["deployment"] == "rt"
    (proc,) = state["processes"]
    assert proc["name"] == "ticker" and proc["state"] == "running"
    assert proc["mem"]["kb"] > 0 and proc["uptime"]["secs"] >= 0
    assert (root / "jobs" / "ticker").is_symlink() and (root / "packages" / "hello").is_symlink()

    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    new_pid = wait_for(
        lambda: (p := running_pid(vm.client)) and p != pid and p, what="ticker restarted"
    )
    os.kill(new_pid, 0)
    alerts = wait_for(lambda: hm.of("alert", vm.agent_id, since=killed_at), what="an alert")
    assert "ticker (10.0.0.20) - Does not exist - restart" in alerts[0][1]["title"]
    restarted_at = time.time()
    beats = wait_for(lambda: hm.of("heartbeat", vm.agent_id, since=restarted_at), what="a beat")
    beat = beats[-1][1]
    assert beat["job"] == "ticker" and beat["node_id"] == vm.agent_id
    assert beat["number_of_processes"] == 1 and "vitals" in beat

    assert vm.client.stop() == "stopped"
    assert vm.client.get_state()["job_state"] == "stopped"
    wait_for(lambda: not os.path.exists(f"/proc/{new_pid}"), what="ticker stopped")


def test_errands_return_their_real_output_and_exit_code(deployed):
    vm, _, _ = deployed(ip="10.0.0.23")
    ok = vm.client.run_errand("smoke")
    assert ok == {
        "stdout": "smoke says abracadabra\n",
        "stderr": "smoke complains\n",
        "exit_code": 0,
    }
    bad = vm.client.run_errand("broken")
    assert bad["exit_code"] == 3
    assert bad["stdout"] == "broken says abracadabra\n"
    with pytest.raises(AgentTaskFailed, match="Could not find errand nothing"):
        vm.client.run_errand("nothing")


def drain_log(root) -> list[str]:
    """What ``ticker``'s drain script recorded, one line per run: its run number, argv,
    ``BOSH_JOB_STATE``, ``BOSH_JOB_NEXT_STATE`` (``unset`` when absent) and PATH."""
    return (root / "sys" / "log" / "ticker" / "drain.log").read_text().splitlines()


def test_drain_update_passes_the_changes_then_drains_dynamically(deployed, vm_runtime):
    vm, spec, _ = deployed(ip="10.0.0.24")
    root = vm_runtime.root(vm.cid)
    hello = dict(spec["packages"]["hello"], sha1="0" * 40)  # a new build of hello
    extra = {"name": "extra", "version": "1", "sha1": "1" * 40, "blobstore_id": "x"}
    new_spec = dict(
        spec,
        configuration_hash="changed",
        persistent_disk=1024,
        packages={"hello": hello, "extra": extra},
    )
    assert vm.client.drain("update", new_spec) == 0
    first, second = drain_log(root)
    # job change, hash change, then the new or changed packages, sorted
    assert first == (
        '0 job_changed hash_changed extra hello state={"persistent_disk":0} '
        'next={"persistent_disk":1024} path=/usr/sbin:/usr/bin:/sbin:/bin'
    )
    # it printed -1: asked again (after 1 s) about its status, without the next state
    assert second == (
        '1 job_check_status hash_unchanged state={"persistent_disk":0} next=unset '
        "path=/usr/sbin:/usr/bin:/sbin:/bin"
    )
    assert vm.client.get_state()["job_state"] == "failing"  # unmonitored until stopped
    with pytest.raises(
        AgentTaskFailed, match="1 of 1 pre-start scripts failed. Failed Jobs: ticker"
    ):
        vm.client.run_script("pre-start", {"env": {"PRE_START_EXIT": "4"}})

    # the same configuration and packages: nothing changed but the job is still "changed"
    # (bosh-agent says job_unchanged never; job_new only to a VM without jobs)
    assert vm.client.drain("update", spec) == 0
    assert drain_log(root)[2].startswith("2 job_changed hash_unchanged state=")


def test_drain_shutdown_announces_it_and_passes_job_shutdown(deployed, vm_runtime, hm):
    vm, spec, _ = deployed(ip="10.0.0.28")
    root = vm_runtime.root(vm.cid)
    asked_at = time.time()
    assert vm.client.drain("shutdown") == 0
    first, second = drain_log(root)
    assert first == (
        '0 job_shutdown hash_unchanged state={"persistent_disk":0} next=unset '
        "path=/usr/sbin:/usr/bin:/sbin:/bin"
    )
    assert second.startswith("1 job_check_status hash_unchanged ")
    wait_for(lambda: hm.of("shutdown", vm.agent_id, since=asked_at), what="hm.agent.shutdown")

    # a shutdown with the next spec (the disk goes away): still job_shutdown hash_unchanged
    # and no packages, but the script sees the next state
    gone = dict(spec, persistent_disk=0, configuration_hash="other", packages={})
    assert vm.client.drain("shutdown", dict(spec, persistent_disk=2048)) == 0
    assert drain_log(root)[2] == (
        '2 job_shutdown hash_unchanged state={"persistent_disk":0} '
        'next={"persistent_disk":2048} path=/usr/sbin:/usr/bin:/sbin:/bin'
    )
    assert vm.client.drain("shutdown", gone) == 0
    assert drain_log(root)[3] == (
        '3 job_shutdown hash_unchanged state={"persistent_disk":0} '
        'next={"persistent_disk":0} path=/usr/sbin:/usr/bin:/sbin:/bin'
    )

    # the director's old dynamic drain ("status") is the agent's business now
    with pytest.raises(AgentTaskFailed, match="Unexpected call with drain type 'status'"):
        vm.client.drain("status")
    assert len(drain_log(root)) == 4


def test_a_drain_script_that_prints_no_integer_fails_the_drain(deployed, vm_runtime):
    vm, _, _ = deployed(ip="10.0.0.29")
    script = vm_runtime.root(vm.cid) / "jobs" / "ticker" / "bin" / "drain"
    script.write_text("#!/bin/bash\necho draining\necho 0\n")
    with pytest.raises(AgentTaskFailed, match="ticker: it did not return a signed integer"):
        vm.client.drain("shutdown")


def test_fetch_logs_uploads_a_tgz_of_the_job_logs(deployed, blob_server):
    vm, _, _ = deployed(ip="10.0.0.25")
    result = vm.client.fetch_logs("job")
    data = blob_server.get(result["blobstore_id"])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        assert "./ticker/ticker.log" in names
        text = tar.extractfile("./ticker/ticker.log").read().decode()
    assert "ticker started: hello from the manifest" in text


BPM_MONIT = """check process sleeper
  with pidfile /var/vcap/sys/run/bpm/sleeper/sleeper.pid
  start program "/var/vcap/jobs/bpm/bin/bpm start sleeper"
  stop program "/var/vcap/jobs/bpm/bin/bpm stop sleeper"
  group vcap
"""

BPM_YML = """processes:
- name: sleeper
  executable: /bin/bash
  args: ["-c", "echo \\"sleeper sees $GREETING in $PWD, tmp $TMPDIR\\"; exec sleep 1000"]
  env: {GREETING: rendered-by-bpm}
  persistent_disk: true
"""


def test_a_bpm_job_runs_as_bpm_would_run_it(agent_vm, blob_server, vm_runtime):
    from tests.vmruntime.release import sha1, tgz

    vm = agent_vm(ip="10.0.0.26")
    archive = tgz(
        {
            "./sleeper/monit": (BPM_MONIT, 0o644),
            "./sleeper/config/bpm.yml": (BPM_YML, 0o644),
        }
    )
    blob_id, digest = blob_server.put(archive)
    spec = {
        "deployment": "rt",
        "name": "sleeper",
        "id": vm.agent_id,
        "index": 0,
        "job": {
            "name": "sleeper",
            "templates": [{"name": "sleeper", "version": "1", "sha1": sha1(b"s")}],
        },
        "packages": {},
        "networks": {},
        "configuration_hash": digest,
        "rendered_templates_archive": {"blobstore_id": blob_id, "sha1": digest},
    }
    vm.client.apply(spec)
    vm.client.start()
    pid = wait_for(lambda: running_pid(vm.client), what="sleeper running")
    root = vm_runtime.root(vm.cid)
    assert (root / "sys" / "run" / "bpm" / "sleeper" / "sleeper.pid").read_text().strip() == str(
        pid
    )
    out = root / "sys" / "log" / "sleeper" / "sleeper.stdout.log"
    wait_for(lambda: out.exists() and "sleeper sees" in out.read_text(), what="bpm's stdout log")
    assert out.read_text() == (
        "sleeper sees rendered-by-bpm in /var/vcap/jobs/sleeper, tmp /var/vcap/data/sleeper/tmp\n"
    )
    assert (root / "data" / "sleeper" / "tmp").is_dir() and (root / "store" / "sleeper").is_dir()
    assert vm.client.stop() == "stopped"
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="sleeper stopped (SIGTERM)")
