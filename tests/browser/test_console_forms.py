"""An operator's forms and pages, in a browser: mistakes caught at save, errors on
their fields, upload progress, the 404 page, confirmations, the unsaved-changes
warning, the events page and a narrow window.

Real live server, vcsim and Debian chromium. Each test takes screenshots into
its tmp_path and asserts what the operator sees.
"""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from director.events import record_event
from tiles import director_tile, services
from tiles.director_tile.checks import VCenterCheck
from tiles.models import Product

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
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.STEMCELL_LIBRARY_DIR = tmp_path / "stemcell_library"
    django_user_model.objects.create_superuser("admin", "", PASSWORD)
    login(page, "admin", PASSWORD)
    return page


def _iaas(vcsim) -> dict:
    return {
        "vcenter_host": f"127.0.0.1:{vcsim.port}",
        "vcenter_username": vcsim.username,
        "vcenter_password": vcsim.password,
        "vcenter_ca_certificate": vcsim.ca_pem,
        "datacenter": "DC0",
        "ephemeral_datastores_string": "LocalDS_0",
        "persistent_datastores_string": "LocalDS_0",
    }


def _errors_of(page, field_id: str):
    return page.locator(f"#{field_id}-errors")


def test_typos_are_caught_at_save_beside_their_fields(admin, vcsim, tmp_path):
    page = admin
    # vCenter Config: a wrong password
    page.goto("/director_tile/vcenter/")
    page.fill("#id_vcenter_host", f"127.0.0.1:{vcsim.port}")
    page.fill("#id_vcenter_username", vcsim.username)
    page.fill("#id_vcenter_password", "not-the-password")
    page.fill("#id_vcenter_ca_certificate", vcsim.ca_pem)
    page.check("#id_ssl_verification_enabled")
    page.fill("#id_datacenter", "DC0")
    page.fill("#id_ephemeral_datastores_string", "LocalDS_0")
    page.fill("#id_persistent_datastores_string", "LocalDS_0")
    page.click("button.primary:has-text('Save')")
    password = page.locator("#field-vcenter_password")
    expect(password).to_have_class(re.compile("has-error"))
    expect(password.locator(".errorlist")).to_contain_text("incorrect user name or password")
    expect(page.locator(".messages li.success")).to_have_count(0)
    page.screenshot(path=tmp_path / "vcenter-wrong-password.png", full_page=True)
    assert not director_tile.get_director().iaas_configuration
    page.fill("#id_vcenter_password", vcsim.password)
    page.click("button.primary:has-text('Save')")
    expect(page.locator(".messages")).to_contain_text("vCenter Config: saved.")

    # Create Availability Zones: a mistyped cluster
    page.goto("/director_tile/azs/")
    page.click("#add-az")
    page.fill("#az-0-name", "az1")
    page.fill("#az-0-cluster-0-cluster", "DC0_C9_typo")
    page.click("button.primary:has-text('Save')")
    cluster_errors = _errors_of(page, "az-0-cluster-0-cluster")
    expect(cluster_errors).to_have_text(
        "Datacenter DC0 has no cluster “DC0_C9_typo” (it has: DC0_C0, DC0_C1)."
    )
    expect(page.locator("#az-0-cluster-0-cluster")).to_have_attribute("aria-invalid", "true")
    # beside its field: right under the cluster input, not above the form
    box_in, box_err = (
        page.locator("#az-0-cluster-0-cluster").bounding_box(),
        cluster_errors.bounding_box(),
    )
    assert 0 <= box_err["y"] - (box_in["y"] + box_in["height"]) < 40
    expect(page.locator("#pane-errors")).to_have_count(0)
    page.screenshot(path=tmp_path / "az-cluster-typo.png", full_page=True)
    assert director_tile.list_availability_zones() == []
    page.fill("#az-0-cluster-0-cluster", "DC0_C0")
    page.click("button.primary:has-text('Save')")
    expect(page.locator(".messages")).to_contain_text("Create Availability Zones: saved.")

    # Create Networks: a mistyped portgroup and a bad CIDR, each on its field
    page.goto("/director_tile/networks/")
    page.click("#add-network")
    page.fill("#net-0-name", "deploy-net")
    page.fill("#net-0-subnet-0-iaas_identifier", "VM Netwrk")
    page.fill("#net-0-subnet-0-cidr", "10.0.0.0/33")
    page.fill("#net-0-subnet-0-gateway", "10.0.0.1")
    page.check("input[name=net-0-subnet-0-azs][value=az1]")
    page.click("button.primary:has-text('Save')")
    expect(_errors_of(page, "net-0-subnet-0-iaas_identifier")).to_contain_text(
        "Datacenter DC0 has no network “VM Netwrk”"
    )
    expect(_errors_of(page, "net-0-subnet-0-cidr")).to_have_text(
        "CIDR '10.0.0.0/33' is not a network in CIDR form (e.g. 10.0.0.0/24)."
    )
    assert "networks/deploy-net" not in page.content()
    page.screenshot(path=tmp_path / "network-typos.png", full_page=True)
    assert services.get_networks()["networks"] == []
    page.fill("#net-0-subnet-0-iaas_identifier", "VM Network")
    page.fill("#net-0-subnet-0-cidr", "10.0.0.0/24")
    page.click("button.primary:has-text('Save')")
    expect(page.locator(".messages")).to_contain_text("Create Networks: saved.")
    # The menu ticks a pane only once it is complete.
    expect(page.locator("nav.side a.done", has_text="Create Networks")).to_have_count(1)
    expect(page.locator("nav.side a.todo", has_text="Assign AZ and Network")).to_have_count(1)


