"""Loading a product template: metadata YAML text, or a ``.pivotal`` zip.

``load_product_template()`` parses and checks the metadata;
``load_pivotal()`` finds it in a ``.pivotal`` and lists its release files,
streamed from the zip when asked, never extracted to disk.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from director.archives import UploadError, ZipMemberReader, check_zip
from director.manifest.yaml import YamlBoundsError
from tiles.template.checks import Checker
from tiles.template.model import ProductTemplate, TemplateError, parse_yaml

MAX_METADATA_BYTES = 16 * 1024 * 1024

MAX_PIVOTAL_UNCOMPRESSED_BYTES = 64 * 1024**3


def load_product_template(
    text_or_bytes: str | bytes, source: str = "metadata.yml"
) -> ProductTemplate:
    """Parse and validate a product template, or raise TemplateError."""
    if isinstance(text_or_bytes, bytes | bytearray):
        if len(text_or_bytes) > MAX_METADATA_BYTES:
            raise TemplateError([(source, f"metadata is larger than {MAX_METADATA_BYTES} bytes")])
        try:
            text_or_bytes = bytes(text_or_bytes).decode("utf-8")
        except UnicodeDecodeError:
            raise TemplateError([(source, "metadata is not UTF-8 text")]) from None
    try:
        data = parse_yaml(text_or_bytes)
    except YamlBoundsError as e:
        raise TemplateError([(source, f"metadata is refused: {e}")]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise TemplateError([(source, f"not valid YAML{where}: {problem}")]) from None
    if not isinstance(data, dict):
        raise TemplateError([(source, "a product template must be a YAML mapping")])
    checker = Checker(data)
    checker.check()
    if checker.errors:
        raise TemplateError(checker.errors)
    return ProductTemplate(data, source, checker.warnings)


@dataclass(frozen=True)
class ReleaseFile:
    """A release tarball inside a .pivotal; ``open()`` streams it (close it after)."""

    name: str
    version: str
    filename: str  # member name inside the zip, e.g. releases/nginx-1.0.tgz
    size: int
    opener: Callable[[], IO[bytes]]

    def open(self) -> IO[bytes]:
        return self.opener()


def _safe_member(name: str) -> bool:
    if name.startswith(("/", "\\")) or "\\" in name or re.match(r"^[A-Za-z]:", name):
        return False
    return ".." not in posixpath.normpath(name).split("/")


def load_pivotal(
    fileobj_or_path: str | os.PathLike | IO[bytes],
    *,
    max_uncompressed: int = MAX_PIVOTAL_UNCOMPRESSED_BYTES,
) -> tuple[ProductTemplate, list[ReleaseFile]]:
    """Open a .pivotal (zip): its product template and release tarballs.

    Raises TemplateError for: not a zip, unsafe member names, no or several
    ``metadata/*.yml``, oversized content (``max_uncompressed`` and the upload
    limits of ``director.archives``: too many members, too many bytes, too
    high a compression ratio, a compression other than deflate), an invalid
    template, or a release named in ``releases:`` whose file is not in the
    zip. The release streams ``ReleaseFile.open()`` gives stop at their
    declared size and word a damaged member as an ``UploadError``.
    """
    source = (
        str(fileobj_or_path)
        if isinstance(fileobj_or_path, str | os.PathLike)
        else getattr(fileobj_or_path, "name", "upload.pivotal")
    )
    source = Path(str(source)).name or "upload.pivotal"
    try:
        zf = zipfile.ZipFile(fileobj_or_path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise TemplateError([(source, "not a .pivotal file: it is not a zip archive")]) from None
    with zf:
        try:
            infos = check_zip(zf, source, _zip_size(fileobj_or_path))
        except UploadError as exc:
            raise TemplateError([(source, getattr(exc, "reason", str(exc)))]) from None
        bad = [i.filename for i in infos if not _safe_member(i.filename)]
        if bad:
            raise TemplateError([(source, f"unsafe path in archive: {bad[0]}")])
        total = sum(i.file_size for i in infos)
        if total > max_uncompressed:
            raise TemplateError(
                [(source, f"archive expands to {total} bytes, more than {max_uncompressed}")]
            )
        metas = [
            i
            for i in infos
            if posixpath.dirname(i.filename) == "metadata"
            and i.filename.endswith((".yml", ".yaml"))
        ]
        if not metas:
            raise TemplateError([(source, "no product template: expected one metadata/*.yml")])
        if len(metas) > 1:
            names = ", ".join(sorted(i.filename for i in metas))
            raise TemplateError([(source, f"more than one product template: {names}")])
        meta = metas[0]
        if meta.file_size > MAX_METADATA_BYTES:
            raise TemplateError([(meta.filename, f"larger than {MAX_METADATA_BYTES} bytes")])
        try:
            with zf.open(meta) as fh:
                raw = fh.read(MAX_METADATA_BYTES + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
            # A damaged member (bad CRC, mismatched header, truncated data,
            # unsupported compression or encryption) is a bad upload.
            raise TemplateError(
                [(meta.filename, f"cannot be read from the archive: {e}")]
            ) from None
        if len(raw) > MAX_METADATA_BYTES:
            raise TemplateError([(meta.filename, f"larger than {MAX_METADATA_BYTES} bytes")])
        template = load_product_template(raw, source=meta.filename)
        members = {i.filename: i for i in infos if posixpath.dirname(i.filename) == "releases"}

    errors: list[tuple[str, str]] = []
    releases: list[ReleaseFile] = []
    for i, rel in enumerate(template.releases):
        fname = rel.get("file") or f"{rel['name']}-{rel['version']}.tgz"
        member = f"releases/{posixpath.basename(fname)}"
        info = members.get(member)
        if info is None:
            errors.append(
                (
                    f"releases/{i}",
                    f"release {rel['name']} {rel['version']}: {member} is not in the .pivotal",
                )
            )
            continue
        releases.append(
            ReleaseFile(
                name=rel["name"],
                version=str(rel["version"]),
                filename=member,
                size=info.file_size,
                opener=_member_opener(fileobj_or_path, member),
            )
        )
    if errors:
        raise TemplateError(errors)
    return template, releases


def _zip_size(src: Any) -> int | None:
    """The size of the zip as uploaded (for the compression-ratio limit)."""
    if isinstance(src, str | os.PathLike):
        return os.path.getsize(src)
    try:
        position = src.tell()
        size = src.seek(0, io.SEEK_END)
        src.seek(position)
        return size
    except (AttributeError, OSError, ValueError):
        return None


def _member_opener(src: Any, member: str) -> Callable[[], IO[bytes]]:
    def opener() -> IO[bytes]:
        if hasattr(src, "seek"):
            src.seek(0)
        zf = zipfile.ZipFile(src)
        try:
            reader = ZipMemberReader(zf, zf.getinfo(member), owns_zip=True)
        except BaseException:
            zf.close()
            raise
        return io.BufferedReader(reader)

    return opener
