"""bpm, minimal (bosh-agent.md §7.2): what ``bpm start|stop <job> [-p proc]`` does, without runc.

``jobs/<job>/config/bpm.yml`` lists ``processes[]`` (``name``, ``executable``,
``args``, ``env``, ``workdir``, ``hooks.pre_start``, ``persistent_disk``...).
``start`` creates ``data/<job>/tmp`` (and ``store/<job>`` when asked), runs
the ``pre_start`` hook, then spawns the executable inside the VM's sandbox
with its args, env, workdir and ``TMPDIR``, stdout and stderr appended to
``sys/log/<job>/<proc>.{stdout,stderr}.log``, and writes its pid to
``sys/run/bpm/<job>/<proc>.pid``. ``stop`` sends the shutdown signal (TERM
or INT), waits 15 s, then SIGQUIT, 2 s, then SIGKILL, and removes the
pidfile. Isolation, limits and capabilities are not emulated.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from . import sandbox

log = logging.getLogger(__name__)

STOP_TIMEOUT = 15.0
QUIT_TIMEOUT = 2.0
HOOK_TIMEOUT = 30.0


class Bpm:
    def __init__(self, vcap: Path, marker: str, store: Callable[[], Path | None]):
        self.vcap = Path(vcap)
        self.marker = marker
        self.store = store
        self.children: dict[int, subprocess.Popen] = {}

    def _config(self, job: str, proc: str | None) -> dict:
        path = self.vcap / "jobs" / job / "config" / "bpm.yml"
        data = yaml.safe_load(path.read_text()) or {}
        name = proc or job
        for entry in data.get("processes") or []:
            if isinstance(entry, dict) and entry.get("name") == name:
                if not entry.get("executable"):
                    raise ValueError(f"{path}: process '{name}' has no executable")
                return entry
        raise ValueError(f"{path}: no process named '{name}'")

    def pidfile(self, job: str, proc: str | None) -> Path:
        return self.vcap / "sys" / "run" / "bpm" / job / f"{proc or job}.pid"

    def start(self, job: str, proc: str | None) -> int:
        name = proc or job
        try:
            cfg = self._config(job, proc)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            log.warning("bpm start %s: %s", job, exc)
            return 1
        pidfile = self.pidfile(job, proc)
        try:
            if sandbox.pid_alive(int(pidfile.read_text().strip())):
                return 0
        except (OSError, ValueError):
            pass
        (self.vcap / "data" / job / "tmp").mkdir(parents=True, exist_ok=True)
        if cfg.get("persistent_disk"):
            store = self.store() or (self.vcap / "store")
            (store / job).mkdir(parents=True, exist_ok=True)
        logdir = self.vcap / "sys" / "log" / job
        logdir.mkdir(parents=True, exist_ok=True)
        env = sandbox.vm_env(
            self.marker,
            {
                **{str(k): str(v) for k, v in (cfg.get("env") or {}).items()},
                "TMPDIR": f"/var/vcap/data/{job}/tmp",
            },
        )
        workdir = cfg.get("workdir") or f"/var/vcap/jobs/{job}"
        hook = (cfg.get("hooks") or {}).get("pre_start")
        with (
            open(logdir / f"{name}.stdout.log", "ab") as out,
            open(logdir / f"{name}.stderr.log", "ab") as err,
        ):
            if hook:
                try:
                    rc = subprocess.run(
                        sandbox.wrap(self.vcap, [hook], store=self.store(), cwd=workdir),
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=err,
                        env=env,
                        timeout=HOOK_TIMEOUT,
                    ).returncode
                except (OSError, subprocess.TimeoutExpired) as exc:
                    err.write(f"bpm: pre_start hook failed: {exc}\n".encode())
                    return 1
                if rc != 0:
                    return rc
            argv = [str(cfg["executable"]), *[str(a) for a in cfg.get("args") or []]]
            try:
                child = subprocess.Popen(
                    sandbox.wrap(self.vcap, argv, store=self.store(), cwd=workdir),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                err.write(f"bpm: cannot start {argv[0]}: {exc}\n".encode())
                return 1
        self.children[child.pid] = child
        pid = sandbox.inner_pid(child.pid) or child.pid
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.write_text(f"{pid}\n")
        return 0

    def stop(self, job: str, proc: str | None) -> int:
        pidfile = self.pidfile(job, proc)
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return 0
        try:
            cfg = self._config(job, proc)
        except (OSError, ValueError, yaml.YAMLError):
            cfg = {}
        first = (
            signal.SIGINT
            if str(cfg.get("shutdown_signal", "TERM")).upper() == "INT"
            else signal.SIGTERM
        )
        for sig, wait in (
            (first, STOP_TIMEOUT),
            (signal.SIGQUIT, QUIT_TIMEOUT),
            (signal.SIGKILL, 5),
        ):
            if not sandbox.pid_alive(pid):
                break
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
            deadline = time.monotonic() + wait
            while sandbox.pid_alive(pid) and time.monotonic() < deadline:
                self.reap()
                time.sleep(0.05)
        self.reap()
        pidfile.unlink(missing_ok=True)
        return 0

    def reap(self) -> None:
        """Collect the exit status of processes bpm started (they are the runtime's children)."""
        for pid, child in list(self.children.items()):
            if child.poll() is not None:
                del self.children[pid]
