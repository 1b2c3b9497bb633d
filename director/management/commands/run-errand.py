"""``manage.py run-errand DEPLOYMENT ERRAND [--keep-alive] [--when-changed] [--instance G[/ID]]``.

Follows the task like ``bosh run-errand``, then prints each instance's exit
code, stdout and stderr from the task's result; a non-zero exit code fails
the command.
"""

import json

from django.core.management.base import BaseCommand

from director import runner, services
from director.management.progress import add_common, finish, service_call
from director.services import errands


class Command(BaseCommand):
    help = "Run an errand of a deployment and show its exit code and output."

    def add_arguments(self, parser):
        parser.add_argument("deployment")
        parser.add_argument("errand")
        parser.add_argument("--keep-alive", action="store_true", help="keep the errand VMs")
        parser.add_argument(
            "--when-changed",
            action="store_true",
            help="skip if nothing changed since the last successful run",
        )
        parser.add_argument(
            "--instance",
            action="append",
            default=[],
            dest="instances",
            help="run on group or group/id only (repeatable)",
        )
        add_common(parser)

    def handle(self, deployment, errand, keep_alive, when_changed, instances, user, no_wait, **o):
        task = service_call(
            errands.run_errand,
            deployment,
            errand,
            user,
            keep_alive=keep_alive,
            when_changed=when_changed,
            instances=instances or None,
        )
        try:
            finish(self, task, wait=not no_wait)
        finally:
            if not no_wait:
                self._print_results(task)

    def _print_results(self, task):
        task = services.get_task(task.id)
        text = runner.read_output(task, "result").text or ""
        for line in text.splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            instance = r.get("instance") or {}
            self.stdout.write(f"Instance   {instance.get('group')}/{instance.get('id')}")
            self.stdout.write(f"Exit Code  {r.get('exit_code')}")
            self.stdout.write(f"Stdout     {(r.get('stdout') or '-').rstrip()}")
            self.stdout.write(f"Stderr     {(r.get('stderr') or '-').rstrip()}")
            self.stdout.write("")
