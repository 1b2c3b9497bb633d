"""``manage.py rotate_encryption_key``: re-encrypt every secret under a new key.

With the key in the data dir (the default), a new key is generated (or taken
from ``OPSCONSOLE_NEW_ENCRYPTION_KEY``), every encrypted column is
re-encrypted in one transaction, and the new key replaces
``<data dir>/encryption_key``; running web workers and the Celery worker
adopt it on their next read. The console may stay up.

With the key given by ``OPSCONSOLE_ENCRYPTION_KEY``, running processes cannot
learn a new one: stop the console, run this with
``OPSCONSOLE_NEW_ENCRYPTION_KEY`` set, then set ``OPSCONSOLE_ENCRYPTION_KEY``
to the new key and start again. Without the new key it refuses and changes
nothing (and suggests a fresh key).
"""

import os

from django.core.management.base import BaseCommand, CommandError

from console.backup import keys
from opsconsole import crypto
from opsconsole.errors import ServiceError


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under a new encryption key (one transaction)."

    def handle(self, *args, **options):
        new_key = os.environ.get(keys.NEW_KEY_VARIABLE, "").strip() or None
        source = keys.key_source()
        if source == "environment" and new_key is None:
            raise CommandError(
                "The encryption key comes from OPSCONSOLE_ENCRYPTION_KEY, which running "
                "processes cannot learn anew. Nothing was changed. To rotate it:\n"
                "  1. stop the web server and the Celery worker;\n"
                f"  2. run this command again with {keys.NEW_KEY_VARIABLE} set to the new key "
                f"(a fresh one: {keys.generate_key()});\n"
                "  3. set OPSCONSOLE_ENCRYPTION_KEY to that key wherever the console runs, "
                "and start it."
            )
        try:
            result = keys.rotate_encryption_key(new_key, user="manage.py")
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        if result.finished_interrupted:
            self.stdout.write("Finished a rotation that was interrupted after its commit.")
        for label, count in result.columns.items():
            self.stdout.write(f"  {label}: {count} re-encrypted")
        self.stdout.write(f"Re-encrypted {result.values} values.")
        if source == "environment":
            self.stdout.write(
                self.style.WARNING(
                    f"Now set OPSCONSOLE_ENCRYPTION_KEY to the value of {keys.NEW_KEY_VARIABLE} "
                    "wherever the console runs (web server and worker) and start it: the old "
                    "key opens nothing any more."
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"The new key is in {crypto.key_file()}; running processes use it from their "
                    "next read. Back it up now: copies of the old key open nothing any more."
                )
            )
