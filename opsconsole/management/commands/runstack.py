"""``manage.py runstack``: start Redis, vcsim, a Celery worker and beat, and the web server.

This is what ``make run`` ends in. Everything listens on 127.0.0.1; logs go to
``<data dir>/logs/``. Ctrl-C (or ``make stop``, which sends SIGTERM to the pid
in ``<data dir>/runstack.pid``) stops every process it started.
"""

import json
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from opsconsole.localservices.celery import start_beat, start_worker
from opsconsole.localservices.process import ManagedProcess, wait_for_port
from opsconsole.localservices.redis import start_redis


class Command(BaseCommand):
    help = "Run the whole console locally: Redis, vcsim, Celery worker + beat, web server."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--redis-port", type=int, default=int(os.environ.get("REDIS_PORT", "6379"))
        )
        parser.add_argument(
            "--vcsim-port", type=int, default=int(os.environ.get("VCSIM_PORT", "8989"))
        )

    def handle(self, *args, port, redis_port, vcsim_port, **options):
        from opsconsole.localservices.vcsim import start_vcsim

        data = settings.DATA_DIR
        logs = data / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        pidfile = data / "runstack.pid"
        pidfile.write_text(str(os.getpid()))
        started: list = []
        stopping = False

        def stop(*_):
            nonlocal stopping
            if stopping:
                return
            stopping = True
            self.stdout.write("Stopping ...")
            for proc in reversed(started):
                proc.stop()
            settings.LOCAL_VCSIM_FILE.unlink(missing_ok=True)
            pidfile.unlink(missing_ok=True)
            sys.exit(0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            redis_proc, broker = start_redis(data / "redis", redis_port)
            started.append(redis_proc)
            self.stdout.write(f"redis    {broker}  (log {redis_proc.log_path})")

            vcsim = start_vcsim(
                clusters=2,
                hosts=3,
                datastores=2,
                portgroups=2,
                listen=f"127.0.0.1:{vcsim_port}",
                workdir=data / "vcsim",
            )
            started.append(vcsim)
            facts = {
                "host": vcsim.host,
                "url": vcsim.url,
                "username": vcsim.username,
                "password": vcsim.password,
                "cert_file": str(vcsim.cert_file),
                "inventory": vcsim.inventory,
            }
            settings.LOCAL_VCSIM_FILE.write_text(json.dumps(facts, indent=2))
            os.chmod(settings.LOCAL_VCSIM_FILE, 0o600)
            self.stdout.write(
                f"vcsim    {vcsim.url}  (the default vCenter until the Director tile names another)"
            )

            env = {"CELERY_BROKER_URL": broker, "DJANGO_SETTINGS_MODULE": "opsconsole.settings"}
            worker = start_worker(env, logs / "worker.log", concurrency=2)
            started.append(worker)
            beat = start_beat(env, logs / "beat.log", data / "celerybeat-schedule")
            started.append(beat)
            self.stdout.write(f"celery   worker and beat  (logs {logs}/worker.log, beat.log)")

            web = ManagedProcess(
                "web",
                [
                    sys.executable,
                    "manage.py",
                    "runserver",
                    f"127.0.0.1:{port}",
                    "--noreload",
                    "--insecure",
                ],
                logs / "web.log",
                env=env,
                cwd=settings.BASE_DIR,
            )
            started.append(web)
            wait_for_port(port, 30, web.proc, "web server")
        except Exception as exc:
            for proc in reversed(started):
                proc.stop()
            pidfile.unlink(missing_ok=True)
            raise CommandError(str(exc)) from exc

        # The demo tile and stemcell, so a newcomer can import, configure and apply at once.
        seed = subprocess.run(
            [sys.executable, "manage.py", "seed_demo", "--import"],
            env={**os.environ, **env},
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
        )
        if seed.returncode == 0:
            self.stdout.write(seed.stdout.strip())
        else:
            self.stderr.write(
                f"seeding the demo tile failed (the console runs without it):\n{seed.stderr.strip()}"
            )

        self.stdout.write(
            self.style.SUCCESS(
                f"\nopsconsole is up: http://127.0.0.1:{port}/   (Ctrl-C or `make stop` stops everything)"
            )
        )
        while True:
            for proc in started:
                if not proc.alive():
                    self.stderr.write(
                        f"{proc.name} exited; last lines of {proc.log_path}:\n{proc.tail()}"
                    )
                    stop()
            time.sleep(1)
