"""``manage.py start|stop|restart|recreate DEPLOYMENT GROUP[/ID]``: one command class per action.

Each queues a ``change_instance_state`` task (``director.instance_actions``)
for one instance (``GROUP/ID``, the uuid or the index) or a whole group
(``GROUP``) and follows it like ``bosh stop`` does; ``stop --hard`` also
deletes the VM, keeping its persistent disk.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from director import instance_actions
from director.management.progress import add_common, finish, service_call

HELP = {
    "start": "Start the jobs of an instance (a detached one gets its VM back).",
    "stop": "Stop the jobs of an instance, keeping its VM (--hard: delete the VM too).",
    "restart": "Stop then start the jobs of an instance.",
    "recreate": "Replace the VM of an instance, keeping its IPs and persistent disk.",
}


def command_for(action: str) -> type[BaseCommand]:
    class Command(BaseCommand):
        help = HELP[action]

        def add_arguments(self, parser):
            parser.add_argument("deployment")
            parser.add_argument("instance", help="GROUP or GROUP/ID (uuid or index)")
            if action == "stop":
                parser.add_argument(
                    "--hard", action="store_true", help="delete the VM, keep the disk"
                )
            add_common(parser)

        def handle(self, deployment, instance, user, no_wait, hard=False, **options):
            group, _, ident = instance.partition("/")
            task = service_call(
                instance_actions.change_instance_state,
                deployment,
                group,
                ident or None,
                action,
                user,
                hard=hard,
            )
            finish(self, task, wait=not no_wait)

    Command.__name__ = f"{action.capitalize()}Command"
    return Command
