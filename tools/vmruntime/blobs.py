"""The agent's blobstore client: DAV GET/PUT with basic auth, or signed URLs; digests checked.

As BOSH's agent does (bosh-agent.md §5): a blob ``<id>`` lives at
``<endpoint>/<pp>/<id>`` where ``<pp>`` is the first byte of sha1(id) in hex;
GET and PUT carry the ``user``/``password`` of the settings' ``blobstore``
options, or nothing when the director handed a signed URL. A download is
written to a temporary file and checked against the expected digest (BOSH's
multiple digest ``algo:hex;...``, bare hex = sha1, the strongest algorithm
wins) before anyone uses it; a mismatch deletes it and fails naming the blob.
GETs are retried 3 times, 5 s apart (``retry_wait``). Uploads answer the
sha1 (and sha512 for signed uploads, as the agent reports them).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

CHUNK = 1024 * 1024
ALGORITHMS = ("sha512", "sha256", "sha1")  # strongest first


class BlobError(RuntimeError):
    """A blob could not be fetched, was not what the director said, or could not be stored."""


def parse_digest(text: str) -> dict[str, str]:
    """``"sha256:ab..;da39.."`` -> ``{"sha256": "ab..", "sha1": "da39.."}``."""
    if not isinstance(text, str) or not text.strip():
        raise BlobError(f"no digest given ({text!r})")
    out: dict[str, str] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        algo, _, value = part.rpartition(":")
        algo = algo.lower() or "sha1"
        if algo not in ALGORITHMS:
            raise BlobError(f"unknown digest algorithm '{algo}' in {text!r}")
        if algo in out:
            raise BlobError(f"digest {text!r} names {algo} twice")
        out[algo] = value.lower()
    if not out:
        raise BlobError(f"no digest given ({text!r})")
    return out


def strongest(digests: Mapping[str, str]) -> tuple[str, str]:
    for algo in ALGORITHMS:
        if algo in digests:
            return algo, digests[algo]
    raise BlobError("no digest")


def file_digests(path: Path, algos=("sha1", "sha256", "sha512")) -> dict[str, str]:
    hashes = {a: hashlib.new(a) for a in algos}
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            for h in hashes.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashes.items()}


def blob_prefix(blob_id: str) -> str:
    return hashlib.sha1(blob_id.encode()).hexdigest()[:2]


class BlobstoreClient:
    """One VM's view of the blobstore, from its settings' ``blobstore`` block."""

    def __init__(self, config: Mapping[str, Any] | None, scratch: Path, retry_wait: float = 5.0):
        config = config or {}
        self.provider = config.get("provider", "dav")
        options = config.get("options") or {}
        self.endpoint = str(options.get("endpoint") or "").rstrip("/")
        user, password = options.get("user"), options.get("password")
        self.auth = (user, password) if user and password else None
        self.scratch = Path(scratch)
        self.retry_wait = retry_wait
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE must not replace the settings' CA
        ca = ((options.get("tls") or {}).get("cert") or {}).get("ca")
        self.verify: bool | str = True
        if ca:
            self.scratch.mkdir(parents=True, exist_ok=True)
            ca_file = self.scratch / "blobstore-ca.pem"
            ca_file.write_text(ca)
            self.verify = str(ca_file)

    def _url(self, blob_id: str) -> str:
        if not self.endpoint:
            raise BlobError("the agent settings name no blobstore endpoint")
        return f"{self.endpoint}/{blob_prefix(blob_id)}/{blob_id}"

    def get(
        self,
        blob_id: str | None,
        digest: str,
        *,
        signed_url: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Path:
        """Download a blob to a temporary file, checked against ``digest``; returns its path."""
        expected = parse_digest(digest)
        algo, want = strongest(expected)
        url = signed_url or self._url(str(blob_id))
        auth = None if signed_url else self.auth
        what = blob_id or url.split("?", 1)[0].rsplit("/", 1)[-1]
        self.scratch.mkdir(parents=True, exist_ok=True)
        last = ""
        for attempt in range(3):
            if attempt:
                time.sleep(self.retry_wait)
            fd, name = tempfile.mkstemp(dir=self.scratch, prefix="blob-")
            path = Path(name)
            try:
                with os.fdopen(fd, "wb") as out:
                    h = hashlib.new(algo)
                    with self.session.get(
                        url,
                        auth=auth,
                        headers=dict(headers or {}),
                        stream=True,
                        verify=self.verify,
                        timeout=(10, 300),
                    ) as resp:
                        if resp.status_code != 200:
                            last = f"HTTP {resp.status_code}"
                            path.unlink(missing_ok=True)
                            if resp.status_code in (401, 403, 404):
                                break
                            continue
                        for chunk in resp.iter_content(CHUNK):
                            out.write(chunk)
                            h.update(chunk)
            except (OSError, requests.RequestException) as exc:
                path.unlink(missing_ok=True)
                last = str(exc)
                continue
            got = h.hexdigest()
            if got != want:
                path.unlink(missing_ok=True)
                raise BlobError(
                    f"Checking downloaded blob '{what}': expected {algo} digest {want}, got {got}"
                )
            return path
        raise BlobError(f"Getting blob '{what}' from the blobstore failed: {last}")

    def put(
        self,
        path: Path,
        *,
        signed_url: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[str | None, dict[str, str]]:
        """Upload ``path`` (a new blob id, or to ``signed_url``); returns (id or None, digests)."""
        digests = file_digests(path)
        blob_id = None if signed_url else str(uuid.uuid4())
        url = signed_url or self._url(str(blob_id))
        size = Path(path).stat().st_size
        try:
            with open(path, "rb") as fh:
                resp = self.session.put(
                    url,
                    data=fh,
                    auth=None if signed_url else self.auth,
                    headers={**dict(headers or {}), "Content-Length": str(size)},
                    verify=self.verify,
                    timeout=(10, 600),
                )
        except (OSError, requests.RequestException) as exc:
            raise BlobError(f"Uploading a blob failed: {exc}") from None
        if not 200 <= resp.status_code < 300:
            raise BlobError(f"Uploading a blob failed: HTTP {resp.status_code}")
        return blob_id, digests
