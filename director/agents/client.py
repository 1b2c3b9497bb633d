"""The director side of the BOSH agent protocol: one ``AgentClient`` per agent (VM).

Each call is BOSH's envelope on ``agent.<agent_id>`` (``director.agents.mbus``)
and follows BOSH's ``AgentClient`` rules (reference: bosh-agent.md §1.2-1.3):

* a reply is ``{"value": X}`` or ``{"exception": {"message": ...}}``; the
  latter raises ``AgentRemoteError`` (``AgentUnknownMethod`` for ``unknown
  message``) naming the agent, the instance and the method;
* no reply within ``timeout`` (45 s) raises ``AgentUnresponsive``; ``get_state``
  and ``get_task`` are retried on timeout first (2 times each), because an
  agent that restarts itself loses the first message;
* a long-running method answers ``{"agent_task_id": id, "state": "running"}``
  at once; the client then polls ``get_task(id)`` every ``poll_interval``
  (1 s) until the task is no longer running, and returns its value, or raises
  ``AgentTaskFailed`` with the agent's ``Task <id> result: ...`` text;
* ``drain`` and ``run_errand`` take ``should_cancel``, a callable checked
  between polls (the director task's cancel flag): once it is true the client
  sends ``cancel_task(id)``; ``drain`` then raises ``AgentTaskCancelled`` at
  once, an errand is waited for so that its exit code and output come back;
* ``stop`` gives up waiting after 300 s and ignores the agent's ``Timed out
  waiting for service``; ``run_script``, ``add/remove_persistent_disk``,
  ``update_settings`` and ``info`` tolerate an agent that does not know them;
  ``shutdown`` is fire-and-forget.

``wait_until_ready`` pings with a 1 s timeout until the agent answers (600 s by
default); ``wait_until_running(watch_time)`` sleeps through BOSH's watch
schedule, calling ``get_state`` after each sleep until ``job_state`` is
``running``, else raises ``AgentJobNotRunning`` with BOSH's "is not running
after update" message naming the processes that are not running.

All of it is synchronous: call it from the executor's threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from .errors import (
    AgentBadReply,
    AgentJobNotRunning,
    AgentRemoteError,
    AgentTaskCancelled,
    AgentTaskFailed,
    AgentUnknownMethod,
    AgentUnresponsive,
)
from .mbus import Mbus, default_mbus

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 45.0
DEFAULT_POLL_INTERVAL = 1.0
AGENT_WAIT_TIMEOUT = 600.0
STOP_TIMEOUT = 300.0
RETRIES_ON_TIMEOUT = {"get_state": 2, "get_task": 2}


def watch_schedule(min_ms: int, max_ms: int) -> list[float]:
    """BOSH's sleeps (seconds) between ``get_state`` checks over a watch time of min..max ms."""
    delta = max(0, max_ms - min_ms)
    step = min(max(1000.0, delta / 9), 15000.0)
    return [min_ms / 1000] + [step / 1000] * int(delta // step)


def parse_watch_time(watch_time: str | int | tuple[int, int]) -> tuple[int, int]:
    """``"30000"``, ``30000``, ``"1000-60000"`` or ``(min, max)`` in milliseconds."""
    if isinstance(watch_time, tuple):
        low, high = watch_time
    elif isinstance(watch_time, int):
        low = high = watch_time
    else:
        text = str(watch_time).strip()
        low_text, _, high_text = text.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if high_text else low
        except ValueError:
            raise ValueError(
                f"watch time {watch_time!r}: expected milliseconds, as '30000' or '1000-30000'"
            ) from None
    if low < 0 or high < low:
        raise ValueError(f"watch time {watch_time!r}: min must be 0 or more and at most max")
    return int(low), int(high)


class AgentClient:
    """Talks to the agent ``agent_id`` (of the instance ``instance``, named in errors)."""

    def __init__(
        self,
        agent_id: str,
        *,
        instance: str = "",
        mbus: Mbus | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ):
        self.agent_id = agent_id
        self.instance = instance
        self.mbus = mbus or default_mbus()
        self.timeout = timeout
        self.poll_interval = poll_interval

    # -- the methods ---------------------------------------------------------------------

    def ping(self, timeout: float | None = None) -> str:
        return self._call("ping", [], timeout=timeout)

    def info(self) -> dict:
        try:
            return self._call("info", [])
        except AgentUnknownMethod:
            return {"api_version": 0}

    def wait_until_ready(self, timeout: float = AGENT_WAIT_TIMEOUT) -> None:
        """Ping every second until the agent answers; ``AgentUnresponsive`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ping(timeout=1.0)
                return
            except AgentUnresponsive:
                if time.monotonic() >= deadline:
                    raise AgentUnresponsive(
                        self.agent_id,
                        "ping",
                        f"timed out pinging the agent after {timeout:g} seconds",
                        instance=self.instance,
                    ) from None
            except AgentRemoteError as exc:
                if not exc.message.startswith("restarting agent") or time.monotonic() >= deadline:
                    raise
                time.sleep(1.0)

    def get_state(self, full: bool = False, timeout: float | None = None) -> dict:
        """The agent's state (apply spec, ``job_state``, ``processes``; ``vitals`` when full)."""
        return self._call("get_state", ["full"] if full else [], timeout=timeout)

    def prepare(self, spec: dict) -> Any:
        return self._send("prepare", [spec])

    def apply(self, spec: dict) -> Any:
        return self._send("apply", [spec])

    def start(self) -> Any:
        return self._send("start", [])

    def stop(self) -> Any:
        try:
            return self._send("stop", [], deadline=time.monotonic() + STOP_TIMEOUT)
        except AgentRemoteError as exc:
            if "Timed out waiting for service" not in exc.message:
                raise
            log.warning("%s: ignoring the agent's stop timeout", exc)
            return None

    def drain(
        self,
        drain_type: str,
        spec: dict | None = None,
        *,
        should_cancel: Callable[[], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> int:
        """Run the jobs' drain scripts (``update`` with the new spec, or ``shutdown``).

        Returns the seconds the agent asked for, after waiting them out as BOSH's
        stopper does: a positive number is slept; a negative one (legacy dynamic
        drain) sleeps |n| and asks ``drain("status")`` again until it is 0 or more.
        """
        if drain_type not in ("update", "shutdown", "status"):
            raise ValueError(f"drain type {drain_type!r}: expected update or shutdown")
        arguments = [drain_type] + ([spec] if spec is not None else [])
        seconds = self._send("drain", arguments, should_cancel=should_cancel)
        while isinstance(seconds, int) and seconds < 0:
            sleep(-seconds)
            seconds = self._send("drain", ["status"], should_cancel=should_cancel)
        if isinstance(seconds, int) and seconds > 0:
            sleep(seconds)
        return seconds

    def run_script(self, name: str, options: dict | None = None) -> Any:
        """Run ``bin/<name>`` of each job that has it (pre-start, post-start, pre-stop ...)."""
        try:
            return self._send("run_script", [name, options or {}])
        except AgentUnknownMethod:
            log.warning("agent %s does not know run_script; %s skipped", self.agent_id, name)
            return {}

    def add_persistent_disk(self, disk_cid: str, hint: Any) -> Any:
        return self._tolerant("add_persistent_disk", [disk_cid, hint])

    def remove_persistent_disk(self, disk_cid: str) -> Any:
        return self._tolerant("remove_persistent_disk", [disk_cid])

    def mount_disk(self, disk_cid: str) -> Any:
        return self._send("mount_disk", [disk_cid])

    def unmount_disk(self, disk_cid: str) -> Any:
        return self._send("unmount_disk", [disk_cid])

    def list_disk(self) -> list:
        return self._send("list_disk", []) or []

    def migrate_disk(self, old_disk_cid: str, new_disk_cid: str) -> Any:
        return self._send("migrate_disk", [old_disk_cid, new_disk_cid])

    def compile_package(
        self, blobstore_id: str, sha1: str, name: str, version: str, deps: dict
    ) -> dict:
        """``{"result": {"blobstore_id", "sha1"}}`` of the compiled package."""
        return self._send("compile_package", [blobstore_id, sha1, name, version, deps])

    def compile_package_with_signed_url(self, request: dict) -> dict:
        return self._send("compile_package_with_signed_url", [request])

    def run_errand(
        self, job: str | None = None, *, should_cancel: Callable[[], bool] | None = None
    ) -> dict:
        """``{"stdout", "stderr", "exit_code"}`` of the errand (after a cancel too)."""
        return self._send(
            "run_errand",
            [job] if job else [],
            should_cancel=should_cancel,
            wait_after_cancel=True,
        )

    def fetch_logs(self, log_type: str = "job", filters: list | None = None) -> dict:
        """``{"blobstore_id", "sha1"}`` of a tgz of the logs."""
        return self._send("fetch_logs", [log_type, filters])

    def fetch_logs_with_signed_url(self, request: dict) -> dict:
        return self._send("fetch_logs_with_signed_url", [request])

    def update_settings(self, settings: dict) -> Any:
        return self._tolerant("update_settings", [settings])

    def shutdown(self) -> None:
        """Fire and forget, as BOSH does (the VM may be gone before it could answer)."""
        try:
            self.mbus.send(self.agent_id, "shutdown", [])
        except Exception as exc:  # BOSH logs and ignores any error here
            log.warning("shutdown of agent %s: %s", self.agent_id, exc)

    def get_task(self, task_id: str) -> Any:
        return self._call("get_task", [task_id])

    def cancel_task(self, task_id: str) -> Any:
        return self._call("cancel_task", [task_id])

    def wait_until_running(
        self,
        watch_time: str | int | tuple[int, int],
        max_ms: int | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict:
        """Poll ``get_state`` over the watch schedule until ``job_state == "running"``.

        ``wait_until_running(min_ms, max_ms)`` reads as ``wait_until_running((min_ms, max_ms))``.
        """
        if max_ms is not None:
            watch_time = (int(watch_time), int(max_ms))
        state: dict = {}
        for seconds in watch_schedule(*parse_watch_time(watch_time)):
            sleep(seconds)
            state = self.get_state()
            if state.get("job_state") == "running":
                return state
        failing = [
            p.get("name", "?")
            for p in state.get("processes") or []
            if isinstance(p, dict) and p.get("state") != "running"
        ]
        who = self.instance or self.agent_id
        raise AgentJobNotRunning(
            self.agent_id,
            "get_state",
            f"'{who}' is not running after update. Review logs for failed jobs: "
            + (", ".join(failing) or f"job_state is {state.get('job_state')!r}"),
            instance=self.instance,
        )

    # -- the protocol ------------------------------------------------------------------

    def _call(self, method: str, arguments: list, timeout: float | None = None) -> Any:
        """One request and its reply's ``value`` (retried on timeout for some methods)."""
        timeout = self.timeout if timeout is None else timeout
        retries = RETRIES_ON_TIMEOUT.get(method, 0)
        while True:
            try:
                reply = self.mbus.request(self.agent_id, method, arguments, timeout)
                break
            except TimeoutError:
                if retries > 0:
                    retries -= 1
                    continue
                raise AgentUnresponsive(
                    self.agent_id,
                    method,
                    f"timed out sending '{method}' after {timeout:g} seconds",
                    instance=self.instance,
                ) from None
            except ValueError as exc:
                raise self._error(AgentBadReply, method, str(exc)) from None
        if not isinstance(reply, dict) or not ("value" in reply or "exception" in reply):
            raise self._error(AgentBadReply, method, f"not BOSH's reply envelope: {reply!r:.200}")
        if "exception" in reply:
            message = _exception_message(reply["exception"])
            kind = AgentUnknownMethod if message.startswith("unknown message") else AgentRemoteError
            raise self._error(kind, method, message)
        return reply["value"]

    def _send(
        self,
        method: str,
        arguments: list,
        *,
        should_cancel: Callable[[], bool] | None = None,
        wait_after_cancel: bool = False,
        deadline: float | None = None,
    ) -> Any:
        """A method that may answer with a task: wait for the task and return its value."""
        task = _as_task(self._call(method, arguments))
        if not task.get("agent_task_id"):
            return task.get("value")
        task_id = str(task["agent_task_id"])
        cancelled = False
        while task.get("state") == "running":
            if deadline is not None and time.monotonic() >= deadline:
                log.warning(
                    "agent %s: stopped waiting for %s task %s", self.agent_id, method, task_id
                )
                return None
            if should_cancel is not None and not cancelled and should_cancel():
                cancelled = True
                self.cancel_task(task_id)
                if not wait_after_cancel:
                    raise AgentTaskCancelled(
                        self.agent_id,
                        method,
                        f"task {task_id} cancelled by the director",
                        task_id=task_id,
                        instance=self.instance,
                    )
            time.sleep(self.poll_interval)
            try:
                task = _as_task(self.get_task(task_id))
            except AgentRemoteError as exc:
                kind = AgentTaskCancelled if cancelled else AgentTaskFailed
                raise kind(
                    self.agent_id, method, exc.message, task_id=task_id, instance=self.instance
                ) from None
        return task.get("value")

    def _tolerant(self, method: str, arguments: list) -> Any:
        try:
            return self._send(method, arguments)
        except AgentUnknownMethod:
            log.warning("agent %s does not know %s; ignored", self.agent_id, method)
            return None

    def _error(self, kind, method: str, message: str):
        return kind(self.agent_id, method, message, instance=self.instance)


def _exception_message(exception: Any) -> str:
    if isinstance(exception, dict):
        return str(exception.get("message", exception))
    return str(exception)


def _as_task(value: Any) -> dict:
    """BOSH's ``AgentMessageConverter``: a task status, or ``{"state": "done", "value": v}``."""
    if isinstance(value, dict):
        if "value" in value:
            return {"state": "done", **value}
        if "agent_task_id" in value and "state" in value:
            return value
    return {"state": "done", "value": value}
