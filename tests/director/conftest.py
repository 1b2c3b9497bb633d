"""Fixtures for the director's database tests (not used by the pure manifest/planning tests)."""

import pytest


@pytest.fixture
def director_dirs(settings, tmp_path):
    """Task logs, blobs and uploads in a directory of this test's own."""
    settings.TASK_LOG_DIR = tmp_path / "tasks"
    settings.BLOBSTORE_DIR = tmp_path / "blobstore"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.STEMCELL_LIBRARY_DIR = tmp_path / "stemcell_library"
    return tmp_path
