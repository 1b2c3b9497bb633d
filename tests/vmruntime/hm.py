"""What the health monitor hears: a test-side NATS subscriber with the HM's certificate."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import nats


class HmListener:
    """Records ``hm.agent.{heartbeat,alert,shutdown}.*`` messages as (time, subject, payload)."""

    def __init__(self, url: str, pki):
        from director.agents.mbus import tls_context

        pki.ensure()
        self.messages: list[tuple[float, str, object]] = []
        self._tls = tls_context(pki.ca_file, pki.health_monitor.cert, pki.health_monitor.key)
        self._url = url
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("the HM listener could not connect")

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._connect())
        self._ready.set()
        self._loop.run_forever()

    async def _connect(self):
        self.nc = await nats.connect(servers=[self._url], tls=self._tls, name="test-hm")

        async def on_msg(msg):
            self.messages.append((time.time(), msg.subject, json.loads(msg.data or b"null")))

        for kind in ("heartbeat", "alert", "shutdown"):
            await self.nc.subscribe(f"hm.agent.{kind}.*", cb=on_msg)

    def of(self, kind: str, agent_id: str, since: float = 0.0) -> list[tuple[float, object]]:
        subject = f"hm.agent.{kind}.{agent_id}"
        return [(t, p) for t, s, p in list(self.messages) if s == subject and t >= since]

    def close(self):
        asyncio.run_coroutine_threadsafe(self.nc.close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
