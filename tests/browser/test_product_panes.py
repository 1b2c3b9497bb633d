"""A product tile's panes in a browser: each error under its field as a sentence,
a collection's rows numbered as their errors name them, the menu's ticks,
and leaving a pane with an added row asks first.

Real live server and Debian chromium; the Director tile's AZs and networks
are set through the services (their own browser walk is test_console_forms.py).
Each step takes a screenshot into the test's tmp_path.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tiles import demo, director_tile, services

from .conftest import login

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "admin-password-1"


def subnet(azs: list[str], third: int) -> dict:
    return {
        "iaas_identifier": "VM Network",
        "cidr": f"10.{third}.0.0/24",
        "gateway": f"10.{third}.0.1",
        "reserved_ip_ranges": f"10.{third}.0.1-10.{third}.0.9",
        "dns": f"10.{third}.0.2",
        "availability_zone_names": azs,
    }


@pytest.fixture
def staged(page, django_user_model, settings, tmp_path):
    settings.LOCAL_VCSIM_FILE = tmp_path / "no-vcsim.json"
    director_tile.set_availability_zones(
        [
            {"name": "az1", "clusters": [{"cluster": "DC0_C0"}]},
            {"name": "az2", "clusters": [{"cluster": "DC0_C1"}]},
        ]
    )
    director_tile.set_networks(
        {
            "networks": [
                {"name": "default", "subnets": [subnet(["az1", "az2"], 1)]},
                {"name": "narrow", "subnets": [subnet(["az1"], 2)]},
            ]
        }
    )
    path = demo.build_pivotal(tmp_path / "demo")
    with open(path, "rb") as fh:
        product = services.import_product(fh, path.name, "admin")
    django_user_model.objects.create_superuser("admin", "", PASSWORD)
    login(page, "admin", PASSWORD)
    return services.stage_product(product.name, product.version)


def below(page, field: str, errors: str) -> float:
    """How far under the field its errors start (px)."""
    box_in = page.locator(field).bounding_box()
    box_err = page.locator(errors).bounding_box()
    return box_err["y"] - (box_in["y"] + box_in["height"])


def mark(page, label: str):
    return page.locator("nav.side a", has_text=label)


def test_errors_sit_beside_their_fields_and_ticks_follow(page, staged, tmp_path):
    guid = staged.guid
    page.goto(f"/products/{guid}/")
    page.wait_for_url(f"**/products/{guid}/networks/")
    expect(mark(page, "Assign AZs and Networks")).to_have_class(re.compile(r"\btodo\b"))

    # Assign AZs and Networks: the director refuses a network without a subnet in az2.
    page.select_option("#id_singleton_availability_zone", "az1")
    page.check("input[name=other_availability_zones][value=az1]")
    page.check("input[name=other_availability_zones][value=az2]")
    page.select_option("#id_network", "narrow")
    page.click("button.primary:has-text('Save')")
    errors = page.locator("#field-network .errorlist")
    expect(errors).to_have_text("Network 'narrow' has no subnet in availability zone 'az2'.")
    assert 0 <= below(page, "#id_network", "#field-network .errorlist") < 40
    expect(page.locator("#pane form > ul.errorlist")).to_have_count(0)  # nothing above
    expect(page.locator(".messages li.success")).to_have_count(0)
    expect(mark(page, "Assign AZs and Networks")).to_have_class(re.compile(r"\btodo\b"))
    page.screenshot(path=tmp_path / "networks-refused.png", full_page=True)
    page.select_option("#id_network", "default")
    page.click("button.primary:has-text('Save')")
    expect(page.locator(".messages")).to_contain_text("Assign AZs and Networks: saved.")
    expect(mark(page, "Assign AZs and Networks")).to_have_class(re.compile(r"\bdone\b"))

    # App Settings: a port out of range, as a sentence led by the field's label.
    page.click("nav.side >> text=App Settings")
    page.fill("#id_web__port", "70000")
    page.click("button.primary:has-text('Save')")
    expect(page.locator("#field-web__port .errorlist")).to_have_text(
        "HTTP port must be between 1 and 65535."
    )
    assert 0 <= below(page, "#id_web__port", "#field-web__port .errorlist") < 40
    page.screenshot(path=tmp_path / "app-settings-port.png", full_page=True)

    # Worker Queues: a second row repeating the first's name.
    page.click("nav.side >> text=Worker Queues")
    expect(page.locator("#id_properties__queues-0-name")).to_have_value("default")
    page.click("#add-properties__queues")
    page.fill("#id_properties__queues-1-name", "default")
    page.click("button.primary:has-text('Save')")
    name_errors = page.locator("#field-properties__queues-1-name .errorlist")
    expect(name_errors).to_have_text('Queue name must be unique: row 1 already uses "default".')
    expect(page.locator("#field-properties__queues-1-name")).to_have_class(re.compile("has-error"))
    assert (
        0
        <= below(
            page, "#id_properties__queues-1-name", "#field-properties__queues-1-name .errorlist"
        )
        < 40
    )
    expect(page.locator("#pane-form > ul.errorlist")).to_have_count(0)
    expect(page.locator("#pane")).not_to_contain_text("record")  # rows, as numbered
    expect(page.locator("#add-properties__queues")).to_have_text("Add a row to Queues")
    # The rows are numbered as the error names them.
    rows = page.locator("#records-properties__queues > .record")
    expect(rows).to_have_count(2)
    before = rows.first.evaluate("e => getComputedStyle(e, '::before').content")
    assert before == '"Row " counter(record-row)', before
    page.screenshot(path=tmp_path / "queues-duplicate.png", full_page=True)
    staged.refresh_from_db()
    assert ".properties.queues" not in staged.values  # nothing saved
    page.fill("#id_properties__queues-1-name", "mail")
    page.click("button.primary:has-text('Save')")
    expect(page.locator(".messages")).to_contain_text("Worker Queues: saved.")
    staged.refresh_from_db()
    assert [q["name"] for q in staged.values[".properties.queues"]] == ["default", "mail"]

    # At 800 px the tile's menu and Resource Config's table stay in the window.
    page.set_viewport_size({"width": 800, "height": 900})
    page.click("nav.side >> text=Resource Config")
    page.wait_for_url("**/resources/")
    expect(page.locator("nav.side")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    box = page.locator("#job-web").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 800, box
    page.screenshot(path=tmp_path / "resources-800px.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.click("nav.side >> text=Worker Queues")

    # Leaving with a row added but nothing typed in it asks first.
    page.click("#add-properties__queues")
    expect(page.locator("#id_properties__queues-2-name")).to_be_visible()
    asked = []
    page.on("dialog", lambda d: (asked.append(d.type), d.dismiss()))
    page.click("nav.side >> text=Resource Config")
    page.wait_for_timeout(500)
    assert asked == ["beforeunload"]
    assert page.url.endswith("/forms/queue_config/")
    page.screenshot(path=tmp_path / "queues-unsaved-row.png", full_page=True)


def test_a_refused_import_names_the_file_not_the_api_field(page, staged, tmp_path):
    bad = tmp_path / "broken.yml"
    bad.write_text(
        "name: broken\nproduct_version: '1.0'\n"
        "property_blueprints:\n- name: x\n  type: no_such_type\n"
    )
    page.goto("/")
    page.set_input_files("#import-file", bad)
    page.click("#import-form button[type=submit]")
    error = page.locator(".messages li.error")
    expect(error).to_contain_text("broken.yml: ")
    expect(error).to_contain_text("unknown type")
    expect(page.locator(".messages")).not_to_contain_text("product[file]")
    page.screenshot(path=tmp_path / "import-refused.png", full_page=True)
