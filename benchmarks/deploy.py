"""The deploy suite: a real director deploy per instance, against the raw pyvmomi floor.

Sets up a private director (``benchmarks.environment``: its own data
directory and database, migrated), starts its own vcsim, points the
director at it with a cpi-config, uploads a cloud-config (two AZs over
vcsim's two clusters, one manual network), the stemcell
(``cpi.stemcell_builder``) and the demo tile's release (``tiles.demo``),
then runs director tasks the way a worker does
(``director.runner.run_task``, inline: no broker, no Celery worker) and
times, for one instance group of N instances:

* ``deploy``: a first deploy (``update_deployment``: plan, create VMs,
  attach disks, apply, start), without a persistent disk and with a 1 GB one,
  at each ``max_in_flight``;
* ``re-deploy (no change)``: the same manifest again: planning cost only;
* ``vm_type change``: every instance recreated (delete VM, create VM,
  re-attach the persistent disk);
* ``delete``: ``delete_deployment``;
* ``deploy, pkg+running job``: the group with ``benchmarks.agent_release``'s
  job (a package compiled on a compilation VM, a monit process), without a
  disk, at the largest ``max_in_flight``: once compiling, once reusing the
  compiled package (issue 11).

Every deploy goes through the real agent path, as under ``make run``:
nats-server with the director's certificates and users, the VM runtime
(``tools.vmruntime``, one per vcsim) playing the agents of vcsim's VMs
(heartbeat 1 s, monit every 0.5 s), and a gunicorn serving the director's
blobstore at ``/blobstore/``.

The floor is raw pyvmomi measured in the same run on the same vcsim: per VM,
linked clone from the stemcell + power on + power off + destroy, with 1
thread and with as many threads as the director creates and deletes VMs
with (``director.max_threads``, 32, capped at N: VM creation and deletion
are not limited by ``max_in_flight``, only the update batches are). A deploy
and a delete together do that same vCenter work (plus disks and metadata),
so ``deploy`` + ``delete`` against ``1.00x`` is the director's overhead.
``vs raw`` is the row's seconds per instance divided by the floor's seconds
per VM at the director's thread count.

With ``delay_ms`` a second pass runs on a vcsim with injected latency
(``CloneVM_Task`` = delay, ``PowerOnVM_Task`` = delay / 2), standing in for
a real vCenter where threads matter.

Database: a private PostgreSQL by default
(``opsconsole.localservices.postgres``); ``database="sqlite"`` uses
``DATABASE_URL=sqlite:///<tmp>/bench.sqlite3`` (with the busy timeout the
default settings give), where the deploy threads wait on SQLite's
database-wide write lock: a 20-instance deploy measured 2-3 times slower,
and noisier, than on PostgreSQL.

    python -m benchmarks --suite deploy [--instances 20] [--delay-ms 200]
    python -m benchmarks --suite deploy --profile   # cProfile of one deploy
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.environment import (
    BenchFailed,
    Director,
    manifest,
    prepare_director,
    start_agents,
    start_private_director,
)

#: max_in_flight values measured by default.
DEFAULT_MAX_IN_FLIGHT = (1, 5, 10)


# --------------------------------------------------------------------------- raw floor


@contextmanager
def raw_session(vc, stemcell_cid: str):
    """``(si, template, folder, pool)`` for raw pyvmomi clones of the director's stemcell."""
    from pyVim.connect import Disconnect, SmartConnect

    host, _, port = vc.host.partition(":")
    si = SmartConnect(
        host=host, port=int(port), user=vc.username, pwd=vc.password, sslContext=vc.ssl_context()
    )
    try:
        index = si.content.searchIndex
        dc_name = vc.inventory["datacenters"][0]
        dc = index.FindByInventoryPath(dc_name)
        template = index.FindByInventoryPath(f"{dc_name}/vm/BOSH_Templates/{stemcell_cid}")
        if template is None:
            raise BenchFailed(f"stemcell template {stemcell_cid} not found in BOSH_Templates")
        cluster = index.FindByInventoryPath(f"{dc_name}/host/{vc.inventory['clusters'][0]}")
        yield si, template, dc.vmFolder, cluster.resourcePool
    finally:
        Disconnect(si)