def test_unreachable_vcenter_saves_only_when_asked(admin, tmp_path):
    page = admin
    page.goto("/director_tile/vcenter/")
    page.fill("#id_vcenter_host", "127.0.0.1:9")
    page.fill("#id_vcenter_username", "admin")
    page.fill("#id_vcenter_password", "pw")
    page.uncheck("#id_ssl_verification_enabled")
    page.fill("#id_datacenter", "DC0")
    page.fill("#id_ephemeral_datastores_string", "ds")
    page.fill("#id_persistent_datastores_string", "ds")
    page.click("button.primary:has-text('Save')")
    expect(page.locator("#field-vcenter_host .errorlist")).to_contain_text(
        "Cannot connect to vCenter 127.0.0.1:9"
    )
    expect(page.locator("#save-anyway")).to_be_visible()
    page.screenshot(path=tmp_path / "vcenter-unreachable.png", full_page=True)
    assert not director_tile.get_director().iaas_configuration
    page.fill("#id_vcenter_password", "pw")
    page.check("#id_ignore_unreachable_vcenter")
    page.click("button.primary:has-text('Save')")
    expect(page.locator(".messages")).to_contain_text("vCenter Config: saved.")
    expect(page.locator(".messages")).to_contain_text("Saved without checking")
    assert director_tile.get_director().iaas_configuration["vcenter_host"] == "127.0.0.1:9"


def test_stemcell_upload_shows_its_progress(admin, tmp_path):
    page = admin
    big = tmp_path / "big-stemcell.tgz"
    big.write_bytes(b"\0" * (24 * 1024 * 1024))  # not a stemcell: the server refuses it
    page.goto("/director/stemcells/")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": 6 * 1024 * 1024,
        },
    )
    page.set_input_files("#stemcell-file", big)
    page.click("#stemcell-form button[type=submit]")
    bar = page.locator("#stemcell-form .upload-progress progress")
    expect(bar).to_be_visible()
    page.wait_for_function(
        "() => { const b = document.querySelector('#stemcell-form progress');"
        " return b && b.value > 0 && b.value < b.max; }"
    )
    expect(page.locator("#stemcell-form .upload-progress-text")).to_contain_text(
        re.compile(r"Uploading the stemcell: \d+% \(.* of 24\.0 MB\)")
    )
    page.screenshot(path=tmp_path / "stemcell-upload-progress.png", full_page=True)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    # the result is shown on the page the form redirects to, naming the file
    expect(page.locator(".messages li.error")).to_contain_text("big-stemcell.tgz", timeout=60_000)
    expect(page.locator(".messages")).not_to_contain_text("stemcell[file]")  # the file, in words
    page.screenshot(path=tmp_path / "stemcell-upload-result.png", full_page=True)


