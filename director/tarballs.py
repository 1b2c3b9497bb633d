"""Reading stemcell and release tarballs: each checked completely before anything is written.

A **stemcell** tarball (``.tgz``) holds ``stemcell.MF`` (``name``,
``version``, ``operating_system``, ``stemcell_formats``, ``cloud_properties``,
``api_version``) and ``image`` (for vSphere, a tgz of an OVF and a VMDK).

A **release** tarball holds ``release.MF`` (``name``, ``version``,
``commit_hash``, ``uncommitted_changes``, ``jobs: [{name, version,
fingerprint, sha1}]``, ``packages: [{name, version, fingerprint, sha1,
dependencies}]`` or, for a compiled release, ``compiled_packages`` with a
``stemcell``), ``jobs/<name>.tgz`` (each holding ``job.MF``: name,
templates, packages, properties, consumes, provides; and ``templates/``)
and ``packages/<name>.tgz``.

``read_stemcell`` and ``read_release`` check a tarball completely and
return what its manifest says; a bad tarball is refused with an
``UploadError`` naming what is wrong (``release.MF: missing key
'version'``, ``jobs/zookeeper.tgz: not in the tarball``, ``not a gzip
tarball``), so the API answers 422 and no row, blob or task is left behind.
Every tarball is read through ``director.archives``: the outer tarball, the
stemcell's image, each job and package tarball of a release are held to the
expanded-size, file-count and compression-ratio limits while they are
decompressed (``ArchiveLimitError``, an ``UploadError`` naming the archive
and the limit). Nothing here writes a row; storing and importing is
``director.uploads``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml

from .archives import UploadError, open_tar
from .manifest.yaml import check_yaml_bounds

#: Stemcell formats the vSphere CPI imports (its ``info``).
SUPPORTED_STEMCELL_FORMATS = ("vsphere-ovf", "vsphere-ova")


# --------------------------------------------------------------------------- tar helpers


class _MfLoader(yaml.SafeLoader):
    """YAML for ``*.MF`` files: floats stay text, so version ``1.10`` is not ``1.1``."""


_MfLoader.add_constructor("tag:yaml.org,2002:float", lambda loader, node: node.value)


_UNREADABLE = (tarfile.TarError, OSError, EOFError, zlib.error)


@contextmanager
def _open_tgz(
    path: Path, label: str
) -> Iterator[tuple[tarfile.TarFile, dict[str, tarfile.TarInfo]]]:
    """Open an uploaded gzip tarball within the archive limits: (tar, files by name).

    ``label`` names it in a limit error (the name it was uploaded under).
    """
    with ExitStack() as stack:
        raw = stack.enter_context(open(path, "rb"))
        try:
            tar, infos = stack.enter_context(open_tar(raw, label, os.fstat(raw.fileno()).st_size))
        except _UNREADABLE as exc:
            raise UploadError(f"not a gzip tarball ({exc})") from None
        yield tar, _members(infos)


@contextmanager
def _open_inner_tgz(
    tar: tarfile.TarFile, info: tarfile.TarInfo, member: str, compression: str = "gz"
) -> Iterator[tuple[tarfile.TarFile, dict[str, tarfile.TarInfo]]]:
    """Open a tarball inside a tarball (a job, a package, the stemcell image) within the
    archive limits, measured against its own size."""
    what = "not a gzip tarball" if compression == "gz" else "not a tarball"
    with ExitStack() as stack:
        inner = stack.enter_context(tar.extractfile(info))
        try:
            job_tar, infos = stack.enter_context(
                open_tar(inner, member, info.size, compression=compression)
            )
        except _UNREADABLE as exc:
            raise UploadError(f"{member}: {what} ({exc})") from None
        yield job_tar, _members(infos)


def _check_inner_tgz(tar: tarfile.TarFile, info: tarfile.TarInfo, member: str) -> None:
    """Walk a tarball inside a tarball to its end, within the archive limits."""
    with _open_inner_tgz(tar, info, member):
        pass


def _members(infos: list[tarfile.TarInfo]) -> dict[str, tarfile.TarInfo]:
    """Regular files by normalised name (``./jobs/x.tgz`` -> ``jobs/x.tgz``)."""
    files = {}
    for info in infos:
        name = info.name
        while name.startswith("./"):
            name = name[2:]
        if info.isfile():
            files[name.lstrip("/")] = info
    return files


#: A release.MF, stemcell.MF or job.MF larger than this is refused unread.
MAX_MF_BYTES = 16 * 1024 * 1024


def _read_mf(tar: tarfile.TarFile, members: dict, name: str, where: str) -> dict:
    label = f"{where}{name}"
    if name not in members:
        raise UploadError(f"{label}: not in the tarball")
    with tar.extractfile(members[name]) as fh:
        raw = fh.read(MAX_MF_BYTES + 1)
    if len(raw) > MAX_MF_BYTES:
        raise UploadError(f"{label}: larger than {MAX_MF_BYTES} bytes")
    try:
        check_yaml_bounds(raw)  # a YAML bomb or runaway nesting is refused before it is built
        data = yaml.load(raw, Loader=_MfLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise UploadError(f"{label}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise UploadError(f"{label}: must be a YAML map")
    return data


def _require(data: dict, key: str, label: str, kind=str):
    if key not in data or data[key] is None or data[key] == "":
        raise UploadError(f"{label}: missing key '{key}'")
    value = data[key]
    if kind is str and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, kind):
        expected = {str: "a string", list: "a list", dict: "a map"}.get(kind, str(kind))
        raise UploadError(f"{label}: '{key}' must be {expected}")
    return value


def _optional(data: dict, key: str, label: str, kind, default):
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        expected = {str: "a string", list: "a list", dict: "a map", bool: "true or false"}[kind]
        raise UploadError(f"{label}: '{key}' must be {expected}")
    return value


def _digests(stream: IO[bytes]) -> tuple[str, str]:
    sha1, sha256 = hashlib.sha1(), hashlib.sha256()
    while chunk := stream.read(1 << 20):
        sha1.update(chunk)
        sha256.update(chunk)
    return sha1.hexdigest(), sha256.hexdigest()


def _check_digest(expected: str, actual: tuple[str, str], label: str) -> None:
    """``sha1`` in a manifest is a hex sha1 or ``sha256:<hex>`` (newer releases)."""
    algo, _, value = expected.partition(":") if ":" in expected else ("sha1", "", expected)
    have = actual[0] if algo == "sha1" else actual[1] if algo == "sha256" else None
    if have is None:
        raise UploadError(f"{label}: unknown digest algorithm '{algo}'")
    if have != value.lower():
        raise UploadError(f"{label}: {algo} mismatch (manifest says {value}, file is {have})")


# --------------------------------------------------------------------------- stemcells


@dataclass(frozen=True)
class StemcellManifest:
    """What ``stemcell.MF`` says."""

    name: str
    version: str
    operating_system: str
    api_version: int | None
    cloud_properties: dict
    stemcell_formats: tuple[str, ...]
    sha1: str = ""


def _is_archive(head: bytes) -> bool:
    """Gzip, bzip2, xz or a ustar/GNU tar header: an image the CPI will unpack."""
    return head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")) or head[257:262] == b"ustar"


def read_stemcell(path: str | Path, source: str = "") -> StemcellManifest:
    """Check a stemcell tarball and return its manifest; ``UploadError`` if it is not one.

    The tarball, and the image in it when it is an archive (the CPI unpacks
    it), are walked to their ends within the archive limits; ``source``
    names the upload in a limit error.
    """
    with _open_tgz(Path(path), source or "stemcell tarball") as (tar, members):
        mf = _read_mf(tar, members, "stemcell.MF", "")
        label = "stemcell.MF"
        name = _require(mf, "name", label)
        version = _require(mf, "version", label)
        operating_system = _require(mf, "operating_system", label)
        cloud_properties = _optional(mf, "cloud_properties", label, dict, {})
        formats = tuple(str(f) for f in _optional(mf, "stemcell_formats", label, list, []))
        api_version = mf.get("api_version")
        if api_version is not None:
            try:
                api_version = int(api_version)
            except (TypeError, ValueError):
                raise UploadError(f"{label}: 'api_version' must be a number") from None
        if "image" not in members:
            raise UploadError("image: not in the tarball")
        with tar.extractfile(members["image"]) as fh:
            head = fh.read(512)
        if _is_archive(head):
            with _open_inner_tgz(tar, members["image"], "image", compression="*"):
                pass
    if formats and not set(formats) & set(SUPPORTED_STEMCELL_FORMATS):
        raise UploadError(
            f"stemcell.MF: stemcell_formats {', '.join(formats)} cannot be imported by the "
            f"vSphere CPI (it takes {', '.join(SUPPORTED_STEMCELL_FORMATS)})"
        )
    return StemcellManifest(
        name=name,
        version=version,
        operating_system=operating_system,
        api_version=api_version,
        cloud_properties=cloud_properties,
        stemcell_formats=formats,
        sha1=str(mf.get("sha1") or ""),
    )


def extract_stemcell_image(path: str | Path, into: str | Path) -> Path:
    """Write the tarball's ``image`` to ``into/image`` and return its path."""
    with _open_tgz(Path(path), "stemcell tarball") as (tar, members):
        if "image" not in members:
            raise UploadError("image: not in the tarball")
        target = Path(into) / "image"
        with tar.extractfile(members["image"]) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    return target