# --------------------------------------------------------------------------- measuring


@dataclass
class Row:
    measure: str
    instances: int
    max_in_flight: int | None  # None for the raw floor (its threads are in the measure)
    seconds: float
    floor_per_vm: float  # seconds per VM of the reference raw cycle

    @property
    def per_second(self) -> float:
        return self.instances / self.seconds if self.seconds else float("inf")

    @property
    def ratio(self) -> float:
        return (self.seconds / self.instances) / self.floor_per_vm


HEADER = (
    f"{'measure':<36}{'instances':>10}{'max_in_flight':>14}{'seconds':>9}{'inst/s':>9}{'vs raw':>9}"
)


def format_row(row: Row) -> str:
    mif = "-" if row.max_in_flight is None else str(row.max_in_flight)
    return (
        f"{row.measure:<36}{row.instances:>10}{mif:>14}"
        f"{row.seconds:>9.2f}{row.per_second:>9.1f}{row.ratio:>8.2f}x"
    )


def director_threads(instances: int) -> int:
    """Threads the director creates and deletes VMs with (``max_threads``, not max_in_flight)."""
    from director.execution.run import max_threads

    return max(1, min(instances, max_threads()))


def measure_pass(
    director: Director,
    instances: int,
    max_in_flights: tuple[int, ...],
    out: Callable[[str], None],
) -> list[Row]:
    """Every measure of one vcsim (one latency setting); prints each row when it is done.

    The reference floor is the raw cycle with as many threads as the director
    uses to create and delete VMs; the 1-thread floor is shown beside it.
    """
    from benchmarks.__main__ import raw_cycle  # the CPI suite's floor, same code

    rows: list[Row] = []
    threads = director_threads(instances)
    with raw_session(director.vc, director.stemcell_cid) as (si, template, folder, pool):
        raw_cycle(si, template, folder, pool, min(instances, 5), 1)  # warm up the session
        timed = {n: raw_cycle(si, template, folder, pool, instances, n) for n in (1, threads)}
    floor = timed[threads] / instances

    def add(measure: str, mif: int | None, seconds: float) -> None:
        row = Row(measure, instances, mif, seconds, floor)
        rows.append(row)
        out(format_row(row))

    for n in sorted(timed):
        add(f"raw clone+on+off+destroy, {n} thr", None, timed[n])

    top = max(max_in_flights)
    for disk in (False, True):
        what = "1GB disk" if disk else "no disk"
        for mif in max_in_flights:
            text = manifest(instances, mif, disk, stemcell_os=director.stemcell_os)
            add(f"deploy, {what}", mif, director.deploy(text))
            if director.vm_count() != instances:
                raise BenchFailed(f"deployed {director.vm_count()} VMs, expected {instances}")
            if mif == top:
                add(f"re-deploy no change, {what}", mif, director.deploy(text))
                changed = manifest(instances, mif, disk, "large", director.stemcell_os)
                add(f"vm_type change (recreate), {what}", mif, director.deploy(changed))
            add(f"delete, {what}", mif, director.delete())
            if director.vm_count():
                raise BenchFailed(f"{director.vm_count()} VMs left after delete")
            if mif == top and not disk:
                compiled_rows(director, instances, mif, add)
    return rows


def compiled_rows(director: Director, instances: int, mif: int, add) -> None:
    """Issue 11: the same group with a compiled package and a running job, real agents.

    The first deploy compiles the package on a compilation VM; the second
    (after a delete) reuses the compiled package: both download it and the
    rendered job from the blobstore and wait for monit to report running.
    """
    text = manifest(instances, mif, False, stemcell_os=director.stemcell_os, compiled=True)
    for what in ("compiles", "pkg reused"):
        add(f"deploy, pkg+running job, {what}", mif, director.deploy(text))
        if director.vm_count() != instances:
            raise BenchFailed(f"deployed {director.vm_count()} VMs, expected {instances}")
        director.delete()