def test_product_upload_shows_progress_then_its_result(admin, tmp_path):
    page = admin
    tile = tmp_path / "small.yml"
    tile.write_text(
        "name: small\nproduct_version: '1.0.0'\nlabel: Small\n"
        "stemcell_criteria: {os: ubuntu-jammy, version: '1.0'}\n"
        "releases: []\nproperty_blueprints: []\nform_types: []\njob_types: []\n"
        + "# padding\n"
        * 200_000
    )
    page.goto("/")
    seen = []
    page.on("request", lambda r: seen.append(r.headers.get("x-upload-progress")))
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    throttle = {"offline": False, "latency": 0, "downloadThroughput": -1}
    cdp.send("Network.emulateNetworkConditions", {**throttle, "uploadThroughput": 1024 * 1024})
    page.set_input_files("#import-file", tile)
    page.click("#import-form button[type=submit]")
    expect(page.locator("#import-form .upload-progress progress")).to_be_visible()
    page.wait_for_function(
        "() => { const b = document.querySelector('#import-form progress');"
        " return b && b.value > 0 && b.value < b.max; }"
    )
    expect(page.locator("#import-form .upload-progress-text")).to_contain_text(
        re.compile(r"Uploading the product: \d+% \(.* of \d+\.\d MB\)")
    )
    page.screenshot(path=tmp_path / "product-upload-progress.png", full_page=True)
    cdp.send("Network.emulateNetworkConditions", {**throttle, "uploadThroughput": -1})
    expect(page.locator(".messages")).to_contain_text("Imported Small 1.0.0", timeout=60_000)
    assert "1" in seen  # it went through the progress script
    page.screenshot(path=tmp_path / "product-imported.png", full_page=True)


def test_not_found_page_has_a_way_back(admin, tmp_path, live_server):
    page = admin
    page.goto("/director/stemcells/")
    page.evaluate("window.location.href = '/no/such/page/'")
    page.wait_for_url("**/no/such/page/")
    expect(page.locator("#not-found h1")).to_have_text("This page does not exist")
    expect(page.locator("nav[aria-label=Main]")).to_be_visible()
    expect(page.locator("#back-link")).to_have_attribute(
        "href", f"{live_server.url}/director/stemcells/"
    )
    page.screenshot(path=tmp_path / "not-found.png", full_page=True)
    page.click("#dashboard-link")
    expect(page.locator("h1")).to_have_text("Installation Dashboard")
    response = page.request.get("/api/v0/no-such-route")
    assert response.status == 404 and "errors" in response.json()
    icon = page.request.get(page.locator("link[rel=icon]").get_attribute("href"))
    assert icon.status == 200 and b"<svg" in icon.body()


def test_delete_confirmations(admin, tmp_path):
    page = admin
    services.import_product(
        b"name: spare\nproduct_version: '1.0'\nlabel: Spare\n"
        b"stemcell_criteria: {os: ubuntu-jammy, version: '1.0'}\n"
        b"releases: []\nproperty_blueprints: []\nform_types: []\njob_types: []\n",
        "spare.yml",
        "admin",
    )
    page.goto("/")
    messages = []

    def dismiss(dialog):
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.click("#delete-unused-form button")
    page.wait_for_timeout(300)
    assert messages and messages[0].startswith("Delete every imported product that is not staged?")
    assert Product.objects.filter(name="spare").exists()  # dismissed: nothing deleted
    page.screenshot(path=tmp_path / "delete-unused-dismissed.png", full_page=True)
    page.once("dialog", lambda d: d.accept())
    page.click("#delete-unused-form button")
    expect(page.locator(".messages")).to_contain_text("Deleted 1 unused product")
    assert not Product.objects.filter(name="spare").exists()


def test_tile_delete_is_quiet_and_asks_first(admin, tmp_path):
    page = admin
    services.import_product(
        b"name: spare\nproduct_version: '1.0'\nlabel: Spare\n"
        b"stemcell_criteria: {os: ubuntu-jammy, version: '1.0'}\n"
        b"releases: []\nproperty_blueprints: []\nform_types: []\njob_types: []\n",
        "spare.yml",
        "admin",
    )
    staged = services.stage_product("spare", "1.0")
    page.goto("/")
    button = page.locator(f"#tile-{staged.guid} form.tile-delete button")
    expect(button).to_have_class(re.compile("quiet"))
    expect(button).not_to_have_class(re.compile("danger"))
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    button.click()
    page.wait_for_timeout(300)
    assert asked and "the next Apply Changes deletes its deployment" in asked[0]
    assert services.get_staged_product(staged.guid)  # still there
    page.screenshot(path=tmp_path / "tile-delete.png", full_page=True)


