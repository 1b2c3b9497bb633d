"""``manage.py task N [--event|--debug|--cpi|--result]``: follow or show one task's log."""

import json

from django.core.management.base import BaseCommand, CommandError

from director import services
from director.management.progress import service_call, wait_for_task


class Command(BaseCommand):
    help = (
        "Show a task: its event log followed to the end (default), or its debug, CPI or result log."
    )

    def add_arguments(self, parser):
        parser.add_argument("task_id", type=int)
        kind = parser.add_mutually_exclusive_group()
        for name in ("event", "debug", "cpi", "result"):
            kind.add_argument(f"--{name}", action="store_const", const=name, dest="kind")

    def handle(self, task_id, kind, **options):
        task = service_call(services.get_task, task_id)
        if kind is None:
            if wait_for_task(task, self.stdout) != 0:
                raise CommandError(f"Task {task_id} did not succeed", returncode=1)
            return
        _, out = service_call(services.task_output, task_id, kind, 0)
        if kind == "event":
            for e in out.events:
                self.stdout.write(json.dumps({k: v for k, v in e.items() if k != "seq"}))
        else:
            self.stdout.write(out.text, ending="")