REPO = Path(__file__).resolve().parents[1]
OURS = ("director", "cpi", "opsconsole", "tiles", "benchmarks")


def category(file: str, fn: str) -> str | None:
    """Where a profiled function's own time goes; ``None`` for an unattributed builtin."""
    if file == "~":  # a builtin: by name, else by its caller (see ``breakdown``)
        if "_ssl._SSLSocket" in fn or "recv_into" in fn or "select" in fn:
            return "waiting on vcsim (socket/TLS reads)"
        if fn == "<built-in method time.sleep>":
            return "sleeping (watch time, agent polls)"
        if "_thread." in fn or "_queue.SimpleQueue" in fn:
            return "waiting on other threads (locks, pool)"
        if "psycopg2" in fn or "sqlite3" in fn:
            return "database (Django ORM, driver)"
        if "pyexpat" in fn:
            return "pyVmomi SOAP (serialise, parse)"
        return None
    if "/pyVmomi/" in file or "/pyVim/" in file or "/xml/" in file:
        return "pyVmomi SOAP (serialise, parse)"
    if "/django/db/" in file or "/psycopg2/" in file:
        return "database (Django ORM, driver)"
    if "/http/client" in file or file.endswith(("/ssl.py", "/socket.py")) or "/email/" in file:
        return "HTTP client, TLS (stdlib)"
    if "/yaml/" in file:
        return "YAML"
    if "/django/" in file:
        return "Django, other"
    if file.startswith(tuple(f"{REPO / p}/" for p in OURS)):
        return "our code (director, cpi, opsconsole)"
    return "other (stdlib, libraries)"