# --------------------------------------------------------------------------- releases


@dataclass(frozen=True)
class JobArchive:
    name: str
    version: str
    fingerprint: str
    sha1: str
    member: str
    spec: dict


@dataclass(frozen=True)
class PackageArchive:
    name: str
    version: str
    fingerprint: str
    sha1: str
    member: str
    dependencies: tuple[str, ...]
    stemcell: str = ""


@dataclass(frozen=True)
class ReleaseArchive:
    name: str
    version: str
    commit_hash: str
    uncommitted_changes: bool
    jobs: tuple[JobArchive, ...] = field(default_factory=tuple)
    packages: tuple[PackageArchive, ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"


def _read_job_spec(tar, info, member: str, package_names: set[str]) -> dict:
    """Open ``jobs/<name>.tgz`` (within the archive limits) and check its ``job.MF``."""
    with _open_inner_tgz(tar, info, member) as (job_tar, files):
        where = f"{member}: "
        spec_name = "job.MF" if "job.MF" in files else "spec" if "spec" in files else "job.MF"
        with_loader = _read_mf(job_tar, files, spec_name, where)
        label = f"{member}: {spec_name}"
        _require(with_loader, "name", label)
        templates = _optional(with_loader, "templates", label, dict, {})
        for source in templates:
            if f"templates/{source}" not in files:
                raise UploadError(f"{member}: templates/{source}: not in the job tarball")
        packages = _optional(with_loader, "packages", label, list, [])
        for package in packages:
            if package not in package_names:
                raise UploadError(f"{label}: package '{package}' is not in the release")
        properties = _optional(with_loader, "properties", label, dict, {})
        for prop, definition in properties.items():
            if definition is not None and not isinstance(definition, dict):
                raise UploadError(f"{label}: properties/{prop} must be a map")
        for key in ("consumes", "provides"):
            for i, link in enumerate(_optional(with_loader, key, label, list, [])):
                if not isinstance(link, dict) or not link.get("name"):
                    raise UploadError(f"{label}: {key}/{i}: a link needs a 'name'")
        return {
            "name": with_loader["name"],
            "description": with_loader.get("description", ""),
            "templates": templates,
            "packages": packages,
            "properties": {k: (v or {}) for k, v in properties.items()},
            "consumes": with_loader.get("consumes") or [],
            "provides": with_loader.get("provides") or [],
        }


def read_release(path: str | Path, source: str = "") -> ReleaseArchive:
    """Check a release tarball completely (manifest, every job and package, digests).

    The tarball and every job and package tarball in it are walked to their
    ends within the archive limits (the agents unpack packages); ``source``
    names the upload in a limit error.
    """
    with _open_tgz(Path(path), source or "release tarball") as (tar, members):
        mf = _read_mf(tar, members, "release.MF", "")
        label = "release.MF"
        name = _require(mf, "name", label)
        version = _require(mf, "version", label)
        jobs_mf = _optional(mf, "jobs", label, list, [])
        compiled = "compiled_packages" in mf
        packages_mf = _optional(
            mf, "compiled_packages" if compiled else "packages", label, list, []
        )
        pkg_dir = "compiled_packages" if compiled else "packages"

        packages: list[PackageArchive] = []
        for i, entry in enumerate(packages_mf):
            if not isinstance(entry, dict):
                raise UploadError(f"{label}: {pkg_dir}/{i} must be a map")
            pname = _require(entry, "name", f"{label}: {pkg_dir}/{i}")
            plabel = f"{label}: {pkg_dir}/{pname}"
            member = f"{pkg_dir}/{pname}.tgz"
            sha1 = _require(entry, "sha1", plabel)
            if member not in members:
                raise UploadError(f"{member}: not in the tarball")
            _check_digest(sha1, _digests(tar.extractfile(members[member])), member)
            _check_inner_tgz(tar, members[member], member)
            packages.append(
                PackageArchive(
                    name=pname,
                    version=_require(entry, "version", plabel),
                    fingerprint=str(entry.get("fingerprint") or ""),
                    sha1=sha1,
                    member=member,
                    dependencies=tuple(_optional(entry, "dependencies", plabel, list, [])),
                    stemcell=str(entry.get("stemcell") or "") if compiled else "",
                )
            )
        package_names = {p.name for p in packages}
        for p in packages:
            for dep in p.dependencies:
                if dep not in package_names:
                    raise UploadError(
                        f"{label}: {pkg_dir}/{p.name}: dependency '{dep}' is not in the release"
                    )

        jobs: list[JobArchive] = []
        for i, entry in enumerate(jobs_mf):
            if not isinstance(entry, dict):
                raise UploadError(f"{label}: jobs/{i} must be a map")
            jname = _require(entry, "name", f"{label}: jobs/{i}")
            jlabel = f"{label}: jobs/{jname}"
            jversion = _require(entry, "version", jlabel)
            sha1 = _require(entry, "sha1", jlabel)
            member = f"jobs/{jname}.tgz"
            if member not in members:
                raise UploadError(f"{member}: not in the tarball")
            _check_digest(sha1, _digests(tar.extractfile(members[member])), member)
            spec = _read_job_spec(tar, members[member], member, package_names)
            if spec["name"] != jname:
                raise UploadError(
                    f"{member}: job.MF names the job '{spec['name']}', release.MF says '{jname}'"
                )
            jobs.append(
                JobArchive(
                    name=jname,
                    version=jversion,
                    fingerprint=str(entry.get("fingerprint") or ""),
                    sha1=sha1,
                    member=member,
                    spec=spec,
                )
            )
    duplicates = {j.name for j in jobs if sum(1 for k in jobs if k.name == j.name) > 1}
    if duplicates:
        raise UploadError(f"{label}: job '{sorted(duplicates)[0]}' is listed twice")
    return ReleaseArchive(
        name=name,
        version=version,
        commit_hash=str(mf.get("commit_hash") or ""),
        uncommitted_changes=bool(mf.get("uncommitted_changes") in (True, "true")),
        jobs=tuple(jobs),
        packages=tuple(packages),
    )
