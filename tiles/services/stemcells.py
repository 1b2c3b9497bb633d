"""The Stemcell Library: stemcell files the console keeps, matched to the products that need them.

Ops Manager keeps every imported stemcell in its **Stemcell Library** and
uploads to BOSH, during Apply Changes, the ones a product needs that the
director lacks ("Missing stemcell" otherwise). Here:

- ``import_stemcell`` checks a tarball (``director.uploads.read_stemcell``),
  keeps it under ``settings.STEMCELL_LIBRARY_DIR`` as one file per
  ``name`` + ``version`` (a ``LibraryStemcell`` row), and starts the
  director upload at once as before (``director.services.upload_stemcell``).
  A bad tarball is refused with nothing kept; a name/version already in the
  library is not replaced, and the answer says so.
- ``match_stemcell`` is the one matching rule (pure): a product's
  ``stemcell_criteria`` (``os`` + ``version``) take the exact version, else
  the newest of the same major line (Ops Manager's floating stemcells:
  ``version: "1.x"`` or ``"1.0"`` both float within ``1.``), unless
  ``enable_patch_security_updates: false``; no version takes the newest.
- ``resolve_stemcell`` decides what a product deploys with: the director's
  matching stemcell first, else the newest matching library stemcell,
  which Apply Changes' ``stemcells`` step uploads (``stemcells_to_upload``).
- ``stemcell_assignments`` is Ops Manager's ``GET /api/v0/stemcell_assignments``.

Keeping the file is the console's business (tiles), not the director's: the
director only ever sees an upload task, so ``tiles -> director`` holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction

from director.archives import UploadError
from director.models import Stemcell
from director.services import stemcells as director_stemcells
from director.tarballs import read_stemcell
from opsconsole.errors import ServiceError
from tiles.models import LibraryStemcell, StagedProduct
from tiles.template import TemplateError

from .common import product_template


class StemcellLike(Protocol):
    name: str
    version: str
    operating_system: str


S = TypeVar("S", bound=StemcellLike)


# --------------------------------------------------------------------------- matching (pure)


def version_key(version: str) -> tuple:
    """Sort key for stemcell versions: ``1.10`` after ``1.9``, numbers before words."""
    parts = []
    for p in str(version).replace("-", ".").split("."):
        parts.append((0, int(p), "") if p.isdigit() else (1, 0, p))
    return tuple(parts)


def _os_matches(candidate: StemcellLike, os_name: str) -> bool:
    # A director stemcell recorded without its OS is matched by its name (bosh-…-<os>-go_agent).
    return candidate.operating_system == os_name or (
        not candidate.operating_system and os_name in candidate.name
    )


def _major(version: str) -> str:
    return str(version).split(".")[0]


def _floats(criteria: Mapping) -> bool:
    return criteria.get("enable_patch_security_updates", True) is not False


def matching_stemcells(criteria: Mapping | None, candidates: Iterable[S]) -> list[S]:
    """Every candidate the criteria accept, oldest first (``available_stemcell_versions``)."""
    if not criteria or not criteria.get("os"):
        return []
    os_name = str(criteria["os"])
    version = str(criteria.get("version") or "")
    same_os = [c for c in candidates if _os_matches(c, os_name)]
    if version in ("", "latest"):
        ok = same_os
    elif _floats(criteria):
        ok = [c for c in same_os if c.version == version or _major(c.version) == _major(version)]
    else:
        ok = [c for c in same_os if c.version == version]
    return sorted(ok, key=lambda c: version_key(c.version))


def match_stemcell(criteria: Mapping | None, candidates: Iterable[S]) -> S | None:
    """The stemcell ``stemcell_criteria`` pick among ``candidates``, or None.

    The exact version when present, else the newest accepted one (floating
    within the major line; see the module docstring).
    """
    ok = matching_stemcells(criteria, candidates)
    if not ok:
        return None
    version = str(criteria.get("version") or "")
    exact = [c for c in ok if c.version == version]
    return exact[-1] if exact else ok[-1]


# --------------------------------------------------------------------------- the library files


def library_dir() -> Path:
    return Path(
        getattr(settings, "STEMCELL_LIBRARY_DIR", Path(settings.DATA_DIR) / "stemcell_library")
    )


def _file_name(name: str, version: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{name}-{version}") + ".tgz"


def _chunks(stream: Any) -> Iterable[bytes]:
    if hasattr(stream, "chunks"):  # a Django UploadedFile
        return stream.chunks()
    return iter(lambda: stream.read(1 << 20), b"")


def _copy_in(source: Any, directory: Path) -> tuple[Path, str]:
    """Write an upload (``UploadedFile``, file object or path) to a temp file; (path, sha1)."""
    if isinstance(source, str | os.PathLike) and not Path(source).is_file():
        raise ServiceError({"stemcell": [f"{source}: no such file"]})
    sha1 = hashlib.sha1()
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".incoming-", suffix=".tgz")
    try:
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(os.fdopen(fd, "wb"))
            if isinstance(source, str | os.PathLike):
                source = stack.enter_context(open(source, "rb"))
            elif hasattr(source, "seek"):
                source.seek(0)
            for chunk in _chunks(source):
                sha1.update(chunk)
                out.write(chunk)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp), sha1.hexdigest()


@dataclass(frozen=True)
class StemcellImport:
    """What ``import_stemcell`` did: the library row, whether it is new, the director task."""

    stemcell: LibraryStemcell
    created: bool
    message: str
    task: Any = None  # director.models.Task, or None when not uploaded to the director


def import_stemcell(file: Any, user: str, *, upload: bool = True) -> StemcellImport:
    """Keep a stemcell tarball in the library and (``upload``) start its director upload.

    ``file``: an uploaded file, a file object or a path. Refused with
    ``ServiceError`` on ``stemcell`` (422) when it is not a stemcell the
    vSphere CPI takes; nothing is kept then. A name/version the library
    holds already keeps its file (``created=False`` and a message saying so).
    """
    directory = library_dir()
    directory.mkdir(parents=True, exist_ok=True)
    tmp, sha1 = _copy_in(file, directory)
    try:
        try:
            mf = read_stemcell(tmp)
        except UploadError as exc:
            raise ServiceError({"stemcell": [str(exc)]}) from None
        label = f"{mf.name}/{mf.version}"
        existing = LibraryStemcell.objects.filter(name=mf.name, version=mf.version).first()
        if existing is not None and Path(existing.path).is_file():
            stemcell, created = existing, False
            message = (
                f"Stemcell {label} is already in the Stemcell Library; the file kept there "
                "was not replaced"
            )
        else:
            final = directory / _file_name(mf.name, mf.version)
            os.replace(tmp, final)
            try:
                with transaction.atomic():
                    if existing is not None:  # its file was removed by hand: keep this one
                        existing.path, existing.sha1 = str(final), sha1
                        existing.operating_system = mf.operating_system
                        existing.save(update_fields=["path", "sha1", "operating_system"])
                        stemcell = existing
                    else:
                        stemcell = LibraryStemcell.objects.create(
                            name=mf.name,
                            version=mf.version,
                            operating_system=mf.operating_system,
                            path=str(final),
                            sha1=sha1,
                            uploaded_by=user or "",
                        )
            except IntegrityError:  # another import of the same stemcell won the race
                stemcell = LibraryStemcell.objects.get(name=mf.name, version=mf.version)
                created = False
                message = f"Stemcell {label} is already in the Stemcell Library"
            else:
                created = True
                message = f"Stemcell {label} added to the Stemcell Library"
    finally:
        tmp.unlink(missing_ok=True)
    task = None
    if upload:
        task = director_stemcells.upload_stemcell(stemcell.path, user)
    return StemcellImport(stemcell=stemcell, created=created, message=message, task=task)


def list_library_stemcells() -> list[LibraryStemcell]:
    return list(LibraryStemcell.objects.all())


# --------------------------------------------------------------------------- resolving


@dataclass(frozen=True)
class StemcellChoice:
    """The stemcell a product deploys with, and where it is (``director`` or ``library``)."""

    name: str
    version: str
    operating_system: str
    source: str
    library: LibraryStemcell | None = None

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"


def _director_stemcells() -> list:
    return list(Stemcell.objects.all())


def find_director_stemcell(criteria: Mapping | None, stemcells: Sequence | None = None):
    """The director stemcell (``director.models.Stemcell``) the criteria pick, or None."""
    return match_stemcell(criteria, _director_stemcells() if stemcells is None else stemcells)


def resolve_stemcell(
    criteria: Mapping | None,
    director: Sequence | None = None,
    library: Sequence[LibraryStemcell] | None = None,
) -> StemcellChoice | None:
    """The director's matching stemcell, else the library's (to be uploaded), else None."""
    found = find_director_stemcell(criteria, director)
    if found is not None:
        return StemcellChoice(found.name, found.version, found.operating_system, "director")
    lib = match_stemcell(criteria, list_library_stemcells() if library is None else library)
    if lib is not None:
        return StemcellChoice(lib.name, lib.version, lib.operating_system, "library", lib)
    return None


def _criteria(staged: StagedProduct) -> dict:
    """A staged product's ``stemcell_criteria`` ({} when its template no longer parses)."""
    try:
        return dict(product_template(staged).stemcell_criteria or {})
    except TemplateError:
        return {}