def breakdown(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time (``tottime``) summed per category, largest first.

    A builtin with no category of its own (``isinstance``, ``dict.get``...)
    is charged to its callers' categories, in proportion to the time each
    caller spent in it.
    """
    sums: dict[str, float] = {}
    table = stats.stats  # type: ignore[attr-defined]
    for (file, _line, fn), (_cc, _nc, tt, _ct, callers) in table.items():
        name = category(file, fn)
        if name is not None:
            sums[name] = sums.get(name, 0.0) + tt
            continue
        shares = {}
        for (cfile, _cl, cfn), info in callers.items():
            key = category(cfile, cfn) or "other (stdlib, libraries)"
            shares[key] = shares.get(key, 0.0) + info[2]
        spread = sum(shares.values())
        for key, part in shares.items() or {"other (stdlib, libraries)": 1.0}.items():
            sums[key] = sums.get(key, 0.0) + tt * (part / spread if spread else 1.0)
    return sorted(sums.items(), key=lambda kv: -kv[1])


def _profiled(fn: Callable[[], Any], timer: Callable[[], float] | None) -> pstats.Stats:
    """Run ``fn`` with a profiler in this thread and in every thread it starts; merged stats."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def new(*_):
        return cProfile.Profile(timer) if timer else cProfile.Profile()

    def start_thread_profile(*_):
        prof = new()
        with lock:
            profiles.append(prof)
        prof.enable()  # replaces this hook for the rest of the thread

    main = new()
    threading.setprofile(start_thread_profile)
    main.enable()
    try:
        fn()
    finally:
        main.disable()
        threading.setprofile(None)
    stats = pstats.Stats(main)
    for prof in profiles:
        prof.disable()
        stats.add(prof)
    return stats


def profile_deploy(director: Director, instances: int, max_in_flight: int, top: int = 15) -> str:
    """cProfile of one deploy, every thread of it, twice: CPU time, then wall time.

    CPU time (``time.thread_time`` per thread) says where the Python work is;
    wall time summed over threads adds the waits (vcsim, sleeps, other
    threads). Top ``top`` by cumulative CPU time, then both per category.
    """
    text = manifest(instances, max_in_flight, False, stemcell_os=director.stemcell_os)
    buf = io.StringIO()
    results = {}
    for kind, timer in (("CPU", time.thread_time), ("wall", None)):
        took: list[float] = []
        stats = _profiled(lambda took=took: took.append(director.deploy(text)), timer)
        director.delete()
        results[kind] = (stats, took[0])
    cpu, cpu_seconds = results["CPU"]
    wall, wall_seconds = results["wall"]
    buf.write(
        f"profile: deploy of {instances} instances, max_in_flight {max_in_flight}, no disk "
        f"({cpu_seconds:.2f}s under the CPU profiler, {wall_seconds:.2f}s under the wall one)\n"
        f"top {top} by cumulative CPU time (all threads):\n"
    )
    cpu.stream = buf  # type: ignore[attr-defined]
    cpu.sort_stats("cumulative").print_stats(top)
    for kind, stats in (("CPU", cpu), ("wall, summed over threads", wall)):
        parts = breakdown(stats)
        total = sum(v for _, v in parts) or 1.0
        buf.write(f"{kind} time by category (own time, {total:.1f}s in all):\n")
        for name, value in parts:
            buf.write(f"  {name:<42}{value:>8.2f}s {100 * value / total:>5.1f}%\n")
    return buf.getvalue()


# --------------------------------------------------------------------------- entry point


def run(
    instances: int = 20,
    max_in_flights: tuple[int, ...] = DEFAULT_MAX_IN_FLIGHT,
    delay_ms: int = 200,
    database: str = "postgres",
    profile: bool = False,
    out: Callable[[str], None] | None = None,
) -> list[Row]:
    """Run the deploy suite; print rows as they are measured; return them."""
    from opsconsole.localservices.vcsim import start_vcsim

    def say(line: str) -> None:
        print(line, flush=True)

    out = out or say
    rows: list[Row] = []
    with ExitStack() as stack:
        t0 = time.perf_counter()
        tmp = start_private_director(stack, database, "bench-deploy-")
        out(
            f"director on {database}: migrated, nats-server and blobstore up in "
            f"{time.perf_counter() - t0:.1f}s"
        )

        passes = [0] + ([delay_ms] if delay_ms else [])
        for delay in passes:
            delays = {"CloneVM_Task": delay, "PowerOnVM_Task": delay // 2} if delay else None
            with (
                start_vcsim(delays=delays, workdir=tmp / f"vcsim-{delay}") as vc,
                ExitStack() as agents,
            ):
                start_agents(agents, vc, tmp / f"vmruntime-{delay}")
                t0 = time.perf_counter()
                director = _fresh_director(vc, tmp / f"uploads-{delay}")
                title = (
                    f"vcsim latency: CloneVM_Task {delay} ms, PowerOnVM_Task {delay // 2} ms"
                    if delay
                    else "vcsim without injected latency"
                )
                out(
                    f"\n{title} (stemcell + release uploaded in {time.perf_counter() - t0:.1f}s);"
                    f"\nvs raw: seconds per instance / seconds per VM of the raw cycle with "
                    f"{director_threads(instances)} threads (the director's VM threads)\n{HEADER}"
                )
                rows += measure_pass(director, instances, max_in_flights, out)
                if profile and not delay:
                    out("\n" + profile_deploy(director, instances, max(max_in_flights)))
    return rows


def _fresh_director(vc, tmp: Path) -> Director:
    """Point the director at this vcsim; forget the previous vcsim's stemcell (not the release)."""
    from director.models import Stemcell

    Stemcell.objects.all().delete()
    tmp.mkdir(parents=True, exist_ok=True)
    return prepare_director(vc, tmp)


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.deploy ARGS`` = ``python -m benchmarks --suite deploy ARGS``."""
    from benchmarks.__main__ import main as benchmarks_main

    benchmarks_main(["--suite", "deploy", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
