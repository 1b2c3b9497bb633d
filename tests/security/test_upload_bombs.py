"""Archive bombs through the API: refused with a 422 naming the file and the limit, nothing kept.

The attacker's view of issue 9's "uploads expand without bound": a 7 KB
stemcell whose image claims 3 GiB, a small release whose package tarball
inflates a thousandfold, a ``.pivotal`` whose members lie about their size
or that holds too many files. Each answer is a 4xx naming the archive and
the limit; no row, task, blob, library file or upload file is left.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cpi.base import CloudError
from cpi.vsphere.stemcell import _extract
from director.models import ReleaseJob, ReleasePackage, ReleaseVersion, Task
from tests.director import builders
from tests.director.builders import build_release, tgz_bytes
from tests.director.test_archive_limits import sparse_stemcell
from tiles.models import LibraryStemcell, Product

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("security_dirs")]

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def library_dir(settings, security_dirs):
    settings.STEMCELL_LIBRARY_DIR = security_dirs / "stemcell_library"


def files_left(settings) -> list[Path]:
    dirs = (settings.UPLOAD_DIR, settings.BLOBSTORE_DIR, settings.STEMCELL_LIBRARY_DIR)
    return [p for d in dirs if d.exists() for p in d.rglob("*") if p.is_file()]


def nothing_stored(settings) -> None:
    assert Task.objects.count() == 0
    assert ReleaseVersion.objects.count() == 0
    assert ReleasePackage.objects.count() == ReleaseJob.objects.count() == 0
    assert LibraryStemcell.objects.count() == 0
    assert Product.objects.count() == 0
    assert files_left(settings) == []


def test_a_sparse_stemcell_is_refused_422_and_nothing_is_kept(admin_api, settings, tmp_path):
    path = sparse_stemcell(tmp_path)
    upload = SimpleUploadedFile("jammy.tgz", path.read_bytes())
    response = admin_api.post("/api/v0/stemcells", {"stemcell[file]": upload}, format="multipart")
    assert response.status_code == 422
    [message] = response.json()["errors"]["stemcell"]
    assert message.startswith("stemcell tarball: expands to more than 100 times its size")
    assert "(OPSCONSOLE_MAX_ARCHIVE_RATIO=100)" in message
    nothing_stored(settings)


def test_a_release_whose_package_inflates_is_refused_422_and_no_blob_is_kept(
    admin_api, settings, tmp_path, monkeypatch
):
    # the "2 MB release stored a 2 GiB blob", at 1/30 scale: default limits
    monkeypatch.setattr(builders, "package_tgz", lambda package: b"\0" * (70 * MIB))
    path = build_release(tmp_path / "r.tgz")
    assert path.stat().st_size < 1 * MIB
    upload = SimpleUploadedFile("zookeeper.tgz", path.read_bytes())
    response = admin_api.post(
        "/api/v0/director/releases", {"release[file]": upload}, format="multipart"
    )
    assert response.status_code == 422
    [message] = response.json()["errors"]["release"]
    assert message.startswith("release tarball: expands to more than 100 times its size")
    nothing_stored(settings)


TILE = """\
name: bomb
product_version: '1.0'
label: Bomb
stemcell_criteria: {os: ubuntu-jammy, version: '1.8'}
releases:
- {name: zookeeper, version: 0.0.10, file: zookeeper-0.0.10.tgz}
- {name: other, version: '1.0', file: other-1.0.tgz}
job_types:
- name: web
  templates: [{name: zookeeper, release: zookeeper}]
"""


def pivotal(members: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def post_tile(admin_api, data: bytes):
    upload = SimpleUploadedFile("bomb-1.0.pivotal", data)
    return admin_api.post(
        "/api/v0/available_products", {"product[file]": upload}, format="multipart"
    )


def claim_size(zip_bytes: bytes, member: str, size: int) -> bytes:
    """Rewrite the uncompressed size a zip's central directory and local header claim."""
    data = bytearray(zip_bytes)
    name = member.encode()
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + name_len]) == name:
            struct.pack_into("<I", data, at + 24, size)
            local = struct.unpack_from("<I", data, at + 42)[0]
            struct.pack_into("<I", data, local + 22, size)
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(data)


def good_releases(tmp_path) -> dict[str, bytes]:
    return {
        "releases/zookeeper-0.0.10.tgz": build_release(tmp_path / "zk.tgz").read_bytes(),
        "releases/other-1.0.tgz": build_release(
            tmp_path / "other.tgz", name="other", version="1.0"
        ).read_bytes(),
    }


