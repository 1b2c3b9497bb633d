"""The agent listener: records heartbeats and alerts, and keeps nats-server's agent users current.

One long-running process (``manage.py agent_listener``, a part of
``runstack``), connected to the bus as the health monitor
(``default.hm.bosh-internal``), subscribed to BOSH's subjects:

``hm.agent.heartbeat.<agent_id>``  -> ``AgentHeartbeat`` (last seen, job_state,
                                      processes, vitals ...), upserted
``hm.agent.alert.<agent_id>``      -> an ``AgentAlert`` row
``hm.agent.shutdown.<agent_id>``   -> ``AgentHeartbeat.shutdown_at``

The agent id is the subject's 4th token, as BOSH's health monitor takes it;
nats-server lets an agent publish only under its own id, so a VM cannot
write another's record. A payload that is not what an agent sends (not a
JSON object, wrong types) is logged and dropped, never half-written.

Why a process of its own rather than a thread of the web server or the
worker: gunicorn and Celery fork and restart workers at will, and each would
then hold a subscription and write every heartbeat once per worker; one
supervised process subscribes once, and runstack restarts it if it dies.

It also plays bosh-nats-sync: every ``sync_interval`` seconds it makes the
agent users of nats-server (``nats_auth.sync_agents``) the agent ids of the
director's VMs (a VM deleted loses its access).

The asyncio loop owns the NATS connection; database writes run in one
thread of their own (Django's ORM is synchronous), in arrival order.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import logging
from typing import Any

import nats
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from ..models import AgentAlert, AgentHeartbeat, Vm
from . import nats_auth
from .certs import SERVER_CN, MbusPki
from .mbus import tls_context

log = logging.getLogger(__name__)

SUBJECTS = ("hm.agent.heartbeat.*", "hm.agent.alert.*", "hm.agent.shutdown.*")


class BadMessage(ValueError):
    """A message that is not what a BOSH agent publishes."""


# -- recording (synchronous, one message at a time) --------------------------------------


def record(subject: str, data: bytes) -> None:
    """Record one message from ``hm.agent.<kind>.<agent_id>``; BadMessage if it is not valid."""
    parts = subject.split(".")
    if len(parts) != 4 or parts[:2] != ["hm", "agent"]:
        raise BadMessage(f"unexpected subject {subject!r}")
    kind, agent_id = parts[2], parts[3]
    if not agent_id or len(agent_id) > 64:
        raise BadMessage(f"{subject}: bad agent id")
    try:
        payload = json.loads(data) if data else None
    except ValueError as exc:
        raise BadMessage(f"{subject}: not JSON ({exc})") from None
    if kind == "heartbeat":
        record_heartbeat(agent_id, payload)
    elif kind == "alert":
        record_alert(agent_id, payload)
    elif kind == "shutdown":
        AgentHeartbeat.objects.update_or_create(
            agent_id=agent_id, defaults={"shutdown_at": timezone.now()}
        )
    else:
        raise BadMessage(f"{subject}: unknown kind {kind!r}")


def _field(payload: dict, key: str, kinds: tuple, default: Any, where: str) -> Any:
    value = payload.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
        raise BadMessage(f"{where}: {key} is {type(value).__name__}, not {kinds[0].__name__}")
    return value


def record_heartbeat(agent_id: str, payload: Any) -> AgentHeartbeat:
    where = f"heartbeat of agent {agent_id}"
    if not isinstance(payload, dict):
        raise BadMessage(f"{where}: not a JSON object")
    values = {
        "last_heartbeat_at": timezone.now(),
        "deployment": str(_field(payload, "deployment", (str,), "", where))[:255],
        "job": str(_field(payload, "job", (str,), "", where))[:255],
        "index": _field(payload, "index", (int,), None, where),
        "instance_id": str(_field(payload, "node_id", (str,), "", where))[:64],
        "job_state": str(_field(payload, "job_state", (str,), "", where))[:32],
        "number_of_processes": _field(payload, "number_of_processes", (int,), None, where),
        "vitals": _field(payload, "vitals", (dict,), {}, where),
        "shutdown_at": None,
    }
    processes = _field(payload, "processes", (list,), None, where)
    if processes is not None:
        values["processes"] = processes
    heartbeat, _ = AgentHeartbeat.objects.update_or_create(agent_id=agent_id, defaults=values)
    return heartbeat


def record_alert(agent_id: str, payload: Any) -> AgentAlert:
    where = f"alert of agent {agent_id}"
    if not isinstance(payload, dict):
        raise BadMessage(f"{where}: not a JSON object")
    created = _field(payload, "created_at", (int, float), None, where)
    with transaction.atomic():
        alert = AgentAlert.objects.create(
            agent_id=agent_id,
            alert_id=str(_field(payload, "id", (str, int), "", where))[:255],
            severity=_field(payload, "severity", (int,), None, where),
            title=str(_field(payload, "title", (str,), "", where))[:4096],
            summary=str(_field(payload, "summary", (str,), "", where))[:65536],
            created_at=dt.datetime.fromtimestamp(created, dt.UTC) if created is not None else None,
        )
        stale = AgentAlert.objects.filter(agent_id=agent_id).order_by("-id")[
            AgentAlert.KEEP_PER_AGENT : AgentAlert.KEEP_PER_AGENT + 1
        ]
        oldest_kept = stale.values_list("id", flat=True).first()
        if oldest_kept is not None:
            AgentAlert.objects.filter(agent_id=agent_id, id__lte=oldest_kept).delete()
    return alert


def sync_nats_users(directory) -> bool:
    """bosh-nats-sync: the agent users are the director's VMs' agents (and recent ones)."""
    return nats_auth.sync_agents(directory, Vm.objects.values_list("agent_id", flat=True))


def _close_connection() -> None:
    connection.close()  # the calling thread's own connection


# -- the loop ------------------------------------------------------------------------------


class AgentListener:
    """Subscribes as the health monitor and records what arrives (see the module docstring)."""

    def __init__(
        self, url: str, pki: MbusPki, *, nats_dir=None, sync_interval: float = 5.0
    ) -> None:
        self.url = url
        self.pki = pki
        self.nats_dir = nats_dir
        self.sync_interval = sync_interval
        self._db = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="agent-listener-db")
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        nc = None
        while nc is None and not self._stop.is_set():
            try:
                nc = await nats.connect(
                    self.url,
                    name="health-monitor",
                    tls=tls_context(
                        self.pki.ca_file, self.pki.health_monitor.cert, self.pki.health_monitor.key
                    ),
                    tls_hostname=SERVER_CN,
                    connect_timeout=5,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,  # a service: wait for the bus forever
                    reconnect_time_wait=2,
                    error_cb=self._on_error,
                )
            except Exception as exc:
                log.warning("agent listener: cannot connect to %s yet: %s", self.url, exc)
                await asyncio.sleep(2)
        if nc is None:
            return
        try:
            for subject in SUBJECTS:
                await nc.subscribe(subject, cb=self._on_message)
            await nc.flush(5)
            log.info("agent listener: subscribed to %s on %s", ", ".join(SUBJECTS), self.url)
            self.ready.set()
            while not self._stop.is_set():
                if self.nats_dir is not None:
                    await self._in_db(sync_nats_users, self.nats_dir)
                try:
                    await asyncio.wait_for(self._stop.wait(), self.sync_interval)
                except TimeoutError:
                    pass
        finally:
            await nc.close()
            await self._in_db(_close_connection)
            self._db.shutdown(wait=True)

    async def _on_error(self, exc) -> None:
        log.warning("agent listener: message bus %s: %s", self.url, exc or type(exc).__name__)

    async def _on_message(self, msg) -> None:
        try:
            await self._in_db(record, msg.subject, msg.data)
        except BadMessage as exc:
            log.warning("agent listener: dropped a message: %s", exc)
        except Exception:
            log.exception("agent listener: recording %s failed", msg.subject)

    async def _in_db(self, fn, *args):
        def call():
            close_old_connections()  # a long-lived thread: reconnect after a database restart
            return fn(*args)

        return await asyncio.get_running_loop().run_in_executor(self._db, call)
