"""``manage.py move_old_release_blobs``: release jobs and packages an older console kept by
their sha1 (``BLOBSTORE_DIR/ab/ab12...``) moved under blob ids of the blobstore, as
migration ``director 0006`` does (``director.blobstore.legacy``). Run it after putting a
file it reported missing back at its old path; a second run changes nothing."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from director.blobstore.legacy import move_old_release_blobs
from director.models import ReleaseJob, ReleasePackage


class Command(BaseCommand):
    help = "Move release blobs an older console kept by sha1 under blobstore ids."

    def handle(self, **options):
        with transaction.atomic():  # old files go once the rows naming new blobs commit
            report = move_old_release_blobs(ReleaseJob, ReleasePackage, say=self.stdout.write)
        if report.left:
            raise CommandError(
                f"{len(report.left)} release job/package row(s) left as they were (see above)"
            )
        if not report.moved:
            self.stdout.write("No release blob is left in the old layout.")
