"""The deploy suite: a real director deploy per instance, against the raw pyvmomi floor.

Sets up a private director (its own data directory and database, migrated),
starts its own vcsim, points the director at it with a cpi-config, uploads
a cloud-config (two AZs over vcsim's two clusters, one manual network), the
stemcell (``cpi.stemcell_builder``) and the demo tile's release
(``tiles.demo``), then runs director tasks the way a worker does
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
import os
import pstats
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: max_in_flight values measured by default.
DEFAULT_MAX_IN_FLIGHT = (1, 5, 10)
DEPLOYMENT = "bench"
USER = "bench"


# --------------------------------------------------------------------------- environment


def setup_django(
    data_dir: Path, database_url: str, nats_url: str = "", blobstore_endpoint: str = ""
) -> None:
    """A private director: settings from the environment, then ``django.setup()`` + migrate.

    Must run before any model is imported. The broker is Kombu's in-memory
    transport: ``create_task`` still publishes (nobody consumes) and the
    benchmark runs the task itself with ``run_task``. ``nats_url`` and
    ``blobstore_endpoint`` are where the VMs' agents reach the director
    (``env.bosh.mbus``, ``env.bosh.blobstores``); the processes listening
    there are started by :func:`start_agent_services`.
    """
    os.environ["OPSCONSOLE_DATA_DIR"] = str(data_dir)
    os.environ["OPSCONSOLE_NATS_URL"] = nats_url
    os.environ["OPSCONSOLE_BLOBSTORE_ENDPOINT"] = blobstore_endpoint
    os.environ["DATABASE_URL"] = database_url
    os.environ["CELERY_BROKER_URL"] = "memory://localhost/"
    os.environ["CELERY_RESULT_BACKEND"] = "cache+memory://"
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"
    os.environ.setdefault("OPSCONSOLE_LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "opsconsole.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        # DATABASE_URL gives no busy timeout: threads of one deploy write at once.
        settings.DATABASES["default"].setdefault("OPTIONS", {}).update(
            {"timeout": 30, "transaction_mode": "IMMEDIATE"}
        )
    call_command("migrate", verbosity=0, interactive=False)


def start_agent_services(stack: ExitStack, tmp: Path, nats_port: int, web_port: int) -> None:
    """nats-server (the director's certificates and users) and the blobstore web server.

    As ``make run`` has them: the agents of the VM runtime connect to the bus
    with their VM's credentials and fetch blobs from ``/blobstore/`` of a
    gunicorn on the director's data directory and database (it inherits this
    process's environment, set by :func:`setup_django`).
    """
    from django.conf import settings

    from director.agents.nats_auth import prepare_server
    from opsconsole.localservices.nats import start_nats
    from opsconsole.localservices.web import start_blobstore_web

    files = prepare_server(Path(settings.NATS_DIR))
    nats, _ = start_nats(Path(settings.NATS_DIR), port=nats_port, **files)
    stack.callback(nats.stop)
    stack.callback(_close_director_mbus)  # before nats-server stops: no reconnect warnings
    web = start_blobstore_web(web_port, {}, tmp / "web.log")
    stack.callback(web.stop)


def _close_director_mbus() -> None:
    from director.agents import mbus

    if mbus._default is not None:
        mbus._default.close()


def start_agents(stack: ExitStack, vc, workdir: Path) -> None:
    """The VM runtime on this vcsim: an agent in every VM the director powers on."""
    from opsconsole.localservices.vmruntime import start_vmruntime, write_vcenter_file

    workdir.mkdir(parents=True, exist_ok=True)
    runtime = start_vmruntime(
        workdir / "data",
        write_vcenter_file(workdir / "vcsim.json", vc),
        log_path=workdir / "vmruntime.log",
        heartbeat_interval=1.0,
        monit_interval=0.5,
    )
    stack.callback(runtime.stop, timeout=30)


def cpi_config(vc) -> str:
    """A BOSH cpi-config naming the vcsim: the CPI suite's vCenter entry under ``cpis``."""
    from benchmarks.__main__ import cpi_properties

    vcenter = cpi_properties(vc)["vcenters"][0]
    return yaml.safe_dump(
        {"cpis": [{"name": "bench-vcsim", "type": "vsphere", "properties": vcenter}]}
    )


def cloud_config(vc) -> str:
    """Two AZs, one per vcsim cluster; a manual network with a /22 per AZ (up to ~1000 VMs)."""
    inv = vc.inventory
    dc = inv["datacenters"][0]
    clusters = list(inv["clusters"])
    portgroup = inv["portgroups"][0]
    azs, subnets = [], []
    for i in range(2):
        az = f"z{i + 1}"
        azs.append(
            {
                "name": az,
                "cloud_properties": {
                    "datacenters": [{"name": dc, "clusters": [{clusters[i % len(clusters)]: {}}]}]
                },
            }
        )
        base = 4 * (i + 1)
        subnets.append(
            {
                "range": f"10.20.{base}.0/22",
                "gateway": f"10.20.{base}.1",
                "dns": ["10.20.0.2"],
                "reserved": [f"10.20.{base}.2 - 10.20.{base}.9"],
                "azs": [az],
                "cloud_properties": {"name": portgroup},
            }
        )
    return yaml.safe_dump(
        {
            "azs": azs,
            "vm_types": [
                {"name": "small", "cloud_properties": {"cpu": 1, "ram": 256, "disk": 256}},
                {"name": "large", "cloud_properties": {"cpu": 2, "ram": 512, "disk": 256}},
            ],
            "disk_types": [{"name": "1GB", "disk_size": 1024}],
            "networks": [{"name": "default", "type": "manual", "subnets": subnets}],
            "compilation": {"workers": 1, "network": "default", "az": "z1", "vm_type": "small"},
        },
        sort_keys=False,
    )


def manifest(
    instances: int,
    max_in_flight: int,
    disk: bool,
    vm_type: str = "small",
    stemcell_os: str = "",
    compiled: bool = False,
) -> str:
    """One group of ``instances`` demo workers over z1 and z2 (watch times of 1 ms).

    ``compiled``: the ``bench-ticker`` job instead (``benchmarks.agent_release``:
    a compiled package, a monit process), watched until running (up to 60 s).
    """
    from benchmarks.agent_release import JOB, RELEASE
    from tiles.demo import RELEASE_NAME

    job = {
        "name": "demo-worker",
        "release": RELEASE_NAME,
        "properties": {"demo": {"queues": ["q1"], "storage": {"local": {}}}},
    }
    release = RELEASE_NAME
    watch: int | str = 1
    if compiled:
        job, release, watch = (
            {"name": JOB, "release": RELEASE, "properties": {}},
            RELEASE,
            "1-60000",
        )
    group: dict[str, Any] = {
        "name": "worker",
        "azs": ["z1", "z2"],
        "instances": instances,
        "jobs": [job],
        "vm_type": vm_type,
        "stemcell": "default",
        "networks": [{"name": "default"}],
    }
    if disk:
        group["persistent_disk_type"] = "1GB"
    return yaml.safe_dump(
        {
            "name": DEPLOYMENT,
            "releases": [{"name": release, "version": "latest"}],
            "stemcells": [{"alias": "default", "os": stemcell_os, "version": "latest"}],
            "update": {
                "canaries": 1,
                "max_in_flight": max_in_flight,
                "canary_watch_time": watch,
                "update_watch_time": watch,
            },
            "instance_groups": [group],
        },
        sort_keys=False,
    )


class BenchFailed(RuntimeError):
    """A director task of the benchmark did not end ``done``."""


def run_inline(task) -> Any:
    """Run a queued task here, as a worker would; raise unless it ends ``done``."""
    from director import runner
    from director.models import Task, TaskState

    if not task.is_terminal:
        runner.run_task(task.id)
    task = Task.objects.get(id=task.id)
    if task.state != TaskState.DONE:
        raise BenchFailed(f"task {task.id} ({task.description}) ended {task.state}: {task.result}")
    return task


@dataclass
class Director:
    """The benchmark's director: configured, with a stemcell and a release uploaded."""

    vc: Any
    stemcell_cid: str
    stemcell_os: str

    def deploy(self, text: str) -> float:
        from director.services import deployments

        start = time.perf_counter()
        run_inline(deployments.deploy(text, USER))
        return time.perf_counter() - start

    def delete(self) -> float:
        from director.services import deployments

        start = time.perf_counter()
        run_inline(deployments.delete_deployment(DEPLOYMENT, USER))
        return time.perf_counter() - start

    def vm_count(self) -> int:
        from director.models import Vm

        return Vm.objects.filter(instance__deployment__name=DEPLOYMENT).count()


def prepare_director(vc, tmp: Path) -> Director:
    """cpi-config and cloud-config, then the stemcell and release through the upload tasks."""
    from benchmarks.agent_release import RELEASE, build_compiled_release
    from cpi.stemcell_builder import build_stemcell
    from director import services
    from director.models import Release, Stemcell
    from tiles.demo import build_release

    services.update_config("cpi", "default", cpi_config(vc), USER)
    services.update_config("cloud", "default", cloud_config(vc), USER)
    stemcell = build_stemcell(tmp / "stemcell.tgz")
    run_inline(services.upload_stemcell(stemcell, USER))
    run_inline(services.upload_release(build_release(tmp / "release"), USER))
    if not Release.objects.filter(name=RELEASE).exists():
        run_inline(services.upload_release(build_compiled_release(tmp / "ticker.tgz"), USER))
    sc = Stemcell.objects.get()
    return Director(vc, sc.cid, sc.operating_system)


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
    import tempfile

    from opsconsole.localservices.process import free_port
    from opsconsole.localservices.vcsim import start_vcsim

    def say(line: str) -> None:
        print(line, flush=True)

    out = out or say
    rows: list[Row] = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-deploy-")))
        os.chmod(tmp, 0o755)  # PostgreSQL runs as its own user when we are root
        if database == "postgres":
            from opsconsole.localservices.postgres import start_postgres

            pg, url = start_postgres(tmp / "postgres")
            stack.callback(pg.stop)
        elif database == "sqlite":
            url = f"sqlite:///{tmp}/bench.sqlite3"
        else:
            raise ValueError(f"--db: unknown database {database!r} (sqlite or postgres)")
        t0 = time.perf_counter()
        nats_port, web_port = free_port(), free_port()
        setup_django(
            tmp / "data",
            url,
            nats_url=f"nats://127.0.0.1:{nats_port}",
            blobstore_endpoint=f"http://127.0.0.1:{web_port}/blobstore",
        )
        start_agent_services(stack, tmp, nats_port, web_port)
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
