"""``manage.py update-config --type cloud [--name default] FILE``: store a new config version."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from director import services
from director.management.progress import add_common, service_call


class Command(BaseCommand):
    help = "Store a config (cloud, runtime, cpi, resurrection or any type) from a YAML file."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--type", required=True, dest="config_type")
        parser.add_argument("--name", default="default")
        add_common(parser, wait=False)

    def handle(self, file, config_type, name, user, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file")
        result = service_call(services.update_config, config_type, name, path.read_text(), user)
        if result.changed:
            self.stdout.write(f"Config {config_type}/{name} updated (id {result.config.id})")
        else:
            self.stdout.write(f"Config {config_type}/{name} unchanged (id {result.config.id})")
