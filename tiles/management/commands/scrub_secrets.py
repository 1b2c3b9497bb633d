"""``manage.py scrub_secrets``: replace secrets an older console left in clear.

Rewrites every row and task log holding a tile secret, a director variable
or the vCenter password in clear with the reference the console writes now
(or ``((redacted))``), as the ``tiles`` migration ``0006_scrub_secrets`` did
at upgrade; see ``tiles.services.scrub``. Rows change in one transaction,
task logs after it commits. Prints what changed (table, row, column and how
many values; files; variable names stored), never a value. A second run
changes nothing. Refused while a director task or an Apply Changes runs: the
files they append to would be rewritten under them.
"""

from django.core.management.base import BaseCommand, CommandError

from opsconsole.errors import ServiceError
from tiles.services.busy import refuse_while_busy
from tiles.services.scrub import file_lines, scrub_secrets


class Command(BaseCommand):
    help = "Replace secrets an older console stored in clear by variable references."

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-render",
            action="store_true",
            help="replace by value only, without re-rendering the deployed tiles",
        )

    def handle(self, *args, **options):
        try:
            refuse_while_busy("scrub secrets")
        except ServiceError as exc:
            raise CommandError(
                "; ".join(m for ms in exc.errors.values() for m in ms) + " Nothing was changed."
            ) from None

        def files(changes):
            for line in file_lines(changes):
                self.stdout.write(line)

        report = scrub_secrets(render=not options["no_render"], on_files=files)
        for line in report.lines(files=False):
            self.stdout.write(line)
        if not report.changed:
            self.stdout.write("No secret in clear found; nothing changed.")
