"""Stemcells: list, upload (checked at once, imported by an ``update_stemcell`` task), delete."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from opsconsole.errors import NotFound, ServiceError

from .. import runner
from ..archives import UploadError
from ..models import Deployment, Stemcell, Task
from ..tarballs import read_stemcell
from ..uploads import discard_upload, save_upload
from .tasks import done_task


def list_stemcells() -> QuerySet[Stemcell]:
    return Stemcell.objects.order_by("name", "-id").prefetch_related(
        Prefetch("deployments", queryset=Deployment.objects.only("id", "name"))
    )


def upload_stemcell(file: Any, user: str, *, enqueue: bool = True) -> Task:
    """Check a stemcell tarball and queue its import (``update_stemcell``).

    ``file``: an uploaded file, a file object or a path (copied: the caller
    keeps its file). A tarball that is not a stemcell raises
    ``ServiceError`` (422) and leaves nothing behind; a stemcell already
    uploaded gives a finished task saying so. ``enqueue=False`` leaves the
    task off the queue for the caller to run inline (an Apply Changes step).
    """
    path = None
    try:
        path = save_upload(file, "stemcell")
        mf = read_stemcell(path)
    except UploadError as exc:
        discard_upload(path)
        raise ServiceError({"stemcell": [str(exc)]}) from None
    label = f"{mf.name}/{mf.version}"
    if Stemcell.objects.filter(name=mf.name, version=mf.version).exists():
        discard_upload(path)
        return done_task(
            "update_stemcell", "create stemcell", user, f"Stemcell '{label}' already exists"
        )
    return runner.create_task(
        "update_stemcell",
        "create stemcell",
        user,
        args={"path": str(path), "name": mf.name, "version": mf.version},
        enqueue=enqueue,
    )


def delete_stemcell(name: str, version: str, user: str, force: bool = False) -> Task:
    if not Stemcell.objects.filter(name=name, version=version).exists():
        raise NotFound(f"Stemcell '{name}/{version}' does not exist")
    return runner.create_task(
        "delete_stemcell",
        "delete stemcell",
        user,
        args={"name": name, "version": version, "force": force},
    )
