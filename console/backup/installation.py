"""Export the installation to a passphrase-encrypted file, and import it on a fresh console.

What an export holds (Ops Manager's ``installation_asset_collection``):

- **rows**: every row of every model of the console's apps (``APPS``), found
  from the app registry so a model added later is carried too, except the
  few that are this console's own session state (``NOT_CARRIED``: API
  tokens, the login throttle). Secrets are decrypted with this console's key
  (the archive is encrypted as a whole with the passphrase) and encrypted
  under the target's key on import. Users are carried with their password
  hashes, by user name.
- **files**: the data-dir directories named by a ``*_DIR`` setting (the
  blobstore, the Stemcell Library, and any added later), except logs and
  temporary uploads (``EXCLUDED_DIR_SETTINGS``). Row values holding a path
  inside one of them are rewritten to ``${SETTING}/...`` and back, so the
  target may keep its data elsewhere.

Not exported: the keys in the data dir (``encryption_key``, ``secret_key``),
the web server's certificate (``tls/``), task logs, uploads waiting to be imported.

Carried files that are keys or secrets (``PRIVATE_FILE_PATTERNS``: the message
bus's CA and certificate keys and its users in ``NATS_DIR``, the blobstore's
users and signing secret, any ``*key*`` file) are written mode 0600 in
directories of mode 0700, from staging to their place, as the code that made
them writes them; other files get the default mode.

An import decrypts and checks everything first (passphrase, every chunk,
migrations), stages the files in the data dir, replaces the rows in one
transaction, and only after its commit moves the files into place: a wrong
passphrase or a corrupt file changes nothing. It refuses (409) a console
that already has products or deployments unless forced, and any console
whose migrations differ from the exporting one's.
"""

from __future__ import annotations

import datetime
import errno
import fnmatch
import json
import logging
import os
import shutil
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import serializers
from django.core.management.color import no_style
from django.core.serializers.base import DeserializationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, models, transaction
from django.db.migrations.recorder import MigrationRecorder

from director.events import record_event
from director.models import Deployment
from opsconsole import __version__
from opsconsole.errors import Conflict, ServiceError
from tiles.models import Product, StagedProduct
from tiles.services.busy import refuse_while_busy

from .archive import ArchiveReader, ArchiveWriter, check_passphrase, corrupt

log = logging.getLogger(__name__)

#: The apps whose rows make up the installation.
APPS = ("opsconsole", "director", "tiles")
#: Models of those apps that are this console's own state, neither exported nor replaced.
NOT_CARRIED = frozenset({"opsconsole.ApiToken", "opsconsole.LoginThrottle"})
#: ``*_DIR`` settings that are not the installation: the code, logs, temporary uploads.
EXCLUDED_DIR_SETTINGS = frozenset({"BASE_DIR", "DATA_DIR", "TASK_LOG_DIR", "UPLOAD_DIR"})
_EXCLUDED_DIR_WORDS = ("LOG", "TEMP", "TMP", "CACHE", "STATIC")
#: Names (lower case, fnmatch) of data-dir files that are private keys or secrets: an import
#: restores them 0600 and their directories 0700. NATS_DIR: ``*.key``, ``auth.conf`` and
#: ``agents.json`` (director.agents.certs, nats_auth); BLOBSTORE_AUTH_DIR: ``credentials.json``
#: (director.blobstore.credentials); the web server's ``key.pem`` (localservices.tls).
PRIVATE_FILE_PATTERNS = (
    "*key*",
    "*secret*",
    "*credential*",
    "*password*",
    "*token*",
    "auth.conf",
    "agents.json",
)
#: Upper bound of the rows' JSON once decompressed.
ROWS_LIMIT = 1 << 30
MANIFEST_LIMIT = 64 << 20

MANIFEST, ROWS = "payload/manifest", "payload/rows"


@dataclass
class TransferSummary:
    """What an export wrote or an import restored."""

    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    users_created: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = {"rows": self.rows, "files": self.files, "bytes": self.bytes}
        if self.users_created:
            out["users_created"] = self.users_created
        return out


# --------------------------------------------------------------------------- what is carried


def carried_models() -> list[type[models.Model]]:
    """The models whose rows an export carries, in dependency order."""
    app_list = []
    for label in APPS:
        config = apps.get_app_config(label)
        chosen = [
            m
            for m in config.get_models()
            if m._meta.label not in NOT_CARRIED and not m._meta.proxy and m._meta.managed
        ]
        app_list.append((config, chosen))
    return serializers.sort_dependencies(app_list, allow_cycles=True)


def is_private(path: PurePosixPath | Path) -> bool:
    """Whether a data-dir file holds a key or secret (``PRIVATE_FILE_PATTERNS``)."""
    name = path.name.lower()
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in PRIVATE_FILE_PATTERNS)


