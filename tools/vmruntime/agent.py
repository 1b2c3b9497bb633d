"""The agent of one simulated VM: BOSH's agent protocol over NATS, doing the work for real.

One ``VmAgent`` per powered-on VM that carries agent settings. It connects to
the message bus named by its settings (TLS with the VM's own client
certificate), hears ``agent.<agent_id>`` and answers on each request's
``reply_to`` with BOSH's envelope (bosh-agent.md §1.2): ``{"value": X}`` or
``{"exception": {"message": ...}}`` (``Action Failed <method>: ...`` for a
failed synchronous method, ``unknown message <m>`` for an unknown one, replies
over 1 MiB refused as the agent does). Long-running methods answer
``{"agent_task_id", "state": "running"}`` at once and run one at a time in
order; ``get_task`` reports them, ``cancel_task`` stops ``drain`` and
``run_errand`` (SIGTERM to the process group, SIGKILL 10 s later).

Everything happens under the VM's own directory (``layout.VmDisk``), and every
program (monit's, hook scripts, drain, errands, packaging) runs in the VM's
sandbox (``sandbox.py``), where that directory is ``/var/vcap``. Heartbeats
go to ``hm.agent.heartbeat.<agent_id>`` at boot and every
``heartbeat_interval`` seconds; a process that dies is an alert on
``hm.agent.alert.<agent_id>`` and is restarted by monit.

A persistent disk is a directory ``<data dir>/disks/<disk file>`` named after
the VMDK file the VM has attached in vCenter (``disk-<uuid>``), so its data
outlives the VM and follows the disk to the next VM it is attached to; it is
bound at ``/var/vcap/store`` for the VM's processes once mounted.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import json
import logging
import re
import shutil
import signal
import ssl
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats

from . import sandbox
from . import settings as agent_settings
from .blobs import BlobError, BlobstoreClient, parse_digest
from .layout import LayoutError, VmDisk, link, read_json, version_hash, write_json
from .monit import Monit, MonitFileError
from .vitals import vitals

log = logging.getLogger(__name__)

MAX_REPLY = 1024 * 1024
TAIL = 10 * 1024
CANCEL_GRACE = 10.0


class ActionError(Exception):
    """A method that failed; its text goes back to the director."""


@dataclass
class VmFacts:
    """What vCenter says about a VM (from the watcher)."""

    moid: str
    name: str
    powered_on: bool
    settings: dict | None
    disks: dict[str, str] = field(default_factory=dict)  # disk file stem -> datastore path


@dataclass
class Options:
    data_dir: Path
    heartbeat_interval: float = 30.0
    monit_interval: float = 2.0
    marker_prefix: str = "vmrt"
    blob_retry_wait: float = 5.0


@dataclass
class AgentTask:
    id: str
    method: str
    state: str = "running"
    value: Any = None
    error: str | None = None
    cancelled: bool = False
    procs: list[subprocess.Popen] = field(default_factory=list)


def vm_root(data_dir: Path, vm_name: str) -> Path:
    return Path(data_dir) / "vms" / vm_name


def disk_dir(data_dir: Path, disk_file: str) -> Path:
    return Path(data_dir) / "disks" / disk_file


class VmAgent:
    ASYNC = {
        "prepare",
        "apply",
        "stop",
        "drain",
        "run_script",
        "run_errand",
        "compile_package",
        "compile_package_with_signed_url",
        "fetch_logs",
        "fetch_logs_with_signed_url",
        "upload_blob",
        "mount_disk",
        "unmount_disk",
        "list_disk",
        "add_persistent_disk",
        "remove_persistent_disk",
        "migrate_disk",
        "update_settings",
    }
    SYNC = {
        "ping",
        "info",
        "get_state",
        "get_task",
        "cancel_task",
        "start",
        "sync_dns",
        "sync_dns_with_signed_url",
        "delete_arp_entries",
        "ssh",
        "shutdown",
    }

    def __init__(
        self,
        facts: VmFacts,
        options: Options,
        refresh: Callable[[], VmFacts | None],
        power_off: Callable[[], None],
    ):
        self.facts = facts
        self.options = options
        self.refresh = refresh  # a fresh read of the VM in vCenter (blocking)
        self.power_off = power_off
        self.settings: dict = dict(facts.settings or {})
        self.agent_id: str = self.settings["agent_id"]
        self.disk = VmDisk(vm_root(options.data_dir, facts.name))
        self.marker = f"{options.marker_prefix}/{facts.name}"
        self.monit = Monit(
            self.disk.vcap, self.marker, self.store_dir, self._alert, options.monit_interval
        )
        self.tasks: dict[str, AgentTask] = {}
        self.queue: asyncio.Queue = asyncio.Queue()
        self.nc = None
        self.booted_at = time.time()
        self._background: set[asyncio.Task] = set()
        self._closing = False
        self._connected = asyncio.Event()

    # -- life cycle ------------------------------------------------------------------------

    @property
    def update_settings(self) -> dict:
        return read_json(self.disk.bosh / "update_settings.json", {}) or {}

    @property
    def spec(self) -> dict:
        return read_json(self.disk.bosh / "spec.json", {}) or {}

    async def boot(self) -> None:
        """Power on: a fresh boot of the VM's disk, monit with the last started jobs, the bus."""
        await asyncio.to_thread(sandbox.kill_vm_processes, self.marker)
        await asyncio.to_thread(self.disk.boot)
        write_json(self.disk.bosh / "settings.json", self.settings)
        self._forget_detached_disks()
        try:
            self.monit.reload()
        except MonitFileError as exc:
            log.warning("%s: %s", self.facts.name, exc)
        if self.monit.vcap_services() and not (self.disk.monit / "stopped").exists():
            self._spawn(self.monit.start_all())
        self._spawn(self.queue_worker())
        self._spawn(self.bus())
        log.info("%s: agent %s booted", self.facts.name, self.agent_id)

    async def close(self) -> None:
        """Power off: every process of the VM dies, the agent falls silent."""
        self._closing = True
        for task in list(self._background):
            task.cancel()
        for task in list(self._background):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        await self.monit.close()
        for t in self.tasks.values():
            for proc in t.procs:
                sandbox.signal_group(proc, signal.SIGKILL)
        await asyncio.to_thread(sandbox.kill_vm_processes, self.marker)
        if self.nc is not None:
            try:
                await self.nc.close()
            except Exception:
                pass
        log.info("%s: agent %s powered off", self.facts.name, self.agent_id)

    def update_facts(self, facts: VmFacts) -> None:
        self.facts = facts
        if facts.settings:
            self.settings = dict(facts.settings)
            write_json(self.disk.bosh / "settings.json", self.settings)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- the message bus ------------------------------------------------------------------------

    def _tls(self) -> ssl.SSLContext | None:
        cert = agent_settings.mbus_cert(self.settings, self.update_settings)
        url = agent_settings.mbus_url(self.settings, self.update_settings)
        if not cert.get("certificate") and not url.startswith("tls://"):
            return None
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert.get("ca"):
            ctx.load_verify_locations(cadata=cert["ca"])
        if cert.get("certificate") and cert.get("private_key"):
            certs = self.disk.bosh / "mbus"
            certs.mkdir(parents=True, exist_ok=True)
            (certs / "cert.pem").write_text(cert["certificate"])
            key = certs / "key.pem"
            key.touch(mode=0o600)
            key.write_text(cert["private_key"])
            ctx.load_cert_chain(certs / "cert.pem", key)
        return ctx

    async def bus(self) -> None:
        """Connect (retrying 2 s x attempt, at most 10 s, forever), subscribe, heartbeat."""
        attempt = 0
        while not self._closing:
            url = agent_settings.mbus_url(self.settings, self.update_settings)
            try:
                if not url:
                    raise ActionError("the agent settings name no message bus (mbus)")
                tls = self._tls()
                self.nc = await nats.connect(
                    servers=[url],
                    tls=tls,
                    name=f"agent.{self.agent_id}",
                    connect_timeout=5,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=2,
                )
            except Exception as exc:
                attempt += 1
                log.warning("%s: connecting to %s: %s", self.facts.name, url, exc)
                await asyncio.sleep(min(2 * attempt, 10))
                continue
            attempt = 0
            await self.nc.subscribe(f"agent.{self.agent_id}", cb=self._on_message)
            self._connected.set()
            log.info("%s: listening on agent.%s", self.facts.name, self.agent_id)
            try:
                while not self.nc.is_closed:
                    await self.heartbeat()
                    await asyncio.sleep(self.options.heartbeat_interval)
            finally:
                self._connected.clear()
                if not self.nc.is_closed:
                    await self.nc.close()

    async def reconnect(self) -> None:
        """New mbus credentials (update_settings): drop the connection; ``bus`` makes a new one."""
        await asyncio.sleep(1)
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()

    async def publish(self, subject: str, payload: Any) -> None:
        if self.nc is None or not self.nc.is_connected:
            return
        await self.nc.publish(subject, json.dumps(payload).encode())

    async def heartbeat(self) -> None:
        """BOSH's heartbeat (bosh-agent.md §4), with the process list besides its count.

        bosh-agent sends only ``number_of_processes``; ``processes`` (as
        ``get_state`` gives them) is ours, so the VMs page and ``instances?
        format=full`` can list them from the heartbeat (the listener keeps
        the previous list when a heartbeat has none, as bosh-agent's).
        """
        spec = self.spec
        processes = self.monit.processes()
        await self.publish(
            f"hm.agent.heartbeat.{self.agent_id}",
            {
                "deployment": spec.get("deployment"),
                "job": (spec.get("job") or {}).get("name"),
                "index": spec.get("index"),
                "job_state": self.monit.job_state(),
                "node_id": spec.get("id"),
                "number_of_processes": len(processes),
                "processes": processes,
                "vitals": vitals(self.disk.vcap, self.store_dir(), self.booted_at),
            },
        )

    async def _alert(self, service: str, event: str, action: str) -> None:
        ips = sorted(
            str(n.get("ip"))
            for n in (self.settings.get("networks") or {}).values()
            if isinstance(n, dict) and n.get("ip")
        )
        await self.publish(
            f"hm.agent.alert.{self.agent_id}",
            {
                "id": f"{uuid.uuid4()}@{self.facts.name}",
                "severity": 1 if event.lower() == "does not exist" else 2,
                "title": f"{service} ({', '.join(ips)}) - {event} - {action}",
                "summary": f"process '{service}' is not running",
                "created_at": int(time.time()),
            },
        )

    async def _on_message(self, msg) -> None:
        self._spawn(self._handle(msg))

    async def _handle(self, msg) -> None:
        try:
            request = json.loads(msg.data)
            method = request["method"]
            args = request.get("arguments") or []
            reply_to = request.get("reply_to") or msg.reply
        except (ValueError, KeyError, TypeError):
            log.warning("%s: a request that is not BOSH's envelope", self.facts.name)
            return
        if not isinstance(args, list):
            args = [args]
        reply = await self.dispatch(str(method), args)
        if reply is None or not reply_to:
            return
        body = json.dumps(reply).encode()
        if len(body) > MAX_REPLY:
            if "exception" in reply:
                text = reply["exception"]["message"]
                keep = MAX_REPLY // 2 - 100
                reply = {"exception": {"message": text[:keep] + "...[truncated]..." + text[-keep:]}}
            else:
                reply = {"exception": {"message": "Response exceeded maximum allowed length"}}
            body = json.dumps(reply).encode()
        await self.nc.publish(reply_to, body)

    async def dispatch(self, method: str, args: list) -> dict | None:
        handler = getattr(self, f"m_{method}", None)
        if handler is None or method not in self.ASYNC | self.SYNC:
            return {"exception": {"message": f"unknown message {method}"}}
        try:
            args = _fit_arguments(handler, args, skip=1 if method in self.ASYNC else 0)
        except ActionError as exc:
            return {"exception": {"message": f"Action Failed {method}: {exc}"}}
        if method in self.ASYNC:
            task = AgentTask(id=str(uuid.uuid4()), method=method)
            self.tasks[task.id] = task
            await self.queue.put((task, handler, args))
            return {"value": {"agent_task_id": task.id, "state": "running"}}
        try:
            value = await handler(*args)
        except ActionError as exc:
            return {"exception": {"message": f"Action Failed {method}: {exc}"}}
        except Exception as exc:
            log.exception("%s: %s", self.facts.name, method)
            return {"exception": {"message": f"Action Failed {method}: {exc}"}}
        return {"value": value}

    async def queue_worker(self) -> None:
        """Async tasks run one at a time, in the order they came (as the agent's task worker)."""
        while True:
            task, handler, args = await self.queue.get()
            try:
                task.value = await handler(task, *args)
                task.state = "done"
            except (ActionError, BlobError, LayoutError, MonitFileError) as exc:
                task.error, task.state = str(exc), "failed"
            except asyncio.CancelledError:
                task.error, task.state = "task cancelled", "failed"
                raise
            except Exception as exc:
                log.exception("%s: %s", self.facts.name, task.method)
                task.error, task.state = f"{type(exc).__name__}: {exc}", "failed"

    # -- simple methods ------------------------------------------------------------------------

    async def m_ping(self):
        return "pong"

    async def m_info(self):
        return {"api_version": 1}

    async def m_get_task(self, task_id):
        task = self.tasks.get(task_id)
        if task is None:
            raise ActionError(f"Task with id {task_id} could not be found")
        if task.state == "running":
            return {"agent_task_id": task.id, "state": "running"}
        if task.state == "failed":
            raise _TaskFailed(f"Task {task.id} result: {task.error}")
        return task.value

    async def m_cancel_task(self, task_id):
        task = self.tasks.get(task_id)
        if task is None:
            raise ActionError(f"Task with id {task_id} could not be found")
        task.cancelled = True
        procs = list(task.procs)
        for proc in procs:
            sandbox.signal_group(proc, signal.SIGTERM)
        if procs:
            self._spawn(self._kill_later(procs))
        return "canceled"

    async def _kill_later(self, procs):
        await asyncio.sleep(CANCEL_GRACE)
        for proc in procs:
            if proc.poll() is None:
                sandbox.signal_group(proc, signal.SIGKILL)

    async def m_sync_dns(self, *args):
        return "synced"

    async def m_sync_dns_with_signed_url(self, *args):
        return "synced"

    async def m_delete_arp_entries(self, *args):
        return {}

    async def m_ssh(self, cmd, params=None):
        return {"command": cmd, "status": "success", "ip": self._default_ip()}

    async def m_shutdown(self):
        self._spawn(self._power_off_soon())
        return ""

    async def _power_off_soon(self):
        await asyncio.sleep(0.5)
        await asyncio.to_thread(self.power_off)

    def _default_ip(self) -> str | None:
        for net in (self.settings.get("networks") or {}).values():
            if isinstance(net, dict) and net.get("ip"):
                return net["ip"]
        return None

    async def m_get_state(self, *args):
        state = dict(self.spec)
        for key in ("networks", "packages", "resource_pool"):
            if not state.get(key):
                state[key] = {}
        state["agent_id"] = self.agent_id
        state["job_state"] = self.monit.job_state()
        state["vm"] = {"name": self.facts.name}
        processes = self.monit.processes()
        if processes:
            state["processes"] = processes
        if args and args[0] == "full":
            state["vitals"] = vitals(self.disk.vcap, self.store_dir(), self.booted_at)
        return state

    # -- apply, prepare, start, stop ------------------------------------------------------------

    def _blobstore(self) -> BlobstoreClient:
        return BlobstoreClient(
            agent_settings.blobstore(self.settings, self.update_settings),
            self.disk.data / "blobs",
            retry_wait=self.options.blob_retry_wait,
        )

    def _fetch(self, ref: dict, what: str) -> Path:
        """A blob the spec names (``blobstore_id`` or ``signed_url``, ``sha1``), digest checked."""
        if not isinstance(ref, dict) or not ref.get("sha1"):
            raise ActionError(f"{what}: no sha1 given")
        blob_id = str(ref.get("blobstore_id") or "")
        sensitive = self.disk.data / "sensitive_blobs" / blob_id
        if re.fullmatch(r"[0-9a-zA-Z-]+", blob_id) and sensitive.is_file():
            return _copy_checked(sensitive, ref["sha1"], self.disk.data / "blobs", what)
        if not ref.get("blobstore_id") and not ref.get("signed_url"):
            raise ActionError(f"{what}: no blobstore_id given")
        try:
            return self._blobstore().get(
                ref.get("blobstore_id"),
                ref["sha1"],
                signed_url=ref.get("signed_url"),
                headers=ref.get("blobstore_headers"),
            )
        except BlobError as exc:
            raise ActionError(f"{what}: {exc}") from None

    def _install_packages(self, packages: dict) -> dict[str, Path]:
        bundles = {}
        for name, pkg in sorted((packages or {}).items()):
            if not isinstance(pkg, dict):
                raise ActionError(f"package '{name}' is not a map")
            bundle = self.disk.package_bundle(name, str(pkg.get("version")), str(pkg.get("sha1")))
            if not bundle.is_dir():
                blob = self._fetch(pkg, f"package '{name}'")
                try:
                    self.disk.unpack(blob, bundle)
                finally:
                    blob.unlink(missing_ok=True)
            bundles[name] = bundle
        return bundles

    def _install_jobs(self, spec: dict) -> dict[str, Path]:
        archive_ref = spec.get("rendered_templates_archive")
        templates = (spec.get("job") or {}).get("templates") or []
        if not archive_ref or not templates:
            return {}
        blob = self._fetch(archive_ref, "rendered templates archive")
        bundles = {}
        try:
            for tmpl in templates:
                name = tmpl.get("name")
                if not name or "/" in name or name.startswith("."):
                    raise ActionError(f"job name {name!r} is not valid")
                bundle = self.disk.job_bundle(name, str(tmpl.get("version")), archive_ref["sha1"])
                self.disk.unpack(blob, bundle, member_prefix=name)
                self.disk.fix_job_modes(bundle)
                bundles[name] = bundle
        finally:
            blob.unlink(missing_ok=True)
        return bundles

    def _check_networks(self, spec: dict) -> None:
        nets = self.settings.get("networks") or {}
        for name in spec.get("networks") or {}:
            if name not in nets:
                raise ActionError(f"Network '{name}' is not found in settings")

    async def m_prepare(self, task, spec):
        if not isinstance(spec, dict):
            raise ActionError("the apply spec must be a map")
        await asyncio.to_thread(self._install_packages, spec.get("packages") or {})
        await asyncio.to_thread(self._install_jobs, spec)
        return "prepared"

    async def m_apply(self, task, spec):
        if not isinstance(spec, dict):
            raise ActionError("the apply spec must be a map")
        self._check_networks(spec)
        if not spec.get("configuration_hash") and not spec.get("rendered_templates_archive"):
            write_json(self.disk.bosh / "spec.json", spec)
            self.disk.write_instance(spec)
            return "applied"
        await asyncio.to_thread(self._full_apply, spec)
        self.monit.reload()
        return "applied"

    def _full_apply(self, spec: dict) -> None:
        for f in self.disk.monit.joinpath("job").glob("*"):
            f.unlink()
        packages = self._install_packages(spec.get("packages") or {})
        jobs = self._install_jobs(spec)
        for name, bundle in jobs.items():
            self.disk.enable_job(name, bundle, packages)
        for name, bundle in packages.items():
            self.disk.enable_package(name, bundle)
        self.disk.keep_only(set(jobs), set(jobs.values()), set(packages), set(packages.values()))
        write_json(self.disk.bosh / "spec.json", spec)
        self.disk.write_instance(spec)

    def _job_names(self) -> list[str]:
        return [t.get("name") for t in (self.spec.get("job") or {}).get("templates") or []]

    async def m_start(self):
        jobs = [j for j in self._job_names() if (self.disk.jobs / j).is_dir()]
        job_dir = self.disk.monit / "job"
        for f in job_dir.glob("*"):
            f.unlink()
        for i, job in enumerate(reversed(jobs)):
            base = self.disk.jobs / job
            if (base / "monit").is_file():
                shutil.copyfile(base / "monit", job_dir / f"{i:04d}_{job}.monitrc")
            for extra in sorted(base.glob("*.monit")):
                shutil.copyfile(extra, job_dir / f"{i:04d}_{job}_{extra.stem}.monitrc")
        try:
            self.monit.reload()
        except MonitFileError as exc:
            raise ActionError(str(exc)) from None
        (self.disk.monit / "stopped").unlink(missing_ok=True)
        for svc in self.monit.vcap_services():
            svc.monitor = 2  # starting, until its pid is seen
        self._spawn(self.monit.start_all())
        return "started"

    async def m_stop(self, task):
        await self.monit.stop_all()
        (self.disk.monit / "stopped").write_text("")
        return "stopped"

    # -- scripts -------------------------------------------------------------------------------

    def _run(
        self,
        task: AgentTask | None,
        argv: list[str],
        *,
        env: dict | None = None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd: str = "/",
    ) -> tuple[int, bytes, bytes]:
        """Run a program in the VM's sandbox to its end; (exit code, stdout, stderr).
        Death by signal is 128 + the signal, as the agent reports it."""
        proc = subprocess.Popen(
            sandbox.wrap(self.disk.vcap, argv, store=self.store_dir(), cwd=cwd),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=sandbox.vm_env(self.marker, env),
            start_new_session=True,
        )
        if task is not None:
            task.procs.append(proc)
        try:
            out, err = proc.communicate()
        finally:
            if task is not None:
                task.procs.remove(proc)
        rc = proc.returncode
        return (128 - rc if rc < 0 else rc), out or b"", err or b""

    async def m_run_script(self, task, name, options=None):
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ActionError(f"script name {name!r} is not valid")
        env = {str(k): str(v) for k, v in ((options or {}).get("env") or {}).items()}
        jobs = [j for j in self._job_names() if (self.disk.jobs / j / "bin" / name).is_file()]
        if not jobs:
            return {}

        def run_one(job):
            logdir = self.disk.data / "sys" / "log" / job
            logdir.mkdir(parents=True, exist_ok=True)
            with (
                open(logdir / f"{name}.stdout.log", "ab") as out,
                open(logdir / f"{name}.stderr.log", "ab") as err,
            ):
                rc, _, _ = self._run(
                    task,
                    ["nice", "-n", "5", f"/var/vcap/jobs/{job}/bin/{name}"],
                    env=env,
                    stdout=out,
                    stderr=err,
                )
            return rc

        codes = await asyncio.gather(*(asyncio.to_thread(run_one, j) for j in jobs))
        failed = [j for j, rc in zip(jobs, codes, strict=True) if rc != 0]
        if failed:
            ok = [j for j in jobs if j not in failed]
            raise ActionError(
                f"{len(failed)} of {len(jobs)} {name} scripts failed. "
                f"Failed Jobs: {', '.join(failed)}. Successful Jobs: {', '.join(ok)}."
            )
        return {}

    async def m_drain(self, task, drain_type, new_spec=None, *rest):
        """BOSH's drain (bosh-agent.md §2.4): ``update`` (with the new spec) or ``shutdown``
        (announced on ``hm.agent.shutdown.<id>`` first); every job's ``bin/drain`` runs in
        parallel with the change arguments and the job states in its environment, and a
        negative answer is dynamic drain: sleep |n|, ask again with ``job_check_status``."""
        if drain_type == "status":  # the director's old dynamic drain; the agent does it now
            raise ActionError("Unexpected call with drain type 'status'")
        if drain_type not in ("update", "shutdown"):
            raise ActionError(f"Unknown drain type {drain_type!r} (update or shutdown)")
        new = new_spec if isinstance(new_spec, dict) else None
        if drain_type == "update" and new is None:
            raise ActionError("Drain update requires new spec")
        if drain_type == "shutdown":
            await self.publish(f"hm.agent.shutdown.{self.agent_id}", None)
        await self.monit.unmonitor_all()
        old = self.spec
        jobs = [j for j in self._job_names() if (self.disk.jobs / j / "bin" / "drain").is_file()]
        if not jobs:
            return 0
        first = _drain_params(old, new, drain_type)
        status = ["job_check_status", "hash_unchanged"]
        state = {"BOSH_JOB_STATE": _job_state(old)}
        if new is not None:
            state["BOSH_JOB_NEXT_STATE"] = _job_state(new)

        def drain_one(job):
            args, env = first, state
            while True:
                rc, out, err = self._run(task, [f"/var/vcap/jobs/{job}/bin/drain", *args], env=env)
                if task.cancelled:
                    raise ActionError(f"drain of {job} was cancelled")
                text = out.decode(errors="replace").strip()
                if not re.fullmatch(r"[+-]?[0-9]+", text):
                    raise ActionError(
                        f"Running drain script of {job}: it did not return a signed integer "
                        f"(exit {rc}): stdout {text[-200:]!r} "
                        f"stderr {err.decode(errors='replace')[-500:]!r}"
                    )
                value = int(text)
                time.sleep(abs(value))
                if value >= 0:
                    return
                # dynamic drain: ask again, about the current state only
                args, env = status, {"BOSH_JOB_STATE": state["BOSH_JOB_STATE"]}

        await asyncio.gather(*(asyncio.to_thread(drain_one, j) for j in jobs))
        return 0

    async def m_run_errand(self, task, name=None, *rest):
        job = name or (self.spec.get("job") or {}).get("template")
        script = self.disk.jobs / str(job) / "bin" / "run" if job else None
        if not job or "/" in str(job) or not script.is_file():
            raise ActionError(f"Could not find errand {job}")
        rc, out, err = await asyncio.to_thread(
            self._run, task, [f"/var/vcap/jobs/{job}/bin/run"], cwd=f"/var/vcap/jobs/{job}"
        )
        return {
            "stdout": out.decode(errors="replace"),
            "stderr": err.decode(errors="replace"),
            "exit_code": rc,
        }

    # -- compilation ---------------------------------------------------------------------------

    async def m_compile_package(self, task, blob_id, digest, name, version, deps=None):
        return await asyncio.to_thread(
            self._compile,
            task,
            {"blobstore_id": blob_id, "sha1": digest},
            name,
            version,
            deps or {},
            None,
        )

    async def m_compile_package_with_signed_url(self, task, args):
        if not isinstance(args, dict):
            raise ActionError("compile_package_with_signed_url takes a map")
        ref = {
            "signed_url": args.get("package_get_signed_url"),
            "sha1": args.get("digest"),
            "blobstore_headers": args.get("blobstore_headers"),
        }
        return await asyncio.to_thread(
            self._compile,
            task,
            ref,
            args.get("name"),
            args.get("version"),
            args.get("deps") or {},
            {"url": args.get("upload_signed_url"), "headers": args.get("blobstore_headers")},
        )

    def _compile(self, task, source: dict, name, version, deps: dict, upload: dict | None):
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
            raise ActionError(f"package name {name!r} is not valid")
        if not isinstance(deps, dict):
            raise ActionError("deps must be a map of package name to package")
        self.disk.uninstall_packages()
        try:
            for dep_name, dep in sorted(deps.items()):
                dep = dict(dep or {})
                if "package_get_signed_url" in dep:
                    dep["signed_url"] = dep["package_get_signed_url"]
                bundles = self._install_packages({dep_name: dep})
                self.disk.enable_package(dep_name, bundles[dep_name])
            blob = self._fetch(source, f"source package '{name}'")
            compile_dir = self.disk.data / "compile" / name
            try:
                self.disk.unpack(blob, compile_dir)
            finally:
                blob.unlink(missing_ok=True)
            install = self.disk.data / "packages" / name / version_hash(str(version))
            shutil.rmtree(install, ignore_errors=True)
            install.mkdir(parents=True)
            link(install, self.disk.packages / name)
            if (compile_dir / "packaging").is_file():
                logdir = self.disk.data / "sys" / "log" / "compilation"
                logdir.mkdir(parents=True, exist_ok=True)
                env = {
                    "BOSH_COMPILE_TARGET": f"/var/vcap/data/compile/{name}",
                    "BOSH_INSTALL_TARGET": f"/var/vcap/packages/{name}",
                    "BOSH_PACKAGE_NAME": name,
                    "BOSH_PACKAGE_VERSION": str(version),
                }
                with (
                    open(logdir / "packaging.stdout.log", "wb") as out,
                    open(logdir / "packaging.stderr.log", "wb") as err,
                ):
                    rc, _, _ = self._run(
                        task,
                        ["bash", "-x", "packaging"],
                        env=env,
                        stdout=out,
                        stderr=err,
                        cwd=f"/var/vcap/data/compile/{name}",
                    )
                if rc != 0:
                    tail_out = _tail(logdir / "packaging.stdout.log")
                    tail_err = _tail(logdir / "packaging.stderr.log")
                    raise ActionError(
                        f"Compiling package {name}: Running packaging script: Command exited with "
                        f"{rc}; Truncated stdout: {tail_out}, Truncated stderr: {tail_err}"
                    )
            fd, tgz_name = tempfile.mkstemp(dir=self.disk.data / "tmp", suffix=".tgz")
            tgz = Path(tgz_name)
            try:
                with open(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w:gz") as tar:
                    tar.add(install, arcname=".")
                try:
                    blob_id, digests = self._blobstore().put(
                        tgz,
                        signed_url=(upload or {}).get("url"),
                        headers=(upload or {}).get("headers"),
                    )
                except BlobError as exc:
                    raise ActionError(f"Compiling package {name}: {exc}") from None
            finally:
                tgz.unlink(missing_ok=True)
        finally:
            shutil.rmtree(self.disk.data / "compile" / name, ignore_errors=True)
            self.disk.uninstall_packages()
        if upload is not None:
            return {"result": {"sha1": f"{digests['sha1']};sha512:{digests['sha512']}"}}
        return {"result": {"blobstore_id": blob_id, "sha1": digests["sha1"]}}

    # -- logs and blobs ------------------------------------------------------------------------

    async def m_fetch_logs(self, task, log_type="job", filters=None):
        return await asyncio.to_thread(self._fetch_logs, log_type, filters, None)

    async def m_fetch_logs_with_signed_url(self, task, args):
        if not isinstance(args, dict):
            raise ActionError("fetch_logs_with_signed_url takes a map")
        upload = {"url": args.get("signed_url"), "headers": args.get("blobstore_headers")}
        return await asyncio.to_thread(
            self._fetch_logs, args.get("log_type") or "job", args.get("filters"), upload
        )

    def _fetch_logs(self, log_type, filters, upload):
        dirs = {"job": self.disk.data / "sys" / "log", "agent": self.disk.bosh / "log"}
        types = [t.strip() for t in str(log_type or "job").split(",") if t.strip()]
        for t in types:
            if t not in (*dirs, "system"):
                raise ActionError(f"Invalid log type '{t}'")
        patterns = [_glob_regex(f) for f in (filters or ["**/*"])]
        fd, tgz_name = tempfile.mkstemp(dir=self.disk.data / "tmp", suffix=".tgz")
        tgz = Path(tgz_name)
        try:
            with open(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w:gz") as tar:
                for t in types:
                    base = dirs.get(t)
                    if base is None or not base.is_dir():
                        continue
                    for path in sorted(base.rglob("*")):
                        rel = path.relative_to(base).as_posix()
                        if path.is_file() and not path.is_symlink():
                            if any(p.fullmatch(rel) for p in patterns):
                                tar.add(path, arcname=f"./{rel}")
            try:
                blob_id, digests = self._blobstore().put(
                    tgz, signed_url=(upload or {}).get("url"), headers=(upload or {}).get("headers")
                )
            except BlobError as exc:
                raise ActionError(f"Fetching logs: {exc}") from None
        finally:
            tgz.unlink(missing_ok=True)
        if upload is not None:
            return {"sha1": f"{digests['sha1']};sha512:{digests['sha512']}"}
        return {"blobstore_id": blob_id, "sha1": digests["sha1"]}

    async def m_upload_blob(self, task, args):
        if not isinstance(args, dict):
            raise ActionError("upload_blob takes a map")
        blob_id = str(args.get("blob_id") or "")
        if not re.fullmatch(r"[0-9a-zA-Z-]+", blob_id):
            raise ActionError(f"blob id {blob_id!r} is not valid")
        try:
            payload = base64.b64decode(args.get("payload") or "", validate=True)
        except ValueError:
            raise ActionError("payload is not base64") from None
        algo, want = next(iter(parse_digest(str(args.get("checksum"))).items()))
        if hashlib.new(algo, payload).hexdigest() != want:
            raise ActionError(f"Payload corrupted. Checksum mismatch for blob {blob_id}")
        path = self.disk.data / "sensitive_blobs" / blob_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        return blob_id

    # -- persistent disks ------------------------------------------------------------------------

    def _mounts(self) -> dict:
        return read_json(self.disk.bosh / "mounts.json", {}) or {}

    def store_dir(self) -> Path | None:
        mounted = self._mounts().get("store")
        return disk_dir(self.options.data_dir, mounted["disk"]) if mounted else None

    def _forget_detached_disks(self) -> None:
        """At boot the last disk is mounted again only if the VM still has it attached."""
        mounts = self._mounts()
        kept = {p: m for p, m in mounts.items() if m.get("disk") in self.facts.disks}
        if kept != mounts:
            write_json(self.disk.bosh / "mounts.json", kept)

    def _disk_file(self, cid: str) -> str:
        """The VMDK this VM has attached for ``cid``, as vCenter says now."""
        for facts in (self.facts, self.refresh()):
            if facts is None:
                continue
            self.facts = facts
            for stem in facts.disks:
                if stem == cid or stem.endswith(cid):
                    return stem
        raise ActionError(f"Persistent disk with volume id '{cid}' could not be found")

    async def m_add_persistent_disk(self, task, cid, hint=None):
        hints = read_json(self.disk.bosh / "persistent_disk_hints.json", {}) or {}
        hints[str(cid)] = hint
        write_json(self.disk.bosh / "persistent_disk_hints.json", hints)
        return {}

    async def m_remove_persistent_disk(self, task, cid):
        hints = read_json(self.disk.bosh / "persistent_disk_hints.json", {}) or {}
        hints.pop(str(cid), None)
        write_json(self.disk.bosh / "persistent_disk_hints.json", hints)
        return {}

    async def m_mount_disk(self, task, cid, *rest):
        stem = await asyncio.to_thread(self._disk_file, str(cid))
        mounts = self._mounts()
        if any(m.get("disk") == stem for m in mounts.values()):
            return {}
        point = "store" if "store" not in mounts else "store_migration_target"
        disk_dir(self.options.data_dir, stem).mkdir(parents=True, exist_ok=True)
        mounts[point] = {"cid": str(cid), "disk": stem}
        write_json(self.disk.bosh / "mounts.json", mounts)
        return {}

    async def m_unmount_disk(self, task, cid):
        mounts = self._mounts()
        for point, m in list(mounts.items()):
            if m.get("cid") == cid:
                del mounts[point]
                write_json(self.disk.bosh / "mounts.json", mounts)
                return {"message": f"Unmounted partition of {cid}"}
        return {"message": f"Partition of {cid} is not mounted"}

    async def m_list_disk(self, task, *rest):
        return [m["cid"] for m in self._mounts().values()]

    async def m_migrate_disk(self, task, *rest):
        mounts = self._mounts()
        old, new = mounts.get("store"), mounts.get("store_migration_target")
        if old and new:
            src = disk_dir(self.options.data_dir, old["disk"])
            dst = disk_dir(self.options.data_dir, new["disk"])
            await asyncio.to_thread(shutil.copytree, src, dst, symlinks=True, dirs_exist_ok=True)
            mounts = {"store": new}
            write_json(self.disk.bosh / "mounts.json", mounts)
        return None

    # -- settings -------------------------------------------------------------------------------

    async def m_update_settings(self, task, new):
        if not isinstance(new, dict):
            raise ActionError("update_settings takes a map")
        old = self.update_settings
        for assoc in new.get("disk_associations") or []:
            if isinstance(assoc, dict) and assoc.get("name"):
                (self.disk.instance / "disks").mkdir(parents=True, exist_ok=True)
                (self.disk.instance / "disks" / str(assoc["name"])).write_text(
                    str(assoc.get("cid"))
                )
        write_json(self.disk.bosh / "update_settings.json", new)
        changed = (new.get("mbus") and new.get("mbus") != old.get("mbus")) or (
            new.get("blobstores") and new.get("blobstores") != old.get("blobstores")
        )
        if changed:
            self._spawn(self.reconnect())
        return "ok"


class _TaskFailed(ActionError):
    pass


def _fit_arguments(handler, args: list, skip: int) -> list:
    """BOSH's positional arguments: too few is an error naming the counts, extra ones are
    dropped (unless the method takes a variadic tail)."""
    params = list(inspect.signature(handler).parameters.values())[skip:]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if len(args) < len(required):
        raise ActionError(f"Not enough arguments, expected {len(required)}, got {len(args)}")
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return list(args)
    return list(args[: len(positional)])


def _tail(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-TAIL:].decode(errors="replace")


def _job_state(spec: dict) -> str:
    """``BOSH_JOB_STATE``/``BOSH_JOB_NEXT_STATE``: the part of an apply spec a drain script
    sees, as compact JSON (``{"persistent_disk":1024}``)."""
    return json.dumps(
        {"persistent_disk": int(spec.get("persistent_disk") or 0)}, separators=(",", ":")
    )


def _drain_params(old: dict, new: dict | None, drain_type: str) -> list[str]:
    """A drain script's arguments: the job change, the configuration hash change, then the
    sorted names of the packages that are new or changed. A shutdown is
    ``job_shutdown hash_unchanged`` whatever spec comes with it; an update is ``job_new``
    for a VM that had no jobs yet and ``job_changed`` otherwise, as bosh-agent says."""
    if drain_type == "shutdown" or new is None:
        return ["job_shutdown", "hash_unchanged"]
    job_change = "job_changed" if (old.get("job") or {}).get("templates") else "job_new"
    old_hash = old.get("configuration_hash")
    if not old_hash:
        hash_change = "hash_new"
    elif old_hash == new.get("configuration_hash"):
        hash_change = "hash_unchanged"
    else:
        hash_change = "hash_changed"
    old_pkgs = old.get("packages") or {}
    changed = sorted(
        name
        for name, pkg in (new.get("packages") or {}).items()
        if name not in old_pkgs or (old_pkgs[name] or {}).get("sha1") != (pkg or {}).get("sha1")
    )
    return [job_change, hash_change, *changed]


def _glob_regex(pattern: str) -> re.Pattern:
    """A doublestar glob: ``**/`` any directories, ``*`` and ``?`` within one name."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _copy_checked(src: Path, digest: str, scratch: Path, what: str) -> Path:
    from .blobs import file_digests, strongest

    algo, want = strongest(parse_digest(digest))
    scratch.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=scratch)
    with open(fd, "wb") as out, open(src, "rb") as fh:
        shutil.copyfileobj(fh, out)
    got = file_digests(Path(name), (algo,))[algo]
    if got != want:
        Path(name).unlink(missing_ok=True)
        raise ActionError(f"{what}: expected {algo} digest {want}, got {got}")
    return Path(name)
