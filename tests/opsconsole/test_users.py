"""Users and roles (Settings > Users, ``/api/v0/users``) as an admin, a non-admin
and an attacker meet them: who may manage users, what a created, demoted, reset,
disabled or deleted user can then do, which passwords are refused, what the
audit trail says, and that the last active admin cannot be removed.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from director.models import Event
from opsconsole.auth import ROLES

pytestmark = pytest.mark.django_db

NON_ADMIN_ROLES = [r for r in ROLES if r != "admin"]
GOOD = "Correct-Horse-Battery-7"
OTHER = "Tangerine-Ladder-Quiet-42"


def _token(username: str, password: str) -> tuple[int, str | None]:
    client = APIClient()
    response = client.post(
        "/api/v0/auth/token", {"username": username, "password": password}, format="json"
    )
    return response.status_code, response.json().get("access_token")


def _bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _create(admin_api, username="alice", role="full_view", password=GOOD):
    response = admin_api.post(
        "/api/v0/users",
        {"username": username, "role": role, "password": password},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def _all_event_text() -> str:
    return json.dumps(
        list(Event.objects.values("user", "action", "object_type", "object_name", "context"))
    )


# --------------------------------------------------------------------------- who may


@pytest.mark.parametrize(
    "method, url",
    [
        ("get", "/api/v0/users"),
        ("post", "/api/v0/users"),
        ("get", "/api/v0/users/admin"),
        ("delete", "/api/v0/users/admin"),
    ],
)
def test_api_anonymous_gets_401(api_client, method, url):
    response = getattr(api_client, method)(url, {}, format="json")
    assert response.status_code == 401
    assert "errors" in response.json()


def test_api_patch_anonymous_gets_401(api_client, admin_user):
    response = api_client.patch("/api/v0/users/admin", {"active": False}, format="json")
    assert response.status_code == 401
    admin_user.refresh_from_db()
    assert admin_user.is_active


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_api_refuses_every_non_admin_role(role_api, admin_user, role):
    client = role_api(role)
    assert client.get("/api/v0/users").status_code == 403
    assert client.get("/api/v0/users/admin").status_code == 403
    response = client.post(
        "/api/v0/users", {"username": "mallory", "role": "admin", "password": GOOD}, format="json"
    )
    assert response.status_code == 403
    assert response.json() == {"errors": {"base": ["Only admins may manage users."]}}
    response = client.patch("/api/v0/users/admin", {"password": OTHER}, format="json")
    assert response.status_code == 403
    response = client.delete("/api/v0/users/admin")
    assert response.status_code == 403
    assert response.json() == {"errors": {"base": ["Only admins may manage users."]}}
    assert get_user_model().objects.filter(username="admin").exists()
    assert not get_user_model().objects.filter(username="mallory").exists()
    assert _token("admin", "admin-password-1")[0] == 200  # the admin's password is unchanged


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_pages_refuse_every_non_admin_role(client, user_with_role, admin_user, role):
    client.force_login(user_with_role(role))
    for url in (reverse("users"), reverse("user", args=[admin_user.pk])):
        response = client.get(url)
        assert response.status_code == 403
        assert "Only admins may manage users" in response.content.decode()
    response = client.post(
        reverse("users"),
        {"username": "mallory", "role": "admin", "password": GOOD, "password_again": GOOD},
    )
    assert response.status_code == 403
    response = client.post(reverse("user", args=[admin_user.pk]), {"action": "disable"})
    assert response.status_code == 403
    assert not get_user_model().objects.filter(username="mallory").exists()
    admin_user.refresh_from_db()
    assert admin_user.is_active
    # and the navigation does not offer the page
    assert 'href="/settings/users/"' not in client.get(reverse("dashboard")).content.decode()


def test_pages_redirect_anonymous_to_login(client, admin_user):
    for url in (reverse("users"), reverse("user", args=[admin_user.pk])):
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("login"))


def test_admin_role_without_superuser_may_manage(role_api, user_with_role, client):
    assert role_api("admin").get("/api/v0/users").status_code == 200
    client.force_login(user_with_role("admin", "second-admin"))
    page = client.get(reverse("dashboard")).content.decode()
    assert 'href="/settings/users/"' in page
    assert client.get(reverse("users")).status_code == 200


# --------------------------------------------------------------------------- API


def test_api_create_lists_and_the_new_user_logs_in(admin_api, client):
    body = _create(admin_api, "alice", "restricted_control")
    assert body["username"] == "alice" and body["role"] == "restricted_control"
    assert body["active"] is True and "password" not in body
    listed = admin_api.get("/api/v0/users").json()
    assert listed["count"] == 2
    assert [u["username"] for u in listed["results"]] == ["admin", "alice"]
    assert admin_api.get(f"/api/v0/users/{body['username']}").json()["role"] == "restricted_control"
    assert GOOD not in json.dumps(listed)
    # the new user can log in (page and token) and has the role given
    assert client.login(username="alice", password=GOOD)
    status, raw = _token("alice", GOOD)
    assert status == 200
    me = _bearer(raw)
    assert me.get("/api/v0/director/info").status_code == 200
    assert me.get("/api/v0/users").status_code == 403  # not an admin


def test_api_list_is_paginated_and_searchable(admin_api, django_user_model):
    for i in range(7):
        django_user_model.objects.create_user(f"user{i}", "", GOOD)
    page = admin_api.get("/api/v0/users?limit=3&offset=3").json()
    assert page["count"] == 8 and len(page["results"]) == 3 and page["next"]
    found = admin_api.get("/api/v0/users?search=USER3").json()
    assert [u["username"] for u in found["results"]] == ["user3"]


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"username": "bob", "role": "root", "password": GOOD}, 422, "role"),
        ({"username": "bob", "role": "full_view", "password": "short1"}, 422, "password"),
        ({"username": "bob", "role": "full_view", "password": "password1234"}, 422, "password"),
        ({"username": "bob", "role": "full_view", "password": "839201748392017"}, 422, "password"),
        (
            {"username": "bobbyjohnson", "role": "full_view", "password": "bobbyjohnson1"},
            422,
            "password",
        ),
        ({"username": "bob", "role": "full_view"}, 422, "password"),
        ({"role": "full_view", "password": GOOD}, 422, "username"),
        ({"username": "bad name!", "role": "full_view", "password": GOOD}, 422, "username"),
        ({"username": ["bob"], "role": "full_view", "password": GOOD}, 422, "username"),
        ({"username": "bob", "role": ["admin"], "password": GOOD}, 422, "role"),
        ({"username": "bob", "role": "full_view", "password": 123456789012345}, 422, "password"),
        ({"username": "ADMIN", "role": "full_view", "password": GOOD}, 409, "username"),
        ({"username": "admin", "role": "full_view", "password": GOOD}, 409, "username"),
    ],
)
def test_api_create_refuses_bad_input_naming_the_field(admin_api, body, status, field):
    response = admin_api.post("/api/v0/users", body, format="json")
    assert response.status_code == status, response.content
    assert field in response.json()["errors"]
    assert get_user_model().objects.count() == 1
    assert not Event.objects.filter(object_type="user").exists()


def test_api_weak_password_says_why(admin_api):
    response = admin_api.post(
        "/api/v0/users", {"username": "bob", "role": "full_view", "password": "abc"}, format="json"
    )
    assert response.status_code == 422
    messages = " ".join(response.json()["errors"]["password"])
    assert "at least 12 characters" in messages


@pytest.mark.parametrize("body", [[], ["a"], "text", 7])
def test_api_refuses_non_object_bodies(admin_api, admin_user, body):
    for method, url in (("post", "/api/v0/users"), ("patch", "/api/v0/users/admin")):
        response = getattr(admin_api, method)(url, body, format="json")
        assert response.status_code == 400, (method, body, response.content)
        assert "body" in response.json()["errors"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"role": "superadmin"}, "role"),
        ({"active": "no"}, "active"),
        ({"password": "weak"}, "password"),
        ({"username": "renamed"}, "username"),
        ({"role": "full_control", "": None}, "body"),
        ({}, "body"),
    ],
)
def test_api_patch_refuses_bad_input_and_changes_nothing(admin_api, body, field):
    alice = _create(admin_api, "alice", "full_view")
    before = Event.objects.count()
    response = admin_api.patch(f"/api/v0/users/{alice['username']}", body, format="json")
    assert response.status_code == 422, response.content
    assert field in response.json()["errors"]
    assert admin_api.get(f"/api/v0/users/{alice['username']}").json() == alice
    assert Event.objects.count() == before
    assert _token("alice", GOOD)[0] == 200


def test_api_patch_is_all_or_nothing(admin_api):
    alice = _create(admin_api, "alice", "full_view")
    response = admin_api.patch(
        f"/api/v0/users/{alice['username']}",
        {"role": "full_control", "password": "weak"},
        format="json",
    )
    assert response.status_code == 422
    assert admin_api.get(f"/api/v0/users/{alice['username']}").json()["role"] == "full_view"


@pytest.mark.parametrize("name", ["nobody", "no.body@example.com", "bad name!", "x" * 200, "é"])
def test_api_unknown_user_is_404_naming_them(admin_api, name):
    url = f"/api/v0/users/{quote(name, safe='')}"
    for method, body in (("get", None), ("patch", {"active": False}), ("delete", None)):
        response = getattr(admin_api, method)(url, body, format="json")
        assert response.status_code == 404, (method, response.content)
        assert response.json() == {"errors": {"username": [f"no user {name!r}"]}}
    assert get_user_model().objects.count() == 1


def test_api_routes_take_names_with_at_dot_plus_and_dash(admin_api):
    for name in ("ops.user+tag@example.com", "ops-user_2"):
        _create(admin_api, name, "full_view")
        url = f"/api/v0/users/{name}"
        assert admin_api.get(url).json()["username"] == name
        response = admin_api.patch(url, {"role": "full_control"}, format="json")
        assert response.status_code == 200 and response.json()["role"] == "full_control"
        assert admin_api.delete(url).status_code == 204
        assert admin_api.get(url).status_code == 404
    # the id is not a name: a route by id finds nobody
    alice = _create(admin_api, "alice")
    assert admin_api.get(f"/api/v0/users/{alice['id']}").status_code == 404


def test_api_role_change_takes_effect(admin_api):
    alice = _create(admin_api, "alice", "full_view")
    _, raw = _token("alice", GOOD)
    me = _bearer(raw)
    change = {"type": "runtime", "name": "x", "content": "releases: []\n"}
    assert me.post("/api/v0/director/configs", change, format="json").status_code == 403
    response = admin_api.patch(
        f"/api/v0/users/{alice['username']}", {"role": "full_control"}, format="json"
    )
    assert response.status_code == 200 and response.json()["role"] == "full_control"
    assert me.post("/api/v0/director/configs", change, format="json").status_code in (200, 201)


def test_api_reset_password_revokes_tokens_and_ends_sessions(admin_api, client):
    _create(admin_api, "alice")
    _, raw = _token("alice", GOOD)
    assert client.login(username="alice", password=GOOD)
    response = admin_api.patch("/api/v0/users/alice", {"password": OTHER}, format="json")
    assert response.status_code == 200 and response.json()["username"] == "alice"
    assert "password" not in response.json() and OTHER not in response.content.decode()
    assert _token("alice", GOOD)[0] == 401
    old = _bearer(raw).get("/api/v0/director/info")
    assert old.status_code == 401
    assert "revoked" in json.dumps(old.json())
    page = client.get(reverse("dashboard"))
    assert page.status_code == 302 and page["Location"].startswith(reverse("login"))
    status, new = _token("alice", OTHER)
    assert status == 200
    assert _bearer(new).get("/api/v0/director/info").status_code == 200
    # other users' tokens are untouched
    assert admin_api.get("/api/v0/users").status_code == 200


def test_api_own_password_reset_revokes_own_tokens(admin_api):
    response = admin_api.patch("/api/v0/users/admin", {"password": OTHER}, format="json")
    assert response.status_code == 200
    assert admin_api.get("/api/v0/users").status_code == 401  # log in again
    status, raw = _token("admin", OTHER)
    assert status == 200 and _bearer(raw).get("/api/v0/users").status_code == 200


def test_api_disable_ends_login_sessions_and_tokens_and_enable_restores(admin_api, client):
    alice = _create(admin_api, "alice", "full_control")
    _, raw = _token("alice", GOOD)
    token_client = _bearer(raw)
    assert client.login(username="alice", password=GOOD)
    assert client.get(reverse("dashboard")).status_code == 200

    response = admin_api.patch(
        f"/api/v0/users/{alice['username']}", {"active": False}, format="json"
    )
    assert response.status_code == 200 and response.json()["active"] is False

    assert token_client.get("/api/v0/director/info").status_code == 401
    assert _token("alice", GOOD)[0] == 401
    page = client.get(reverse("dashboard"))  # the open session ends too
    assert page.status_code == 302 and page["Location"].startswith(reverse("login"))
    login = client.post(reverse("login"), {"username": "alice", "password": GOOD})
    assert login.status_code == 200 and "did not match" in login.content.decode()
    assert client.get(reverse("dashboard")).status_code == 302
    # still listed (disabled, not deleted)
    users = admin_api.get("/api/v0/users").json()["results"]
    assert {"username": "alice", "active": False}.items() <= users[1].items()

    admin_api.patch(f"/api/v0/users/{alice['username']}", {"active": True}, format="json")
    assert token_client.get("/api/v0/director/info").status_code == 200
    assert _token("alice", GOOD)[0] == 200


# --------------------------------------------------------------------------- delete


def test_api_delete_removes_the_user_tokens_and_sessions(admin_api, client):
    from django.contrib.sessions.models import Session

    _create(admin_api, "alice", "full_control")
    _, raw = _token("alice", GOOD)
    token_client = _bearer(raw)
    assert token_client.get("/api/v0/director/info").status_code == 200
    assert client.login(username="alice", password=GOOD)
    alice_session = client.session.session_key
    admin_api.patch("/api/v0/users/alice", {"role": "full_view"}, format="json")

    response = admin_api.delete("/api/v0/users/alice")
    assert response.status_code == 204 and response.content == b""

    assert admin_api.get("/api/v0/users/alice").status_code == 404
    assert [u["username"] for u in admin_api.get("/api/v0/users").json()["results"]] == ["admin"]
    assert token_client.get("/api/v0/director/info").status_code == 401
    assert _token("alice", GOOD)[0] == 401
    assert not Session.objects.filter(session_key=alice_session).exists()
    page = client.get(reverse("dashboard"))
    assert page.status_code == 302 and page["Location"].startswith(reverse("login"))
    login = client.post(reverse("login"), {"username": "alice", "password": GOOD})
    assert login.status_code == 200 and "did not match" in login.content.decode()
    # the audit trail keeps naming alice, the deletion included
    events = list(
        Event.objects.filter(object_type="user", object_name="alice")
        .order_by("id")
        .values_list("user", "action", "context")
    )
    assert events == [
        ("admin", "create", {"role": "full_control"}),
        ("admin", "update", {"role": ["full_control", "full_view"]}),
        ("admin", "delete", {"role": "full_view"}),
    ]
    shown = admin_api.get("/api/v0/director/events?object_type=user&object_name=alice").json()
    assert [e["action"] for e in shown["results"]][0] == "delete"
    # the name is free again: a new alice is a new user with none of the old one's tokens
    _create(admin_api, "alice", "restricted_view")
    assert token_client.get("/api/v0/director/info").status_code == 401


def test_api_delete_a_disabled_user(admin_api):
    _create(admin_api, "alice")
    admin_api.patch("/api/v0/users/alice", {"active": False}, format="json")
    assert admin_api.delete("/api/v0/users/alice").status_code == 204
    assert not get_user_model().objects.filter(username="alice").exists()


def test_api_admin_cannot_delete_themselves(admin_api, admin_user):
    _create(admin_api, "second", "admin")
    before = Event.objects.count()
    response = admin_api.delete("/api/v0/users/admin")
    assert response.status_code == 409
    assert response.json() == {
        "errors": {"username": ["you cannot delete your own user; another admin can"]}
    }
    assert get_user_model().objects.filter(pk=admin_user.pk, is_active=True).exists()
    assert Event.objects.count() == before
    assert admin_api.get("/api/v0/users").status_code == 200  # the token still works
    # another admin can
    _, raw = _token("second", GOOD)
    assert _bearer(raw).delete("/api/v0/users/admin").status_code == 204
    assert admin_api.get("/api/v0/users").status_code == 401


def test_api_the_last_admin_cannot_delete_themselves(admin_api, admin_user):
    response = admin_api.delete("/api/v0/users/admin")
    assert response.status_code == 409
    assert "at least one active admin must remain" in response.json()["errors"]["username"][0]
    assert get_user_model().objects.filter(pk=admin_user.pk, is_active=True).exists()


def test_the_last_active_admin_cannot_be_deleted_by_anyone(admin_api, admin_user):
    """The guard holds whoever asks (a command, or an admin deleted meanwhile)."""
    from console.users import services
    from opsconsole.errors import ServiceError

    _create(admin_api, "second", "admin")
    admin_api.patch("/api/v0/users/second", {"active": False}, format="json")
    with pytest.raises(ServiceError) as refused:
        services.delete_user("second", admin_user.pk)
    assert refused.value.status == 409
    assert "at least one active admin must remain" in str(refused.value)
    assert get_user_model().objects.filter(pk=admin_user.pk).exists()
    # the disabled admin does not count, and may be deleted
    assert admin_api.delete("/api/v0/users/second").status_code == 204


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_api_delete_refused_for_non_admins(role_api, admin_api, role):
    _create(admin_api, "alice")
    client = role_api(role)
    response = client.delete("/api/v0/users/alice")
    assert response.status_code == 403
    assert get_user_model().objects.filter(username="alice").exists()
    assert not Event.objects.filter(action="delete").exists()


def test_api_delete_anonymous_gets_401(admin_api):
    _create(admin_api, "alice")
    response = APIClient().delete("/api/v0/users/alice")
    assert response.status_code == 401
    assert get_user_model().objects.filter(username="alice").exists()


# --------------------------------------------------------------------------- audit


def test_every_change_is_an_audit_event_without_the_password(admin_api):
    alice = _create(admin_api, "alice", "full_view")
    url = f"/api/v0/users/{alice['username']}"
    admin_api.patch(url, {"role": "full_control"}, format="json")
    admin_api.patch(url, {"password": OTHER}, format="json")
    admin_api.patch(url, {"active": False}, format="json")
    admin_api.patch(url, {"active": True}, format="json")
    events = list(
        Event.objects.filter(object_type="user", object_name="alice")
        .order_by("id")
        .values_list("user", "action", "context")
    )
    assert events == [
        ("admin", "create", {"role": "full_view"}),
        ("admin", "update", {"role": ["full_view", "full_control"]}),
        ("admin", "reset-password", {}),
        ("admin", "disable", {}),
        ("admin", "enable", {}),
    ]
    text = _all_event_text()
    assert GOOD not in text and OTHER not in text
    # the director's events API shows them too
    shown = admin_api.get("/api/v0/director/events?object_type=user").json()["results"]
    assert {e["action"] for e in shown} >= {"create", "disable", "reset-password"}


def test_no_event_for_a_change_that_changes_nothing(admin_api):
    alice = _create(admin_api, "alice", "full_view")
    before = Event.objects.count()
    admin_api.patch(
        f"/api/v0/users/{alice['username']}", {"role": "full_view", "active": True}, format="json"
    )
    assert Event.objects.count() == before


# --------------------------------------------------------------------------- last admin


def test_the_last_admin_cannot_disable_or_demote_themselves(admin_api, admin_user):
    url = "/api/v0/users/admin"
    for body, field in (({"active": False}, "active"), ({"role": "full_control"}, "role")):
        response = admin_api.patch(url, body, format="json")
        assert response.status_code == 409
        assert "at least one active admin must remain" in response.json()["errors"][field][0]
    admin_user.refresh_from_db()
    assert admin_user.is_active and admin_user.is_superuser
    assert admin_api.get("/api/v0/users").status_code == 200


def test_a_disabled_admin_does_not_count(admin_api, admin_user):
    other = _create(admin_api, "second", "admin")
    admin_api.patch(f"/api/v0/users/{other['username']}", {"active": False}, format="json")
    response = admin_api.patch("/api/v0/users/admin", {"active": False}, format="json")
    assert response.status_code == 409


def test_with_another_admin_a_superuser_can_step_down(admin_api, admin_user):
    other = _create(admin_api, "second", "admin")
    response = admin_api.patch("/api/v0/users/admin", {"role": "full_view"}, format="json")
    assert response.status_code == 200 and response.json()["role"] == "full_view"
    admin_user.refresh_from_db()
    assert not admin_user.is_superuser
    assert admin_api.get("/api/v0/users").status_code == 403  # no longer an admin
    # and the remaining admin is now the last one
    _, raw = _token("second", GOOD)
    second = _bearer(raw)
    response = second.patch(
        f"/api/v0/users/{other['username']}", {"role": "full_view"}, format="json"
    )
    assert response.status_code == 409


# --------------------------------------------------------------------------- pages


@pytest.fixture
def admin_page(client, admin_user):
    client.force_login(admin_user)
    return client


def test_nav_links_the_users_page_for_admins(admin_page):
    page = admin_page.get(reverse("dashboard")).content.decode()
    assert 'href="/settings/users/"' in page


def test_page_lists_and_searches_with_htmx(admin_page, django_user_model):
    django_user_model.objects.create_user("carol", "", GOOD)
    django_user_model.objects.create_user("dave", "", GOOD)
    page = admin_page.get(reverse("users")).content.decode()
    assert "carol" in page and "dave" in page and 'id="create-user"' in page
    fragment = admin_page.get(reverse("users") + "?q=car", HTTP_HX_REQUEST="true")
    body = fragment.content.decode()
    assert body.startswith('<div id="user-table">')
    assert "carol" in body and "dave" not in body and "<html" not in body


def test_page_create_then_the_user_logs_in(admin_page):
    response = admin_page.post(
        reverse("users"),
        {"username": "erin", "role": "full_control", "password": GOOD, "password_again": GOOD},
        follow=True,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Created user erin (full_control)." in body
    assert GOOD not in body
    erin = Client()
    assert erin.login(username="erin", password=GOOD)
    assert Event.objects.filter(action="create", object_name="erin", user="admin").exists()


@pytest.mark.parametrize(
    "data, field, message",
    [
        (
            {
                "username": "erin",
                "role": "full_view",
                "password": "short",
                "password_again": "short",
            },
            "password",
            "at least 12 characters",
        ),
        (
            {"username": "erin", "role": "full_view", "password": GOOD, "password_again": OTHER},
            "password_again",
            "The two passwords differ.",
        ),
        (
            {"username": "admin", "role": "full_view", "password": GOOD, "password_again": GOOD},
            "username",
            "already exists",
        ),
        (
            {"username": "erin", "role": "root", "password": GOOD, "password_again": GOOD},
            "role",
            "Select a valid choice",
        ),
    ],
)
def test_page_create_refuses_bad_input_next_to_the_field(admin_page, data, field, message):
    response = admin_page.post(reverse("users"), data)
    assert response.status_code == 422
    body = response.content.decode()
    assert message in body
    assert 'class="field has-error" id="field-' + field in body
    assert get_user_model().objects.filter(username="erin").count() == 0
    assert GOOD not in body


def test_page_role_password_disable_enable(admin_page, django_user_model):
    frank = django_user_model.objects.create_user("frank", "", GOOD)
    url = reverse("user", args=[frank.pk])
    page = admin_page.get(url).content.decode()
    assert 'id="user-role">full_view<' in page

    response = admin_page.post(url, {"action": "role", "role": "restricted_view"}, follow=True)
    assert "frank now has the role restricted_view." in response.content.decode()

    response = admin_page.post(
        url, {"action": "password", "password": "weak", "password_again": "weak"}
    )
    assert response.status_code == 422
    assert "at least 12 characters" in response.content.decode()
    _, before_reset = _token("frank", GOOD)
    response = admin_page.post(
        url, {"action": "password", "password": OTHER, "password_again": OTHER}, follow=True
    )
    assert (
        "The password of frank was reset: they must log in again everywhere"
        " (their sessions ended and their API tokens were revoked)."
    ) in response.content.decode()
    assert _bearer(before_reset).get("/api/v0/director/info").status_code == 401
    assert _token("frank", GOOD)[0] == 401
    _, raw = _token("frank", OTHER)

    response = admin_page.post(url, {"action": "disable"}, follow=True)
    body = response.content.decode()
    assert "frank is disabled: they cannot log in" in body and 'id="user-state">disabled<' in body
    assert _bearer(raw).get("/api/v0/director/info").status_code == 401
    assert _token("frank", OTHER)[0] == 401

    response = admin_page.post(url, {"action": "enable"}, follow=True)
    assert "frank is enabled again." in response.content.decode()
    assert _token("frank", OTHER)[0] == 200
    actions = list(
        Event.objects.filter(object_name="frank").order_by("id").values_list("action", flat=True)
    )
    assert actions == ["update", "reset-password", "disable", "enable"]
    page = admin_page.get(url).content.decode()
    assert 'id="user-events"' in page and "reset-password" in page
    assert OTHER not in _all_event_text()


def test_page_last_admin_guard(admin_page, admin_user):
    url = reverse("user", args=[admin_user.pk])
    response = admin_page.post(url, {"action": "disable"}, follow=True)
    assert "at least one active admin must remain" in response.content.decode()
    response = admin_page.post(url, {"action": "delete"}, follow=True)
    assert "at least one active admin must remain" in response.content.decode()
    response = admin_page.post(url, {"action": "role", "role": "full_view"})
    assert response.status_code == 422
    assert "at least one active admin must remain" in response.content.decode()
    admin_user.refresh_from_db()
    assert admin_user.is_active and admin_user.is_superuser


def test_page_own_password_reset_keeps_the_session(admin_page, admin_user):
    url = reverse("user", args=[admin_user.pk])
    response = admin_page.post(
        url, {"action": "password", "password": OTHER, "password_again": OTHER}
    )
    assert response.status_code == 302
    page = admin_page.get(response["Location"]).content.decode()
    assert "Your password was reset: this session stays logged in" in page
    assert admin_page.get(reverse("users")).status_code == 200
    assert _token("admin", OTHER)[0] == 200


def test_page_unknown_user_and_action(admin_page, admin_user):
    assert admin_page.get(reverse("user", args=[999])).status_code == 404
    assert admin_page.post(reverse("user", args=[999]), {"action": "delete"}).status_code == 404
    response = admin_page.post(
        reverse("user", args=[admin_user.pk]), {"action": "destroy"}, follow=True
    )
    assert "action: must be one of role, password, disable, enable, delete" in (
        response.content.decode()
    )


def test_page_delete_asks_then_deletes(admin_page, django_user_model):
    gina = django_user_model.objects.create_user("gina.ops@example.com", "", GOOD)
    url = reverse("user", args=[gina.pk])
    page = admin_page.get(url).content.decode()
    assert 'data-confirm="Delete user gina.ops@example.com?"' in page
    assert 'name="action" value="delete"' in page
    _, raw = _token("gina.ops@example.com", GOOD)

    response = admin_page.post(url, {"action": "delete"})
    assert response.status_code == 302 and response["Location"] == reverse("users")
    body = admin_page.get(reverse("users")).content.decode()
    assert "Deleted user gina.ops@example.com: their sessions and API tokens are gone" in body
    assert admin_page.get(url).status_code == 404
    assert not django_user_model.objects.filter(username="gina.ops@example.com").exists()
    assert _bearer(raw).get("/api/v0/director/info").status_code == 401
    assert Event.objects.filter(
        action="delete", object_name="gina.ops@example.com", user="admin"
    ).exists()


def test_page_admin_cannot_delete_themselves(admin_page, admin_user, django_user_model):
    django_user_model.objects.create_superuser("second", "", GOOD)
    url = reverse("user", args=[admin_user.pk])
    page = admin_page.get(url).content.decode()
    assert 'id="delete-form"' not in page and "You cannot delete your own user" in page
    response = admin_page.post(url, {"action": "delete"}, follow=True)
    assert "admin: you cannot delete your own user; another admin can" in (
        response.content.decode()
    )
    assert django_user_model.objects.filter(pk=admin_user.pk).exists()


def test_pages_have_no_inline_script(admin_page, admin_user):
    for url in (reverse("users"), reverse("user", args=[admin_user.pk])):
        body = admin_page.get(url).content.decode()
        assert "<script>" not in body and " on" + "click=" not in body and "hx-on" not in body


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["disable", "delete"])
def test_two_admins_removing_each_other_at_once_leave_one(monkeypatch, django_user_model, action):
    """The guard locks the admins: the second change waits, then sees it would leave none."""
    import threading

    from django.db import connection

    if connection.vendor == "sqlite":
        pytest.skip("SQLite serializes writing transactions (IMMEDIATE); its test DB is in memory")

    from console.users import services
    from opsconsole.errors import ServiceError

    first = django_user_model.objects.create_superuser("first", "", GOOD)
    second = services.create_user("first", "second", OTHER, "admin")
    checked = threading.Barrier(2, timeout=3)
    guard = services._other_active_admins

    def guard_then_meet(user):
        found = guard(user)
        try:  # without the lock both threads get here with found=True
            checked.wait()
        except threading.BrokenBarrierError:
            pass
        return found

    monkeypatch.setattr(services, "_other_active_admins", guard_then_meet)
    outcomes: dict[str, object] = {}

    def remove(actor, target):
        try:
            if action == "delete":
                services.delete_user(actor, target.pk)
            else:
                services.update_user(actor, target.pk, {"active": False})
            outcomes[actor] = "removed"
        except ServiceError as exc:
            outcomes[actor] = exc.status
        finally:
            connection.close()

    threads = [
        threading.Thread(target=remove, args=("first", second)),
        threading.Thread(target=remove, args=("second", first)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes.values(), key=str) == [409, "removed"]
    assert django_user_model.objects.filter(is_active=True).count() == 1
    assert django_user_model.objects.count() == (1 if action == "delete" else 2)
