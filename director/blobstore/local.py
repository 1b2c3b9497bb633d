"""``LocalBlobstore``: blobs as files under ``BLOBSTORE_DIR``, served by this web server.

Layout as BOSH's DAV store keeps it: ``<root>/<pp>/<id>`` where ``<pp>`` is
sha1(id)[0] in hex. A blob is written to a temporary file in the same
directory tree, flushed to disk and renamed into place, so a reader sees the
old blob or the new one, never a part; a failed or oversized write leaves
nothing behind. Ids are checked (``check_blob_id``) before any path is made
from them. Agents reach the files over HTTP (``director.blobstore.views``),
with the ``agent`` user or a signed URL.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from .base import (
    DEFAULT_SIGNED_URL_LIFETIME,
    SIGNABLE_VERBS,
    BlobRef,
    Blobstore,
    check_blob_id,
    new_blob_id,
)
from .credentials import AGENT_USER, blobstore_credentials
from .digest import verifying_reader
from .errors import BlobIncomplete, BlobNotFound, BlobTooLarge
from .signing import blob_prefix, signed_url

CHUNK = 1 << 20
#: Temporary files of writes in progress, ignored by everything else.
INCOMING = ".incoming"


class LocalBlobstore(Blobstore):
    """Blobs on this machine's disk (the default, ``OPSCONSOLE_BLOBSTORE=local``)."""

    def __init__(self, root: str | os.PathLike | None = None, endpoint: str | None = None):
        self._root = Path(root) if root is not None else None
        self._endpoint = endpoint

    @property
    def root(self) -> Path:
        # Read late: tests and the import move BLOBSTORE_DIR while a process runs.
        return self._root if self._root is not None else Path(settings.BLOBSTORE_DIR)

    @property
    def endpoint(self) -> str:
        return (self._endpoint or settings.BLOBSTORE_ENDPOINT).rstrip("/")

    def path(self, blob_id: str) -> Path:
        blob_id = check_blob_id(blob_id)
        return self.root / blob_prefix(blob_id) / blob_id

    # ------------------------------------------------------------------ the contract

    def put(
        self,
        stream: BinaryIO,
        *,
        blob_id: str | None = None,
        max_bytes: int | None = None,
        expected_size: int | None = None,
    ) -> BlobRef:
        blob_id = check_blob_id(blob_id) if blob_id is not None else new_blob_id()
        final = self.path(blob_id)
        incoming = self.root / INCOMING
        incoming.mkdir(parents=True, exist_ok=True)
        sha1, sha256, size = hashlib.sha1(), hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(dir=incoming, prefix=f"{blob_id}-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise BlobTooLarge(f"blob {blob_id}: larger than {max_bytes} bytes")
                    sha1.update(chunk)
                    sha256.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if expected_size is not None and size != expected_size:
                raise BlobIncomplete(
                    f"blob {blob_id}: the stream ended after {size} of {expected_size} bytes"
                )
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return BlobRef(blob_id, size, sha1.hexdigest(), sha256.hexdigest())

    def get(self, blob_id: str, *, digest: str | None = None) -> BinaryIO:
        try:
            raw = open(self.path(blob_id), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise BlobNotFound(f"blob {blob_id}: not found") from None
        return verifying_reader(raw, digest, f"blob {blob_id}")

    def size(self, blob_id: str) -> int:
        try:
            return self.path(blob_id).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(f"blob {blob_id}: not found") from None

    def delete(self, blob_id: str) -> bool:
        try:
            self.path(blob_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def signed_url(
        self, blob_id: str, verb: str = "GET", expires_in: int = DEFAULT_SIGNED_URL_LIFETIME
    ) -> str:
        check_blob_id(blob_id)
        verb = verb.upper()
        if verb not in SIGNABLE_VERBS:
            raise ValueError(f"cannot sign {verb!r}: only {', '.join(SIGNABLE_VERBS)}")
        if int(expires_in) <= 0:
            raise ValueError(f"expires_in must be positive, not {expires_in!r}")
        secret = blobstore_credentials().signing_secret
        return signed_url(self.endpoint, secret, blob_id, verb, int(expires_in))

    def agent_settings(self, *, signed_urls: bool = False) -> dict:
        options: dict = {"endpoint": self.endpoint}
        if not signed_urls:
            options["user"] = AGENT_USER
            options["password"] = blobstore_credentials().agent_password
        ca = _self_signed_ca(self.endpoint)
        if ca:
            options["tls"] = {"cert": {"ca": ca}}
        return {"provider": "dav", "options": options}


def _self_signed_ca(endpoint: str) -> str | None:
    """The web server's own certificate, which agents must trust, when it is self-signed."""
    if not endpoint.startswith("https:") or not getattr(settings, "TLS_SELF_SIGNED", False):
        return None
    try:
        return (Path(settings.DATA_DIR) / "tls" / "cert.pem").read_text()
    except OSError:
        return None
