"""BOSH's multiple digests, and a reader that checks one as it goes.

A digest is one or more ``algo:hex`` parts joined by ``;`` (sha1, sha256 or
sha512, each at most once); bare hex is sha1 (``da39a3ee...``), as release
manifests and older apply specs carry it. A blob is checked against the
strongest algorithm the digest names, as the BOSH agent does.
"""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO

from .errors import BlobDigestMismatch, InvalidDigest

#: Algorithms by strength; the hex length each must have.
ALGORITHMS = {"sha512": 128, "sha256": 64, "sha1": 40}
_HEX = re.compile(r"^[0-9a-f]+$")


def parse_digest(digest: str) -> dict[str, str]:
    """``{"sha256": hex, "sha1": hex}`` from ``sha256:hex;hex``; ``InvalidDigest`` naming it."""
    if not isinstance(digest, str) or not digest.strip():
        raise InvalidDigest(f"digest {digest!r}: empty")
    parts: dict[str, str] = {}
    for part in digest.strip().split(";"):
        algo, sep, value = part.strip().rpartition(":")
        algo = algo.lower() if sep else "sha1"
        value = value.lower()
        if algo not in ALGORITHMS:
            raise InvalidDigest(f"digest {digest!r}: unknown algorithm {algo!r}")
        if algo in parts:
            raise InvalidDigest(f"digest {digest!r}: {algo} given twice")
        if len(value) != ALGORITHMS[algo] or not _HEX.match(value):
            raise InvalidDigest(f"digest {digest!r}: {algo} must be {ALGORITHMS[algo]} hex digits")
        parts[algo] = value
    return parts


def strongest(digest: str) -> tuple[str, str]:
    """``(algorithm, hex)`` of the strongest part of ``digest``."""
    parts = parse_digest(digest)
    algo = next(a for a in ALGORITHMS if a in parts)
    return algo, parts[algo]


class VerifyingReader:
    """Wraps a binary file: hashes what is read and, at its end, raises
    ``BlobDigestMismatch`` if the content does not match the digest."""

    def __init__(self, raw: BinaryIO, digest: str, label: str):
        self._raw = raw
        self._algo, self._expected = strongest(digest)
        self._hash = hashlib.new(self._algo)
        self._label = label
        self._checked = False

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._hash.update(data)
        if not data or size is None or size < 0:
            self._check()
        return data

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        actual = self._hash.hexdigest()
        if actual != self._expected:
            raise BlobDigestMismatch(
                f"{self._label}: {self._algo} is {actual}, expected {self._expected}"
            )

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> VerifyingReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def verifying_reader(raw: BinaryIO, digest: str | None, label: str):
    """``raw`` itself without a digest, else a ``VerifyingReader`` over it."""
    if digest is None:
        return raw
    try:
        return VerifyingReader(raw, digest, label)
    except BaseException:
        raw.close()
        raise
