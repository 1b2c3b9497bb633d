"""``manage.py runstack``: run the whole console locally, and keep it running.

This is what ``make run`` ends in: Redis, the message bus (nats-server with
TLS and client certificates), vcsim and the VM runtime (the agents inside
vcsim's VMs, ``tools/vmruntime``), a Celery worker and beat, the web server
(gunicorn, static files through whitenoise; HTTPS when configured) and the
agent listener (agents' heartbeats and alerts), all on 127.0.0.1, under a :class:`Supervisor` that restarts a
part that dies (with backoff, logged to the terminal and to
``<data dir>/logs/runstack.log``). Ports in use are reported before anything
starts, naming the variable to change. Ctrl-C, SIGTERM or ``make stop``
(``manage.py stopstack``) stops every part; children die with us even if we
are killed outright.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from director.agents.nats_auth import prepare_server
from director.models import Vm
from opsconsole.localservices.celery import start_beat, start_worker
from opsconsole.localservices.nats import start_nats
from opsconsole.localservices.process import ManagedProcess, port_in_use, wait_for_port
from opsconsole.localservices.redis import start_redis
from opsconsole.localservices.supervisor import Part, Supervisor, process_alive, read_state
from opsconsole.localservices.tls import self_signed_certificate
from opsconsole.localservices.vcsim import start_vcsim
from opsconsole.localservices.vmruntime import start_vmruntime


class StopRequested(Exception):
    """SIGTERM or SIGINT arrived while parts were still starting."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise CommandError(f"{name}={raw!r} is not a number") from None


