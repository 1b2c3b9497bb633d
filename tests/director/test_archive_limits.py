"""Upload archives are held to the expanded-size, file-count and ratio limits while read.

Each bomb is built here: gzipped zeros past a lowered (or the default ratio)
limit, tarballs with too many members, a GNU sparse stemcell image whose
7-byte-per-GiB data claims gigabytes. The refusal names the archive and the
limit, and a refused upload task leaves no row, blob or upload file.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from director import runner, uploads
from director.archives import UploadError
from director.models import ReleaseVersion, Stemcell, Task, TaskState
from director.tarballs import read_release, read_stemcell
from tests.director import builders
from tests.director.builders import build_release, build_stemcell_tgz, tgz_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]

MIB = 1024 * 1024


def zeros_tgz(size: int, name: str = "zeros") -> bytes:
    """A gzip tarball holding ``size`` zero bytes: about a thousandth of that on disk."""
    return tgz_bytes({name: b"\0" * size})


def sparse_stemcell(tmp_path: Path, size: int = 3 << 30) -> Path:
    """A stemcell tarball whose ``image`` is a GNU sparse member of ``size`` bytes (a hole)."""
    if shutil.which("tar") is None:
        pytest.fail("GNU tar is needed to build a sparse tarball")
    work = tmp_path / "sparse"
    work.mkdir()
    (work / "stemcell.MF").write_text(
        "name: bosh-vsphere-esxi-ubuntu-jammy-go_agent\nversion: '1.0'\n"
        "operating_system: ubuntu-jammy\nstemcell_formats: [vsphere-ovf]\n"
    )
    with open(work / "image", "wb") as image:
        image.truncate(size)  # a hole: nothing on disk
    out = tmp_path / "sparse-stemcell.tgz"
    subprocess.run(
        ["tar", "--sparse", "-czf", str(out), "-C", str(work), "stemcell.MF", "image"],
        check=True,
    )
    (work / "image").unlink()
    return out


def test_a_sparse_stemcell_image_is_refused_by_the_default_ratio_limit(tmp_path):
    path = sparse_stemcell(tmp_path)
    assert path.stat().st_size < 10_000  # the 7 KB stemcell that became 3 GiB
    with pytest.raises(UploadError) as exc:
        read_stemcell(path)
    assert str(exc.value).startswith("stemcell tarball: expands to more than 100 times its size")
    assert "OPSCONSOLE_MAX_ARCHIVE_RATIO=100" in str(exc.value)


def test_a_stemcell_past_the_byte_limit_is_refused(tmp_path, settings):
    settings.MAX_UPLOAD_EXPANDED_BYTES = MIB
    path = build_stemcell_tgz(tmp_path / "s.tgz", image=b"\0" * (2 * MIB))
    with pytest.raises(UploadError) as exc:
        read_stemcell(path)
    assert str(exc.value) == (
        "stemcell tarball: expands to more than 1 MiB, the limit "
        "(OPSCONSOLE_MAX_UPLOAD_EXPANDED_BYTES=1048576)"
    )


def test_the_image_inside_a_stemcell_is_held_to_the_limits_too(tmp_path, settings):
    settings.MAX_UPLOAD_EXPANDED_BYTES = MIB
    image = zeros_tgz(2 * MIB, "image-disk1.vmdk")
    assert len(image) < 10_000  # the outer tarball stays far below the limit
    path = build_stemcell_tgz(tmp_path / "s.tgz", image=image)
    with pytest.raises(UploadError, match=r"^image: expands to more than 1 MiB, the limit"):
        read_stemcell(path)


def test_an_image_with_too_many_files_is_refused(tmp_path, settings):
    settings.MAX_ARCHIVE_FILES = 10
    image = tgz_bytes({f"disk{i}.vmdk": b"x" for i in range(11)})
    path = build_stemcell_tgz(tmp_path / "s.tgz", image=image)
    with pytest.raises(UploadError) as exc:
        read_stemcell(path)
    assert str(exc.value) == (
        "image: holds more than 10 files, the limit (OPSCONSOLE_MAX_ARCHIVE_FILES=10)"
    )


def test_a_release_past_the_byte_limit_is_refused(tmp_path, settings):
    settings.MAX_UPLOAD_EXPANDED_BYTES = MIB
    path = build_release(tmp_path / "r.tgz", extra={"README": b"\0" * (2 * MIB)})
    with pytest.raises(UploadError, match=r"^release tarball: expands to more than 1 MiB"):
        read_release(path)


def test_a_release_with_too_many_members_is_refused(tmp_path, settings):
    settings.MAX_ARCHIVE_FILES = 20
    path = build_release(tmp_path / "r.tgz", extra={f"src/{i}": b"x" for i in range(20)})
    with pytest.raises(UploadError) as exc:
        read_release(path)
    assert str(exc.value) == (
        "release tarball: holds more than 20 files, the limit (OPSCONSOLE_MAX_ARCHIVE_FILES=20)"
    )


def test_a_job_tarball_bomb_is_refused_by_the_default_ratio_limit(tmp_path, monkeypatch):
    real_job_tgz = builders.job_tgz

    def bomb_job(job, omit_templates=()):
        if job["name"] != "zookeeper":
            return real_job_tgz(job, omit_templates)
        with tarfile.open(fileobj=io.BytesIO(real_job_tgz(job, omit_templates))) as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
        return tgz_bytes({**files, "templates/padding": b"\0" * (70 * MIB)})

    monkeypatch.setattr(builders, "job_tgz", bomb_job)
    path = build_release(tmp_path / "r.tgz")
    assert path.stat().st_size < 200_000
    with pytest.raises(UploadError) as exc:
        read_release(path)
    assert str(exc.value).startswith("jobs/zookeeper.tgz: expands to more than 100 times its size")


def test_a_package_tarball_with_too_many_files_is_refused(tmp_path, settings, monkeypatch):
    settings.MAX_ARCHIVE_FILES = 20
    monkeypatch.setattr(
        builders,
        "package_tgz",
        lambda package: tgz_bytes({f"src/{i}.c": "int x;\n" for i in range(21)}),
    )
    path = build_release(tmp_path / "r.tgz")
    with pytest.raises(UploadError) as exc:
        read_release(path)
    assert str(exc.value) == (
        "packages/java.tgz: holds more than 20 files, the limit (OPSCONSOLE_MAX_ARCHIVE_FILES=20)"
    )


def test_a_huge_tar_header_is_refused_before_it_is_read_into_memory(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("release.MF")
        info.pax_headers = {"comment": "x" * (65 * MIB)}
        tar.addfile(info, io.BytesIO(b""))
    path = tmp_path / "r.tgz"
    path.write_bytes(buf.getvalue())
    with pytest.raises(UploadError, match="^release tarball: a header or manifest larger than"):
        read_release(path)


def _leftovers(settings) -> list[Path]:
    return [
        p
        for d in (settings.UPLOAD_DIR, settings.BLOBSTORE_DIR)
        if d.exists()
        for p in d.rglob("*")
        if p.is_file()
    ]


def test_a_release_upload_task_over_the_limit_fails_naming_it_and_stores_nothing(
    tmp_path, settings
):
    upload = uploads.save_upload(
        build_release(tmp_path / "r.tgz", extra={"README": b"\0" * (2 * MIB)}), "release"
    )
    settings.MAX_UPLOAD_EXPANDED_BYTES = MIB  # the worker's limit is lower than the web's
    task = runner.create_task(
        "update_release", "create release", "admin", args={"path": str(upload)}, enqueue=False
    )
    assert runner.run_task(task.id) == TaskState.ERROR
    task = Task.objects.get(id=task.id)
    assert task.result == (
        "release tarball: expands to more than 1 MiB, the limit "
        "(OPSCONSOLE_MAX_UPLOAD_EXPANDED_BYTES=1048576)"
    )
    assert ReleaseVersion.objects.count() == 0
    assert _leftovers(settings) == []


def test_a_stemcell_upload_task_over_the_limit_fails_naming_it_and_stores_nothing(
    tmp_path, settings
):
    upload = uploads.save_upload(sparse_stemcell(tmp_path), "stemcell")
    task = runner.create_task(
        "update_stemcell", "create stemcell", "admin", args={"path": str(upload)}, enqueue=False
    )
    assert runner.run_task(task.id) == TaskState.ERROR
    task = Task.objects.get(id=task.id)
    assert task.result.startswith("stemcell tarball: expands to more than 100 times its size")
    assert Stemcell.objects.count() == 0
    assert _leftovers(settings) == []
