"""The Director tile's Email Alerts pane: the health monitor's email settings from the browser.

Saved, the director emails its alerts with them (Django's locmem backend
here); the SMTP password is stored encrypted and never shown back; a bad
field is a 422 with its error under it and nothing saved; a stale save 409.
"""

from __future__ import annotations

import html
import re

import pytest
from cryptography.fernet import Fernet
from django.core import mail
from django.db import connection
from django.urls import reverse

from director.health import alerts
from director.models import DirectorAttribute

pytestmark = pytest.mark.django_db

URL = reverse("director-tile", args=["email"])
PASSWORD = "smtp-secret-pw-1"
OK = {
    "enabled": "on",
    "host": "smtp.example.com",
    "port": "587",
    "from": "bosh-hm@example.com",
    "recipients": "ops@example.com, oncall@example.com",
    "tls": "on",
    "smtp_user": "hm",
    "smtp_password": PASSWORD,
}


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def field(page: str, name: str) -> str:
    start = page.index(f'id="field-{name}"')
    end = page.find('<div class="field', start + 1)
    return page[start : end if end > 0 else None]


def errors_of(block: str) -> list[str]:
    return [html.unescape(e) for e in re.findall(r"<li>(.*?)</li>", block)]


def test_the_pane_is_in_the_tiles_menu(admin_client):
    page = admin_client.get(reverse("director-tile", args=["vcenter"])).content.decode()
    assert f'href="{URL}"' in page and "Email Alerts" in page
    pane = admin_client.get(URL)
    assert pane.status_code == 200
    body = pane.content.decode()
    for name in ("enabled", "host", "port", "from", "recipients", "tls", "smtp_user"):
        assert f'id="field-{name}"' in body, name
    assert 'type="password"' in field(body, "smtp_password")


def test_a_save_reaches_the_health_monitor_and_the_password_stays_secret(admin_client):
    res = admin_client.post(URL, OK)
    assert res.status_code == 302
    page = admin_client.get(URL).content.decode()
    assert "Email Alerts: saved." in page
    assert 'value="smtp.example.com"' in page and 'value="587"' in page
    assert "ops@example.com, oncall@example.com" in page
    assert PASSWORD not in page and "A password is stored" in page
    raw = DirectorAttribute.get(alerts.EMAIL_ATTRIBUTE)
    assert PASSWORD not in raw  # encrypted at rest
    cfg = alerts.email_settings()
    assert cfg["host"] == "smtp.example.com" and cfg["port"] == 587 and cfg["tls"] is True
    assert "password" not in cfg and alerts.email_password() == PASSWORD

    alerts.raise_alert(
        "missing_vm:web:x",
        category="vm_health",
        severity=2,
        cause="missing_vm",
        title="VM vm-1 is missing",
        deployment="web",
    )
    assert alerts.send_new_alerts() == 1
    (message,) = mail.outbox
    assert message.from_email == "bosh-hm@example.com"
    assert message.to == ["ops@example.com", "oncall@example.com"]
    assert "VM vm-1 is missing" in message.subject


def test_a_blank_password_keeps_the_stored_one_and_no_user_drops_it(admin_client):
    admin_client.post(URL, OK)
    admin_client.post(URL, {**OK, "smtp_password": "", "host": "mail.example.com"})
    cfg = alerts.email_settings()
    assert cfg["host"] == "mail.example.com" and alerts.email_password() == PASSWORD
    admin_client.post(URL, {**OK, "smtp_password": "", "smtp_user": ""})
    assert alerts.email_password() == "" and not alerts.email_password_stored()
    assert "A password is stored" not in admin_client.get(URL).content.decode()


@pytest.mark.parametrize(
    "change, name, message",
    [
        ({"from": "nobody"}, "from", "must be an email address"),
        ({"recipients": "ops@example.com, not-an-address"}, "recipients", "not an email address"),
        ({"recipients": ""}, "recipients", "at least one address"),
        ({"port": "smtp"}, "port", "must be a port number"),
        ({"port": "70000"}, "port", "must be a port number"),
    ],
)
def test_a_bad_field_is_422_under_it_and_nothing_saved(admin_client, change, name, message):
    res = admin_client.post(URL, {**OK, **change})
    assert res.status_code == 422
    errors = " ".join(errors_of(field(res.content.decode(), name)))
    assert message in errors, errors
    assert PASSWORD not in res.content.decode()
    assert DirectorAttribute.get(alerts.EMAIL_ATTRIBUTE) is None


