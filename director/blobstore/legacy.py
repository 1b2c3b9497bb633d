"""Release blobs an older console kept by their sha1, moved under blob ids of the store.

An older console kept each release job and package tarball as a
content-addressed file, ``BLOBSTORE_DIR/<sha1[:2]>/<sha1>``, and wrote that
relative path (``ab/ab12...``) into the row (``blob_path`` then,
``blobstore_id`` now). The blobstore refuses such ids (``check_blob_id``), so
those jobs and packages could not be fetched. ``move_old_release_blobs`` gives
each such row a blob of the ``LocalBlobstore`` layout under a new UUID:

- the old file is checked against the row's recorded digest (``sha1``: bare
  sha1 hex or BOSH's multiple digest, ``sha256:<hex>``) and against its own
  name; a missing or mismatching file is reported and its row left as it was
  (still naming the old path), never half-changed;
- every row naming that file gets a blob of its own (a hard link: a rename
  that keeps the old name until the rows commit; a whole copy where the file
  system has no links). Old releases could share a file; blobs are never
  shared, so deleting one release's blob cannot take another's;
- a row is updated only once its blob is in place; the old name is removed
  after the caller's transaction commits, and only when no row names it any
  more; a failure part way removes the blobs it made (their rows roll back).

Rows that hold a blob id already are not touched, so it may run again at any
time. Migration ``director 0006_release_blobstore_ids`` runs it with its
historical models; ``manage.py move_old_release_blobs`` runs it again after
an operator put a missing file back. Only the local store is served: with
another ``OPSCONSOLE_BLOBSTORE`` the old files are reported and left.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction

from .base import BLOB_ID_RE
from .digest import ALGORITHMS, parse_digest
from .errors import InvalidDigest
from .local import INCOMING, LocalBlobstore

#: What the older console wrote: ``<first two hex digits of the sha1>/<sha1>``.
OLD_PATH_RE = re.compile(r"([0-9a-f]{2})/([0-9a-f]{40})")


@dataclass
class MoveReport:
    """What a run did: rows moved, and a line for each row left as it was."""

    moved: int = 0
    left: list[str] = field(default_factory=list)


def is_old_path(value: str) -> bool:
    match = OLD_PATH_RE.fullmatch(value or "")
    return bool(match) and match[1] == match[2][:2]


def move_old_release_blobs(
    job_model,
    package_model,
    *,
    using: str = DEFAULT_DB_ALIAS,
    say: Callable[[str], None] = print,
) -> MoveReport:
    """Move the old-layout blobs of ``job_model`` and ``package_model`` rows (the release
    job and package models, current or historical) under blob ids; see the module docstring.

    Run it inside a transaction: old files are removed when it commits.
    """
    report = MoveReport()
    by_path: dict[str, list[tuple[str, object, object]]] = {}
    for kind, model in (("job", job_model), ("package", package_model)):
        rows = model.objects.using(using).select_related("release_version__release")
        for row in rows.exclude(blobstore_id="").order_by("pk"):
            if BLOB_ID_RE.fullmatch(row.blobstore_id):
                continue  # in the blobstore already
            if not is_old_path(row.blobstore_id):
                _left(report, say, f"{_label(row, kind)}: {row.blobstore_id!r} is no blob id")
                continue
            by_path.setdefault(row.blobstore_id, []).append((kind, model, row))
    if not by_path:
        return report
    if (getattr(settings, "BLOBSTORE", "local") or "local") != "local":
        for old_path, users in sorted(by_path.items()):
            for kind, _model, row in users:
                _left(
                    report,
                    say,
                    f"{_label(row, kind)}: blob {old_path} is under BLOBSTORE_DIR; "
                    f"OPSCONSOLE_BLOBSTORE={settings.BLOBSTORE} is not moved into",
                )
        return report
    store, placed = LocalBlobstore(), []
    try:
        for old_path, users in sorted(by_path.items()):
            report.moved += _move(store, old_path, users, placed, using, report, say)
    except BaseException:
        for path in placed:  # the rows naming them roll back with the caller's transaction
            path.unlink(missing_ok=True)
        raise
    if report.moved:
        say(f"{report.moved} release job/package blob(s) moved under blob ids")
    return report


def _move(store, old_path, users, placed, using, report, say) -> int:
    """Give each row naming ``old_path`` a blob of its own; the number of rows moved."""
    old = store.root / old_path
    try:
        actual = _digests(old)
    except OSError as exc:
        why = "is missing" if isinstance(exc, FileNotFoundError) else f"is unreadable ({exc})"
        for kind, _model, row in users:
            _left(report, say, f"{_label(row, kind)}: blob {old_path} {why}")
        return 0
    moved = 0
    for kind, model, row in users:
        try:
            wanted = set(parse_digest(row.sha1).items()) if row.sha1 else set()
        except InvalidDigest as exc:
            _left(report, say, f"{_label(row, kind)}: {exc}")
            continue
        wanted.add(("sha1", old_path.split("/")[1]))  # the old store named it by content
        wrong = sorted(algo for algo, value in wanted if actual[algo] != value)
        if wrong:
            _left(
                report,
                say,
                f"{_label(row, kind)}: blob {old_path} does not match its "
                f"{'/'.join(wrong)} digest (damaged)",
            )
            continue
        blob_id = str(uuid.uuid4())
        new = store.path(blob_id)
        _place(old, new, store.root)
        placed.append(new)
        rows = model.objects.using(using).filter(pk=row.pk, blobstore_id=old_path)
        if rows.update(blobstore_id=blob_id) != 1:
            raise RuntimeError(f"{_label(row, kind)} changed while its blob was moved")
        moved += 1
    if moved == len(users):
        # The rows name their new blobs once this commits; then the old name may go.
        transaction.on_commit(lambda: old.unlink(missing_ok=True), using=using)
    return moved


def _left(report: MoveReport, say, line: str) -> None:
    line = f"{line}; left as it is"
    report.left.append(line)
    say(line)


def _label(row, kind: str) -> str:
    rv = row.release_version
    return f"{kind} {row.name}/{row.version} of release {rv.release.name}/{rv.version}"


def _digests(path: Path) -> dict[str, str]:
    hashes = {algo: hashlib.new(algo) for algo in ALGORITHMS}
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            for h in hashes.values():
                h.update(chunk)
    return {algo: h.hexdigest() for algo, h in hashes.items()}


def _place(old: Path, new: Path, root: Path) -> None:
    """``new`` names the same content as ``old``: a hard link, else a whole copy."""
    new.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(old, new)
        return
    except OSError:
        pass  # no hard links on this file system: a copy, appearing only whole
    incoming = root / INCOMING
    incoming.mkdir(parents=True, exist_ok=True)
    tmp = incoming / f"{new.name}-legacy"
    try:
        shutil.copyfile(old, tmp)
        os.replace(tmp, new)
    finally:
        tmp.unlink(missing_ok=True)