def data_dirs() -> dict[str, Path]:
    """The data directories an export carries, by setting name."""
    found = {}
    for name in dir(settings):
        if not name.isupper() or not name.endswith("_DIR") or name in EXCLUDED_DIR_SETTINGS:
            continue
        if any(word in name for word in _EXCLUDED_DIR_WORDS):
            continue
        value = getattr(settings, name, None)
        if isinstance(value, str | os.PathLike) and str(value):
            found[name] = Path(value)
    return dict(sorted(found.items()))


def _files_under(root: Path):
    """``(relative posix path, full path)`` of the regular files under root; no links, no dot files."""
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            full = Path(dirpath) / name
            if name.startswith(".") or full.is_symlink() or not full.is_file():
                continue
            yield full.relative_to(root).as_posix(), full


def applied_migrations() -> dict[str, list[str]]:
    applied = MigrationRecorder(connection).applied_migrations()
    labels = (*APPS, get_user_model()._meta.app_label)
    return {label: sorted(name for app, name in applied if app == label) for label in labels}


class _Encoder(DjangoJSONEncoder):
    """DjangoJSONEncoder, but times keep their microseconds (it cuts them to milliseconds)."""

    def default(self, o):
        if isinstance(o, datetime.datetime | datetime.time):
            return o.isoformat()
        return super().default(o)


def _placeholders(dirs: dict[str, Path]) -> list[tuple[str, str]]:
    """``(absolute prefix, ${SETTING}/)`` pairs, longest prefix first."""
    pairs = {
        (str(form) + os.sep, f"${{{name}}}/")
        for name, path in dirs.items()
        for form in (path.absolute(), path.resolve())
    }
    return sorted(pairs, key=lambda p: (-len(p[0]), p))


def _rewrite_paths(rows: list[dict], pairs: list[tuple[str, str]], reverse: bool) -> None:
    for row in rows:
        fields = row.get("fields") or {}
        for key, value in fields.items():
            if not isinstance(value, str):
                continue
            for absolute, placeholder in pairs:
                old, new = (placeholder, absolute) if reverse else (absolute, placeholder)
                if value.startswith(old):
                    fields[key] = new + value[len(old) :]
                    break


# --------------------------------------------------------------------------- export


def _dump_rows() -> tuple[list[dict], dict[str, int]]:
    """Every carried row (users first), secrets in clear, read in one consistent snapshot."""
    user_model = get_user_model()
    user_fields = [f.name for f in user_model._meta.concrete_fields if not f.primary_key]
    outer = connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and not outer:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        rows = serializers.serialize(
            "python",
            user_model._default_manager.order_by("pk"),
            fields=user_fields,
            use_natural_primary_keys=True,
        )
        counts = {user_model._meta.label: len(rows)}
        for model in carried_models():
            dumped = serializers.serialize(
                "python",
                model._base_manager.order_by("pk").iterator(chunk_size=2000),
                use_natural_foreign_keys=True,
            )
            counts[model._meta.label] = len(dumped)
            rows.extend(dumped)
    return rows, counts


def export_installation(out: IO[bytes], passphrase: str, user: str = "") -> TransferSummary:
    """Write the installation to ``out``, encrypted with ``passphrase``."""
    check_passphrase(passphrase)
    refuse_while_busy("export the installation")
    writer = ArchiveWriter(out, passphrase, info={"console_version": __version__})
    summary = TransferSummary()
    rows, summary.rows = _dump_rows()
    dirs = data_dirs()
    _rewrite_paths(rows, _placeholders(dirs), reverse=False)
    files = []
    for name, root in dirs.items():
        for relative, full in _files_under(root):
            member = f"payload/files/{len(files) + 1:06d}"
            with open(full, "rb") as fh:
                size = writer.write_stream(member, fh)
            files.append({"member": member, "dir": name, "path": relative, "size": size})
            summary.bytes += size
    summary.files = len(files)
    text = json.dumps(rows, cls=_Encoder, separators=(",", ":")).encode()
    writer.write_bytes(ROWS, zlib.compress(text, 6))
    manifest = {
        "console_version": __version__,
        "migrations": applied_migrations(),
        "rows": summary.rows,
        "dirs": sorted(dirs),
        "files": files,
    }
    writer.write_bytes(MANIFEST, json.dumps(manifest).encode())
    writer.close()
    record_event(
        "export",
        "installation",
        user=user,
        context={"rows": sum(summary.rows.values()), "files": summary.files},
    )
    log.info("installation exported by %s: %d files", user or "-", summary.files)
    return summary


# --------------------------------------------------------------------------- import


