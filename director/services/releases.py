"""Releases: list, and upload (checked completely, stored by an ``update_release`` task)."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from opsconsole.errors import ServiceError

from .. import runner
from ..archives import UploadError
from ..models import Release, ReleaseVersion, Task
from ..tarballs import read_release
from ..uploads import discard_upload, release_exists, save_upload
from .tasks import done_task


def list_releases() -> QuerySet[Release]:
    versions = ReleaseVersion.objects.order_by("-id").prefetch_related("jobs", "deployments")
    return Release.objects.order_by("name").prefetch_related(Prefetch("versions", versions))


def upload_release(file: Any, user: str) -> Task:
    """Check a release tarball completely and queue storing it (``update_release``)."""
    path = None
    try:
        path = save_upload(file, "release")
        archive = read_release(path)
    except UploadError as exc:
        discard_upload(path)
        raise ServiceError({"release": [str(exc)]}) from None
    if release_exists(archive.name, archive.version):
        discard_upload(path)
        return done_task(
            "update_release",
            "create release",
            user,
            f"Release '{archive.label}' already exists",
        )
    return runner.create_task(
        "update_release",
        "create release",
        user,
        args={"path": str(path), "name": archive.name, "version": archive.version},
    )
