"""``manage.py tasks [--state queued,processing] [--deployment D]``: list director tasks."""

from django.core.management.base import BaseCommand

from director import services
from director.management.progress import service_call, table


class Command(BaseCommand):
    help = "List director tasks, newest first."

    def add_arguments(self, parser):
        parser.add_argument("--state", default="", help="comma-separated states")
        parser.add_argument("--deployment", default=None)
        parser.add_argument("--limit", type=int, default=30)

    def handle(self, state, deployment, limit, **options):
        states = [s for s in state.split(",") if s] or None
        qs = service_call(services.list_tasks, states=states, deployment=deployment)
        rows = [
            [
                t.id,
                t.effective_state,
                t.started_at.strftime("%Y-%m-%d %H:%M:%S") if t.started_at else "",
                t.username,
                t.deployment_name,
                t.description,
                t.result[:80],
            ]
            for t in qs[:limit]
        ]
        headers = ["ID", "State", "Started", "User", "Deployment", "Description", "Result"]
        self.stdout.write(table(rows, headers))
