"""Available products: import a ``.pivotal`` or a product template, list, delete.

An imported ``Product`` holds the validated template and the releases the
director was asked to upload; it can be deleted only while no staged or
deployed product uses it (Ops Manager's "Delete All Unused Products").
"""

from __future__ import annotations

import io
import zipfile
import zlib
from typing import IO

from django.db import IntegrityError, transaction

from director.services import releases as director_releases
from director.uploads import discard_upload
from opsconsole.errors import Conflict, NotFound, ServiceError
from tiles.jsmigrations import (
    MAX_MIGRATION_BYTES,
    MAX_MIGRATIONS,
    MIGRATIONS_DIR,
    is_migration_member,
)
from tiles.models import DIRECTOR_PRODUCT_NAME, Product, StagedProduct
from tiles.template import TemplateError, format_warnings, load_pivotal, load_product_template

from .common import _err


def _template_errors(exc: TemplateError, field: str = "product[file]") -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for path, message in exc.errors:
        _err(errors, field, f"{path}: {message}" if path else message)
    return errors


def import_product(fileobj: IO[bytes] | bytes, filename: str, user: str) -> Product:
    """Import a ``.pivotal`` (zip) or a bare product template YAML.

    The template is validated (``TemplateError`` messages become errors on
    ``product[file]`` naming the path in the template); a product with the
    same name and version is refused (409). Quirks Ops Manager accepts (a
    default that is not an option, ...) import with ``Product.warnings``; its
    ``migrations/v1/*.js`` are kept for upgrades (``Product.migrations``). The releases inside a
    ``.pivotal`` are handed to the director (``director.services.upload_release``,
    one task each, queued when the transaction commits; a release the
    director already has is skipped there). Returns the new ``Product``.
    """
    if isinstance(fileobj, bytes | bytearray):
        fileobj = io.BytesIO(bytes(fileobj))
    filename = filename or getattr(fileobj, "name", "") or "product"
    head = fileobj.read(4)
    fileobj.seek(0)
    release_files = []
    migrations: list[dict[str, str]] = []
    try:
        if head.startswith(b"PK"):
            template, release_files = load_pivotal(fileobj)
        else:
            data = fileobj.read()
            template = load_product_template(data, source=filename)
            data_text = data.decode("utf-8")
    except TemplateError as exc:
        raise ServiceError(_template_errors(exc)) from None
    if head.startswith(b"PK"):
        fileobj.seek(0)
        with zipfile.ZipFile(fileobj) as zf:
            meta = next(
                n
                for n in zf.namelist()
                if n.startswith("metadata/") and n.endswith((".yml", ".yaml"))
            )
            data_text = zf.read(meta).decode("utf-8")
            migrations = _read_migrations(zf)
    if template.name == DIRECTOR_PRODUCT_NAME:
        raise ServiceError({"product[file]": ["p-bosh is the Director tile's name"]})
    if Product.objects.filter(name=template.name, version=template.product_version).exists():
        raise Conflict(
            {
                "product[file]": [
                    f"{template.name} {template.product_version} is already imported; "
                    "delete it first to import it again"
                ]
            }
        )
    task_ids = []
    tasks = []  # director upload tasks, whose copied release files a failure must remove
    try:
        with transaction.atomic():
            try:
                product = Product.objects.create(
                    name=template.name,
                    version=template.product_version,
                    label=template.label,
                    metadata=data_text,
                    releases=[
                        {"name": r["name"], "version": str(r["version"]), "file": r.get("file", "")}
                        for r in template.releases
                    ],
                    filename=filename,
                    uploaded_by=user or "",
                    warnings=format_warnings(template.warnings),
                    migrations=migrations,
                )
            except IntegrityError:
                raise Conflict(
                    {
                        "product[file]": [
                            f"{template.name} {template.product_version} is already imported"
                        ]
                    }
                ) from None
            for rf in release_files:
                with rf.open() as fh:
                    try:
                        task = director_releases.upload_release(fh, user)
                    except ServiceError as exc:
                        msgs = [m for ms in exc.errors.values() for m in ms]
                        raise ServiceError(
                            {"product[file]": [f"{rf.filename}: {m}" for m in msgs]}
                        ) from None
                tasks.append(task)
                task_ids.append(task.id)
            if task_ids:
                product.release_task_ids = task_ids
                product.save(update_fields=["release_task_ids"])
    except BaseException:
        # the rows roll back; the release files already copied into the upload dir go too
        for task in tasks:
            discard_upload(task.args.get("path"))
        raise

    return product


def _read_migrations(zf) -> list[dict[str, str]]:
    """The ``.pivotal``'s ``migrations/v1/*.js`` as ``[{"name", "source"}]``, in name order.

    Only files directly in ``migrations/v1`` count, as in Ops Manager; each
    must be UTF-8 text within ``MAX_MIGRATION_BYTES`` (the archive itself
    was checked by ``load_pivotal``). A bad one is refused naming it.
    """
    members = sorted(
        (i for i in zf.infolist() if is_migration_member(i.filename)), key=lambda i: i.filename
    )
    if len(members) > MAX_MIGRATIONS:
        raise ServiceError(
            {"product[file]": [f"{MIGRATIONS_DIR}: more than {MAX_MIGRATIONS} migrations"]}
        )
    out = []
    for info in members:
        if info.file_size > MAX_MIGRATION_BYTES:
            raise ServiceError(
                {"product[file]": [f"{info.filename}: larger than {MAX_MIGRATION_BYTES} bytes"]}
            )
        try:
            source = zf.read(info).decode("utf-8")
        except UnicodeDecodeError:
            raise ServiceError({"product[file]": [f"{info.filename}: is not UTF-8 text"]}) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
            raise ServiceError(
                {"product[file]": [f"{info.filename}: cannot be read from the archive: {e}"]}
            ) from None
        out.append({"name": info.filename.rsplit("/", 1)[-1], "source": source})
    return out


def list_available_products() -> list[Product]:
    """Imported products, by name then newest version first."""
    return list(Product.objects.order_by("name", "-id"))


def get_available_product(name: str, version: str) -> Product:
    product = Product.objects.filter(name=name, version=str(version)).first()
    if product is None:
        raise NotFound({"product_name": [f"{name} {version} is not an available product"]})
    return product


def _product_in_use(product: Product) -> bool:
    return (
        StagedProduct.objects.filter(product=product).exists()
        or StagedProduct.objects.filter(deployed_product=product).exists()
    )


def delete_available_product(name: str, version: str) -> None:
    """Remove an imported product that no staged or deployed product uses (409 otherwise)."""
    product = get_available_product(name, version)
    if _product_in_use(product):
        raise Conflict(
            {"product_name": [f"{name} {version} is staged or deployed; unstage it first"]}
        )
    product.delete()


def delete_unused_products() -> int:
    """Ops Manager's "Delete All Unused Products"; returns how many were removed."""
    count = 0
    for product in Product.objects.all():
        if not _product_in_use(product):
            product.delete()
            count += 1
    return count


# --------------------------------------------------------------------------- staging