def existing_installation() -> list[str]:
    """What this console holds that an import would replace (empty on a fresh console)."""
    found = []
    for model, noun in (
        (Deployment, "deployment"),
        (Product, "product"),
        (StagedProduct, "staged product"),
    ):
        count = model.objects.count()
        if count:
            found.append(f"{count} {noun}{'s' if count != 1 else ''}")
    return found


def _read_manifest(reader: ArchiveReader) -> dict:
    try:
        manifest = json.loads(reader.read_bytes(MANIFEST, MANIFEST_LIMIT))
    except (ValueError, UnicodeDecodeError):
        raise corrupt(f"{MANIFEST} is not JSON") from None
    if not (
        isinstance(manifest, dict)
        and isinstance(manifest.get("migrations"), dict)
        and isinstance(manifest.get("files"), list)
    ):
        raise corrupt(f"{MANIFEST} lacks migrations or files")
    return manifest


def _check_migrations(exported: dict) -> None:
    here = applied_migrations()
    for label, names in here.items():
        theirs = exported.get(label)
        if not isinstance(theirs, list):
            raise corrupt(f"{MANIFEST}: no migrations listed for {label}")
        missing_here = sorted(set(theirs) - set(names))
        missing_there = sorted(set(names) - set(theirs))
        if missing_here:
            raise Conflict(
                {
                    "base": [
                        f"the export comes from a newer console: migration {label}."
                        f"{missing_here[0]} is not applied here; upgrade this console first"
                    ]
                }
            )
        if missing_there:
            raise Conflict(
                {
                    "base": [
                        f"the export comes from an older console: it lacks migration {label}."
                        f"{missing_there[0]}; import it on a console of its version"
                    ]
                }
            )


def _safe_relative(path) -> PurePosixPath:
    if not isinstance(path, str) or not path or "\x00" in path or "\\" in path:
        raise corrupt(f"file path {path!r} is not a relative path")
    pure = PurePosixPath(path)
    if pure.is_absolute() or any(part in ("", ".", "..") for part in path.split("/")):
        raise corrupt(f"file path {path!r} leaves its directory")
    return pure


def _planned_files(manifest: dict, dirs: dict[str, Path], reader: ArchiveReader) -> list[dict]:
    names = set(reader.names())
    planned = []
    for item in manifest["files"]:
        if not isinstance(item, dict):
            raise corrupt(f"{MANIFEST}: a file entry is not an object")
        setting, member = item.get("dir"), item.get("member")
        if setting not in dirs:
            raise corrupt(
                f"{MANIFEST}: files for {setting!r}, a directory this console does not have"
            )
        if member not in names:
            raise corrupt(f"member {member} is missing")
        planned.append(
            {
                "member": member,
                "dir": setting,
                "path": _safe_relative(item.get("path")),
                "size": item.get("size"),
            }
        )
    return planned


def _read_rows(reader: ArchiveReader) -> list[dict]:
    packed = reader.read_bytes(ROWS, ROWS_LIMIT)
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(packed, ROWS_LIMIT)
    except zlib.error:
        raise corrupt(f"{ROWS} does not decompress") from None
    if inflater.unconsumed_tail:
        raise corrupt(f"{ROWS} expands beyond {ROWS_LIMIT} bytes")
    try:
        rows = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise corrupt(f"{ROWS} is not JSON") from None
    if not isinstance(rows, list) or not all(
        isinstance(r, dict)
        and isinstance(r.get("model"), str)
        and isinstance(r.get("fields"), dict)
        for r in rows
    ):
        raise corrupt(f"{ROWS} is not a list of rows")
    return rows


def _stage_files(reader: ArchiveReader, planned: list[dict], staging: Path) -> int:
    # Only this user may look into the staging dir; keys are 0600 from their first byte.
    staging.mkdir(mode=0o700, parents=True, exist_ok=True)
    total = 0
    for item in planned:
        target = staging / item["dir"] / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o600 if is_private(item["path"]) else 0o666
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as out:
            size = reader.copy_to(item["member"], out)
        if item["size"] is not None and size != item["size"]:
            raise corrupt(
                f"{item['dir']}/{item['path']}: {size} bytes, the manifest says {item['size']}"
            )
        total += size
    return total


def _tables(model_list) -> list[str]:
    tables = []
    for model in model_list:
        tables.append(model._meta.db_table)
        for m2m in model._meta.local_many_to_many:
            if m2m.remote_field.through._meta.auto_created:
                tables.append(m2m.remote_field.through._meta.db_table)
    return tables


