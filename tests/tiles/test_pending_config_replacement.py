"""Review Pending Changes warns when Apply Changes would replace a config someone uploaded.

The Director tile writes the director's ``cloud`` and ``cpi`` configs named
``default``. One uploaded through the director API under that name is
replaced by the next Apply Changes; the review names it, who uploaded it
and when, and shows the diff (secrets ``((redacted))``). Once an Apply
Changes wrote the tile's version again, the warning is gone.
"""

from __future__ import annotations

import pytest
import yaml
from django.urls import reverse
from rest_framework.test import APIClient

from director.models import Config
from opsconsole.models import ApiToken
from tiles import director_tile, services
from tiles.services import installations

pytestmark = pytest.mark.django_db

API = "/api/v0"


@pytest.fixture(autouse=True)
def vcenter_login_passes(monkeypatch):
    """vcenter.example.com is no vCenter (test_apply_vcenter.py logs in to vcsim for real)."""
    monkeypatch.setattr(director_tile, "test_vcenter_connection", lambda iaas=None: {})


@pytest.fixture
def bob_api(user_with_role):
    client = APIClient()
    _, raw = ApiToken.issue(user_with_role("full_control", "bob"))
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _apply():
    inst = services.apply_changes("admin", deploy_products="none")
    assert installations.run_installation(inst.id) == "succeeded"


def _director(client) -> dict:
    res = client.get(f"{API}/staged/pending_changes")
    assert res.status_code == 200, res.content
    return res.json()["product_changes"][0]


def test_a_cloud_config_uploaded_through_the_api_shows_as_replaced(
    director_configured, bob_api, admin_api, admin_client
):
    _apply()
    assert _director(admin_api)["config_replacements"] == []
    assert _director(admin_api)["warnings"] == []

    cloud = yaml.safe_load(Config.latest("cloud").content)
    cloud["vm_types"].append({"name": "bobs-huge", "cloud_properties": {"cpu": 32, "ram": 65536}})
    res = bob_api.post(
        f"{API}/director/configs",
        {"type": "cloud", "name": "default", "content": yaml.safe_dump(cloud)},
        format="json",
    )
    assert res.status_code == 201, res.content
    uploaded_id = int(res.json()["id"])  # BOSH gives config ids as strings

    director = _director(admin_api)
    [replaced] = director["config_replacements"]
    assert replaced["type"] == "cloud" and replaced["name"] == "default"
    assert replaced["config_id"] == uploaded_id and replaced["uploaded_by"] == "bob"
    assert replaced["message"].startswith(
        f"cloud-config 'default' (director config {uploaded_id}) was uploaded by bob at "
    )
    assert "the next Apply Changes replaces it with the tile's cloud-config" in replaced["message"]
    assert replaced["message"] in director["warnings"]
    assert "--- uploaded/cloud-config.yml" in replaced["diff"]
    assert "-  name: bobs-huge" in replaced["diff"]
    assert "-    cpu: 32" in replaced["diff"]
    assert director["action"] == "update"

    page = admin_client.get(reverse("pending-changes"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "was uploaded by bob at" in html
    assert "Cloud config (replaces the cloud-config bob uploaded)" in html
    assert "-  name: bobs-huge" in html

    _apply()  # the tile's cloud-config again: nothing left to warn about
    assert "bobs-huge" not in Config.latest("cloud").content
    director = _director(admin_api)
    assert director["config_replacements"] == [] and director["warnings"] == []


def test_an_uploaded_cpi_config_is_named_and_its_passwords_stay_hidden(
    director_configured, bob_api, admin_api
):
    _apply()
    cpi = yaml.safe_load(Config.latest("cpi").content)
    cpi["cpis"][0]["properties"]["password"] = "bobs-other-password"
    cpi["cpis"][0]["properties"]["host"] = "vcenter.bob.example.com"
    res = bob_api.post(
        f"{API}/director/configs",
        {"type": "cpi", "name": "default", "content": yaml.safe_dump(cpi)},
        format="json",
    )
    assert res.status_code == 201, res.content
    res = admin_api.get(f"{API}/staged/pending_changes")
    [replaced] = res.json()["product_changes"][0]["config_replacements"]
    assert replaced["type"] == "cpi" and replaced["uploaded_by"] == "bob"
    assert "-    host: vcenter.bob.example.com" in replaced["diff"]
    assert "+    host: vcenter.example.com" in replaced["diff"]
    for secret in ("bobs-other-password", "s3cret-vc-password"):
        assert secret not in res.content.decode()


def test_before_any_apply_an_uploaded_config_is_one_the_first_apply_replaces(
    director_configured, bob_api, admin_api
):
    res = bob_api.post(
        f"{API}/director/configs",
        {"type": "cloud", "name": "default", "content": "azs: [{name: z1}]\n"},
        format="json",
    )
    assert res.status_code == 201, res.content
    [replaced] = _director(admin_api)["config_replacements"]
    assert replaced["uploaded_by"] == "bob"
    assert "-- name: z1" in replaced["diff"]


def test_an_upload_equal_to_the_tiles_config_is_no_replacement(
    director_configured, bob_api, admin_api
):
    _apply()
    same = yaml.safe_dump(yaml.safe_load(Config.latest("cloud").content), sort_keys=True)
    res = bob_api.post(
        f"{API}/director/configs",
        {"type": "cloud", "name": "default", "content": same},
        format="json",
    )
    assert res.status_code == 201, res.content  # new text, same config
    assert _director(admin_api)["config_replacements"] == []
