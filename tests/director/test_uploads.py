"""Release and stemcell tarballs: what is accepted, what is refused and how it is named."""

import gzip

import pytest

from director import runner, tarballs, uploads
from director.archives import UploadError
from director.blobstore import blobstore
from director.models import ReleaseJob, ReleasePackage, ReleaseVersion, Task, TaskState
from director.tarballs import read_release, read_stemcell
from tests.director.builders import build_release, build_stemcell_tgz, tgz_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]


def test_a_good_release_is_read_completely(tmp_path):
    archive = read_release(build_release(tmp_path / "r.tgz"))
    assert (archive.name, archive.version, archive.commit_hash) == (
        "zookeeper",
        "0.0.10",
        "abc1234",
    )
    assert [j.name for j in archive.jobs] == ["zookeeper", "smoke-tests"]
    zk = archive.jobs[0]
    assert zk.spec["properties"]["client_port"] == {
        "description": "port for clients",
        "default": 2181,
    }
    assert zk.spec["templates"] == {"ctl.erb": "bin/ctl", "zoo.cfg.erb": "config/zoo.cfg"}
    assert zk.spec["provides"] == [{"name": "peers", "type": "zookeeper_peers"}]
    assert [(p.name, p.dependencies) for p in archive.packages] == [
        ("java", ()),
        ("zookeeper", ("java",)),
    ]


def test_sha256_digests_are_accepted(tmp_path):
    assert read_release(build_release(tmp_path / "r.tgz", sha256=True)).name == "zookeeper"


def test_a_float_looking_version_stays_as_written(tmp_path):
    path = build_release(
        tmp_path / "r.tgz", rewrite=lambda text: text.replace("version: 0.0.10", "version: 1.10")
    )
    assert (
        "version: 1.10\n"
        in __import__("tarfile").open(path).extractfile("./release.MF").read().decode()
    )
    assert read_release(path).version == "1.10"


def _drop(key):
    def edit(mf):
        del mf[key]

    return edit


def _drop_job_key(key):
    def edit(mf):
        del mf["jobs"][0][key]

    return edit


def _bad_sha(mf):
    mf["packages"][1]["sha1"] = "0" * 40


def _missing_dependency(mf):
    mf["packages"][1]["dependencies"] = ["python"]


BAD_RELEASES = [
    # (builder kwargs, expected message)
    ({"edit": _drop("version")}, "release.MF: missing key 'version'"),
    ({"edit": _drop("name")}, "release.MF: missing key 'name'"),
    ({"omit": ("release.MF",)}, "release.MF: not in the tarball"),
    ({"omit": ("jobs/zookeeper.tgz",)}, "jobs/zookeeper.tgz: not in the tarball"),
    ({"omit": ("packages/java.tgz",)}, "packages/java.tgz: not in the tarball"),
    ({"edit": _drop_job_key("sha1")}, "release.MF: jobs/zookeeper: missing key 'sha1'"),
    ({"edit": _drop_job_key("version")}, "release.MF: jobs/zookeeper: missing key 'version'"),
    (
        {"edit": _bad_sha},
        "packages/zookeeper.tgz: sha1 mismatch (manifest says 0000000000000000000000000000000000000000",
    ),
    (
        {"edit": _missing_dependency},
        "release.MF: packages/zookeeper: dependency 'python' is not in the release",
    ),
    (
        {"omit_templates": ("zoo.cfg.erb",)},
        "jobs/zookeeper.tgz: templates/zoo.cfg.erb: not in the job tarball",
    ),
    (
        {"jobs": [{"name": "zookeeper", "templates": {}, "packages": ["nope"]}]},
        "jobs/zookeeper.tgz: job.MF: package 'nope' is not in the release",
    ),
    (
        {"jobs": [{"name": "zookeeper", "properties": ["not", "a", "map"]}]},
        "jobs/zookeeper.tgz: job.MF: 'properties' must be a map",
    ),
    (
        {"extra": {"jobs/zookeeper.tgz": b"plain bytes"}},
        "jobs/zookeeper.tgz: sha1 mismatch",
    ),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_RELEASES)
def test_bad_releases_are_refused_naming_what_is_wrong(tmp_path, kwargs, message):
    path = build_release(tmp_path / "bad.tgz", **kwargs)
    with pytest.raises(UploadError) as err:
        read_release(path)
    assert str(err.value).startswith(message)


def test_a_job_tarball_that_is_not_gzip_is_named(tmp_path):
    import hashlib

    junk = b"not gzip at all"

    def edit(mf):
        mf["jobs"][1]["sha1"] = hashlib.sha1(junk).hexdigest()

    path = build_release(tmp_path / "bad.tgz", edit=edit, extra={"jobs/smoke-tests.tgz": junk})
    with pytest.raises(UploadError, match=r"^jobs/smoke-tests.tgz: not a gzip tarball"):
        read_release(path)


def test_a_job_without_job_mf_is_named(tmp_path):
    import hashlib

    job = tgz_bytes({"templates/run.erb": "x"})

    def edit(mf):
        mf["jobs"][1]["sha1"] = hashlib.sha1(job).hexdigest()

    path = build_release(tmp_path / "bad.tgz", edit=edit, extra={"jobs/smoke-tests.tgz": job})
    with pytest.raises(UploadError, match=r"^jobs/smoke-tests.tgz: job.MF: not in the tarball"):
        read_release(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"plain text", gzip.compress(b"gzip but not tar", mtime=0), b"PK\x03\x04zip"],
    ids=["empty", "plain-text", "gzip-not-tar", "zip"],
)
def test_not_a_tarball(tmp_path, content):
    path = tmp_path / "x.tgz"
    path.write_bytes(content)
    with pytest.raises(UploadError, match="not a gzip tarball"):
        read_release(path)
    with pytest.raises(UploadError, match="not a gzip tarball"):
        read_stemcell(path)


