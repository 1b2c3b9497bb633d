"""The CPI log: every call as one JSON-able record, secrets redacted.

``LoggedCpi(cloud, sink)`` wraps any ``Cpi`` and, for each method call,
hands ``sink`` a record like BOSH's task CPI log::

    {"time": "2026-01-01T12:00:00.000000Z", "method": "create_vm",
     "request": {"arguments": [...]},
     "response": {"result": [...]}  |  {"error": {"type", "message", "ok_to_retry"}},
     "duration_ms": 412}

Values under keys that look secret (password, secret, private_key, token,
credential, ...) are replaced with ``((redacted))`` wherever they are nested
(this covers ``env.bosh.password`` and blobstore/mbus credentials), as are
exact secret strings passed in ``secrets`` (the vCenter password) and
credentials embedded in URLs (``nats://user:pass@host``). The sink is called
from whichever thread made the call; it must be thread-safe. The reads beyond
the contract (``cpi.base.READS``: power states, health, a director's VMs) go
to the wrapped cloud unlogged: they change nothing and run every scan.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from cpi.base import METHODS, READS, Cpi, CpiError

REDACTED = "((redacted))"
SECRET_KEY_RE = re.compile(r"pass(word)?|secret|private_key|token|credential|api_key|key_pem", re.I)
URL_CREDENTIALS_RE = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@", re.I
)


def is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and bool(SECRET_KEY_RE.search(key))


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``value`` with secret-keyed values and known secret strings replaced."""
    known = sorted(
        {s for s in secrets if isinstance(s, str) and len(s) >= 4}, key=len, reverse=True
    )
    return _redact(value, known)


def _redact(value: Any, known: list[str]) -> Any:
    if isinstance(value, dict):
        return {
            k: (REDACTED if is_secret_key(k) and value[k] not in (None, "") else _redact(v, known))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(v, known) for v in value]
    if isinstance(value, str):
        return redact_text(value, known)
    return value


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return URL_CREDENTIALS_RE.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LoggedCpi(Cpi):
    """A ``Cpi`` that reports each call to ``sink`` and otherwise behaves like ``cpi``."""

    def __init__(
        self, cpi: Cpi, sink: Callable[[dict[str, Any]], None], *, secrets: Iterable[str] = ()
    ):
        self.wrapped = cpi
        self.sink = sink
        self.secrets = [s for s in secrets if s]
        password = getattr(getattr(getattr(cpi, "config", None), "vcenter", None), "password", None)
        if password:
            self.secrets.append(password)

    def __getattr__(self, name: str) -> Any:
        # Anything that is not a CPI method (close, config, ...) goes to the wrapped cloud.
        return getattr(self.wrapped, name)

    def _call(self, method: str, *arguments: Any) -> Any:
        started = time.monotonic()
        record: dict[str, Any] = {
            "time": _now(),
            "method": method,
            "request": {"arguments": redact(list(arguments), self.secrets)},
        }
        try:
            result = getattr(self.wrapped, method)(*arguments)
        except CpiError as exc:
            record["response"] = {"error": redact(exc.to_dict(), self.secrets)}
            raise
        except Exception as exc:
            record["response"] = {
                "error": {
                    "type": "Bosh::Clouds::CloudError",
                    "message": redact_text(f"{type(exc).__name__}: {exc}", self.secrets),
                    "ok_to_retry": False,
                }
            }
            raise
        else:
            record["response"] = {"result": redact(result, self.secrets)}
            return result
        finally:
            record["duration_ms"] = int((time.monotonic() - started) * 1000)
            self.sink(record)


def _delegate(method: str) -> Callable[..., Any]:
    def call(self: LoggedCpi, *arguments: Any) -> Any:
        return self._call(method, *arguments)

    call.__name__ = method
    functools.update_wrapper(call, getattr(Cpi, method), updated=())
    return call


def _read(method: str) -> Callable[..., Any]:
    """A read beyond the contract (``READS``) goes to the wrapped cloud and is not logged."""

    def call(self: LoggedCpi, *arguments: Any) -> Any:
        return getattr(self.wrapped, method)(*arguments)

    call.__name__ = method
    functools.update_wrapper(call, getattr(Cpi, method), updated=())
    return call


for _method in METHODS:
    setattr(LoggedCpi, _method, _delegate(_method))
for _method in READS:
    setattr(LoggedCpi, _method, _read(_method))
LoggedCpi.__abstractmethods__ = frozenset()
