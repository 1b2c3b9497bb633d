"""Migration director 0006 (and manage.py move_old_release_blobs): releases an older
console uploaded become fetchable again.

The older console kept each job and package tarball at
``BLOBSTORE_DIR/<sha1[:2]>/<sha1>`` and wrote that path into the row; the
tests write exactly that, run the migration with its historical models and
read the blobs back through the blobstore, checked against the rows' digests.
"""

from __future__ import annotations

import hashlib
import importlib
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from director.blobstore import BLOB_ID_RE, InvalidBlobId, blobstore, legacy
from director.models import Release, ReleaseJob, ReleasePackage, ReleaseVersion

pytestmark = pytest.mark.django_db

NAME = "0006_release_blobstore_ids"


@pytest.fixture
def migration(director_dirs):
    module = importlib.import_module(f"director.migrations.{NAME}")
    state = MigrationExecutor(connection).loader.project_state(("director", NAME))
    return lambda: module.move_old_blobs(state.apps, None)


def old_store(content: bytes) -> str:
    """What the older console's ``_store_blob`` did: a file named by its sha1; its path."""
    from django.conf import settings

    sha1 = hashlib.sha1(content).hexdigest()
    path = Path(settings.BLOBSTORE_DIR) / sha1[:2] / sha1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return f"{sha1[:2]}/{sha1}"


def old_release(name: str, version: str, jobs: dict, packages: dict) -> ReleaseVersion:
    """Rows as the older console wrote them: ``{name: (content, digest)}``, digest as in release.MF."""
    rv = ReleaseVersion.objects.create(
        release=Release.objects.get_or_create(name=name)[0], version=version
    )
    for pname, (content, digest) in packages.items():
        ReleasePackage.objects.create(
            release_version=rv,
            name=pname,
            version="1",
            sha1=digest,
            blobstore_id=old_store(content),
        )
    for jname, (content, digest) in jobs.items():
        ReleaseJob.objects.create(
            release_version=rv,
            name=jname,
            version="1",
            sha1=digest,
            blobstore_id=old_store(content),
        )
    return rv


def sha1(content: bytes) -> str:
    return hashlib.sha1(content).hexdigest()