def _replace_rows(rows: list[dict], summary: TransferSummary) -> None:
    """Delete every carried row and load the export's (inside the caller's transaction)."""
    user_model = get_user_model()
    user_label = user_model._meta.label_lower
    carried = carried_models()
    known = {m._meta.label_lower for m in carried}
    unknown = sorted({r["model"] for r in rows} - known - {user_label})
    if unknown:
        raise corrupt(f"{ROWS}: rows of models this console does not carry: {', '.join(unknown)}")
    qn = connection.ops.quote_name
    tables = _tables(carried)
    with connection.cursor() as cursor:
        for table in reversed(tables):
            cursor.execute(f"DELETE FROM {qn(table)}")
    try:
        # Users first (other rows name them by user name); one already here keeps its password.
        for obj in serializers.deserialize(
            "python", [r for r in rows if r["model"] == user_label], ignorenonexistent=True
        ):
            username = obj.object.get_username()
            if user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).exists():
                continue
            obj.object.pk = None
            obj.save()
            summary.users_created.append(username)
        counts: dict[str, int] = {}
        for obj in serializers.deserialize("python", [r for r in rows if r["model"] != user_label]):
            models.Model.save_base(obj.object, using=DEFAULT_DB_ALIAS, raw=True, force_insert=True)
            for accessor, values in (obj.m2m_data or {}).items():
                getattr(obj.object, accessor).set(values)
            label = obj.object._meta.label
            counts[label] = counts.get(label, 0) + 1
        summary.rows = counts
        connection.check_constraints(table_names=tables)
    except (DeserializationError, DatabaseError, ValueError, TypeError, LookupError) as exc:
        raise corrupt(f"{ROWS} do not load: {exc}") from None
    reset = connection.ops.sequence_reset_sql(no_style(), [*carried, user_model])
    if reset:
        with connection.cursor() as cursor:
            for sql in reset:
                cursor.execute(sql)


def _move_in(staging: Path, planned: list[dict], dirs: dict[str, Path]) -> None:
    for item in planned:
        source = staging / item["dir"] / item["path"]
        root = dirs[item["dir"]]
        target = root / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        private = is_private(item["path"])
        if private:  # its directories are closed before the key arrives
            below = target.parent.relative_to(root).parts
            _restrict([root, *(root.joinpath(*below[: i + 1]) for i in range(len(below)))], 0o700)
        try:
            os.replace(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.move(source, target)
        if private:
            _restrict([target], 0o600)


def _restrict(paths: list[Path], mode: int) -> None:
    """Give each path ``mode``; one this process may not change is logged (the import stands)."""
    for path in paths:
        try:
            if path.stat().st_mode & 0o777 != mode:
                os.chmod(path, mode)
        except OSError as exc:
            log.warning("import: could not make %s mode %o: %s", path, mode, exc.strerror)


def import_installation(
    fileobj: IO[bytes], passphrase: str, *, force: bool = False, user: str = ""
) -> TransferSummary:
    """Replace this console's installation with the export in ``fileobj``.

    Checks come first and change nothing: the passphrase opens the file,
    the migrations match, the console is fresh (or ``force``), no work runs,
    every chunk authenticates. Then the rows are replaced in one transaction,
    and after its commit the staged files are moved into place.
    """
    reader = ArchiveReader(fileobj, passphrase)
    try:
        manifest = _read_manifest(reader)
        _check_migrations(manifest["migrations"])
        existing = existing_installation()
        if existing and not force:
            raise Conflict(
                {
                    "base": [
                        f"this console already has {', '.join(existing)}; an import replaces "
                        "the whole installation: import onto a fresh console, or force it "
                        "to replace them"
                    ]
                }
            )
        refuse_while_busy("import an installation")
        dirs = data_dirs()
        planned = _planned_files(manifest, dirs, reader)
        rows = _read_rows(reader)
        _rewrite_paths(rows, _placeholders(dirs), reverse=True)
        summary = TransferSummary(files=len(planned))
        staging = Path(settings.DATA_DIR) / f".import-{uuid.uuid4().hex}"
        try:
            summary.bytes = _stage_files(reader, planned, staging)
            with transaction.atomic():
                _replace_rows(rows, summary)
                record_event(
                    "import",
                    "installation",
                    user=user,
                    context={
                        "rows": sum(summary.rows.values()),
                        "files": summary.files,
                        "replaced": existing,
                    },
                )
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            _move_in(staging, planned, dirs)
        except OSError as exc:
            # The rows are in; the files are whole in the staging dir, to be moved by hand.
            log.error("import: moving files from %s failed: %s", staging, exc)
            raise ServiceError(
                {
                    "base": [
                        f"the rows were imported but moving the files into place failed ({exc}); "
                        f"they wait in {staging.name} in the data dir: move each "
                        "<SETTING>/<path> there into that setting's directory"
                    ]
                },
                status=500,
            ) from None
        shutil.rmtree(staging, ignore_errors=True)
    finally:
        reader.close()
    log.info("installation imported by %s: %d files", user or "-", summary.files)
    return summary
