"""``manage.py upload-release PATH``: check a release tarball and store it as a task."""

from django.core.management.base import BaseCommand

from director import services
from director.management.progress import add_common, finish, service_call


class Command(BaseCommand):
    help = "Upload a release tarball (.tgz): its jobs and packages are stored, nothing is compiled."

    def add_arguments(self, parser):
        parser.add_argument("path")
        add_common(parser)

    def handle(self, path, user, no_wait, **options):
        task = service_call(services.upload_release, path, user)
        finish(self, task, wait=not no_wait)
