"""The private director the deploy and resurrect suites deploy with.

``start_private_director`` sets it up in a temporary directory: its own
database (a private PostgreSQL, or SQLite), Django's settings from the
environment and migrated, nats-server with the director's certificates and
users, and a gunicorn serving the blobstore, all stopped by the caller's
``ExitStack``. ``start_agents`` adds the VM runtime on a vcsim;
``prepare_director`` uploads the cpi-config, cloud-config, stemcell and
releases; ``manifest`` is the deployment both suites deploy, and
``Director`` runs its tasks inline (``run_inline``), as a worker would.

Django's models and settings are imported inside the functions: only after
``setup_django`` can they be.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from opsconsole.localservices.postgres import start_postgres
from opsconsole.localservices.process import free_port

DEPLOYMENT = "bench"
USER = "bench"


def start_private_director(stack: ExitStack, database: str, prefix: str) -> Path:
    """A temporary directory with the director's database, Django, nats-server and blobstore.

    ``database`` is ``postgres`` (a private PostgreSQL in the directory) or
    ``sqlite``; anything else is a ``ValueError`` naming ``--db``. Returns
    the directory; everything started is stopped (and the directory removed)
    when ``stack`` closes.
    """
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
    os.chmod(tmp, 0o755)  # PostgreSQL runs as its own user when we are root
    if database == "postgres":
        pg, url = start_postgres(tmp / "postgres")
        stack.callback(pg.stop)
    elif database == "sqlite":
        url = f"sqlite:///{tmp}/bench.sqlite3"
    else:
        raise ValueError(f"--db: unknown database {database!r} (sqlite or postgres)")
    nats_port, web_port = free_port(), free_port()
    setup_django(
        tmp / "data",
        url,
        nats_url=f"nats://127.0.0.1:{nats_port}",
        blobstore_endpoint=f"http://127.0.0.1:{web_port}/blobstore",
    )
    start_agent_services(stack, tmp, nats_port, web_port)
    return tmp


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
