"""The ``Blobstore`` contract: what every blobstore implementation provides.

A blob is an opaque byte stream under an id of BOSH's form, a lowercase UUID
(``3f2c...-...``); the director refuses any other id, so an id can never name a
path outside the store. ``put`` answers a ``BlobRef`` with the id and the
blob's sha1 and sha256; callers keep the digest beside the id (a package's
``sha1``, an apply spec's ``rendered_templates_archive``) and hand it back to
``get`` or ``fetch`` to have the content checked as it is read.

An implementation also says how agents reach it (``agent_settings``: the
``blobstore`` block of agent settings) and mints signed, expiring URLs
(``signed_url``) that let an agent GET or PUT one blob without credentials.
"""

from __future__ import annotations

import os
import re
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import BlobNotFound, InvalidBlobId

#: A blob id: a lowercase UUID, as BOSH's director and agents create them.
BLOB_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Verbs a signed URL may be minted for (davcli signs GET and PUT).
SIGNABLE_VERBS = ("GET", "PUT")
#: BOSH's director signs URLs for 24 hours.
DEFAULT_SIGNED_URL_LIFETIME = 24 * 3600


def new_blob_id() -> str:
    return str(uuid.uuid4())


def check_blob_id(blob_id: object) -> str:
    """``blob_id`` if it is a blob id of ours, else ``InvalidBlobId`` naming it."""
    if not isinstance(blob_id, str) or not BLOB_ID_RE.fullmatch(blob_id):
        raise InvalidBlobId(f"{str(blob_id)[:80]!r} is not a blob id (a lowercase UUID)")
    return blob_id


@dataclass(frozen=True)
class BlobRef:
    """A stored blob: its id, size and digests."""

    id: str
    size: int
    sha1: str
    sha256: str

    @property
    def digest(self) -> str:
        """BOSH's multiple digest: ``sha256:<hex>;<sha1 hex>`` (sha1 is written bare)."""
        return f"sha256:{self.sha256};{self.sha1}"


class Blobstore(ABC):
    """Where the director keeps blobs. Implementations: ``LocalBlobstore``."""

    @abstractmethod
    def put(
        self,
        stream: BinaryIO,
        *,
        blob_id: str | None = None,
        max_bytes: int | None = None,
        expected_size: int | None = None,
    ) -> BlobRef:
        """Store ``stream`` (read in chunks) under ``blob_id`` or a new id.

        All or nothing: a stream that fails, grows past ``max_bytes``
        (``BlobTooLarge``) or ends before ``expected_size`` (``BlobIncomplete``)
        leaves no blob and no partial file, and an existing blob of that id is
        kept as it was.
        """

    @abstractmethod
    def get(self, blob_id: str, *, digest: str | None = None) -> BinaryIO:
        """The blob's content as a binary file object (close it).

        With ``digest`` (BOSH's multiple digest), reading it to the end raises
        ``BlobDigestMismatch`` if the content differs; use ``fetch`` to get a
        file that is only there when it matched.
        """

    @abstractmethod
    def size(self, blob_id: str) -> int:
        """Bytes in the blob; ``BlobNotFound`` if there is none."""

    @abstractmethod
    def delete(self, blob_id: str) -> bool:
        """Remove the blob; False if there was none."""

    @abstractmethod
    def signed_url(
        self, blob_id: str, verb: str = "GET", expires_in: int = DEFAULT_SIGNED_URL_LIFETIME
    ) -> str:
        """A URL that allows ``verb`` (GET or PUT) on this blob, without credentials,
        for ``expires_in`` seconds."""

    @abstractmethod
    def agent_settings(self, *, signed_urls: bool = False) -> dict:
        """The ``blobstore`` block of agent settings (``{"provider", "options"}``).

        With ``signed_urls`` the director hands agents signed URLs instead, and
        (as BOSH does) the block carries no user, password or secret.
        """

    def exists(self, blob_id: str) -> bool:
        try:
            self.size(blob_id)
        except BlobNotFound:
            return False
        return True

    def fetch(self, blob_id: str, target: str | os.PathLike, *, digest: str | None = None) -> Path:
        """Copy the blob to ``target``, which appears only complete and, with
        ``digest``, only when the content matched it (as agents download)."""
        target = Path(target)
        partial = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")
        try:
            with self.get(blob_id, digest=digest) as src, open(partial, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    def verify(self, blob_id: str, digest: str) -> None:
        """Read the blob through; ``BlobDigestMismatch`` if it does not match ``digest``."""
        with self.get(blob_id, digest=digest) as src:
            while src.read(1 << 20):
                pass
