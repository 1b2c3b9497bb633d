"""Failed logins are throttled by user name and by client address (opsconsole.throttle).

An attacker guessing passwords on the login page or ``POST /api/v0/auth/token``
is locked out after a few failures (429 and ``Retry-After`` on the API, the
lockout message on the page), without the password being checked while
locked; someone else, elsewhere, still logs in; the lockout ends on time and
is an audit event.
"""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.backends import ModelBackend
from django.utils import timezone

from director.models import Event

pytestmark = pytest.mark.django_db

TOKEN = "/api/v0/auth/token"
ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.20"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_FAILURES_PER_USER = 3
    settings.LOGIN_FAILURES_PER_ADDRESS = 5
    settings.LOGIN_FAILURE_WINDOW = 600
    settings.LOGIN_LOCKOUT_PERIOD = 300


@pytest.fixture
def clock(monkeypatch):
    """``timezone.now()`` that a test moves forward with ``clock.advance(seconds)``."""

    class Clock:
        now = timezone.now()

        def advance(self, seconds):
            self.now += datetime.timedelta(seconds=seconds)

    c = Clock()
    monkeypatch.setattr(timezone, "now", lambda: c.now)
    return c


@pytest.fixture
def password_checks(monkeypatch):
    """How many times a password was checked (each costs the hasher's CPU)."""
    calls = []
    real = ModelBackend.authenticate

    def counting(self, request, username=None, password=None, **kwargs):
        calls.append(username)
        return real(self, request, username=username, password=password, **kwargs)

    monkeypatch.setattr(ModelBackend, "authenticate", counting)
    return calls


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_user("operator", "", "operator-password-1")


def token(api_client, username, password, address=ATTACKER):
    return api_client.post(
        TOKEN, {"username": username, "password": password}, format="json", REMOTE_ADDR=address
    )


def login(client, username, password, address=ATTACKER):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_token_endpoint_locks_the_user_name(api_client, admin_user, operator, password_checks):
    for _ in range(2):
        assert token(api_client, "admin", "wrong").status_code == 401
    locked = token(api_client, "admin", "wrong")
    assert locked.status_code == 429
    assert locked["Retry-After"] == "300"
    message = locked.json()["errors"]["base"][0]
    assert "Too many failed logins for this user name" in message
    assert message.startswith("Too many failed logins for this user name: locked for 5 minutes.")
    assert message.endswith(" UTC.")
    # Locked: even the right password is refused, and no password is checked.
    checks = len(password_checks)
    refused = token(api_client, "admin", "admin-password-1", address=ELSEWHERE)
    assert refused.status_code == 429 and int(refused["Retry-After"]) <= 300
    assert "access_token" not in refused.json()
    assert len(password_checks) == checks
    # Another user from another address is not locked.
    other = token(api_client, "operator", "operator-password-1", address=ELSEWHERE)
    assert other.status_code == 200 and other.json()["access_token"]


def test_token_endpoint_locks_the_address(api_client, admin_user, operator):
    for i in range(4):
        assert token(api_client, f"guess{i}", "wrong").status_code == 401
    locked = token(api_client, "guess4", "wrong")
    assert locked.status_code == 429
    assert "Too many failed logins for your address" in locked.json()["errors"]["base"][0]
    # From that address nobody gets in, the right password or not.
    assert token(api_client, "admin", "admin-password-1").status_code == 429
    # The same user from another address does.
    assert token(api_client, "admin", "admin-password-1", address=ELSEWHERE).status_code == 200


def test_login_page_locks_the_user_name(client, admin_user, operator, password_checks):
    for _ in range(2):
        page = login(client, "admin", "wrong")
        assert page.status_code == 200
        assert b"did not match" in page.content
    page = login(client, "admin", "wrong")
    assert page.status_code == 429 and page["Retry-After"] == "300"
    text = page.content.decode()
    assert "Too many failed logins for this user name: locked for 5 minutes" in text
    checks = len(password_checks)
    page = login(client, "admin", "admin-password-1", address=ELSEWHERE)
    assert page.status_code == 429 and "Too many failed logins" in page.content.decode()
    assert len(password_checks) == checks
    assert client.get("/").status_code == 302  # not logged in
    # Another user from another address logs in.
    assert login(client, "operator", "operator-password-1", address=ELSEWHERE).status_code == 302
    assert client.get("/").status_code == 200


def test_login_page_locks_the_address(client, admin_user):
    for i in range(4):
        assert login(client, f"guess{i}", "wrong").status_code == 200
    page = login(client, "guess4", "wrong")
    assert page.status_code == 429
    assert "Too many failed logins for your address" in page.content.decode()
    assert login(client, "admin", "admin-password-1").status_code == 429
    assert login(client, "admin", "admin-password-1", address=ELSEWHERE).status_code == 302


def test_page_and_api_share_the_count(client, api_client, admin_user):
    login(client, "admin", "wrong")
    token(api_client, "admin", "wrong")
    assert token(api_client, "Admin", "wrong").status_code == 429  # case does not buy guesses
    assert login(client, "admin", "admin-password-1", address=ELSEWHERE).status_code == 429


def test_login_works_again_when_the_lockout_ends(client, api_client, admin_user, clock):
    for _ in range(3):
        token(api_client, "admin", "wrong")
    clock.advance(299)
    locked = token(api_client, "admin", "admin-password-1")
    assert locked.status_code == 429 and locked["Retry-After"] == "1"
    clock.advance(2)
    assert token(api_client, "admin", "admin-password-1").status_code == 200
    assert login(client, "admin", "admin-password-1").status_code == 302


def test_failures_outside_the_window_do_not_add_up(api_client, admin_user, clock):
    for _ in range(2):
        token(api_client, "admin", "wrong")
    clock.advance(601)
    for _ in range(2):
        assert token(api_client, "admin", "wrong").status_code == 401
    # A success clears the user name's count: two more failures, and the third locks.
    assert token(api_client, "admin", "admin-password-1").status_code == 200
    for _ in range(2):
        assert token(api_client, "admin", "wrong", address=ELSEWHERE).status_code == 401
    assert token(api_client, "admin", "wrong", address=ELSEWHERE).status_code == 429


def test_every_lockout_is_an_audit_event(api_client, admin_user):
    for _ in range(3):
        token(api_client, "admin", "wrong")
    for i in range(2):
        token(api_client, f"guess{i}", "wrong")
    events = {
        (e.action, e.object_type, e.object_name): e.context
        for e in Event.objects.filter(action="lock")
    }
    assert set(events) == {("lock", "user", "admin"), ("lock", "client-address", ATTACKER)}
    user_lock = events["lock", "user", "admin"]
    assert user_lock["client_address"] == ATTACKER
    assert user_lock["reason"] == "too many failed logins"
    assert "wrong" not in str(events)  # no password in the audit trail
