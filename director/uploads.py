"""Stemcell and release uploads: the upload directory, and the tasks that import them.

An upload is saved into the upload directory (``save_upload``), checked
completely by ``director.tarballs`` (``read_stemcell``, ``read_release``)
before any row, blob or task exists, and handed to a task by its path; the
task removes the file when it ends (``discard_upload``).

The ``update_stemcell`` task hands the extracted image to the CPI's
``create_stemcell``, records the cid it returns and keeps the tarball under
the director's data dir (``stored_stemcell``) for cloud check;
``delete_stemcell`` deletes it from the cloud and the database.

The ``update_release`` task keeps every job and package tarball in the
director's blobstore (``director.blobstore``; the rows' ``blobstore_id``
holds the blob id) and writes the rows; nothing is compiled. A task that
fails part way removes the blobs it stored.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction

from .archives import UploadError
from .blobstore import blobstore
from .cloud import cloud_for_director
from .events import record_event
from .locks import lock
from .models import (
    Release,
    ReleaseJob,
    ReleasePackage,
    ReleaseVersion,
    Stemcell,
)
from .runner import TaskContext, task_handler
from .tarballs import (
    ReleaseArchive,
    _open_tgz,
    extract_stemcell_image,
    read_release,
    read_stemcell,
)

# --------------------------------------------------------------------------- storage


def upload_dir() -> Path:
    return Path(getattr(settings, "UPLOAD_DIR", Path(settings.DATA_DIR) / "uploads"))


def save_upload(source: Any, kind: str) -> Path:
    """Copy an uploaded file (Django ``UploadedFile``, file object or path) into the upload dir."""
    directory = upload_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{kind}-{uuid.uuid4().hex}.tgz"
    if isinstance(source, str | os.PathLike):
        source = Path(source)
        if not source.is_file():
            raise UploadError(f"{source}: no such file")
        shutil.copyfile(source, target)
        return target
    try:
        with open(target, "wb") as out:
            if hasattr(source, "chunks"):
                for chunk in source.chunks():
                    out.write(chunk)
            else:
                shutil.copyfileobj(source, out, 1 << 20)
    except BaseException:  # a stream that fails midway (a damaged zip member) leaves no file
        target.unlink(missing_ok=True)
        raise
    return target


def discard_upload(path: str | Path | None) -> None:
    if path:
        Path(path).unlink(missing_ok=True)


def _store_blob(stream: IO[bytes]) -> tuple[str, str]:
    """Keep a job or package tarball in the blobstore; returns (blob id, sha1)."""
    ref = blobstore().put(stream)
    return ref.id, ref.sha1


# --------------------------------------------------------------------------- stemcells


def stored_stemcell(name: str, version: str) -> Path:
    """Where the director keeps an imported stemcell's tarball.

    Kept so that cloud check can upload the stemcell to vCenter again when
    vCenter lost its template (``missing_stemcell``: ``reupload_stemcell``),
    as Ops Manager keeps its stemcell library. Hashed: names are free text.
    """
    key = hashlib.sha256(f"{name}\0{version}".encode()).hexdigest()[:32]
    return Path(settings.DATA_DIR) / "stemcells" / f"stemcell-{key}.tgz"


def _keep_stemcell(path: Path, name: str, version: str) -> None:
    target = stored_stemcell(name, version)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)


@task_handler("update_stemcell")
def update_stemcell(ctx: TaskContext) -> str:
    """Import a stemcell through the CPI and record it (args: ``path``)."""

    path = Path(ctx.args["path"])
    try:
        stage = ctx.stage("Update stemcell", total=5)
        with stage.track("Extracting stemcell archive"):
            pass  # streamed out of the tarball below
        with stage.track("Verifying stemcell manifest"):
            mf = read_stemcell(path)
        label = f"{mf.name}/{mf.version}"
        with lock(f"lock:stemcells:{mf.name}:{mf.version}", ctx, timeout=300):
            with stage.track("Checking if this stemcell already exists"):
                if Stemcell.objects.filter(name=mf.name, version=mf.version).exists():
                    # imported before the director kept copies: keep this one for cloud check
                    if not stored_stemcell(mf.name, mf.version).is_file():
                        _keep_stemcell(path, mf.name, mf.version)
                    ctx.write_result({"name": mf.name, "version": mf.version, "existed": True})
                    return f"Stemcell '{label}' already exists"
            ctx.checkpoint()
            cloud = cloud_for_director(ctx)
            with tempfile.TemporaryDirectory(prefix="stemcell-") as tmp:
                with stage.track(f"Uploading stemcell {label} to the cloud") as step:
                    image = extract_stemcell_image(path, tmp)
                    step.advance(10, status="image extracted")
                    cid = cloud.create_stemcell(str(image), mf.cloud_properties)
                ctx.debug(f"Stemcell {label} imported as {cid}")
            with stage.track(f"Save stemcell {label} ({cid})"):
                try:
                    Stemcell.objects.create(
                        name=mf.name,
                        version=mf.version,
                        operating_system=mf.operating_system,
                        cid=cid,
                        sha1=mf.sha1,
                        api_version=mf.api_version,
                        cloud_properties=mf.cloud_properties,
                    )
                except Exception:
                    ctx.debug(f"could not record stemcell {label}; deleting {cid} from the cloud")
                    cloud.delete_stemcell(cid)
                    raise
                _keep_stemcell(path, mf.name, mf.version)
        record_event(
            "create",
            "stemcell",
            label,
            user=ctx.username,
            task=ctx.task,
            context={"cid": cid, "operating_system": mf.operating_system},
        )
        ctx.write_result({"name": mf.name, "version": mf.version, "cid": cid})
        return f"/stemcells/{mf.name}/{mf.version}"
    finally:
        discard_upload(path)


@task_handler("delete_stemcell")
def delete_stemcell(ctx: TaskContext) -> str:
    """Delete a stemcell from the cloud and the database (args: name, version, force)."""

    name, version = ctx.args["name"], str(ctx.args["version"])
    label = f"{name}/{version}"
    stemcell = Stemcell.objects.filter(name=name, version=version).first()
    if stemcell is None:
        raise UploadError(f"Stemcell '{label}' does not exist")
    users = list(stemcell.deployments.values_list("name", flat=True))
    if users and not ctx.args.get("force"):
        raise UploadError(f"Stemcell '{label}' is still in use by: {', '.join(users)}")
    stage = ctx.stage("Deleting stemcell from cloud", total=2)
    with stage.track(f"Delete stemcell {label} ({stemcell.cid})"):
        try:
            cloud_for_director(ctx).delete_stemcell(stemcell.cid)
        except Exception as exc:
            if not ctx.args.get("force"):
                raise
            ctx.warning(f"Deleting stemcell {stemcell.cid} from the cloud failed: {exc}")
    with stage.track("Deleting stemcell metadata"):
        stemcell.delete()
        stored_stemcell(name, version).unlink(missing_ok=True)
    record_event("delete", "stemcell", label, user=ctx.username, task=ctx.task)
    return f"/stemcells/{label}"


# --------------------------------------------------------------------------- releases


def release_exists(name: str, version: str) -> bool:
    return ReleaseVersion.objects.filter(release__name=name, version=version).exists()


@task_handler("update_release")
def update_release(ctx: TaskContext) -> str:
    """Store a checked release tarball: blobs first, then all rows in one transaction."""
    path = Path(ctx.args["path"])
    try:
        stage = ctx.stage("Extracting release", total=1)
        with stage.track("Extracting release"):
            pass
        with ctx.stage("Verifying manifest", total=1).track("Verifying manifest"):
            archive = read_release(path)
        if release_exists(archive.name, archive.version):
            return f"Release '{archive.label}' already exists"
        blobs: dict[str, tuple[str, str]] = {}
        try:
            _store_release_blobs(ctx, path, archive, blobs)
            with ctx.stage("Release has been created", total=1).track(archive.label):
                _save_release(archive, blobs)
        except BaseException:
            for blob_id, _sha1 in blobs.values():  # no row will name them
                blobstore().delete(blob_id)
            raise
        record_event(
            "create",
            "release",
            archive.label,
            user=ctx.username,
            task=ctx.task,
            context={"jobs": [j.name for j in archive.jobs]},
        )
        ctx.write_result({"name": archive.name, "version": archive.version})
        return f"Created release '{archive.label}'"
    finally:
        discard_upload(path)


def _store_release_blobs(
    ctx: TaskContext, path: Path, archive: ReleaseArchive, blobs: dict[str, tuple[str, str]]
) -> None:
    """Store each package and job tarball, noting (blob id, sha1) by member as it goes."""
    with _open_tgz(path, "release tarball") as (tar, members):
        packages = ctx.stage("Creating new packages", total=len(archive.packages) or None)
        for p in archive.packages:
            with packages.track(f"{p.name}/{p.version}"):
                blobs[p.member] = _store_blob(tar.extractfile(members[p.member]))
            ctx.checkpoint()
        jobs = ctx.stage("Creating new jobs", total=len(archive.jobs) or None)
        for j in archive.jobs:
            with jobs.track(f"{j.name}/{j.version}"):
                blobs[j.member] = _store_blob(tar.extractfile(members[j.member]))


def _save_release(archive: ReleaseArchive, blobs: dict[str, tuple[str, str]]) -> ReleaseVersion:
    with transaction.atomic():
        release, _ = Release.objects.get_or_create(name=archive.name)
        rv = ReleaseVersion.objects.create(
            release=release,
            version=archive.version,
            commit_hash=archive.commit_hash,
            uncommitted_changes=archive.uncommitted_changes,
        )
        ReleasePackage.objects.bulk_create(
            ReleasePackage(
                release_version=rv,
                name=p.name,
                version=p.version,
                fingerprint=p.fingerprint,
                sha1=p.sha1,
                blobstore_id=blobs[p.member][0],
                dependencies=list(p.dependencies),
                stemcell=p.stemcell,
            )
            for p in archive.packages
        )
        ReleaseJob.objects.bulk_create(
            ReleaseJob(
                release_version=rv,
                name=j.name,
                version=j.version,
                fingerprint=j.fingerprint,
                sha1=j.sha1,
                blobstore_id=blobs[j.member][0],
                spec=j.spec,
            )
            for j in archive.jobs
        )
    return rv