def test_update_release_task_stores_blobs_and_rows(tmp_path, settings):
    upload = uploads.save_upload(build_release(tmp_path / "r.tgz"), "release")
    task = runner.create_task(
        "update_release", "create release", "admin", args={"path": str(upload)}
    )
    assert runner.run_task(task.id) == TaskState.DONE, Task.objects.get(id=task.id).result

    rv = ReleaseVersion.objects.get(release__name="zookeeper", version="0.0.10")
    assert rv.commit_hash == "abc1234"
    job = ReleaseJob.objects.get(release_version=rv, name="zookeeper")
    assert job.properties["tick_time"] == {"default": 2000}
    assert job.package_names == ["java", "zookeeper"]
    pkg = ReleasePackage.objects.get(release_version=rv, name="zookeeper")
    assert pkg.dependencies == ["java"]
    # the tarballs are in the blobstore under their ids, and match release.MF's digests
    for row in (pkg, job):
        blobstore().verify(row.blobstore_id, row.sha1)
    assert not upload.exists()  # the upload is removed once stored
    stages = [e.data.get("stage") for e in task.events.order_by("seq")]
    assert "Creating new packages" in stages and "Creating new jobs" in stages


def test_a_release_task_that_fails_keeps_no_blobs(tmp_path, settings, monkeypatch):
    def fail(archive, blobs):
        assert len(blobs) == 4  # every package and job was stored by then
        raise RuntimeError("database went away")

    monkeypatch.setattr(uploads, "_save_release", fail)
    upload = uploads.save_upload(build_release(tmp_path / "r.tgz"), "release")
    task = runner.create_task("update_release", "x", "admin", args={"path": str(upload)})
    assert runner.run_task(task.id) == TaskState.ERROR
    assert not ReleaseVersion.objects.exists()
    assert [p for p in settings.BLOBSTORE_DIR.rglob("*") if p.is_file()] == []


def test_update_release_again_is_a_no_op_that_says_so(tmp_path):
    for _ in range(2):
        upload = uploads.save_upload(build_release(tmp_path / "r.tgz"), "release")
        task = runner.create_task("update_release", "x", "admin", args={"path": str(upload)})
        runner.run_task(task.id)
    task.refresh_from_db()
    assert task.state == TaskState.DONE
    assert task.result == "Release 'zookeeper/0.0.10' already exists"
    assert ReleaseVersion.objects.count() == 1


GOOD_STEMCELL_MF = {
    "name": "bosh-vsphere-esxi-ubuntu-jammy-go_agent",
    "version": "1.10",
    "operating_system": "ubuntu-jammy",
    "stemcell_formats": ["vsphere-ovf"],
    "cloud_properties": {"infrastructure": "vsphere"},
}


def test_a_stemcell_manifest_is_read(tmp_path):
    mf = read_stemcell(build_stemcell_tgz(tmp_path / "s.tgz", manifest=GOOD_STEMCELL_MF))
    assert (mf.name, mf.version, mf.operating_system) == (
        "bosh-vsphere-esxi-ubuntu-jammy-go_agent",
        "1.10",
        "ubuntu-jammy",
    )
    assert mf.cloud_properties == {"infrastructure": "vsphere"}


@pytest.mark.parametrize(
    ("manifest", "image", "message"),
    [
        (
            {k: v for k, v in GOOD_STEMCELL_MF.items() if k != "version"},
            b"x",
            "stemcell.MF: missing key 'version'",
        ),
        (
            {k: v for k, v in GOOD_STEMCELL_MF.items() if k != "name"},
            b"x",
            "stemcell.MF: missing key 'name'",
        ),
        (GOOD_STEMCELL_MF, None, "image: not in the tarball"),
        (False, b"x", "stemcell.MF: not in the tarball"),
        (
            {**GOOD_STEMCELL_MF, "cloud_properties": "nope"},
            b"x",
            "stemcell.MF: 'cloud_properties' must be a map",
        ),
        (
            {**GOOD_STEMCELL_MF, "stemcell_formats": ["aws-light"]},
            b"x",
            "stemcell.MF: stemcell_formats aws-light cannot be imported by the vSphere CPI",
        ),
    ],
)
def test_bad_stemcells_are_refused_naming_what_is_missing(tmp_path, manifest, image, message):
    path = build_stemcell_tgz(tmp_path / "s.tgz", manifest=manifest, image=image)
    with pytest.raises(UploadError) as err:
        read_stemcell(path)
    assert str(err.value).startswith(message)


def test_extract_stemcell_image(tmp_path):
    path = build_stemcell_tgz(tmp_path / "s.tgz", image=b"IMAGE BYTES")
    image = tarballs.extract_stemcell_image(path, tmp_path)
    assert image.read_bytes() == b"IMAGE BYTES"


def test_a_yaml_bomb_in_release_mf_is_refused_before_it_is_built(tmp_path):
    """Aliases that expand to billions of nodes are named, not expanded until memory runs out."""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    path = build_release(tmp_path / "r.tgz", rewrite=lambda text: bomb)
    with pytest.raises(UploadError) as err:
        read_release(path)
    assert "release.MF" in str(err.value)