def test_a_pivotal_member_that_inflates_past_its_claimed_size_is_refused(
    admin_api, settings, tmp_path
):
    members = {"metadata/bomb.yml": TILE, **good_releases(tmp_path)}
    members["releases/other-1.0.tgz"] += b"\0" * MIB  # deflates to little, inflates to 1 MiB
    data = claim_size(pivotal(members), "releases/other-1.0.tgz", 100)
    response = post_tile(admin_api, data)
    assert response.status_code == 422
    [message] = response.json()["errors"]["product[file]"]
    assert message.startswith("releases/other-1.0.tgz: cannot be read from the archive")
    nothing_stored(settings)  # the first release's copy is removed with the refused import


def test_a_pivotal_whose_second_release_is_a_bomb_keeps_nothing(admin_api, settings, tmp_path):
    settings.MAX_UPLOAD_EXPANDED_BYTES = 4 * MIB
    members = {"metadata/bomb.yml": TILE, **good_releases(tmp_path)}
    members["releases/other-1.0.tgz"] = build_release(
        tmp_path / "bomb.tgz", name="other", version="1.0", extra={"pad": b"\0" * (5 * MIB)}
    ).read_bytes()
    response = post_tile(admin_api, pivotal(members))
    assert response.status_code == 422
    assert response.json()["errors"]["product[file]"] == [
        "releases/other-1.0.tgz: release tarball: expands to more than 4 MiB, the limit "
        "(OPSCONSOLE_MAX_UPLOAD_EXPANDED_BYTES=4194304)"
    ]
    nothing_stored(settings)


def test_a_pivotal_with_too_many_files_is_refused(admin_api, settings, tmp_path):
    settings.MAX_ARCHIVE_FILES = 50
    members = {"metadata/bomb.yml": TILE, **good_releases(tmp_path)}
    members.update({f"migrations/v1/{i}.js": "" for i in range(50)})
    response = post_tile(admin_api, pivotal(members))
    assert response.status_code == 422
    assert response.json()["errors"]["product[file]"] == [
        "bomb-1.0.pivotal: holds more than 50 files, the limit (OPSCONSOLE_MAX_ARCHIVE_FILES=50)"
    ]
    nothing_stored(settings)


def test_a_pivotal_expanding_past_the_limit_is_refused(admin_api, settings, tmp_path):
    settings.MAX_UPLOAD_EXPANDED_BYTES = 2 * MIB
    members = {"metadata/bomb.yml": TILE, **good_releases(tmp_path), "pad": b"\0" * (3 * MIB)}
    response = post_tile(admin_api, pivotal(members))
    assert response.status_code == 422
    assert response.json()["errors"]["product[file]"] == [
        "bomb-1.0.pivotal: expands to more than 2 MiB, the limit "
        "(OPSCONSOLE_MAX_UPLOAD_EXPANDED_BYTES=2097152)"
    ]
    nothing_stored(settings)


def test_the_limits_are_read_from_the_environment(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "opsconsole.settings",
        "OPSCONSOLE_DATA_DIR": str(tmp_path),
        "OPSCONSOLE_MAX_UPLOAD_EXPANDED_BYTES": "123456",
        "OPSCONSOLE_MAX_ARCHIVE_FILES": "77",
        "OPSCONSOLE_MAX_ARCHIVE_RATIO": "9",
    }
    code = (
        "from django.conf import settings as s; "
        "print(s.MAX_UPLOAD_EXPANDED_BYTES, s.MAX_ARCHIVE_FILES, s.MAX_ARCHIVE_RATIO)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert run.stdout.split() == ["123456", "77", "9"], run.stderr
    env["OPSCONSOLE_MAX_ARCHIVE_FILES"] = "lots"
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode != 0
    assert "OPSCONSOLE_MAX_ARCHIVE_FILES: must be a positive whole number, not 'lots'" in (
        run.stderr
    )


def test_the_cpi_refuses_an_image_that_unpacks_too_far_and_writes_nothing(tmp_path):
    image = tmp_path / "image"
    image.write_bytes(tgz_bytes({"image.ovf": "<Envelope/>", "disk.vmdk": b"\0" * (2 * MIB)}))
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(CloudError, match=r"unpacks to more than 1048576 bytes"):
        _extract(str(image), str(into), max_bytes=MIB)
    with pytest.raises(CloudError, match=r"holds more than 1 files"):
        _extract(str(image), str(into), max_files=1)
    assert list(into.iterdir()) == []
