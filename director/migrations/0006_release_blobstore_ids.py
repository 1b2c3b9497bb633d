"""Data migration: release blobs of an older console move into the blobstore's layout.

An older console kept each release job and package tarball as a
content-addressed file, ``BLOBSTORE_DIR/<sha1[:2]>/<sha1>``, and wrote that
relative path (``ab/ab12...``) into the row's ``blob_path``. The blobstore
(``director.blobstore``) keeps blobs under UUID ids, ``BLOBSTORE_DIR/<pp>/<id>``
with ``<pp>`` = sha1(id)[:2], and refuses any other id, so those jobs and
packages could no longer be fetched. The column is renamed ``blobstore_id``
(BOSH's name, as ``CompiledPackage`` has it) and each old blob is moved under
a new id:

- the old file is checked against the row's recorded digest (``sha1``:
  bare sha1 hex or ``sha256:<hex>``, BOSH's multiple digest) and against its
  own name; a missing or mismatching file is reported and its row left as it
  was (still naming the old path), never half-changed;
- every row naming that file gets a blob of its own (a hard link, a copy where
  the file system has none), and rows are updated only once their blob is in
  place; the old name is removed after the migration commits, and only when no
  row names it any more. Old releases could share a file (same content); new
  ones never share a blob, so deleting one release cannot take another's.

Idempotent: rows that hold a blob id already are not touched. The layout is
written out here rather than imported, as it was when this migration was made.
"""

import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.db import migrations, transaction

#: What the older console wrote: ``<first two hex digits>/<sha1 hex>``, relative to BLOBSTORE_DIR.
OLD_PATH = re.compile(r"([0-9a-f]{2})/([0-9a-f]{40})")
BLOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DIGEST_LENGTHS = {"sha512": 128, "sha256": 64, "sha1": 40}
PREFIX = "  director 0006 release blobs:"


def _say(line):
    print(f"{PREFIX} {line}")


def _expected(digest, name_sha1):
    """``(algorithm, hex)`` pairs a file must match: the row's digest parts and its name."""
    wanted = {("sha1", name_sha1)}
    for part in (digest or "").strip().split(";"):
        if not part.strip():
            continue
        algo, sep, value = part.strip().rpartition(":")
        algo = algo.lower() if sep else "sha1"
        value = value.lower()
        if len(value) != DIGEST_LENGTHS.get(algo, -1) or not re.fullmatch(r"[0-9a-f]+", value):
            return None  # a digest we cannot read proves nothing: leave the row
        wanted.add((algo, value))
    return wanted


def _digests(path):
    hashes = {algo: hashlib.new(algo) for algo in DIGEST_LENGTHS}
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            for h in hashes.values():
                h.update(chunk)
    return {algo: h.hexdigest() for algo, h in hashes.items()}


def _new_path(root, blob_id):
    return root / hashlib.sha1(blob_id.encode()).hexdigest()[:2] / blob_id


def _place(old, new, root):
    """``new`` names the same content as ``old``: a hard link, else a complete copy."""
    new.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(old, new)
        return
    except OSError:
        pass  # no hard links here (or across a mount): copy, appearing only whole
    incoming = root / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    tmp = incoming / f"{new.name}-migrate"
    try:
        shutil.copyfile(old, tmp)
        os.replace(tmp, new)
    finally:
        tmp.unlink(missing_ok=True)


def _label(row, kind):
    rv = row.release_version
    return f"{kind} {row.name}/{row.version} of release {rv.release.name}/{rv.version}"


def move_old_blobs(apps, schema_editor):
    root = Path(settings.BLOBSTORE_DIR)
    alias = schema_editor.connection.alias if schema_editor else "default"
    kinds = (("job", apps.get_model("director", "ReleaseJob")),)
    kinds += (("package", apps.get_model("director", "ReleasePackage")),)

    by_path = {}  # old relative path -> [(kind, model, row)]
    for kind, model in kinds:
        rows = model.objects.using(alias).select_related("release_version__release")
        for row in rows.exclude(blobstore_id="").order_by("pk"):
            if BLOB_ID.fullmatch(row.blobstore_id):
                continue  # in the blobstore already
            match = OLD_PATH.fullmatch(row.blobstore_id)
            if not match or match[1] != match[2][:2]:
                _say(f"{_label(row, kind)}: {row.blobstore_id!r} is no blob id; left as it is")
                continue
            by_path.setdefault(row.blobstore_id, []).append((kind, model, row))
    if not by_path:
        return
    if (getattr(settings, "BLOBSTORE", "local") or "local") != "local":
        _say(
            f"OPSCONSOLE_BLOBSTORE is {settings.BLOBSTORE!r}: {len(by_path)} old blob file(s) "
            f"under BLOBSTORE_DIR were left where they are (this migration moves them only "
            f"within the local blobstore)"
        )
        return

    moved, placed = 0, []
    try:
        for old_relative, users in sorted(by_path.items()):
            moved += _move(root, old_relative, users, placed, alias)
    except BaseException:
        for path in placed:  # the rows naming them roll back with the migration
            path.unlink(missing_ok=True)
        raise
    if moved:
        _say(f"{moved} release job/package blob(s) moved under blob ids")


def _move(root, old_relative, users, placed, alias):
    """Give each row naming ``old_relative`` a blob of its own; the number of rows moved."""
    old = root / old_relative
    try:
        actual = _digests(old)
    except OSError as exc:
        why = "is missing" if isinstance(exc, FileNotFoundError) else f"unreadable ({exc})"
        for kind, _model, row in users:
            _say(f"{_label(row, kind)}: blob {old_relative} {why}; left as it is")
        return 0
    moved = 0
    for kind, model, row in users:
        wanted = _expected(row.sha1, old_relative.split("/")[1])
        if wanted is None:
            _say(f"{_label(row, kind)}: digest {row.sha1!r} unreadable; left as it is")
            continue
        wrong = sorted(algo for algo, value in wanted if actual[algo] != value)
        if wrong:
            _say(
                f"{_label(row, kind)}: blob {old_relative} does not match its "
                f"{'/'.join(wrong)} digest (damaged); left as it is"
            )
            continue
        blob_id = str(uuid.uuid4())
        new = _new_path(root, blob_id)
        _place(old, new, root)
        placed.append(new)
        rows = model.objects.using(alias).filter(pk=row.pk, blobstore_id=old_relative)
        if rows.update(blobstore_id=blob_id) != 1:
            raise RuntimeError(f"{_label(row, kind)} changed during the migration")
        moved += 1
    if moved == len(users):
        # The rows name their new blobs once this commits; then the old name may go.
        transaction.on_commit(lambda: old.unlink(missing_ok=True), using=alias)
    return moved


class Migration(migrations.Migration):
    dependencies = [
        ("director", "0005_compiledpackage"),
    ]

    operations = [
        migrations.RenameField("releasejob", "blob_path", "blobstore_id"),
        migrations.RenameField("releasepackage", "blob_path", "blobstore_id"),
        migrations.RunPython(move_old_blobs, migrations.RunPython.noop),
    ]
