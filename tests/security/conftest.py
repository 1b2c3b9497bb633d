"""Fixtures for the secrets tests: task logs in the test's own directory, no local vcsim."""

from __future__ import annotations

import uuid

import pytest
import yaml


@pytest.fixture
def security_dirs(settings, tmp_path):
    settings.TASK_LOG_DIR = tmp_path / "tasks"
    settings.BLOBSTORE_DIR = tmp_path / "blobstore"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.LOCAL_VCSIM_FILE = tmp_path / "no-vcsim.json"
    return tmp_path


@pytest.fixture
def vc_password() -> str:
    """A password no other test has used, so nothing registered it for redaction yet."""
    return f"vc-pw-{uuid.uuid4().hex}"


def cpi_config_text(password, host: str = "vcenter.example.com", **extra) -> str:
    """A cpi-config the way the Director tile renders it, with ``password``."""
    properties = {
        "host": host,
        "user": "admin@vsphere.local",
        "password": password,
        "default_disk_type": "thin",
        "datacenters": [{"name": "DC0", "vm_folder": "BOSH_VMs", "clusters": ["DC0_C0"]}],
        **extra,
    }
    return yaml.safe_dump(
        {"cpis": [{"name": "default", "type": "vsphere", "properties": properties}]},
        sort_keys=False,
    )


# The Director tile and small-tile fixtures of the tiles tests, reused as they are.
from tests.tiles.conftest import (  # noqa: E402, F401
    director_configured,
    small,
    small_release,
    stemcell,
    tiles_dirs,
)
