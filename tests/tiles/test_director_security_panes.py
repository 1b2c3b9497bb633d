"""The Director tile's Security, Syslog and Resource Config panes in the browser: the saved
values shown, a refused field's error under it (422, nothing saved), a save shown after
(302), and the compilation workers' choice carried by the rendered cloud-config."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from tiles import director_security, director_tile
from tiles.credentials import make_root_ca
from tiles.director_tile import resource_config

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def viewer_client(client, user_with_role):
    client.force_login(user_with_role("full_view"))
    return client


@pytest.fixture
def ca_pem():
    return make_root_ca("operator CA")[0]


def url(pane: str) -> str:
    return reverse("director-tile", args=[pane])


def field(page: str, name: str) -> str:
    """The rendered block of one form field (label, widget, its errors)."""
    start = page.index(f'id="field-{name}"')
    end = page.find('<div class="field', start + 1)
    return page[start : end if end > 0 else None]


def errors_of(block: str) -> list[str]:
    return [html.unescape(e) for e in re.findall(r"<li>(.*?)</li>", block)]


SYSLOG_OK = {
    "enabled": "on",
    "address": "logs.example.com",
    "port": "5514",
    "transport_protocol": "tcp",
    "forward_debug_logs": "on",
}


@pytest.mark.parametrize("pane", ["security", "syslog", "resource-config"])
def test_the_panes_sit_in_the_tiles_nav_and_viewers_only_read_them(viewer_client, pane):
    page = viewer_client.get(url(pane)).content.decode()
    nav = page[page.index('aria-label="Settings"') :]
    nav = nav[: nav.index("</nav>")]
    for label in ("Security", "Syslog", "Resource Config", "Director Config"):
        assert f">{label}</a>" in nav
    assert f'href="{url(pane)}"' in nav and 'aria-current="page"' in nav
    assert "Save</button>" not in page
    assert viewer_client.post(url(pane), {}).status_code == 403


def test_security_pane_shows_saved_values_and_saves(admin_client, ca_pem):
    director_security.set_security_and_syslog(
        security={"trusted_certificates": ca_pem, "generate_vm_passwords": False}
    )
    page = admin_client.get(url("security")).content.decode()
    certs = field(page, "trusted_certificates")
    assert ca_pem.strip().splitlines()[1] in certs
    passwords = field(page, "generate_vm_passwords")
    assert re.search(r'value="false"[^>]*checked', passwords)
    assert not re.search(r'value="true"[^>]*checked', passwords)

    response = admin_client.post(
        url("security"),
        {"trusted_certificates": "", "generate_vm_passwords": "true"},
    )
    assert response.status_code == 302 and response["Location"] == url("security")
    sec = director_security.security_configuration(director_tile.get_director())
    assert sec["trusted_certificates"] == "" and sec["generate_vm_passwords"] is True
    page = admin_client.get(response["Location"]).content.decode()
    assert "Security: saved." in page
    assert re.search(r'value="true"[^>]*checked', field(page, "generate_vm_passwords"))


@pytest.mark.parametrize(
    "post, name, words",
    [
        (
            {"trusted_certificates": "not a certificate"},
            "trusted_certificates",
            "Trusted Certificates must be PEM certificates",
        ),
        (
            {
                "trusted_certificates": (
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
                )
            },
            "trusted_certificates",
            "certificate 1 of 1 cannot be read",
        ),
        (
            {"clear_default_trusted_certificates_store": "on"},
            "clear_default_trusted_certificates_store",
            "cannot take effect yet",
        ),
    ],
)
def test_security_pane_refusal_sits_under_the_field(admin_client, ca_pem, post, name, words):
    director_security.set_security_and_syslog(security={"trusted_certificates": ca_pem})
    before = director_tile.get_director().security_configuration
    response = admin_client.post(url("security"), {"generate_vm_passwords": "true", **post})
    assert response.status_code == 422
    page = response.content.decode()
    assert any(words in e for e in errors_of(field(page, name))), field(page, name)
    assert "security_configuration/" not in page  # a sentence, not an API path
    assert director_tile.get_director().security_configuration == before


def test_syslog_pane_shows_saved_values_and_saves(admin_client):
    page = admin_client.get(url("syslog")).content.decode()
    assert 'name="enabled"' in page and "checked" not in field(page, "enabled")
    assert re.search(r'<option value="udp"[^>]*selected', field(page, "transport_protocol"))

    response = admin_client.post(url("syslog"), SYSLOG_OK)
    assert response.status_code == 302
    assert director_security.director_syslog(director_tile.get_director()) == {
        "enabled": True,
        "address": "logs.example.com",
        "port": 5514,
        "transport_protocol": "tcp",
        "forward_debug_logs": True,
    }
    page = admin_client.get(response["Location"]).content.decode()
    assert "Syslog: saved." in page
    assert "checked" in field(page, "enabled")
    assert 'value="logs.example.com"' in field(page, "address")
    assert 'value="5514"' in field(page, "port")
    assert re.search(r'<option value="tcp"[^>]*selected', field(page, "transport_protocol"))
    assert "checked" in field(page, "forward_debug_logs")


@pytest.mark.parametrize(
    "change, name, words",
    [
        ({"port": "70000"}, "port", "Port must be a port number from 1 to 65535"),
        ({"port": "five"}, "port", "from 1 to 65535"),
        ({"address": ""}, "address", "Address is required when syslog is enabled"),
        ({"address": "bad host!"}, "address", "is not a host name or IP address"),
        ({"tls_enabled": "on"}, "tls_enabled", "cannot take effect yet"),
        ({"permitted_peer": "*.example.com"}, "permitted_peer", "only used with TLS"),
        ({"queue_size": "100000"}, "queue_size", "cannot take effect"),
        (
            {"custom_rsyslog_configuration": "if $x then stop"},
            "custom_rsyslog_configuration",
            "runs no rsyslog",
        ),
        ({"transport_protocol": "relp"}, "transport_protocol", "Select a valid choice"),
    ],
)
def test_syslog_pane_refusal_sits_under_the_field(admin_client, change, name, words):
    response = admin_client.post(url("syslog"), {**SYSLOG_OK, **change})
    assert response.status_code == 422
    page = response.content.decode()
    assert any(words in e for e in errors_of(field(page, name))), field(page, name)
    assert "syslog_configuration/" not in page
    # the form keeps what was sent, and nothing is saved
    assert 'value="5514"' in field(page, "port") or name == "port"
    assert director_tile.get_director().syslog_configuration == {}


def test_a_stale_save_is_refused_and_the_saved_values_shown(admin_client):
    page = admin_client.get(url("syslog")).content.decode()
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    director_security.set_security_and_syslog(
        syslog={"enabled": True, "address": "other.example.com", "port": 514}, user="someone"
    )
    response = admin_client.post(url("syslog"), {**SYSLOG_OK, "version": version})
    assert response.status_code == 409
    page = response.content.decode()
    assert "someone" in page
    assert 'value="other.example.com"' in field(page, "address")
    assert director_security.syslog_configuration(director_tile.get_director())["address"] == (
        "other.example.com"
    )


def test_resource_config_picks_the_compilation_workers(admin_client, director_configured):
    cloud = director_tile.render_cloud_config()["compilation"]
    assert (cloud["workers"], cloud["vm_type"]) == (4, "small.disk")
    page = admin_client.get(url("resource-config")).content.decode()
    assert 'value="4"' in field(page, "instances")
    assert re.search(
        r'<option value="automatic"[^>]*selected>Automatic: small.disk',
        field(page, "instance_type"),
    )

    response = admin_client.post(
        url("resource-config"), {"instances": "2", "instance_type": "medium"}
    )
    assert response.status_code == 302
    cloud = director_tile.render_cloud_config()["compilation"]
    assert (cloud["workers"], cloud["vm_type"]) == (2, "medium")
    page = admin_client.get(response["Location"]).content.decode()
    assert "Resource Config: saved." in page
    assert 'value="2"' in field(page, "instances")
    assert re.search(r'<option value="medium"[^>]*selected', field(page, "instance_type"))

    # Automatic again: the built-in choice comes back, the worker count stays
    admin_client.post(url("resource-config"), {"instances": "2", "instance_type": "automatic"})
    cloud = director_tile.render_cloud_config()["compilation"]
    assert (cloud["workers"], cloud["vm_type"]) == (2, "small.disk")


@pytest.mark.parametrize(
    "post, name, words",
    [
        ({"instances": "0"}, "instances", "Compilation workers must be at least 1"),
        ({"instances": "many"}, "instances", "Compilation workers must be an integer"),
        ({"instances": "1000"}, "instances", "must be at most 64"),
        ({"instance_type": "huge"}, "instance_type", "VM Type 'huge' is not a VM type of the"),
    ],
)
def test_resource_config_refusal_sits_under_the_field(
    admin_client, director_configured, post, name, words
):
    response = admin_client.post(
        url("resource-config"), {"instances": "3", "instance_type": "large", **post}
    )
    assert response.status_code == 422
    block = field(response.content.decode(), name)
    assert any(words in e for e in errors_of(block)), block
    assert director_tile.get_director().resource_config == {}


def test_a_compilation_type_gone_from_the_catalog_is_shown_and_refused(
    admin_client, director_configured
):
    resource_config.set_compilation_resource_config(2, "large")
    director_tile.set_vm_types(
        [{"name": "builder", "cpu": 2, "ram": 4096, "ephemeral_disk": 20480}]
    )
    page = admin_client.get(url("resource-config")).content.decode()
    assert re.search(
        r'<option value="large"[^>]*selected>large \(not in the VM Types catalog\)',
        field(page, "instance_type"),
    )
    response = admin_client.post(
        url("resource-config"), {"instances": "2", "instance_type": "large"}
    )
    assert response.status_code == 422
    assert any(
        "'large' is not a VM type of the catalog" in e
        for e in errors_of(field(response.content.decode(), "instance_type"))
    )
    response = admin_client.post(
        url("resource-config"), {"instances": "2", "instance_type": "builder"}
    )
    assert response.status_code == 302
    assert director_tile.render_cloud_config()["compilation"]["vm_type"] == "builder"