class Command(BaseCommand):
    help = "Run the whole console locally: Redis, vcsim, Celery worker + beat, web server."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=None, help="web server port (PORT)")
        parser.add_argument("--redis-port", type=int, default=None, help="REDIS_PORT")
        parser.add_argument("--vcsim-port", type=int, default=None, help="VCSIM_PORT")
        parser.add_argument("--nats-port", type=int, default=None, help="NATS_PORT")
        parser.add_argument(
            "--no-seed", action="store_true", help="do not import the demo tile and stemcell"
        )

    def handle(self, *args, port, redis_port, vcsim_port, nats_port, no_seed, **options):
        ports = {
            "PORT": port or _env_int("PORT", 8000),
            "REDIS_PORT": redis_port or _env_int("REDIS_PORT", 6379),
            "VCSIM_PORT": vcsim_port or _env_int("VCSIM_PORT", 8989),
            "NATS_PORT": nats_port or _env_int("NATS_PORT", 4222),
        }
        workers = _env_int("OPSCONSOLE_WEB_WORKERS", 2)
        if workers < 1:
            raise CommandError("OPSCONSOLE_WEB_WORKERS must be 1 or more")
        data = settings.DATA_DIR
        logs = data / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        pidfile = data / "runstack.pid"
        state_file = data / "runstack.json"

        running = read_state(state_file).get("pid")
        if running and running != os.getpid() and process_alive(running):
            raise CommandError(
                f"opsconsole is already running from this data dir (pid {running}); "
                "`make stop` stops it"
            )
        self._check_ports(ports)
        tls = self._tls_files(data)
        scheme = "https" if tls else "http"

        log_file = open(logs / "runstack.log", "a", buffering=1)  # noqa: SIM115 - closed below

        def say(message: str) -> None:
            self.stdout.write(message)
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
            log_file.write(f"{stamp} {message}\n")

        env = {"DJANGO_SETTINGS_MODULE": "opsconsole.settings"}
        web_url = f"{scheme}://127.0.0.1:{ports['PORT']}/"
        parts = [
            Part("redis", lambda: self._start_redis(data, ports["REDIS_PORT"], env, say)),
            Part("nats", lambda: self._start_nats(ports["NATS_PORT"], env, say)),
            Part("vcsim", lambda: self._start_vcsim(data, ports["VCSIM_PORT"], say)),
            Part("vmruntime", lambda: self._start_vmruntime(data, logs, say)),
            Part("worker", lambda: start_worker(env, logs / "worker.log", concurrency=2)),
            Part("beat", lambda: start_beat(env, logs / "beat.log", data / "celerybeat-schedule")),
            Part("web", lambda: self._start_web(ports["PORT"], workers, tls, env, logs)),
            Part("agent-listener", lambda: self._start_agent_listener(env, logs)),
        ]
        supervisor = Supervisor(parts, say, state_file)
        starting = True

        def on_signal(signum, _frame):
            supervisor.stopping.set()
            if starting:
                raise StopRequested(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        pidfile.write_text(str(os.getpid()))
        try:
            try:
                supervisor.start_all()
                say(f"celery   worker and beat  (logs {logs}/worker.log, beat.log)")
                say(f"web      {web_url}  (gunicorn, {workers} workers; log {logs}/web.log)")
                if not no_seed:
                    self._seed(env, say)
            except StopRequested:
                return
            except Exception as exc:
                raise CommandError(str(exc)) from exc
            finally:
                starting = False
            if supervisor.stopping.is_set():
                return
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nopsconsole is up: {web_url}   (Ctrl-C or `make stop` stops everything)"
                )
            )
            supervisor.watch()
        finally:
            say("stopping ...")
            supervisor.stop_all()
            settings.LOCAL_VCSIM_FILE.unlink(missing_ok=True)
            pidfile.unlink(missing_ok=True)
            state_file.unlink(missing_ok=True)
            say("stopped")
            log_file.close()

    # -- before anything starts ---------------------------------------------

    def _check_ports(self, ports: dict[str, int]) -> None:
        problems = []
        seen: dict[int, str] = {}
        for var, number in ports.items():
            if number in seen:
                problems.append(f"{var} and {seen[number]} are both {number}")
            seen[number] = var
            if not 0 < number < 65536:
                problems.append(f"{var}={number} is not a TCP port")
            elif port_in_use(number):
                problems.append(
                    f"port {number} on 127.0.0.1 is in use by another program: "
                    f"set {var} to a free port (e.g. {var}={number + 1} make run)"
                )
        if problems:
            raise CommandError("nothing was started:\n  " + "\n  ".join(problems))

    def _tls_files(self, data) -> tuple[str, str] | None:
        if settings.TLS_CERT_FILE or settings.TLS_KEY_FILE:
            cert, key = settings.TLS_CERT_FILE, settings.TLS_KEY_FILE
            for var, path in (("OPSCONSOLE_TLS_CERT", cert), ("OPSCONSOLE_TLS_KEY", key)):
                if not path:
                    raise CommandError(f"{var} is not set: give both the certificate and its key")
                if not os.access(path, os.R_OK):
                    raise CommandError(f"{var}={path}: no readable file there")
            return cert, key
        if settings.TLS_SELF_SIGNED:
            cert, key = self_signed_certificate(data / "tls", settings.ALLOWED_HOSTS)
            return str(cert), str(key)
        if os.environ.get("OPSCONSOLE_TLS"):
            raise CommandError(
                f"OPSCONSOLE_TLS={os.environ['OPSCONSOLE_TLS']!r}: the only value is 'self-signed' "
                "(or give OPSCONSOLE_TLS_CERT and OPSCONSOLE_TLS_KEY)"
            )
        return None

    # -- the parts ------------------------------------------------------------

    def _start_redis(self, data, port, env, say):
        proc, broker = start_redis(data / "redis", port)
        env["CELERY_BROKER_URL"] = broker
        say(f"redis    {broker}  (log {proc.log_path})")
        return proc

    def _start_nats(self, port, env, say):
        try:
            agent_ids = list(Vm.objects.values_list("agent_id", flat=True))
        except DatabaseError:  # not migrated yet: the agent listener adds them later
            agent_ids = []
        files = prepare_server(settings.NATS_DIR, agent_ids)
        proc, url = start_nats(settings.NATS_DIR, port=port, **files)
        env["OPSCONSOLE_NATS_URL"] = url
        say(f"nats     {url}  (TLS, client certificates; log {proc.log_path})")
        return proc

    def _start_agent_listener(self, env, logs):
        argv = [sys.executable, "manage.py", "agent_listener"]
        return ManagedProcess(
            "agent-listener", argv, logs / "agent-listener.log", env=env, cwd=settings.BASE_DIR
        )

    def _start_vcsim(self, data, port, say):
        vcsim = start_vcsim(
            clusters=2,
            hosts=3,
            datastores=2,
            portgroups=2,
            listen=f"127.0.0.1:{port}",
            workdir=data / "vcsim",
        )
        facts = {
            "host": vcsim.host,
            "url": vcsim.url,
            "username": vcsim.username,
            "password": vcsim.password,
            "cert_file": str(vcsim.cert_file),
            "inventory": vcsim.inventory,
        }
        path = settings.LOCAL_VCSIM_FILE
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(facts, indent=2))
        os.replace(path.with_suffix(".tmp"), path)
        say(f"vcsim    {vcsim.url}  (the default vCenter until the Director tile names another)")
        return vcsim

    def _start_vmruntime(self, data, logs, say):
        """The agents inside vcsim's VMs (tools/vmruntime): it watches the vCenter vcsim serves."""
        proc = start_vmruntime(
            data / "vmruntime", settings.LOCAL_VCSIM_FILE, log_path=logs / "vmruntime.log"
        )
        say(f"vmruntime  the agents of vcsim's VMs  (log {proc.log_path})")
        return proc

    def _start_web(self, port, workers, tls, env, logs):
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "opsconsole.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--timeout",
            "120",
            "--graceful-timeout",
            "10",
            "--access-logfile",
            "-",
            "--error-logfile",
            "-",
        ]
        if tls:
            argv += ["--certfile", tls[0], "--keyfile", tls[1]]
        web = ManagedProcess("web", argv, logs / "web.log", env=env, cwd=settings.BASE_DIR)
        try:
            wait_for_port(port, 30, web.proc, "the web server (gunicorn)")
        except Exception:
            web.stop()
            raise
        return web

    def _seed(self, env, say) -> None:
        """The demo tile and stemcell, so a newcomer can import, configure and apply at once."""
        seed = subprocess.run(
            [sys.executable, "manage.py", "seed_demo", "--import"],
            env={**os.environ, **env},
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
        )
        if seed.returncode == 0:
            say(seed.stdout.strip())
        else:
            say(
                f"seeding the demo tile failed (the console runs without it):\n{seed.stderr.strip()}"
            )
