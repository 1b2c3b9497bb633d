"""The director's blobstore: where release jobs and packages, compiled packages,
rendered template archives and fetched logs live (BOSH's blobstore).

Code reaches it only through ``blobstore()``, an implementation of the
``Blobstore`` contract (``base.py``) picked by ``OPSCONSOLE_BLOBSTORE``:

- ``local`` (default): ``LocalBlobstore``, files under ``BLOBSTORE_DIR``.
- the dotted path of any other ``Blobstore`` subclass (``mypkg.s3.S3Blobstore``):
  the extension point for an S3-compatible store shared by several machines.
  Such a class implements ``put``/``get``/``size``/``delete``, mints its own
  signed URLs (S3's presigned GET/PUT) and answers ``agent_settings`` with
  the agent's provider block (``{"provider": "s3", "options": {...}}``).

Agents and other machines reach the local store over HTTP, DAV-style as
BOSH's davcli expects (``views.py``, under ``/blobstore/``): basic auth for
the ``agent`` (read) and ``director`` (read/write) users, or a signed,
expiring URL (``signing.py``).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .base import (
    BLOB_ID_RE,
    DEFAULT_SIGNED_URL_LIFETIME,
    BlobRef,
    Blobstore,
    check_blob_id,
    new_blob_id,
)
from .errors import (
    BlobDigestMismatch,
    BlobIncomplete,
    BlobNotFound,
    BlobstoreError,
    BlobTooLarge,
    InvalidBlobId,
    InvalidDigest,
)
from .local import LocalBlobstore

__all__ = [
    "BLOB_ID_RE",
    "DEFAULT_SIGNED_URL_LIFETIME",
    "BlobDigestMismatch",
    "BlobIncomplete",
    "BlobNotFound",
    "BlobRef",
    "Blobstore",
    "BlobstoreError",
    "BlobTooLarge",
    "InvalidBlobId",
    "InvalidDigest",
    "LocalBlobstore",
    "agent_blobstore_settings",
    "blobstore",
    "check_blob_id",
    "new_blob_id",
]

PROVIDERS = {"local": LocalBlobstore}


def blobstore() -> Blobstore:
    """The configured blobstore (``OPSCONSOLE_BLOBSTORE``)."""
    name = getattr(settings, "BLOBSTORE", "local") or "local"
    cls = PROVIDERS.get(name)
    if cls is None:
        try:
            cls = import_string(name)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"OPSCONSOLE_BLOBSTORE={name!r}: neither 'local' nor an importable class ({exc})"
            ) from None
        if not (isinstance(cls, type) and issubclass(cls, Blobstore)):
            raise ImproperlyConfigured(
                f"OPSCONSOLE_BLOBSTORE={name!r}: not a director.blobstore.Blobstore subclass"
            )
    return cls()


def agent_blobstore_settings(*, signed_urls: bool = False) -> dict:
    """The ``blobstore`` block of agent settings, as the CPI writes it for each VM:
    ``{"provider": "dav", "options": {"endpoint", "user": "agent", "password"}}``."""
    return blobstore().agent_settings(signed_urls=signed_urls)
