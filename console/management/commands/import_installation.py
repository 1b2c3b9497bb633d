"""``manage.py import_installation FILE [--force]``: restore an export on this console.

The same import as ``POST /api/v0/installation_asset_collection``: refused on
a console that already has products or deployments unless ``--force``; a
wrong passphrase or a corrupt file changes nothing. The passphrase comes from
``OPSCONSOLE_EXPORT_PASSPHRASE`` or the terminal.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from console.backup import installation
from opsconsole.errors import ServiceError

from .export_installation import read_passphrase


class Command(BaseCommand):
    help = "Import an installation export onto this (fresh) console."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the export written by export_installation or the API")
        parser.add_argument(
            "--force",
            action="store_true",
            help="replace the products and deployments this console already has",
        )

    def handle(self, *args, file, force, **options):
        source = Path(file)
        if not source.is_file():
            raise CommandError(f"{source}: no such file")
        passphrase = read_passphrase(confirm=False)
        try:
            with open(source, "rb") as fh:
                summary = installation.import_installation(
                    fh, passphrase, force=force, user="manage.py"
                )
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        rows = sum(summary.rows.values())
        created = (
            f"; users created: {', '.join(summary.users_created)}" if summary.users_created else ""
        )
        self.stdout.write(
            self.style.SUCCESS(f"Imported {rows} rows and {summary.files} files{created}.")
        )