def test_leaving_a_changed_form_asks_first(admin, vcsim, tmp_path):
    page = admin
    services.set_iaas_configuration(_iaas(vcsim), check=VCenterCheck())
    page.goto("/director_tile/azs/")
    page.click("#add-az")
    page.fill("#az-0-name", "az1")
    asked = []

    def on_dialog(dialog):
        asked.append(dialog.type)
        dialog.dismiss()  # stay on the page

    page.on("dialog", on_dialog)
    page.click("nav.side >> text=Create Networks")
    page.wait_for_timeout(500)
    assert asked == ["beforeunload"]
    assert page.url.endswith("/director_tile/azs/")
    # saving is leaving without a question
    page.fill("#az-0-cluster-0-cluster", "DC0_C0")
    page.click("button.primary:has-text('Save')")
    expect(page.locator(".messages")).to_contain_text("Create Availability Zones: saved.")
    page.click("nav.side >> text=Create Networks")
    page.wait_for_url("**/director_tile/networks/")
    assert asked == ["beforeunload"]
    page.screenshot(path=tmp_path / "networks-after-save.png", full_page=True)


def test_events_page_reads_and_keeps_its_filters(admin, tmp_path):
    page = admin
    record_event(
        "deploy",
        "deployment",
        "zk",
        user="admin",
        deployment="zk",
        context={"before": {"instances": 1}, "after": {"instances": 3}, "new_name": "zk"},
    )
    record_event("update", "cloud-config", "default", user="admin")
    page.goto("/director/events/")
    table = page.locator("#event-table table.events")
    expect(table).to_be_visible()
    context = page.locator("#event-table td.context dl.kv").first
    expect(context).to_contain_text("after:")
    expect(context).to_contain_text('{"instances": 3}')
    assert "{'" not in page.locator("#event-table").inner_text()  # no Python dicts
    # the table fits the window
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # filters are choices, and the URL keeps them
    expect(page.locator("select#ev-action option")).to_have_text(["any", "deploy", "update"])
    page.select_option("select#ev-object_type", "cloud-config")
    page.wait_for_url(re.compile(r"object_type=cloud-config"))
    expect(page.locator("#event-table tbody tr")).to_have_count(1)
    page.screenshot(path=tmp_path / "events-filtered.png", full_page=True)
    page.reload()
    expect(page.locator("select#ev-object_type")).to_have_value("cloud-config")
    expect(page.locator("#event-table tbody tr")).to_have_count(1)
    expect(page.locator("#event-table tbody")).to_contain_text("cloud-config")


def test_tasks_timestamps_on_one_line_and_800px_layout(admin, tmp_path):
    from director.models import Deployment, Instance, Task, TaskState

    page = admin
    Task.objects.create(
        type="update_deployment",
        description="create deployment with a long description to wrap the table",
        state=TaskState.DONE,
        username="admin",
        deployment_name="zookeeper-with-a-long-name",
        result="ok",
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    dep = Deployment.objects.create(name="zookeeper-with-a-long-name")
    for i in range(3):
        Instance.objects.create(
            deployment=dep, group="zookeeper", index=i, az="az1", uuid=f"{i}-{'a' * 30}"
        )
    page.set_viewport_size({"width": 800, "height": 900})
    for path in (
        "/",
        "/director/tasks/",
        "/director/vms/",
        "/director/events/",
        "/director/stemcells/",
        "/pending_changes/",
        "/changelog/",
        "/director_tile/vcenter/",
        "/director_tile/networks/",
    ):
        page.goto(path)
        nav = page.locator("nav[aria-label=Main]")
        expect(nav).to_be_visible()
        for link in nav.locator("a").all():
            expect(link).to_be_visible()
            box = link.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 800, (path, link.inner_text())
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
        page.screenshot(path=tmp_path / f"narrow{path.replace('/', '-')}.png", full_page=True)
    page.goto("/director/vms/")
    table = page.locator("table.vms").first
    expect(table).to_be_visible()
    assert table.bounding_box()["width"] <= 800
    expect(page.locator("table.vms tbody tr")).to_have_count(3)
    page.goto("/director/tasks/")
    cell = page.locator("#task-table td.time").first
    expect(cell).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"))
    lines = page.evaluate(
        """() => {
          const range = document.createRange();
          range.selectNodeContents(document.querySelector('#task-table td.time'));
          return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
        }"""
    )
    assert lines == 1  # the timestamp is on one line
