"""The director's connection to the message bus, usable from plain threads.

Design: **one NATS connection per process, owned by one asyncio event loop
running in a daemon thread** (``agents-mbus``). The director's executor runs
stages and steps in threads of a Celery worker process, with no event loop of
its own; nats-py is asyncio-only. So every call made from a worker thread
(``Mbus.request``) hands a coroutine to the loop thread
(``run_coroutine_threadsafe``) and blocks on a ``concurrent.futures.Future``
with a timeout, which many threads may do at once over the one connection.

Replies come back as BOSH's do: the director subscribes once to
``director.<process_uuid>.>`` and each request carries ``reply_to =
director.<process_uuid>.<agent_id>.<request_uuid>``; the last token routes
the reply to the waiting future. A late reply (after its timeout) finds no
future and is dropped.

Fork-safety: Celery's prefork pool forks after import. The loop thread of a
parent does not exist in a child, so the connection is made lazily on first
use and remade when the pid changed. A connection closed for good (nats-py
gives up after ``max_reconnect_attempts``, BOSH uses 4 reconnects 2 s apart)
is remade on the next request; ``MbusUnavailable`` says why when it cannot be.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import ssl
import threading
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings

from .certs import SERVER_CN, MbusPki
from .errors import MbusUnavailable

log = logging.getLogger(__name__)

PROTOCOL = 3


def tls_context(ca_file: Path, cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """TLS 1.2+ client context trusting only the director's CA, presenting our certificate."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    return context


class Mbus:
    """A NATS connection in a loop thread of its own (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        ca_file: Path,
        cert_file: Path,
        key_file: Path,
        name: str = "director",
        connect_timeout: float = 5.0,
    ):
        if not url:
            raise MbusUnavailable(
                "no message bus: OPSCONSOLE_NATS_URL is not set (`make run` starts nats-server)"
            )
        self.url = url
        self.name = name
        self.connect_timeout = connect_timeout
        self._files = (Path(ca_file), Path(cert_file), Path(key_file))
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: Any = None
        self._pending: dict[str, concurrent.futures.Future] = {}
        self.process_uuid = str(uuid.uuid4())

    @classmethod
    def for_director(cls, url: str, pki: MbusPki, **kwargs) -> Mbus:
        return cls(
            url,
            ca_file=pki.ca_file,
            cert_file=pki.director.cert,
            key_file=pki.director.key,
            **kwargs,
        )

    # -- requests (any thread) -------------------------------------------------------

    def request(self, agent_id: str, method: str, arguments: list, timeout: float) -> Any:
        """Send BOSH's envelope to ``agent.<agent_id>``; the decoded reply, or TimeoutError."""
        self._ensure_connected()
        request_id = str(uuid.uuid4())
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._pending[request_id] = future
        try:
            self._publish(agent_id, method, arguments, request_id)
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"no reply within {timeout:g} s") from None
        finally:
            self._pending.pop(request_id, None)

    def send(self, agent_id: str, method: str, arguments: list) -> None:
        """Fire and forget (BOSH's ``shutdown``): published, no reply awaited."""
        self._ensure_connected()
        self._publish(agent_id, method, arguments, str(uuid.uuid4()))

    def reply_subject(self, agent_id: str, request_id: str) -> str:
        return f"director.{self.process_uuid}.{agent_id}.{request_id}"

    def close(self) -> None:
        with self._lock:
            if self._loop is not None and self._pid == os.getpid():
                if self._nc is not None:
                    try:
                        self._run(self._nc.close(), 5)
                    except Exception:  # closing a broken connection: nothing to save
                        pass
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(5)
            self._loop = self._thread = self._nc = None
            self._pid = None

    # -- internals -------------------------------------------------------------------

    def _publish(self, agent_id: str, method: str, arguments: list, request_id: str) -> None:
        body = json.dumps(
            {
                "protocol": PROTOCOL,
                "method": method,
                "arguments": arguments,
                "reply_to": self.reply_subject(agent_id, request_id),
            }
        ).encode()
        try:
            self._run(self._nc.publish(f"agent.{agent_id}", body), self.connect_timeout)
        except Exception as exc:
            raise MbusUnavailable(f"publishing to agent.{agent_id} on {self.url}: {exc}") from exc

    def _run(self, coroutine, timeout: float):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _ensure_connected(self) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked child: the loop is not ours
                self._loop = self._thread = self._nc = None
                self._pending = {}
                self._pid = os.getpid()
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="agents-mbus", daemon=True
                )
                self._thread.start()
            if self._nc is not None and not self._nc.is_closed:
                return
            try:
                self._nc = self._run(self._connect(), self.connect_timeout + 5)
            except Exception as exc:
                self._nc = None
                raise MbusUnavailable(
                    f"cannot connect to the message bus {self.url} as {self.name}: "
                    f"{exc or type(exc).__name__}"
                ) from exc

    async def _connect(self):
        # heavy: nats (a tenth of a second) loads on the first connection, not in every
        # web and worker process that imports the agent client.
        import nats

        async def on_error(exc):
            log.warning("message bus %s: %s", self.url, exc or type(exc).__name__)

        ca, cert, key = self._files
        nc = await nats.connect(
            self.url,
            name=self.name,
            tls=tls_context(ca, cert, key),
            tls_hostname=SERVER_CN,
            connect_timeout=self.connect_timeout,
            reconnect_time_wait=2,
            max_reconnect_attempts=4,
            allow_reconnect=True,
            error_cb=on_error,
        )
        await nc.subscribe(f"director.{self.process_uuid}.>", cb=self._on_reply)
        await nc.flush(self.connect_timeout)
        return nc

    async def _on_reply(self, msg) -> None:
        request_id = msg.subject.rsplit(".", 1)[-1]
        future = self._pending.get(request_id)
        if future is None or future.done():
            log.info("dropped a late or unknown reply on %s", msg.subject)
            return
        try:
            future.set_result(json.loads(msg.data))
        except ValueError as exc:
            future.set_exception(ValueError(f"the reply is not JSON: {exc}"))


_default: Mbus | None = None
_default_lock = threading.Lock()


def default_mbus() -> Mbus:
    """The process's connection as the director, from settings (``OPSCONSOLE_NATS_URL``)."""
    global _default
    with _default_lock:
        if not settings.NATS_URL:
            raise MbusUnavailable(
                "no message bus: OPSCONSOLE_NATS_URL is not set (`make run` starts nats-server)"
            )
        if _default is None or _default.url != settings.NATS_URL:
            _default = Mbus.for_director(settings.NATS_URL, MbusPki(settings.NATS_DIR).ensure())
        return _default


def close_default() -> None:
    """Close the process's connection, if one was made (a test process when it is done)."""
    with _default_lock:
        if _default is not None:
            _default.close()
