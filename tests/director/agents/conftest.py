"""A fake BOSH agent for the client's tests: a small nats-py responder on ``agent.<id>``.

It connects to the test's real nats-server with its own bootstrap
certificate (as a VM would), answers with BOSH's envelopes, and records every
request it got. Behaviour per method is set by the test:

* ``ping`` -> ``"pong"``; ``get_state`` -> ``self.state`` (+ vitals when full,
  and ``job_states`` consumed one per call when given);
* ``apply``/``prepare``/``run_errand``/``drain`` -> a task that stays
  ``running`` for ``task_polls`` ``get_task`` calls, then ends with
  ``self.results[method]`` (or fails with ``self.task_errors[method]``);
  ``cancel_task`` ends it with ``self.cancelled_results[method]``;
* ``self.exceptions[method]`` -> ``{"exception": {"message": ...}}`` at once;
* ``self.silent`` methods -> no reply at all.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import uuid
from pathlib import Path

import pytest

ASYNC_METHODS = {
    "apply",
    "prepare",
    "run_errand",
    "drain",
    "stop",
    "run_script",
    "compile_package",
}


def agent_tls(pki, agent_id: str, directory: Path, *, bootstrap: bool = True) -> ssl.SSLContext:
    creds = pki.issue_agent(agent_id, bootstrap=bootstrap)
    cert, key = directory / f"{agent_id}.pem", directory / f"{agent_id}.key"
    cert.write_text(creds.certificate)
    key.write_text(creds.private_key)
    key.chmod(0o600)
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    context.load_cert_chain(str(cert), str(key))
    return context


class FakeAgent:
    def __init__(self, url: str, agent_id: str, tls: ssl.SSLContext):
        self.url = url
        self.agent_id = agent_id
        self.tls = tls
        self.requests: list[dict] = []
        self.state = {"agent_id": agent_id, "job_state": "running", "processes": []}
        self.job_states: list[str] = []
        self.vitals = {"cpu": {"user": "1.0", "sys": "0.5", "wait": "0.0"}, "load": ["0.1"] * 3}
        self.task_polls = 2
        self.results: dict[str, object] = {"apply": "applied", "prepare": "prepared"}
        self.task_errors: dict[str, str] = {}
        self.cancelled_results: dict[str, object] = {}
        self.exceptions: dict[str, str] = {}
        self.silent: set[str] = set()
        self.tasks: dict[str, dict] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.nc = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeAgent:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._connect(), self.loop).result(10)
        return self

    def stop(self) -> None:
        if self.nc is not None:
            asyncio.run_coroutine_threadsafe(self.nc.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def publish(self, subject: str, payload) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()

        async def send():
            await self.nc.publish(subject, data)
            await self.nc.flush(5)

        asyncio.run_coroutine_threadsafe(send(), self.loop).result(10)

    def methods(self) -> list[str]:
        return [r["method"] for r in self.requests]

    # -- the agent -------------------------------------------------------------------

    async def _connect(self):
        import nats

        self.nc = await nats.connect(
            self.url,
            tls=self.tls,
            tls_hostname="default.nats.bosh-internal",
            allow_reconnect=False,
            connect_timeout=5,
        )
        await self.nc.subscribe(f"agent.{self.agent_id}", cb=self._on_request)
        await self.nc.flush(5)

    async def _on_request(self, msg):
        request = json.loads(msg.data)
        self.requests.append(request)
        method, args = request["method"], request["arguments"]
        if method in self.silent:
            return
        reply = self._answer(method, args)
        await self.nc.publish(request["reply_to"], json.dumps(reply).encode())

    def _answer(self, method: str, args: list) -> dict:
        if method in self.exceptions:
            return {"exception": {"message": self.exceptions[method]}}
        if method == "ping":
            return {"value": "pong"}
        if method == "get_state":
            state = dict(self.state)
            if self.job_states:
                state["job_state"] = self.job_states.pop(0)
            if args == ["full"]:
                state["vitals"] = self.vitals
            return {"value": state}
        if method == "get_task":
            task = self.tasks.get(args[0])
            if task is None:
                return {"exception": {"message": f"Task with id {args[0]} could not be found"}}
            if task["polls"] > 0:
                task["polls"] -= 1
                return {"value": {"agent_task_id": args[0], "state": "running"}}
            if task["error"]:
                return {"exception": {"message": f"Task {args[0]} result: {task['error']}"}}
            return {"value": task["result"]}
        if method == "cancel_task":
            task = self.tasks[args[0]]
            task["polls"] = 0
            task["result"] = self.cancelled_results.get(task["method"], task["result"])
            if task["method"] not in self.cancelled_results:
                task["error"] = "task canceled"
            return {"value": "canceled"}
        if method in ASYNC_METHODS:
            task_id = str(uuid.uuid4())
            self.tasks[task_id] = {
                "method": method,
                "polls": self.task_polls,
                "result": self.results.get(method, {}),
                "error": self.task_errors.get(method),
            }
            return {"value": {"agent_task_id": task_id, "state": "running"}}
        if method == "start":
            return {"value": "started"}
        return {"exception": {"message": f"unknown message {method}"}}


@pytest.fixture
def agent_factory(nats_server, tmp_path):
    """``agent_factory(agent_id=None, allow=True, bootstrap=True)``: a started FakeAgent."""
    started = []

    def make(agent_id=None, *, allow=True, bootstrap=True):
        agent_id = agent_id or str(uuid.uuid4())
        if allow:
            nats_server.allow_agents([agent_id])
        tls = agent_tls(nats_server.pki, agent_id, tmp_path, bootstrap=bootstrap)
        agent = FakeAgent(nats_server.url, agent_id, tls)
        started.append(agent)
        return agent.start()

    try:
        yield make
    finally:
        for agent in started:
            agent.stop()


@pytest.fixture
def fake_agent(agent_factory):
    """A started fake agent with a new id, allowed on the bus; stopped after the test."""
    return agent_factory()


@pytest.fixture
def agent_tls_for(nats_server, tmp_path):
    """``agent_tls_for(agent_id, bootstrap=True)``: a TLS context with that agent's certificate."""
    return lambda agent_id, bootstrap=True: agent_tls(
        nats_server.pki, agent_id, tmp_path, bootstrap=bootstrap
    )


@pytest.fixture(scope="session")
def mbus(nats_server):
    """The director's connection (one per session, as one per worker process)."""
    connection = nats_server.director_mbus()
    try:
        yield connection
    finally:
        connection.close()
