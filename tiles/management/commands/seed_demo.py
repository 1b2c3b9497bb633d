"""``manage.py seed_demo``: make the demo tile and a demo stemcell ready to use.

Builds ``opsconsole-demo-<version>.pivotal`` (``tiles.demo``) and a small
vSphere stemcell matching its ``stemcell_criteria`` (``cpi.stemcell_builder``)
into ``<data dir>/demo/``, keeps the stemcell in the Stemcell Library (so
Apply Changes uploads it should the director lack it) and uploads it to the
director unless it is there already. With ``--import`` it also imports the demo tile into
Available Products, so the dashboard offers it with a "+" to stage.
Safe to run again: nothing is rebuilt or uploaded twice.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cpi.stemcell_builder import BuildError, build_stemcell
from director.models import Stemcell, Task, TaskState
from director.services.stemcells import upload_stemcell
from opsconsole.errors import ServiceError
from tiles import demo, services
from tiles.models import Product
from tiles.template import load_product_template


class Command(BaseCommand):
    help = (
        "Build the demo tile (.pivotal) and a demo stemcell into the data dir; upload the stemcell."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", default=None, help="directory (default: <data dir>/demo)")
        parser.add_argument(
            "--import",
            dest="import_product",
            action="store_true",
            help="also import the demo tile into Available Products",
        )
        parser.add_argument(
            "--no-stemcell", action="store_true", help="do not build or upload the stemcell"
        )
        parser.add_argument("--user", default="admin", help="recorded as the uploader")

    def handle(self, *args, out=None, import_product=False, no_stemcell=False, user="admin", **kw):
        out_dir = Path(out) if out else Path(settings.DATA_DIR) / "demo"
        out_dir.mkdir(parents=True, exist_ok=True)
        pivotal = demo.build_pivotal(out_dir)
        self.stdout.write(f"demo tile: {pivotal}")
        if not no_stemcell:
            self._stemcell(out_dir, user)
        if import_product:
            self._import(pivotal, user)

    def _stemcell(self, out_dir: Path, user: str) -> None:
        criteria = load_product_template(demo.metadata_text()).stemcell_criteria or {}
        os_name = str(criteria.get("os", "ubuntu-jammy"))
        version = str(criteria.get("version", "1.0"))
        name = f"bosh-vsphere-esxi-{os_name}-go_agent"
        path = out_dir / f"{name}-{version}.tgz"
        if not path.exists():
            try:
                build_stemcell(path, name=name, version=version, operating_system=os_name)
            except (BuildError, OSError) as exc:
                raise CommandError(f"building the demo stemcell failed: {exc}") from None
        self.stdout.write(f"demo stemcell: {path}")
        try:
            kept = services.import_stemcell(path, user, upload=False)
        except ServiceError as exc:
            raise CommandError(f"keeping the demo stemcell failed: {exc.errors}") from None
        self.stdout.write(kept.message)
        if Stemcell.objects.filter(name=name, version=version).exists():
            self.stdout.write(f"stemcell {name}/{version} is already uploaded")
            return
        pending = Task.objects.filter(
            type="update_stemcell",
            state__in=[TaskState.QUEUED, TaskState.PROCESSING],
            args__name=name,
            args__version=version,
        ).first()
        if pending is not None:
            self.stdout.write(f"stemcell {name}/{version} is being uploaded: task {pending.id}")
            return
        try:
            task = upload_stemcell(kept.stemcell.path, user)
        except ServiceError as exc:
            raise CommandError(f"uploading the demo stemcell failed: {exc.errors}") from None
        self.stdout.write(f"uploading stemcell {name}/{version}: task {task.id} ({task.state})")

    def _import(self, pivotal: Path, user: str) -> None:
        if Product.objects.filter(name=demo.PRODUCT_NAME, version=demo.PRODUCT_VERSION).exists():
            self.stdout.write(f"{demo.PRODUCT_NAME} {demo.PRODUCT_VERSION} is already imported")
            return
        with open(pivotal, "rb") as fh:
            product = services.import_product(fh, user=user, filename=pivotal.name)
        self.stdout.write(f"imported {product}")
