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

The methods come in families, one module each: ``jobs`` (prepare, apply,
start, stop, run_script, run_errand), ``drain``, ``compiling``
(compile_package, upload_blob), ``logs`` (fetch_logs) and ``disks`` (the
persistent disk, a directory tied to the disk's file in vCenter); ``actions``
holds what they share. This module keeps the VM's life cycle, the bus, the
envelope and task queue, and the small methods (ping, get_state,
update_settings...).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import signal
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats

from . import sandbox
from . import settings as agent_settings
from .actions import ActionError, AgentTask, disk_dir
from .blobs import BlobError
from .compiling import CompileMethods
from .disks import DiskMethods
from .drain import DrainMethods
from .jobs import JobMethods
from .layout import LayoutError, VmDisk, read_json, write_json
from .logs import LogMethods
from .monit import Monit, MonitFileError
from .vitals import vitals

log = logging.getLogger(__name__)

MAX_REPLY = 1024 * 1024
CANCEL_GRACE = 10.0

__all__ = ["ActionError", "AgentTask", "Options", "VmAgent", "VmFacts", "disk_dir", "vm_root"]


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


def vm_root(data_dir: Path, vm_name: str) -> Path:
    return Path(data_dir) / "vms" / vm_name


class VmAgent(JobMethods, DrainMethods, CompileMethods, LogMethods, DiskMethods):
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
