"""Keep the local stack's parts running: start them in order, restart the ones that die.

``manage.py runstack`` hands a :class:`Supervisor` its parts (Redis, vcsim, the
Celery worker and beat, the web server, and the parts that come later). Each
:class:`Part` knows how to start its process and wait until it serves. The
supervisor then watches them: a part whose process exits is restarted after a
backoff that doubles on each failure in a row (1 s, 2 s, 4 s ... at most
``max_backoff``) and resets once the part has stayed up ``stable_after``
seconds, the way monit and BOSH's agent treat job processes. Every exit and
restart is reported through ``say`` with the last lines of the part's log.

No orphans: children run in process groups of their own and are told to die
with us (``process._die_with_parent``); a dead part's whole group is killed
before it is started again (a gunicorn or Celery master's workers would hold
its port); stopping stops every group, last started first. The pids are kept in
``state_file`` so that ``manage.py stopstack`` can clean up after a supervisor
that was itself killed.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class Handle(Protocol):
    """What a started part gives back (``ManagedProcess``, ``VcsimProcess``)."""

    name: str

    @property
    def pid(self) -> int: ...

    def alive(self) -> bool: ...

    def kill(self, sig: int = ...) -> None: ...

    def stop(self, timeout: float = ...) -> None: ...

    def tail(self, lines: int = ...) -> str: ...


@dataclass
class Part:
    """One supervised part: ``start()`` starts it and returns once it serves (or raises)."""

    name: str
    start: Callable[[], Any]
    handle: Any = None
    started_at: float = 0.0
    failures: int = 0  # exits in a row without staying up stable_after seconds
    restart_at: float | None = None
    restarts: int = 0
    last_exit: str = ""


class Supervisor:
    def __init__(
        self,
        parts: list[Part],
        say: Callable[[str], None],
        state_file: Path | None = None,
        *,
        min_backoff: float = 1.0,
        max_backoff: float = 30.0,
        stable_after: float = 60.0,
        poll: float = 0.5,
    ):
        self.parts = parts
        self.say = say
        self.state_file = state_file
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.stable_after = stable_after
        self.poll = poll
        self.stopping = threading.Event()

    # -- start and stop -------------------------------------------------

    def start_all(self) -> None:
        """Start every part in order; on a failure stop what was started and re-raise."""
        try:
            for part in self.parts:
                if self.stopping.is_set():
                    break
                self._start(part)
        except BaseException:
            self.stop_all()
            raise

    def stop_all(self) -> None:
        """Stop every running part, last started first, and forget the pids."""
        for part in reversed(self.parts):
            if part.handle is not None:
                try:
                    part.handle.stop()
                except Exception as exc:  # keep stopping the others
                    self.say(f"stopping {part.name} failed: {exc}; killing it")
                    part.handle.kill(signal.SIGKILL)
                part.handle = None
        self._write_state()

    def _start(self, part: Part) -> None:
        part.handle = part.start()
        part.started_at = time.monotonic()
        part.restart_at = None
        self._write_state()

    # -- watching ---------------------------------------------------------

    def watch(self) -> None:
        """Until ``stopping`` is set: restart parts that died, with backoff."""
        while not self.stopping.is_set():
            self.check_once()
            self.stopping.wait(self.poll)

    def check_once(self) -> None:
        now = time.monotonic()
        for part in self.parts:
            if self.stopping.is_set():
                return
            if part.handle is not None and not part.handle.alive():
                self._died(part, now)
            if part.handle is None and part.restart_at is not None and now >= part.restart_at:
                self._restart(part)

    def _died(self, part: Part, now: float) -> None:
        handle = part.handle
        code = getattr(getattr(handle, "proc", None), "returncode", None)
        uptime = now - part.started_at
        part.failures = 1 if uptime >= self.stable_after else part.failures + 1
        delay = min(self.max_backoff, self.min_backoff * 2 ** (part.failures - 1))
        part.last_exit = f"exited with code {code} after {uptime:.0f} s"
        handle.kill(signal.SIGKILL)  # what it left behind in its group (workers holding the port)
        try:
            handle.stop(timeout=1)
        except Exception:  # closing a dead process's log cannot matter more than the restart
            pass
        part.handle = None
        part.restart_at = now + delay
        self.say(
            f"{part.name} {part.last_exit}; restarting in {delay:.0f} s"
            f" (failure {part.failures} in a row). Last lines of its log:\n{handle.tail(15)}"
        )
        self._write_state()

    def _restart(self, part: Part) -> None:
        try:
            self._start(part)
        except Exception as exc:
            part.failures += 1
            delay = min(self.max_backoff, self.min_backoff * 2 ** (part.failures - 1))
            part.restart_at = time.monotonic() + delay
            self.say(f"{part.name} did not come back ({exc}); trying again in {delay:.0f} s")
            return
        part.restarts += 1
        self._write_state()
        self.say(f"{part.name} restarted (pid {part.handle.pid}, restart {part.restarts})")

    # -- the state file stopstack reads --------------------------------------

    def _write_state(self) -> None:
        if self.state_file is None:
            return
        state = {
            "pid": os.getpid(),
            "children": {p.name: p.handle.pid for p in self.parts if p.handle is not None},
            "restarts": {p.name: p.restarts for p in self.parts},
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, self.state_file)


def read_state(state_file: Path) -> dict:
    try:
        return json.loads(Path(state_file).read_text())
    except (OSError, ValueError):
        return {}


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pid: int, sig: int) -> None:
    """Signal the process group ``pid`` leads (every child runs in its own)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
