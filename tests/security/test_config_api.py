"""Config content in API output, per role: credentials only for the roles that may see them.

admin, full_control and full_view read configs as stored; restricted_control
and restricted_view read ``((redacted))`` in place of the vCenter password
and of every value under a secret-looking key, in the list, the single
config and the answer to their own POST. Callers authenticate with bearer
tokens, as automation does.
"""

from __future__ import annotations

import pytest
import yaml
from rest_framework.test import APIClient

from director import services
from opsconsole.auth import ROLES
from opsconsole.models import ApiToken
from opsconsole.redaction import REDACTED

from .conftest import cpi_config_text

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("security_dirs")]

SEES_CREDENTIALS = {
    "admin": True,
    "full_control": True,
    "full_view": True,
    "restricted_control": False,
    "restricted_view": False,
}

RUNTIME = """\
# DNS addon, with a blobstore key
addons: []
releases: [{name: dns, version: '1'}]
blobstore:
  options: {bucket: b, secret_access_key: AKIA-very-secret-1}
"""

PLAIN = "# no secrets in here\naddons: []\ntags: {team: dns}\n"


@pytest.fixture
def client_for(django_user_model, user_with_role):
    def make(role: str) -> APIClient:
        if role == "admin":
            user = django_user_model.objects.create_superuser("root", "", "admin-password-1")
        else:
            user = user_with_role(role)
        _, raw = ApiToken.issue(user, name="test")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


def test_every_role_is_listed():
    assert set(SEES_CREDENTIALS) == set(ROLES)


@pytest.mark.parametrize("role, sees", sorted(SEES_CREDENTIALS.items()))
def test_configs_list_and_detail_per_role(client_for, role, sees, vc_password):
    cpi_text = cpi_config_text(vc_password)
    cpi = services.update_config("cpi", "default", cpi_text, "admin").config
    rt = services.update_config("runtime", "dns", RUNTIME, "admin").config
    plain = services.update_config("runtime", "tags", PLAIN, "admin").config
    client = client_for(role)

    listed = client.get("/api/v0/director/configs")
    assert listed.status_code == 200
    by_id = {c["id"]: c for c in listed.json()["results"]}
    detail = {c.id: client.get(f"/api/v0/director/configs/{c.id}").json() for c in (cpi, rt, plain)}
    for shown in (by_id, detail):
        cpi_shown = shown[str(cpi.id) if shown is by_id else cpi.id]["content"]
        rt_shown = shown[str(rt.id) if shown is by_id else rt.id]["content"]
        plain_shown = shown[str(plain.id) if shown is by_id else plain.id]["content"]
        # a config without secrets is the same text for everyone, comments and all
        assert plain_shown == PLAIN
        if sees:
            assert cpi_shown == cpi_text and rt_shown == RUNTIME
        else:
            assert vc_password not in cpi_shown and "AKIA-very-secret-1" not in rt_shown
            doc = yaml.safe_load(cpi_shown)
            props = doc["cpis"][0]["properties"]
            assert props["password"] == REDACTED
            assert props["user"] == "admin@vsphere.local" and props["host"]  # the rest is shown
            rt_doc = yaml.safe_load(rt_shown)
            assert rt_doc["blobstore"]["options"] == {"bucket": "b", "secret_access_key": REDACTED}


@pytest.mark.parametrize("role", ["restricted_control", "full_control"])
def test_the_answer_to_a_post_follows_the_same_rule(client_for, role, vc_password):
    client = client_for(role)
    body = {"type": "cpi", "name": "default", "content": cpi_config_text(vc_password)}
    created = client.post("/api/v0/director/configs", body, format="json")
    assert created.status_code == 201
    again = client.post("/api/v0/director/configs", body, format="json")
    assert again.status_code == 200 and again.json()["message"] == "unchanged"
    for answer in (created.json(), again.json()):
        if role == "full_control":
            assert answer["content"] == body["content"]
        else:
            assert vc_password not in answer["content"] and REDACTED in answer["content"]


def test_secret_keys_and_registered_secrets_anywhere_are_redacted(client_for, vc_password):
    """Keys after opsconsole.redaction's pattern, nested, and a known password quoted elsewhere."""
    text = cpi_config_text(
        vc_password,
        agent={"mbus": f"nats://nats:{vc_password}@10.0.0.6:4222", "ntp": ["pool.ntp.org"]},
        connection_options={"ca_cert": "-----BEGIN CERTIFICATE-----"},
        nsx={"api_token": "tok-123456", "client_private_key": "-----BEGIN KEY-----"},
        credentials={"user": "svc", "pass": "p4ssw0rd!"},
    )
    config = services.update_config("cpi", "default", text, "admin").config
    shown = client_for("restricted_view").get(f"/api/v0/director/configs/{config.id}").json()
    for secret in (vc_password, "tok-123456", "BEGIN KEY", "p4ssw0rd!"):
        assert secret not in shown["content"]
    props = yaml.safe_load(shown["content"])["cpis"][0]["properties"]
    assert props["agent"]["mbus"] == f"nats://nats:{REDACTED}@10.0.0.6:4222"
    assert props["connection_options"] == {"ca_cert": "-----BEGIN CERTIFICATE-----"}
    assert props["nsx"] == {"api_token": REDACTED, "client_private_key": REDACTED}
    assert props["credentials"] == REDACTED
    assert props["agent"]["ntp"] == ["pool.ntp.org"]


def test_anonymous_callers_get_nothing(api_client, vc_password):
    config = services.update_config("cpi", "default", cpi_config_text(vc_password), "admin")
    for url in ("/api/v0/director/configs", f"/api/v0/director/configs/{config.config.id}"):
        response = api_client.get(url)
        assert response.status_code == 401
        assert vc_password not in response.content.decode()
