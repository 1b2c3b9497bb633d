"""The Director tile's pending-changes diff: no secret, whoever asks, and a changed one still shows.

``om bosh-diff`` shows ``((redacted))`` on both sides, so a changed vCenter
password looks like no change at all; ours says the cpi-config is
``different`` and notes that a secret changed, without showing it.
"""

from __future__ import annotations

import pytest
import yaml

from director.services import update_config
from tiles import services

pytestmark = pytest.mark.django_db


def _apply_configs() -> None:
    update_config("cpi", "default", yaml.safe_dump(services.render_cpi_config()), "admin")
    update_config("cloud", "default", yaml.safe_dump(services.render_cloud_config()), "admin")


def test_only_the_password_changed(director_configured):
    _apply_configs()
    assert services.director_diff()["cpi_configs"][0] == {
        "guid": director_configured.guid,
        "iaas_configuration_name": "default",
        "status": "same",
        "diff": "",
    }
    services.set_iaas_configuration({"vcenter_password": "an0ther-vc-password"})
    entry = services.director_diff()["cpi_configs"][0]
    assert entry["status"] == "different"
    assert "a secret value changed" in entry["diff"]
    pending = services.pending_changes(with_plan=False)
    assert "an0ther-vc-password" not in str(pending) and "s3cret-vc-password" not in str(pending)
    director = pending["product_changes"][0]
    assert director["action"] != "unchanged"


def test_a_changed_host_is_shown_with_the_password_still_hidden(director_configured):
    _apply_configs()
    services.set_iaas_configuration({"vcenter_host": "vc2.example.com"})
    diff = services.director_diff()["cpi_configs"][0]["diff"]
    assert "-    host: vcenter.example.com" in diff and "+    host: vc2.example.com" in diff
    assert "s3cret-vc-password" not in diff


def test_secret_keys_in_the_current_configs_are_hidden(director_configured):
    """A config uploaded through the API may hold more secrets than the tile renders."""
    cpi = services.render_cpi_config()
    cpi["cpis"][0]["properties"]["nsx"] = {"password": "nsx-pass-12345", "address": "nsx.local"}
    update_config("cpi", "default", yaml.safe_dump(cpi), "admin")
    diff = services.director_diff()["cpi_configs"][0]["diff"]
    assert "nsx-pass-12345" not in diff and "-      password: ((redacted))" in diff
    assert "-      address: nsx.local" in diff