def blob_files(settings) -> set[str]:
    root = Path(settings.BLOBSTORE_DIR)
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_an_old_release_is_read_through_the_blobstore_after_the_migration(
    migration, settings, django_capture_on_commit_callbacks, capsys
):
    java, zk_job = b"java package " * 500, b"zookeeper job " * 300
    first = old_release(
        "zookeeper",
        "0.0.9",
        jobs={"zookeeper": (zk_job, sha1(zk_job))},
        packages={"java": (java, sha1(java))},
    )
    # a later version shares the java tarball (one content-addressed file for both) and, as
    # newer release.MFs do, gives its job digest as sha256
    zk_job2 = b"zookeeper job v2 " * 300
    second = old_release(
        "zookeeper",
        "0.0.10",
        jobs={"zookeeper": (zk_job2, "sha256:" + hashlib.sha256(zk_job2).hexdigest())},
        packages={"java": (java, sha1(java))},
    )
    old_paths = {row.blobstore_id for row in ReleasePackage.objects.all()}
    old_paths |= {row.blobstore_id for row in ReleaseJob.objects.all()}
    assert len(old_paths) == 3
    with pytest.raises(InvalidBlobId):  # what an upgraded console without the migration does
        blobstore().get(ReleasePackage.objects.first().blobstore_id)

    with django_capture_on_commit_callbacks(execute=True):
        migration()

    assert "4 release job/package blob(s) moved" in capsys.readouterr().out
    expected = {
        (first, "java"): java,
        (first, "zookeeper"): zk_job,
        (second, "java"): java,
        (second, "zookeeper"): zk_job2,
    }
    ids = set()
    for (rv, name), content in expected.items():
        row = (
            ReleasePackage.objects.get(release_version=rv, name=name)
            if name == "java"
            else ReleaseJob.objects.get(release_version=rv, name=name)
        )
        assert BLOB_ID_RE.fullmatch(row.blobstore_id)
        with blobstore().get(row.blobstore_id, digest=row.sha1) as fh:
            assert fh.read() == content
        ids.add(row.blobstore_id)
    assert len(ids) == 4  # the shared tarball is a blob per release now
    # the old files are gone: only the blobstore's layout remains
    assert not blob_files(settings) & old_paths
    assert len(blob_files(settings)) == 4
    # deleting one release's java blob leaves the other's
    one, other = ReleasePackage.objects.order_by("pk")
    assert blobstore().delete(one.blobstore_id)
    blobstore().verify(other.blobstore_id, other.sha1)

    # a second run changes nothing
    before = sorted(ReleaseJob.objects.values_list("blobstore_id", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        migration()
    assert sorted(ReleaseJob.objects.values_list("blobstore_id", flat=True)) == before
    assert "moved" not in capsys.readouterr().out


def test_a_damaged_or_missing_old_blob_is_reported_and_left_as_it_was(
    migration, settings, django_capture_on_commit_callbacks, capsys
):
    good, damaged, lost = b"good package", b"job as uploaded", b"lost package"
    rv = old_release(
        "kafka",
        "3",
        jobs={"broker": (damaged, sha1(damaged))},
        packages={"jre": (good, sha1(good)), "kafka": (lost, sha1(lost))},
    )
    broker = ReleaseJob.objects.get(name="broker")
    damaged_file = Path(settings.BLOBSTORE_DIR) / broker.blobstore_id
    damaged_file.write_bytes(b"job as uploaded, then a disk error")
    lost_row = ReleasePackage.objects.get(name="kafka")
    (Path(settings.BLOBSTORE_DIR) / lost_row.blobstore_id).unlink()

    with django_capture_on_commit_callbacks(execute=True):
        migration()

    printed = capsys.readouterr().out
    assert (
        f"job broker/1 of release kafka/3: blob {broker.blobstore_id} does not match its sha1 "
        "digest (damaged); left as it is"
    ) in printed
    assert (
        f"package kafka/1 of release kafka/3: blob {lost_row.blobstore_id} is missing; "
        "left as it is"
    ) in printed
    # those rows still name their old files, and the damaged file is untouched
    assert ReleaseJob.objects.get(pk=broker.pk).blobstore_id == broker.blobstore_id
    assert ReleasePackage.objects.get(pk=lost_row.pk).blobstore_id == lost_row.blobstore_id
    assert damaged_file.read_bytes() == b"job as uploaded, then a disk error"
    # the sound package of the same release moved
    jre = ReleasePackage.objects.get(release_version=rv, name="jre")
    with blobstore().get(jre.blobstore_id, digest=jre.sha1) as fh:
        assert fh.read() == good


def test_a_file_shared_with_a_row_that_does_not_match_stays_for_that_row(
    migration, settings, django_capture_on_commit_callbacks, capsys
):
    content = b"shared package"
    old_release("a", "1", jobs={}, packages={"pkg": (content, sha1(content))})
    old_release("b", "1", jobs={}, packages={"pkg": (content, sha1(b"something else"))})
    a, b = ReleasePackage.objects.order_by("pk")

    with django_capture_on_commit_callbacks(execute=True):
        migration()

    a.refresh_from_db()
    assert BLOB_ID_RE.fullmatch(a.blobstore_id)
    blobstore().verify(a.blobstore_id, a.sha1)
    assert ReleasePackage.objects.get(pk=b.pk).blobstore_id == b.blobstore_id
    assert (Path(settings.BLOBSTORE_DIR) / b.blobstore_id).read_bytes() == content
    assert "package pkg/1 of release b/1" in capsys.readouterr().out


def test_a_migration_that_fails_part_way_leaves_rows_and_files_as_they_were(
    migration, settings, monkeypatch
):
    contents = [b"first", b"second"]
    old_release("r", "1", jobs={}, packages={f"p{i}": (c, sha1(c)) for i, c in enumerate(contents)})
    rows_before = list(ReleasePackage.objects.values_list("pk", "blobstore_id"))
    files_before = blob_files(settings)
    real_place, calls = legacy._place, []

    def place_then_fail(old, new, root):
        calls.append(new)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_place(old, new, root)

    monkeypatch.setattr(legacy, "_place", place_then_fail)

    with pytest.raises(OSError, match="No space left"), transaction.atomic():
        migration()

    assert list(ReleasePackage.objects.values_list("pk", "blobstore_id")) == rows_before
    assert blob_files(settings) == files_before  # the first new blob went again


def test_the_command_moves_a_file_put_back_after_the_migration(
    migration, settings, django_capture_on_commit_callbacks, capsys
):
    content = b"package restored from a backup"
    old_release("redis", "1", jobs={}, packages={"redis": (content, sha1(content))})
    row = ReleasePackage.objects.get()
    old = Path(settings.BLOBSTORE_DIR) / row.blobstore_id
    old.rename(old.with_name("aside"))
    with django_capture_on_commit_callbacks(execute=True):
        migration()
    assert "is missing" in capsys.readouterr().out

    out = io.StringIO()
    with pytest.raises(CommandError, match="1 release job/package row"):
        call_command("move_old_release_blobs", stdout=out)
    assert f"package redis/1 of release redis/1: blob {row.blobstore_id} is missing" in (
        out.getvalue()
    )

    old.with_name("aside").rename(old)  # the operator puts the file back
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("move_old_release_blobs", stdout=out)
    assert "1 release job/package blob(s) moved" in out.getvalue()
    row.refresh_from_db()
    with blobstore().get(row.blobstore_id, digest=row.sha1) as fh:
        assert fh.read() == content
    assert not old.exists()
    out = io.StringIO()
    call_command("move_old_release_blobs", stdout=out)
    assert out.getvalue() == "No release blob is left in the old layout.\n"
