"""Where the test corpus is, and how tests that need it skip without it.

The corpus (real public manifests, cloud-configs, ops files, tile metadata and
release trees) is not part of the repository: it sits beside the checkout as
``../shared/corpus``, or wherever ``OPSCONSOLE_CORPUS`` points. In a user's
clone it is absent and the tests that read it skip with one reason; nothing
fails at collection. CI sets ``OPSCONSOLE_REQUIRE_CORPUS=1`` so that a missing
corpus fails the run instead of quietly skipping those tests (see
``tests/conftest.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("OPSCONSOLE_CORPUS") or REPO.parent / "shared" / "corpus")
TILES = CORPUS / "tiles"
PRESENT = CORPUS.is_dir()
REASON = (
    "needs the corpus: set OPSCONSOLE_CORPUS or place shared/corpus beside the checkout"
    f" ({CORPUS} is absent)"
)

#: Mark a test (or a module, as ``pytestmark``) that reads the corpus.
needs_corpus = pytest.mark.skipif(not PRESENT, reason=REASON)


def corpus_files(folder: Path, pattern: str = "*.yml", recursive: bool = True) -> list[Path]:
    """The sorted files under a corpus folder; empty when the corpus is absent."""
    if not folder.is_dir():
        return []
    return sorted(folder.rglob(pattern) if recursive else folder.glob(pattern))


def read_text(path: Path) -> str:
    """A corpus file's text at import time; empty when the corpus is absent (tests skip)."""
    return path.read_text() if PRESENT else ""
