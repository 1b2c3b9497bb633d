"""``manage.py deploy MANIFEST [-o OPS]... [--var name=value]... [--recreate] [--dry-run] [--fix]``.

``--fix`` (BOSH ``bosh deploy --fix``): instances whose VM vCenter no longer
has, or whose agent does not answer a ping, are recreated as part of the
deploy (same IPs, persistent disk reattached), even when the manifest did
not change; a plain deploy leaves them as they are.
"""

from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError

from director import services
from director.management.progress import add_common, finish, service_call


class Command(BaseCommand):
    help = "Deploy a BOSH v2 manifest (with ops files and variables) and follow the task."

    def add_arguments(self, parser):
        parser.add_argument("manifest")
        parser.add_argument("-o", "--ops-file", action="append", default=[], dest="ops_files")
        # -v is Django's --verbosity, so variables are --var only (BOSH: -v)
        parser.add_argument("--var", action="append", default=[], dest="vars")
        parser.add_argument("-l", "--vars-file", action="append", default=[], dest="vars_files")
        parser.add_argument("--recreate", action="store_true")
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument(
            "--fix",
            action="store_true",
            help="also recreate instances whose VM is missing or whose agent does not answer",
        )
        add_common(parser)

    def handle(
        self, manifest, ops_files, vars, vars_files, recreate, dry_run, fix, user, no_wait, **o
    ):
        text = _read(manifest)
        ops = []
        for path in ops_files:
            doc = yaml.safe_load(_read(path))
            if not isinstance(doc, list):
                raise CommandError(f"{path}: an ops file is a YAML list of operations")
            ops.append(doc)
        values: dict = {}
        for path in vars_files:
            doc = yaml.safe_load(_read(path)) or {}
            if not isinstance(doc, dict):
                raise CommandError(f"{path}: a vars file is a YAML map")
            values.update(doc)
        for item in vars:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise CommandError(f"--var {item}: use name=value")
            values[name] = yaml.safe_load(value)
        task = service_call(
            services.deploy,
            text,
            user,
            ops=ops or None,
            vars=values or None,
            recreate=recreate,
            dry_run=dry_run,
            fix=fix,
        )
        finish(self, task, wait=not no_wait)


def _read(path: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise CommandError(f"{path}: no such file")
    return p.read_text()
