"""``manage.py events [--deployment D] [--task N] ...``: the audit events, newest first."""

import json

from django.core.management.base import BaseCommand

from director import services
from director.management.progress import service_call, table

FILTERS = ("deployment", "task", "instance", "action", "object_type", "object_name", "before_id")


class Command(BaseCommand):
    help = "List audit events (BOSH's `bosh events`), newest first."

    def add_arguments(self, parser):
        for name in FILTERS:
            parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None)
        parser.add_argument("--event-user", dest="user", default=None)
        parser.add_argument("--limit", type=int, default=50)

    def handle(self, limit, **options):
        filters = {k: options.get(k) for k in (*FILTERS, "user")}
        events = service_call(services.list_events, filters, limit=limit)
        rows = [
            [
                f"{e.id}{' <- ' + str(e.parent_id) if e.parent_id else ''}",
                e.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
                e.user,
                e.action,
                e.object_type,
                e.object_name,
                e.task or "",
                e.deployment,
                e.instance,
                json.dumps(e.context) if e.context else "",
                e.error,
            ]
            for e in events
        ]
        headers = [
            "ID",
            "Time",
            "User",
            "Action",
            "Object type",
            "Object name",
            "Task",
            "Deployment",
            "Instance",
            "Context",
            "Error",
        ]
        self.stdout.write(table(rows, headers))
