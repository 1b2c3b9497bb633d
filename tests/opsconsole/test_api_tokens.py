"""API tokens expire, can be revoked (one, or all of a user's) and listed.

``GET/DELETE /api/v0/auth/tokens`` and ``/api/v0/auth/tokens/{id}``: a user
sees and revokes their own tokens, an admin anyone's. An expired or revoked
token gets 401 saying which; no list shows a token's secret.
"""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from opsconsole.models import ApiToken

pytestmark = pytest.mark.django_db

TOKENS = "/api/v0/auth/tokens"
ME = "/api/v0/director/tasks"  # any route that needs a login


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def issue(api_client, username, password):
    response = api_client.post(
        "/api/v0/auth/token", {"username": username, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def clock(monkeypatch):
    class Clock:
        now = timezone.now()

        def advance(self, seconds):
            self.now += datetime.timedelta(seconds=seconds)

    c = Clock()
    monkeypatch.setattr(timezone, "now", lambda: c.now)
    return c


@pytest.fixture
def viewer(user_with_role):
    return user_with_role("full_view", "viewer")


def test_a_token_expires_after_its_lifetime(settings, api_client, admin_user, clock):
    settings.API_TOKEN_LIFETIME = 3600
    body = issue(api_client, "admin", "admin-password-1")
    assert body["expires_in"] == 3600
    client = bearer(body["access_token"])
    clock.advance(3599)
    assert client.get(ME).status_code == 200
    clock.advance(1)
    response = client.get(ME)
    assert response.status_code == 401
    message = response.json()["errors"]["base"][0]
    assert message.startswith("This token expired at ")
    assert "POST /api/v0/auth/token" in message


def test_the_default_lifetime_is_twelve_hours(api_client, admin_user):
    body = issue(api_client, "admin", "admin-password-1")
    assert body["expires_in"] == 12 * 3600


def test_revoke_one(api_client, admin_user):
    first = issue(api_client, "admin", "admin-password-1")
    second = issue(api_client, "admin", "admin-password-1")
    client = bearer(second["access_token"])
    response = client.delete(f"{TOKENS}/{first['id']}")
    assert response.status_code == 200
    assert response.json()["state"] == "revoked" and response.json()["revoked_at"]
    refused = bearer(first["access_token"]).get(ME)
    assert refused.status_code == 401
    assert refused.json()["errors"]["base"][0].startswith("This token was revoked at ")
    assert client.get(ME).status_code == 200
    # Revoking again changes nothing.
    again = client.delete(f"{TOKENS}/{first['id']}")
    assert again.status_code == 200 and again.json()["revoked_at"] == response.json()["revoked_at"]


def test_revoke_all_of_mine(api_client, admin_user, viewer):
    mine = [issue(api_client, "viewer", "full_view-password-1") for _ in range(3)]
    theirs = issue(api_client, "admin", "admin-password-1")
    response = bearer(mine[0]["access_token"]).delete(TOKENS)
    assert response.status_code == 200 and response.json() == {"revoked": 3}
    for body in mine:
        assert bearer(body["access_token"]).get(ME).status_code == 401
    assert bearer(theirs["access_token"]).get(ME).status_code == 200


def test_an_admin_revokes_all_of_a_users_tokens(api_client, admin_user, viewer):
    theirs = [issue(api_client, "viewer", "full_view-password-1") for _ in range(2)]
    admin = bearer(issue(api_client, "admin", "admin-password-1")["access_token"])
    response = admin.delete(TOKENS, QUERY_STRING="username=viewer")
    assert response.status_code == 200 and response.json() == {"revoked": 2}
    assert all(bearer(b["access_token"]).get(ME).status_code == 401 for b in theirs)
    assert admin.get(ME).status_code == 200


def test_a_user_lists_their_own_tokens_without_secrets(api_client, admin_user, viewer):
    mine = [issue(api_client, "viewer", "full_view-password-1") for _ in range(2)]
    issue(api_client, "admin", "admin-password-1")
    client = bearer(mine[0]["access_token"])
    response = client.get(TOKENS)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [t["id"] for t in body["results"]] == [mine[1]["id"], mine[0]["id"]]
    assert {t["username"] for t in body["results"]} == {"viewer"}
    assert {t["state"] for t in body["results"]} == {"active"}
    assert set(body["results"][0]) == {
        "id",
        "name",
        "username",
        "state",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    }
    text = response.content.decode()
    for token in mine:
        assert token["access_token"] not in text
    for digest in ApiToken.objects.values_list("digest", flat=True):
        assert digest not in text
    # Another user's tokens are out of sight.
    assert client.get(TOKENS, {"username": "admin"}).status_code == 403
    admin_token = ApiToken.objects.get(user=admin_user)
    assert client.get(f"{TOKENS}/{admin_token.id}").status_code == 404
    assert client.delete(f"{TOKENS}/{admin_token.id}").status_code == 404
    admin_token.refresh_from_db()
    assert admin_token.revoked_at is None
    assert client.delete(TOKENS, QUERY_STRING="username=admin").status_code == 403


def test_an_admin_lists_anyones_tokens(api_client, admin_user, viewer):
    issue(api_client, "viewer", "full_view-password-1")
    admin = bearer(issue(api_client, "admin", "admin-password-1")["access_token"])
    everyone = admin.get(TOKENS).json()
    assert {t["username"] for t in everyone["results"]} == {"viewer", "admin"}
    viewers = admin.get(TOKENS, {"username": "viewer"}).json()
    assert viewers["count"] == 1 and viewers["results"][0]["username"] == "viewer"


def test_list_by_state(api_client, admin_user, clock):
    old = issue(api_client, "admin", "admin-password-1")
    clock.advance(13 * 3600)
    revoked = issue(api_client, "admin", "admin-password-1")
    current = issue(api_client, "admin", "admin-password-1")
    client = bearer(current["access_token"])
    client.delete(f"{TOKENS}/{revoked['id']}")

    def ids(state):
        return [t["id"] for t in client.get(TOKENS, {"state": state}).json()["results"]]

    assert ids("active") == [current["id"]]
    assert ids("expired") == [old["id"]]
    assert ids("revoked") == [revoked["id"]]
    bad = client.get(TOKENS, {"state": "nope"})
    assert bad.status_code == 422 and "state" in bad.json()["errors"]
    assert client.get(f"{TOKENS}/{2**70}").status_code == 404


def test_a_session_user_lists_and_revokes_too(client, api_client, admin_user):
    body = issue(api_client, "admin", "admin-password-1")
    client.force_login(admin_user)
    listed = client.get(TOKENS).json()
    assert [t["id"] for t in listed["results"]] == [body["id"]]
    assert client.delete(f"{TOKENS}/{body['id']}").status_code == 200
    assert bearer(body["access_token"]).get(ME).status_code == 401
