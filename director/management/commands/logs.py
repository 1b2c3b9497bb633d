"""``manage.py logs DEPLOYMENT [GROUP[/ID] ...] [--agent] [--dir DIR]``: ``bosh logs``.

Queues a ``fetch_logs`` task (every instance of the deployment, or the
ones named), follows it, then writes the bundle the task produced to
``DIR/<deployment>-<task id>.tgz`` (the current directory by default) and
prints its path.
"""

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from director import logs, services
from director.blobstore import blobstore
from director.management.progress import add_common, finish, service_call


class Command(BaseCommand):
    help = "Fetch the job (or agent) logs of a deployment's instances as a tgz."

    def add_arguments(self, parser):
        parser.add_argument("deployment")
        parser.add_argument("instances", nargs="*", help="GROUP or GROUP/ID (default: all)")
        parser.add_argument("--agent", action="store_true", help="the agent's logs, not the jobs'")
        parser.add_argument("--dir", default=".", help="where to write the tgz (default: .)")
        add_common(parser, wait=False)

    def handle(self, deployment, instances, agent, dir, user, **options):
        target = Path(dir)
        if not target.is_dir():
            raise CommandError(f"--dir {dir}: not a directory", returncode=1)
        task = service_call(
            logs.fetch_logs,
            deployment,
            user,
            instances=instances or None,
            log_type="agent" if agent else "job",
        )
        finish(self, task, wait=True)
        task = services.get_task(task.id)
        blob = logs.bundle_of(task)
        if not blob:
            raise CommandError(f"Task {task.id} produced no logs bundle", returncode=1)
        path = target / f"{deployment}-{task.id}.tgz"
        partial = path.with_name(f".{path.name}.partial")
        try:
            with blobstore().get(blob) as src, open(partial, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        self.stdout.write(f"Logs saved in {path}")
