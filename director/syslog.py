"""Forwarding the director's own logs to a syslog server (the Director tile's Syslog pane).

Apply Changes stores the pane as the director attribute ``syslog``
(``set_syslog``): ``{"enabled", "address", "port", "transport_protocol":
"udp"|"tcp", "forward_debug_logs"}``. ``DirectorSyslogHandler``, attached to
the ``director`` and ``cpi`` loggers in ``settings.LOGGING`` of every process
(web, worker, beat), forwards their records there with Python's
``SysLogHandler`` (RFC 3164 over UDP or TCP, facility ``user``), after the
same redaction as the console log. It reads the setting at most every
``REFRESH_SECONDS`` (at once in the process that changed it), so a change
reaches the other processes within that time. A syslog server that is down
loses records, never stops the director: logging must not fail a deploy.
TLS is not offered (``SysLogHandler`` has none); the tile refuses it.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import socket
import threading
import time
from typing import Any

__all__ = ["SETTING", "syslog_settings", "set_syslog", "DirectorSyslogHandler"]

SETTING = "syslog"
REFRESH_SECONDS = 10.0

_generation = 0  # bumped by set_syslog: handlers in this process re-read at once


def syslog_settings() -> dict[str, Any]:
    """The stored setting, normalised (``enabled`` False when absent or unreadable)."""
    # app registry: LOGGING loads this module (the handler) before the models exist.
    from director.models import DirectorAttribute

    try:
        stored = json.loads(DirectorAttribute.get(SETTING) or "{}")
    except ValueError:
        stored = {}
    enabled = bool(stored.get("enabled")) and bool(stored.get("address"))
    return {
        "enabled": enabled,
        "address": str(stored.get("address") or ""),
        "port": int(stored.get("port") or 514),
        "transport_protocol": "tcp" if stored.get("transport_protocol") == "tcp" else "udp",
        "forward_debug_logs": bool(stored.get("forward_debug_logs")),
    }


def set_syslog(config: dict[str, Any]) -> bool:
    """Store the Syslog pane's settings; True when they changed."""
    global _generation
    # app registry: as above, LOGGING imports this module before Django's apps load.
    from director.models import DirectorAttribute

    new = {
        "enabled": bool(config.get("enabled")),
        "address": str(config.get("address") or ""),
        "port": int(config.get("port") or 514),
        "transport_protocol": "tcp" if config.get("transport_protocol") == "tcp" else "udp",
        "forward_debug_logs": bool(config.get("forward_debug_logs")),
    }
    before = syslog_settings()
    DirectorAttribute.set(SETTING, json.dumps(new))
    _generation += 1
    return syslog_settings() != before


class _QuietSysLogHandler(logging.handlers.SysLogHandler):
    """A syslog server that is down loses the record without a traceback on stderr."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        pass


class DirectorSyslogHandler(logging.Handler):
    """Forwards records to the configured syslog server; does nothing while it is off."""

    def __init__(self, level: int = logging.NOTSET):
        super().__init__(level)
        self._target: logging.handlers.SysLogHandler | None = None
        self._config: dict[str, Any] | None = None
        self._read_at = 0.0
        self._generation = -1
        self._state_lock = threading.Lock()
        self._local = threading.local()

    def _current(self) -> tuple[logging.handlers.SysLogHandler | None, dict[str, Any] | None]:
        now = time.monotonic()
        with self._state_lock:
            if self._generation == _generation and now - self._read_at < REFRESH_SECONDS:
                return self._target, self._config
            self._read_at, self._generation = now, _generation
            try:
                config = syslog_settings()
            except Exception:  # noqa: BLE001 - no database (yet): nothing to forward to
                config = {"enabled": False}
            if config == self._config and (self._target or not config["enabled"]):
                return self._target, self._config
            self._close_target()
            self._config = config
            if config["enabled"]:
                try:
                    target = _QuietSysLogHandler(
                        address=(config["address"], config["port"]),
                        socktype=socket.SOCK_STREAM
                        if config["transport_protocol"] == "tcp"
                        else socket.SOCK_DGRAM,
                    )
                    target.setFormatter(self.formatter)
                    self._target = target
                except OSError:
                    self._target = None  # unreachable now: tried again at the next refresh
            return self._target, self._config

    def _close_target(self) -> None:
        if self._target is not None:
            try:
                self._target.close()
            except OSError:
                pass
            self._target = None

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._local, "busy", False):
            return  # a record logged while forwarding one (e.g. by the database layer)
        self._local.busy = True
        try:
            target, config = self._current()
            if target is None or not config:
                return
            floor = logging.DEBUG if config.get("forward_debug_logs") else logging.INFO
            if record.levelno < floor:
                return
            target.emit(record)
        except Exception:  # noqa: BLE001 - logging never fails the director
            pass
        finally:
            self._local.busy = False

    def setFormatter(self, fmt: logging.Formatter | None) -> None:  # noqa: N802 - logging's name
        super().setFormatter(fmt)
        if self._target is not None:
            self._target.setFormatter(fmt)

    def close(self) -> None:
        with self._state_lock:
            self._close_target()
        super().close()