@dataclass(frozen=True)
class StemcellUploadPlan:
    """What Apply Changes' ``stemcells`` step does for a set of products.

    ``uploads``: library stemcells to upload, each with the product guids
    that need it; ``missing``: ``(guid, criteria)`` of products with no
    match in the director nor in the library.
    """

    uploads: tuple[tuple[LibraryStemcell, tuple[str, ...]], ...] = ()
    missing: tuple[tuple[str, Mapping], ...] = field(default_factory=tuple)


def stemcells_to_upload(products: Iterable[StagedProduct]) -> StemcellUploadPlan:
    director = _director_stemcells()
    library = list_library_stemcells()
    uploads: dict[int, tuple[LibraryStemcell, list[str]]] = {}
    missing = []
    for sp in products:
        if sp.marked_for_deletion:
            continue
        criteria = _criteria(sp)
        if not criteria.get("os"):
            continue
        choice = resolve_stemcell(criteria, director, library)
        if choice is None:
            missing.append((sp.guid, criteria))
        elif choice.source == "library":
            uploads.setdefault(choice.library.pk, (choice.library, []))[1].append(sp.guid)
    return StemcellUploadPlan(
        uploads=tuple((lib, tuple(guids)) for lib, guids in uploads.values()),
        missing=tuple(missing),
    )


