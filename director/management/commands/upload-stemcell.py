"""``manage.py upload-stemcell PATH``: check a stemcell tarball and import it as a task."""

from django.core.management.base import BaseCommand

from director import services
from director.management.progress import add_common, finish, service_call


class Command(BaseCommand):
    help = "Upload a stemcell tarball (.tgz) and follow its import into vCenter."

    def add_arguments(self, parser):
        parser.add_argument("path")
        add_common(parser)

    def handle(self, path, user, no_wait, **options):
        task = service_call(services.upload_stemcell, path, user)
        finish(self, task, wait=not no_wait)
