"""``manage.py delete-deployment NAME [--force]``: delete a deployment as a task."""

from django.core.management.base import BaseCommand

from director import services
from director.management.progress import add_common, finish, service_call


class Command(BaseCommand):
    help = "Delete a deployment: its VMs are deleted, its persistent disks orphaned."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--force", action="store_true", help="go on past CPI errors")
        add_common(parser)

    def handle(self, name, force, user, no_wait, **options):
        finish(self, service_call(services.delete_deployment, name, user, force), wait=not no_wait)
