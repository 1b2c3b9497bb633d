"""A minimal monit for one simulated VM (bosh-agent.md §7.1, §10.7).

The agent copies each job's ``monit`` file to ``/var/vcap/monit/job/NNNN_<job>.monitrc``;
``Monit.reload`` parses them: ``check process <name>``, ``with pidfile``,
``start program``/``stop program`` (with an optional ``= ``, ``with timeout
N seconds`` and ``as uid/gid`` ignored), ``group`` and ``depends on``; ``if ...
then ...`` rules and other checks are skipped. Only services in group ``vcap``
are started, stopped and reported, as BOSH's agent does.

Programs run through ``sh -c`` inside the VM's sandbox. A service is
*starting* until its pidfile names a live pid, then *running*; every
``interval`` seconds each monitored service's pid is checked, and a dead one
is reported as an alert (``Does not exist`` / ``restart``) and started again.
Stopping runs the stop program and waits for the pid to go (30 s, then
SIGKILL, so a VM never keeps a process its operator stopped). A start program
that is ``.../jobs/bpm/bin/bpm start|stop <job> [-p proc]`` is handled by the
bpm emulation (``bpm.py``), since there is no runc here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import sandbox
from .bpm import Bpm

log = logging.getLogger(__name__)

PROGRAM_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
_BPM = re.compile(r"^\s*(?:\S*/)?bpm\s+(start|stop)\s+(\S+)(?:\s+-p\s+(\S+))?\s*$")


class MonitFileError(ValueError):
    pass


@dataclass
class ServiceSpec:
    name: str
    pidfile: str = ""
    start: str = ""
    stop: str = ""
    groups: list[str] = field(default_factory=list)
    depends: list[str] = field(default_factory=list)


def parse_monit(text: str) -> list[ServiceSpec]:
    """The ``check process`` blocks of a monit file."""
    try:
        tokens = shlex.split(text, comments=True, posix=True)
    except ValueError as exc:
        raise MonitFileError(f"cannot parse monit file: {exc}") from None
    services: list[ServiceSpec] = []
    current: ServiceSpec | None = None
    i = 0

    def take_program(i):
        if i < len(tokens) and tokens[i] == "=":
            i += 1
        if i >= len(tokens):
            raise MonitFileError("a program is missing after 'start/stop program'")
        program = tokens[i]
        i += 1
        # optional "as uid x and gid y", "with timeout N seconds"
        while i < len(tokens) and tokens[i] in ("as", "with", "and", "uid", "gid", "timeout"):
            if tokens[i] in ("uid", "gid"):
                i += 2
            elif tokens[i] == "timeout":
                i += 3 if i + 2 < len(tokens) and tokens[i + 2].startswith("second") else 2
            else:
                i += 1
        return program, i

    while i < len(tokens):
        tok = tokens[i].lower()
        if tok == "check":
            kind = tokens[i + 1].lower() if i + 1 < len(tokens) else ""
            name = tokens[i + 2] if i + 2 < len(tokens) else ""
            current = None
            if kind == "process":
                if not name:
                    raise MonitFileError("'check process' without a name")
                current = ServiceSpec(name)
                services.append(current)
            i += 3
            continue
        if current is None:
            i += 1
            continue
        if tok == "pidfile":
            current.pidfile = tokens[i + 1]
            i += 2
        elif tok in ("start", "stop") and i + 1 < len(tokens) and tokens[i + 1] == "program":
            program, i = take_program(i + 2)
            setattr(current, tok, program)
        elif tok == "group" and i + 1 < len(tokens):
            current.groups.append(tokens[i + 1])
            i += 2
        elif tok == "depends" and i + 2 < len(tokens) and tokens[i + 1] == "on":
            i += 2
            while i < len(tokens):
                current.depends.append(tokens[i].rstrip(","))
                if tokens[i].endswith(",") or (i + 1 < len(tokens) and tokens[i + 1] == ","):
                    i += 2 if i + 1 < len(tokens) and tokens[i + 1] == "," else 1
                    continue
                i += 1
                break
        elif tok == "if":
            # skip the rule up to its action ("then <action>" [else ...])
            while i < len(tokens) and tokens[i].lower() != "then":
                i += 1
            i += 2
        else:
            i += 1
    for svc in services:
        if not svc.pidfile:
            raise MonitFileError(f"check process {svc.name}: no pidfile")
    return services


@dataclass
class Service:
    spec: ServiceSpec
    monitor: int = 0  # 0 unmonitored, 1 monitored, 2 starting
    pid: int | None = None
    since: float = 0.0
    failing: bool = False
    #: starts in a row that left no live pid (monit's "Execution failed": the job is failing)
    failed_starts: int = 0
    cpu_sample: tuple[float, float] = (0.0, 0.0)
    cpu_percent: float = 0.0

    @property
    def name(self) -> str:
        return self.spec.name


AlertFn = Callable[[str, str, str], Awaitable[None]]


class Monit:
    """The services of one VM and the loop that keeps them running."""

    def __init__(
        self,
        vcap: Path,
        marker: str,
        store: Callable[[], Path | None],
        alert: AlertFn,
        interval: float = 2.0,
    ):
        self.vcap = Path(vcap)
        self.marker = marker
        self.store = store
        self.alert = alert
        self.interval = interval
        self.services: dict[str, Service] = {}
        self.bpm = Bpm(self.vcap, marker, store)
        self._lock = asyncio.Lock()
        self._loop_task: asyncio.Task | None = None

    # -- configuration --------------------------------------------------------------

    def reload(self) -> None:
        """Read ``monit/job/*.monitrc`` (files sorted by name); keep the state of kept services."""
        specs: list[ServiceSpec] = []
        job_dir = self.vcap / "monit" / "job"
        for path in sorted(job_dir.glob("*.monitrc")) if job_dir.is_dir() else []:
            try:
                specs += parse_monit(path.read_text())
            except (OSError, MonitFileError) as exc:
                raise MonitFileError(f"{path.name}: {exc}") from None
        old = self.services
        self.services = {}
        for spec in specs:
            svc = old.get(spec.name) or Service(spec)
            svc.spec = spec
            self.services[spec.name] = svc

    def vcap_services(self) -> list[Service]:
        return [s for s in self.services.values() if "vcap" in s.spec.groups]

    def ordered(self) -> list[Service]:
        """vcap services, each after the services it depends on."""
        out: list[Service] = []
        seen: set[str] = set()

        def visit(svc: Service, path: tuple[str, ...]):
            if svc.name in seen or svc.name in path:
                return
            for dep in svc.spec.depends:
                if dep in self.services:
                    visit(self.services[dep], (*path, svc.name))
            seen.add(svc.name)
            if "vcap" in svc.spec.groups:
                out.append(svc)

        for svc in self.services.values():
            visit(svc, ())
        return out

    # -- running programs -------------------------------------------------------------

    def _pidfile(self, svc: Service) -> Path:
        p = svc.spec.pidfile
        if p.startswith(sandbox.VAR_VCAP + "/"):
            return self.vcap / p[len(sandbox.VAR_VCAP) + 1 :]
        return Path(p)

    def read_pid(self, svc: Service) -> int | None:
        try:
            text = self._pidfile(svc).read_text().strip()
            return int(text.split()[0]) if text else None
        except (OSError, ValueError, IndexError):
            return None

    def _run_program(self, program: str) -> int:
        """Run a start/stop program to its end (monit's program timeout), return its status."""
        bpm = _BPM.match(program)
        if bpm:
            action, job, proc = bpm.groups()
            return self.bpm.start(job, proc) if action == "start" else self.bpm.stop(job, proc)
        logfile = self.vcap / "monit" / "monit.log"
        logfile.parent.mkdir(parents=True, exist_ok=True)
        with open(logfile, "ab") as out:
            out.write(f"[{time.strftime('%FT%T')}] {program}\n".encode())
            out.flush()
            try:
                proc = subprocess.Popen(
                    sandbox.wrap(self.vcap, ["sh", "-c", program], store=self.store(), cwd="/"),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=sandbox.vm_env(self.marker),
                    start_new_session=True,
                )
            except OSError as exc:
                out.write(f"cannot run: {exc}\n".encode())
                return 127
            try:
                return proc.wait(PROGRAM_TIMEOUT)
            except subprocess.TimeoutExpired:
                out.write(b"program timed out\n")
                sandbox.signal_group(proc, signal.SIGKILL)
                proc.wait()
                return -1

    async def _start(self, svc: Service) -> None:
        svc.monitor = 2
        svc.failing = False
        await asyncio.to_thread(self._run_program, svc.spec.start)
        pid = self.read_pid(svc)
        if sandbox.pid_alive(pid):
            svc.pid, svc.since, svc.monitor = pid, time.time(), 1

    async def _stop(self, svc: Service) -> None:
        svc.monitor = 0
        pid = self.read_pid(svc) or svc.pid
        if svc.spec.stop:
            await asyncio.to_thread(self._run_program, svc.spec.stop)
        deadline = time.monotonic() + STOP_TIMEOUT
        while sandbox.pid_alive(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if sandbox.pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        svc.pid = None
        svc.failing = False
        svc.failed_starts = 0

    # -- what the agent asks --------------------------------------------------------------

    async def start_all(self) -> None:
        async with self._lock:
            for svc in self.ordered():
                await self._start(svc)
        self.ensure_loop()

    async def stop_all(self) -> None:
        async with self._lock:
            for svc in reversed(self.ordered()):
                await self._stop(svc)

    async def unmonitor_all(self) -> None:
        async with self._lock:
            for svc in self.vcap_services():
                svc.monitor = 0

    def ensure_loop(self) -> None:
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.create_task(self._watch(), name=f"monit-{self.marker}")

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            try:
                await self._loop_task
            except (asyncio.CancelledError, Exception):
                pass
        self.bpm.reap()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.bpm.reap()
            async with self._lock:
                for svc in self.ordered():
                    if svc.monitor == 0:
                        continue
                    pid = self.read_pid(svc)
                    if sandbox.pid_alive(pid):
                        if svc.pid != pid:
                            svc.since = time.time()
                        svc.pid, svc.monitor, svc.failing = pid, 1, False
                        svc.failed_starts = 0
                        self._sample_cpu(svc)
                        continue
                    was_running = svc.monitor == 1
                    if svc.monitor == 2:  # the last start left no live process
                        svc.failed_starts += 1
                    svc.failing = True
                    svc.pid = None
                    if was_running:
                        log.info("%s: %s does not exist, restarting", self.marker, svc.name)
                        try:
                            await self.alert(svc.name, "Does not exist", "restart")
                        except Exception:  # an alert that cannot be sent never stops monit
                            log.exception("alert for %s", svc.name)
                    await self._start(svc)

    # -- reporting -----------------------------------------------------------------------

    def _sample_cpu(self, svc: Service) -> None:
        ticks = _cpu_ticks(svc.pid)
        now = time.monotonic()
        last_ticks, last_at = svc.cpu_sample
        if last_at and now > last_at and ticks >= last_ticks:
            hz = os.sysconf("SC_CLK_TCK")
            svc.cpu_percent = round(100.0 * (ticks - last_ticks) / hz / (now - last_at), 1)
        svc.cpu_sample = (ticks, now)

    def state_of(self, svc: Service) -> str:
        if svc.monitor == 0:
            return "unknown"
        if svc.monitor == 2:
            return "failing" if svc.failed_starts else "starting"
        pid = self.read_pid(svc)
        return "running" if (not svc.failing and sandbox.pid_alive(pid)) else "failing"

    def job_state(self) -> str:
        """BOSH's job_state (§7.1): stopped marker, starting, failing, else running."""
        if (self.vcap / "monit" / "stopped").exists():
            return "stopped"
        states = [self.state_of(s) for s in self.vcap_services()]
        if "starting" in states:
            return "starting"
        if any(s in ("unknown", "failing") for s in states):
            return "failing"
        return "running"

    def processes(self) -> list[dict]:
        out = []
        total_kb = _mem_total_kb() or 1
        for svc in self.vcap_services():
            pid = self.read_pid(svc)
            alive = sandbox.pid_alive(pid)
            kb = _rss_kb(pid) if alive else 0
            out.append(
                {
                    "name": svc.name,
                    "state": self.state_of(svc),
                    "uptime": {"secs": int(time.time() - svc.since) if alive and svc.since else 0},
                    "mem": {"kb": kb, "percent": round(100.0 * kb / total_kb, 1)},
                    "cpu": {"total": svc.cpu_percent if alive else 0.0},
                    "pid": pid if alive else None,
                }
            )
        return out


def _cpu_ticks(pid: int | None) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rfind(")") + 2 :].split()
        return float(fields[11]) + float(fields[12])
    except (OSError, ValueError, IndexError):
        return 0.0


def _rss_kb(pid: int | None) -> int:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return 0


def _mem_total_kb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0
