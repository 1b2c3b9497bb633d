"""``manage.py cck DEPLOYMENT [--report | --auto | --resolution NAME ...]``: ``bosh cck``.

Scans the deployment (a ``cck_scan`` task, followed to its end), prints the
problems found with their resolutions, then, unless ``--report``, applies
resolutions as one task: ``--auto`` BOSH's automatic ones (and re-upload
for a stemcell vCenter lost), ``--resolution`` (repeatable) for each problem
the first named resolution it has (a problem with none of them is left open
and said so). Both together: the named resolutions where a problem has one,
the automatic one for the others. After vCenter lost everything, one
command brings the deployment back, forgetting the lost disks by choice::

    manage.py cck DEPLOYMENT --auto --resolution delete_disk_reference

Plain ``--auto`` keeps a persistent disk vCenter lost (``missing_disk``'s
automatic resolution is ``ignore``, as in BOSH: forgetting a disk is the
operator's call), so the instance on it is not recreated; the command then
says so and prints that next command.

Without ``--auto`` or ``--resolution`` it only reports, as a
non-interactive ``bosh cck`` cannot ask.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from director.health import cck
from director.management.progress import add_common, finish, service_call, table


class Command(BaseCommand):
    help = "Cloud check: scan a deployment for problems and apply resolutions."

    def add_arguments(self, parser):
        parser.add_argument("deployment")
        parser.add_argument("--report", action="store_true", help="only scan and list problems")
        parser.add_argument(
            "--auto",
            action="store_true",
            help="apply the automatic resolutions (to the problems --resolution does not name)",
        )
        parser.add_argument(
            "--resolution",
            action="append",
            default=[],
            help="apply this resolution where a problem has it (repeatable)",
        )
        add_common(parser, wait=False)

    def handle(self, deployment, report, auto, resolution, user, **options):
        if report and (auto or resolution):
            raise CommandError("--report cannot go with --auto or --resolution", returncode=2)
        finish(self, service_call(cck.scan_deployment, deployment, user), wait=True)
        problems = list(service_call(cck.open_problems, deployment))
        if not problems:
            self.stdout.write("No problems found")
            return
        rows = [
            [
                p.id,
                p.type,
                p.data.get("description", ""),
                ", ".join(n for n, _ in cck.RESOLUTIONS.get(p.type, ())),
            ]
            for p in problems
        ]
        self.stdout.write(table(rows, ["#", "Type", "Description", "Resolutions"]))
        self.stdout.write(f"{len(problems)} problem(s)")
        if report or not (auto or resolution):
            return
        chosen = {}
        if resolution:
            for p in problems:
                names = [n for n, _ in cck.RESOLUTIONS.get(p.type, ())]
                pick = next((r for r in resolution if r in names), None)
                if pick is None and auto:
                    pick = cck.AUTO[p.type]
                if pick is None:
                    self.stdout.write(
                        f"problem {p.id} ({p.type}) has none of {resolution}: left open"
                    )
                else:
                    chosen[str(p.id)] = pick
            if not chosen:
                raise CommandError("no problem has any of the resolutions given", returncode=1)
        task = service_call(
            cck.resolve_problems, deployment, chosen, user, auto=auto and not resolution
        )
        kept = [
            p
            for p in problems
            if p.type == "missing_disk"
            and chosen.get(str(p.id), cck.AUTO[p.type] if auto else None) == "ignore"
        ]
        try:
            finish(self, task, wait=True)
        finally:
            if kept:
                self.stdout.write(_lost_disks_hint(deployment, kept))


def _lost_disks_hint(deployment: str, kept: list) -> str:
    """What to run when --auto kept disks vCenter lost (their instances cannot be recreated)."""
    cids = ", ".join(p.data.get("disk_cid", "?") for p in kept)
    return (
        f"{len(kept)} persistent disk(s) missing from vCenter were kept ({cids}): --auto does "
        "not forget a disk (missing_disk's automatic resolution is ignore), so an instance on "
        "one is not recreated. To give those instances new empty disks (their data is lost), "
        f"run:\n    manage.py cck {deployment} --auto --resolution delete_disk_reference"
    )