def stemcell_notes(staged: StagedProduct) -> list[str]:
    """Review Pending Changes' note on a product whose stemcell is only in the library."""
    choice = resolve_stemcell(_criteria(staged))
    if choice is None or choice.source != "library":
        return []
    return [
        f"Stemcell {choice.label} ({choice.operating_system}) is in the Stemcell Library and "
        "will be uploaded to the director by Apply Changes"
    ]


def criteria_text(criteria: Mapping) -> str:
    return f"{criteria.get('os', '')} {criteria.get('version', '')}".strip()


# --------------------------------------------------------------------------- pages and API


@dataclass(frozen=True)
class LibraryEntry:
    """One row of the Stemcell Library page."""

    stemcell: LibraryStemcell
    director_cid: str  # "" while the director does not have it
    used_by: tuple[tuple[str, str], ...]  # (guid, label) of staged products deploying with it

    @property
    def in_director(self) -> bool:
        return bool(self.director_cid)


def stemcell_library() -> list[LibraryEntry]:
    """The library with, per stemcell, its director cid (if uploaded) and its staged users."""
    director = _director_stemcells()
    library = list_library_stemcells()
    cids = {(s.name, s.version): s.cid for s in director}
    users: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for sp in StagedProduct.objects.select_related("product").filter(marked_for_deletion=False):
        choice = resolve_stemcell(_criteria(sp), director, library)
        if choice is not None:
            users.setdefault((choice.name, choice.version), []).append(
                (sp.guid, sp.product.label or sp.product.name)
            )
    return [
        LibraryEntry(
            stemcell=lib,
            director_cid=cids.get((lib.name, lib.version), ""),
            used_by=tuple(users.get((lib.name, lib.version), ())),
        )
        for lib in library
    ]


def stemcell_assignments() -> dict:
    """``GET /api/v0/stemcell_assignments`` (Ops Manager's legacy shape), per staged product."""
    director = _director_stemcells()
    library = list_library_stemcells()
    products = []
    for sp in StagedProduct.objects.select_related("product").filter(marked_for_deletion=False):
        criteria = _criteria(sp)
        choice = resolve_stemcell(criteria, director, library)
        versions = {c.version for c in matching_stemcells(criteria, [*director, *library])}
        products.append(
            {
                "guid": sp.guid,
                "identifier": sp.product.name,
                "staged_stemcell_version": choice.version if choice else None,
                "available_stemcell_versions": sorted(versions, key=version_key),
                "required_stemcell_version": str(criteria.get("version") or "") or None,
                "required_stemcell_os": str(criteria.get("os") or "") or None,
            }
        )
    return {"products": products}
