"""``manage.py export_installation FILE``: write the installation, passphrase-encrypted.

The same export as ``GET /api/v0/installation_asset_collection`` (see
``console.backup.installation``). The passphrase is read from
``OPSCONSOLE_EXPORT_PASSPHRASE`` or asked for twice on the terminal, never
taken as an argument (the process list shows arguments). The file is written
next to FILE and renamed into place once complete, mode 0600.
"""

import os
from getpass import getpass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from console.backup import installation
from opsconsole.errors import ServiceError

PASSPHRASE_VARIABLE = "OPSCONSOLE_EXPORT_PASSPHRASE"


def read_passphrase(confirm: bool) -> str:
    given = os.environ.get(PASSPHRASE_VARIABLE)
    if given:
        return given
    try:
        first = getpass("Export passphrase: ")
        if confirm and getpass("Again: ") != first:
            raise CommandError("The passphrases differ; nothing was done.")
    except EOFError:
        raise CommandError(
            f"No passphrase: set {PASSPHRASE_VARIABLE} or run on a terminal."
        ) from None
    return first


class Command(BaseCommand):
    help = "Export the installation (rows, secrets, data-dir files) to a passphrase-encrypted file."

    def add_arguments(self, parser):
        parser.add_argument("file", help="where to write the export (a .zip)")

    def handle(self, *args, file, **options):
        target = Path(file)
        if target.is_dir():
            raise CommandError(f"{target}: is a directory; name the file to write")
        passphrase = read_passphrase(confirm=True)
        tmp = target.with_name(f".{target.name}.partial")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                summary = installation.export_installation(out, passphrase, user="manage.py")
            os.replace(tmp, target)
        except ServiceError as exc:
            tmp.unlink(missing_ok=True)
            raise CommandError(str(exc)) from None
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise CommandError(f"{target}: {exc.strerror or exc}") from None
        rows = sum(summary.rows.values())
        self.stdout.write(
            self.style.SUCCESS(
                f"Exported {rows} rows and {summary.files} files ({summary.bytes} bytes) to "
                f"{target}. Keep the passphrase: without it the file cannot be imported."
            )
        )