def test_email_off_and_empty_clears_the_settings(admin_client):
    admin_client.post(URL, OK)
    res = admin_client.post(URL, {"host": "", "port": "", "from": "", "recipients": ""})
    assert res.status_code == 302
    assert alerts.email_settings() is None
    # off with its values kept: nothing is emailed, the values stay for later
    admin_client.post(URL, {**OK, "enabled": ""})
    assert alerts.email_settings() is None
    assert 'value="smtp.example.com"' in admin_client.get(URL).content.decode()


def test_a_stale_save_is_409_and_shows_the_saved_values(admin_client):
    page = admin_client.get(URL).content.decode()
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    assert admin_client.post(URL, {**OK, "version": version}).status_code == 302
    stale = admin_client.post(URL, {**OK, "host": "other.example.com", "version": version})
    assert stale.status_code == 409
    assert alerts.email_settings()["host"] == "smtp.example.com"


def test_read_only_roles_see_no_save_and_may_not_post(client, user_with_role):
    client.force_login(user_with_role("full_view"))
    page = client.get(URL).content.decode()
    assert ">Save</button>" not in page
    assert client.post(URL, OK).status_code == 403
    assert DirectorAttribute.get(alerts.EMAIL_ATTRIBUTE) is None


# --------------------------------------------------------------------------- the API

PROPS = "/api/v0/staged/director/properties"
EMAILER = {
    "enabled": True,
    "host": "smtp.example.com",
    "port": 587,
    "from": "bosh-hm@example.com",
    "recipients": {"value": "ops@example.com,oncall@example.com"},
    "smtp_user": "hm",
    "smtp_password": PASSWORD,
    "tls": True,
}


def test_the_api_takes_ops_managers_hm_emailer_options(admin_api, db):
    res = admin_api.put(
        PROPS, {"director_configuration": {"hm_emailer_options": EMAILER}}, format="json"
    )
    assert res.status_code == 200, res.content
    emailer = res.json()["director_configuration"]["hm_emailer_options"]
    assert emailer["recipients"] == ["ops@example.com", "oncall@example.com"]
    assert emailer["smtp_password"] == "***" and PASSWORD not in res.content.decode()
    assert alerts.email_settings()["port"] == 587
    # sent back as read (password ***), it keeps the password
    again = admin_api.put(
        PROPS,
        {"director_configuration": {"hm_emailer_options": {**emailer, "host": "mx.example.com"}}},
        format="json",
    )
    assert again.status_code == 200, again.content
    cfg = alerts.email_settings()
    assert cfg["host"] == "mx.example.com" and alerts.email_password() == PASSWORD


def test_a_bad_emailer_field_is_422_and_nothing_is_written(admin_api, db):
    res = admin_api.put(
        PROPS,
        {
            "director_configuration": {
                "max_threads": 8,
                "hm_emailer_options": {**EMAILER, "from": "nobody"},
            }
        },
        format="json",
    )
    assert res.status_code == 422
    assert "director_configuration/hm_emailer_options/from" in res.json()["errors"]
    assert DirectorAttribute.get(alerts.EMAIL_ATTRIBUTE) is None
    # all or nothing: a bad director setting leaves the emailer unwritten too
    res = admin_api.put(
        PROPS,
        {"director_configuration": {"max_threads": 0, "hm_emailer_options": EMAILER}},
        format="json",
    )
    assert res.status_code == 422
    assert "director_configuration/max_threads" in res.json()["errors"]
    assert DirectorAttribute.get(alerts.EMAIL_ATTRIBUTE) is None
    domain = admin_api.put(
        PROPS,
        {"director_configuration": {"hm_emailer_options": {**EMAILER, "domain": "x.example"}}},
        format="json",
    )
    assert domain.status_code == 422
    assert (
        "cannot take effect"
        in domain.json()["errors"]["director_configuration/hm_emailer_options/domain"][0]
    )


def test_a_password_the_key_cannot_read_is_asked_again_not_a_500(admin_client):
    admin_client.post(URL, OK)
    # as under a key other than the one it was written with (a rotation re-encrypts it)
    table = DirectorAttribute._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET secret = %s WHERE name = %s",
            [Fernet(Fernet.generate_key()).encrypt(b"x").decode(), alerts.EMAIL_ATTRIBUTE],
        )
    assert "A password is stored" in admin_client.get(URL).content.decode()  # the page reads
    res = admin_client.post(URL, {**OK, "smtp_password": ""})
    assert res.status_code == 422
    assert "cannot be read any more" in " ".join(
        errors_of(field(res.content.decode(), "smtp_password"))
    )
    assert admin_client.post(URL, OK).status_code == 302
    assert alerts.email_password() == PASSWORD
