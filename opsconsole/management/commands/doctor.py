"""``manage.py doctor``: check DB, broker, worker and vCenter, and say what is wrong."""

from django.core.management.base import BaseCommand

from opsconsole.doctor import run_checks


class Command(BaseCommand):
    help = "Check that the database, Redis, a Celery worker and vCenter are reachable."

    def handle(self, *args, **options):
        checks = run_checks(quick=False)
        for check in checks:
            mark = self.style.SUCCESS("ok  ") if check.ok else self.style.ERROR("FAIL")
            self.stdout.write(f"{mark} {check.name:9} {check.detail}")
        if not all(c.ok for c in checks):
            raise SystemExit(1)
