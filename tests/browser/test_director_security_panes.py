"""The Director tile's Syslog and Resource Config panes, in a browser: reached from the
tile's nav, a setting that cannot take effect refused under its field, a save shown after."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tiles import director_security, director_tile

from .conftest import login

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "admin-password-1"


@pytest.fixture
def admin(page, django_user_model, settings, tmp_path):
    settings.LOCAL_VCSIM_FILE = tmp_path / "no-vcsim.json"
    django_user_model.objects.create_superuser("admin", "", PASSWORD)
    login(page, "admin", PASSWORD)
    return page


def test_syslog_and_compilation_panes(admin, tmp_path):
    page = admin
    page.goto("/director_tile/vcenter/")
    page.click("nav.side a:has-text('Syslog')")
    page.wait_for_url("**/director_tile/syslog/")
    page.check("#id_enabled")
    page.fill("#id_address", "logs.example.com")
    page.fill("#id_port", "5514")
    page.select_option("#id_transport_protocol", "tcp")
    page.check("#id_tls_enabled")
    page.click("button.primary:has-text('Save')")
    tls = page.locator("#field-tls_enabled")
    expect(tls).to_have_class(re.compile("has-error"))
    expect(tls.locator(".errorlist")).to_contain_text("cannot take effect yet")
    page.screenshot(path=tmp_path / "syslog-tls-refused.png", full_page=True)
    assert director_tile.get_director().syslog_configuration == {}

    page.uncheck("#id_tls_enabled")
    page.click("button.primary:has-text('Save')")
    expect(page.locator(".messages")).to_contain_text("Syslog: saved.")
    expect(page.locator("#id_address")).to_have_value("logs.example.com")
    expect(page.locator("#id_transport_protocol")).to_have_value("tcp")
    assert director_security.director_syslog(director_tile.get_director())["port"] == 5514

    page.click("nav.side a:has-text('Resource Config')")
    page.wait_for_url("**/director_tile/resource-config/")
    expect(page.locator("#id_instance_type")).to_have_value("automatic")
    page.fill("#id_instances", "2")
    page.select_option("#id_instance_type", "medium")
    page.click("button.primary:has-text('Save')")
    expect(page.locator(".messages")).to_contain_text("Resource Config: saved.")
    expect(page.locator("#id_instance_type")).to_have_value("medium")
    page.screenshot(path=tmp_path / "resource-config-saved.png", full_page=True)
    assert director_tile.get_director().resource_config["compilation"] == {
        "instances": 2,
        "instance_type": "medium",
    }
