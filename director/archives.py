"""Bounded reading of uploaded archives: expanded bytes, member count, compression ratio.

Every archive an upload brings is read through these helpers: a stemcell
tarball and the image inside it, a release tarball and its job and package
tarballs, a ``.pivotal`` zip and the release tarballs inside it. They count
what decompression really produces, while it produces it (a header's size is
never taken on trust), and stop with ``ArchiveLimitError`` naming the archive
and the limit the moment one is passed, so a few kilobytes cannot become
gigabytes on disk or in memory. The limits come from settings (and so from
the environment):

- ``MAX_UPLOAD_EXPANDED_BYTES`` (``OPSCONSOLE_MAX_UPLOAD_EXPANDED_BYTES``):
  the bytes one archive may expand to;
- ``MAX_ARCHIVE_FILES`` (``OPSCONSOLE_MAX_ARCHIVE_FILES``): the members one
  archive may hold;
- ``MAX_ARCHIVE_RATIO`` (``OPSCONSOLE_MAX_ARCHIVE_RATIO``): how many times
  its own size an archive may expand to, checked once it has expanded past
  ``RATIO_FLOOR`` (small, very compressible manifests stay welcome). Real
  stemcells and releases hold already-compressed disks and tarballs and
  expand about 1:1; a bomb of zeros expands 1000:1 and more.

``UploadError`` lives here so that a limit error is an upload error: the
director API answers it with a 422, an upload task fails with its message.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from django.conf import settings

#: The ratio check starts once an archive has expanded past this many bytes.
RATIO_FLOOR = 64 * 1024 * 1024
#: No single read of a decompressed stream may ask for more: tar headers (pax,
#: GNU long names) and manifests are read whole, so one huge header would
#: otherwise be built in memory.
MAX_SINGLE_READ = 64 * 1024 * 1024


class UploadError(Exception):
    """A tarball is not acceptable; the message names the file and the key."""


class ArchiveLimitError(UploadError):
    """An archive expands past a limit; the message names the archive and the limit."""

    def __init__(self, label: str, reason: str):
        super().__init__(f"{label}: {reason}")
        self.label = label
        self.reason = reason


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} bytes" if unit == "bytes" else f"{n:.1f} {unit}".replace(".0 ", " ")
        n /= 1024
    return f"{n} bytes"  # pragma: no cover - the loop returns


@dataclass(frozen=True)
class ArchiveLimits:
    """The limits every archive of an upload is held to (see the module docstring)."""

    max_bytes: int
    max_files: int
    max_ratio: int

    @classmethod
    def current(cls) -> ArchiveLimits:
        """The limits settings give now (``override_settings`` applies)."""
        return cls(
            max_bytes=settings.MAX_UPLOAD_EXPANDED_BYTES,
            max_files=settings.MAX_ARCHIVE_FILES,
            max_ratio=settings.MAX_ARCHIVE_RATIO,
        )

    def check_bytes(self, label: str, expanded: int, compressed: int | None) -> None:
        """Refuse ``label`` once ``expanded`` bytes pass the size or the ratio limit."""
        if expanded > self.max_bytes:
            raise ArchiveLimitError(
                label,
                f"expands to more than {_size(self.max_bytes)}, the limit "
                f"(OPSCONSOLE_MAX_UPLOAD_EXPANDED_BYTES={self.max_bytes})",
            )
        if (
            compressed is not None
            and expanded > RATIO_FLOOR
            and expanded > self.max_ratio * max(compressed, 1)
        ):
            raise ArchiveLimitError(
                label,
                f"expands to more than {self.max_ratio} times its size "
                f"({_size(compressed)} expands past {_size(expanded)}), the limit "
                f"(OPSCONSOLE_MAX_ARCHIVE_RATIO={self.max_ratio})",
            )

    def check_files(self, label: str, count: int) -> None:
        if count > self.max_files:
            raise ArchiveLimitError(
                label,
                f"holds more than {self.max_files} files, the limit "
                f"(OPSCONSOLE_MAX_ARCHIVE_FILES={self.max_files})",
            )


class MeteredReader(io.RawIOBase):
    """A decompressed stream that counts the bytes it yields and stops at the limits.

    Counts the furthest offset reached (a backward seek re-reads, it does not
    expand further), refuses a seek or read that would pass the size limit
    before decompressing towards it, and refuses one read larger than
    ``MAX_SINGLE_READ``.
    """

    def __init__(self, inner: IO[bytes], label: str, limits: ArchiveLimits, compressed: int | None):
        self._inner = inner
        self.label = label
        self.limits = limits
        self.compressed = compressed
        self.expanded = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def _reached(self, offset: int) -> None:
        if offset > self.expanded:
            self.expanded = offset
            self.limits.check_bytes(self.label, offset, self.compressed)

    def read(self, size: int | None = -1) -> bytes:
        position = self._inner.tell()
        room = self.limits.max_bytes - position + 1
        if size is None or size < 0:
            size = room
        if size > MAX_SINGLE_READ and size <= room:
            raise ArchiveLimitError(
                self.label, f"a header or manifest larger than {_size(MAX_SINGLE_READ)}"
            )
        data = self._inner.read(min(size, room, MAX_SINGLE_READ))
        self._reached(position + len(data))
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self._inner.tell() + offset
        if whence not in (io.SEEK_SET, io.SEEK_CUR):
            raise OSError("an archive stream cannot seek from its end")
        if target > self.limits.max_bytes:
            self._reached(target)  # refused before decompressing that far
        position = self._inner.seek(target)
        self._reached(self._inner.tell())
        return position

    def tell(self) -> int:
        return self._inner.tell()

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


def _decompressor(fileobj: IO[bytes], compression: str) -> IO[bytes]:
    """``gz``: gzip only; ``*``: gzip, bzip2, xz or none, told by the magic bytes."""
    head = fileobj.read(6)
    fileobj.seek(0)
    if compression == "gz" or head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=fileobj, mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(fileobj)
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(fileobj)
    return fileobj


@contextmanager
def open_tar(
    fileobj: IO[bytes],
    label: str,
    compressed: int | None,
    *,
    compression: str = "gz",
    limits: ArchiveLimits | None = None,
) -> Iterator[tuple[tarfile.TarFile, list[tarfile.TarInfo]]]:
    """Open a (compressed) tarball read through a ``MeteredReader``; yields it and its members.

    The members are read header by header, each counted against the file
    limit and (their sizes, sparse files at their full size) against the
    byte and ratio limits, so a refused archive stops early. ``fileobj`` is
    not closed. Tar and decompression errors propagate for the caller to word.
    """
    limits = limits or ArchiveLimits.current()
    stream = MeteredReader(_decompressor(fileobj, compression), label, limits, compressed)
    try:
        with tarfile.open(fileobj=stream, mode="r:") as tar:
            infos: list[tarfile.TarInfo] = []
            total = 0
            for info in tar:
                infos.append(info)
                limits.check_files(label, len(infos))
                if info.isfile():
                    total += info.size
                    limits.check_bytes(label, total, compressed)
            yield tar, infos
    finally:
        stream.close()


def check_zip(zf: zipfile.ZipFile, label: str, compressed: int | None) -> list[zipfile.ZipInfo]:
    """A zip's file entries, refused past the file limit or (by the sizes declared) the byte
    and ratio limits; ``open_zip_member`` then holds each member to its declared size."""
    limits = ArchiveLimits.current()
    infos = [i for i in zf.infolist() if not i.is_dir()]
    limits.check_files(label, len(infos))
    for info in infos:
        # bzip2 and xz members inflate without a bound inside one zipfile read
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise UploadError(
                f"{info.filename}: compression method {info.compress_type} is not supported "
                "(zip members must be stored or deflated)"
            )
    limits.check_bytes(label, sum(i.file_size for i in infos), compressed)
    return infos


class ZipMemberReader(io.RawIOBase):
    """A zip member's stream that yields no more than the size its entry declares.

    The declared sizes were checked against the limits (``check_zip``); a
    member whose data inflates past its declared size, or that cannot be
    read (bad CRC, truncated data), is an ``UploadError`` (the caller names
    the member), never an unworded exception.
    """

    def __init__(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, owns_zip: bool = False):
        self._zf = zf
        self._info = info
        self._owns_zip = owns_zip
        self._fh = zf.open(info)
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._fh.read(len(buffer))
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
            # more data than declared fails the CRC check: a bad member, not an expansion
            raise UploadError(f"cannot be read from the archive ({exc})") from None
        self.read_bytes += len(data)
        if self.read_bytes > self._info.file_size:
            raise UploadError(
                f"expands past the {self._info.file_size} bytes its zip entry declares"
            )
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
            if self._owns_zip:
                self._zf.close()
        super().close()
