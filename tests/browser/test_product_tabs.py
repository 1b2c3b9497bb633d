"""A tile's Status and Logs tabs, and the Director tile's Email Alerts pane, in a browser.

Status: reached from the tile's tab nav (the current tab marked, drawn as
the open one, on one line at 800 px), one row per instance with the
vitals its agent's last heartbeat carried (recorded as the agent listener
records it). Logs: an instance's "Download logs" starts the director's
``fetch_logs`` task and lands on the Logs tab, whose row follows the task
(htmx polling) until its tgz link shows and downloads. The worker's part
(what the agents upload) is played here by writing the task's events and
result as the task does; tests/director/execution/test_operations_vcsim.py
runs the real task against vcsim's agents.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from playwright.sync_api import expect

from director import runner
from director.agents.listener import record
from director.blobstore import blobstore
from director.health import alerts
from director.models import Deployment, Instance, IpAddress, Task, TaskEvent, Vm
from tests.tiles.conftest import (  # noqa: F401  fixtures: a configured Director tile, a tile
    director_configured,
    small,
    small_release,
    stemcell,
    tiles_dirs,
)
from tiles import services

from .conftest import login

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "admin-password-1"
ACCENT = "rgb(31, 111, 178)"  # --accent
VITALS = {
    "cpu": {"sys": "1.5", "user": "12.5", "wait": "0.2"},
    "disk": {"system": {"inode_percent": "30", "percent": "45"}},
    "load": ["0.25", "0.50", "0.75"],
    "mem": {"kb": "1048576", "percent": "26"},
    "swap": {"kb": "0", "percent": "0"},
}


@pytest.fixture
def admin(page, django_user_model):
    django_user_model.objects.create_superuser("admin", "", PASSWORD)
    login(page, "admin", PASSWORD)
    return page


@pytest.fixture
def deployed(small, stemcell, small_release):  # noqa: F811
    sp = services.get_staged_product(small.guid)
    services._mark_deployed(sp, services.manifest_yaml(services.render_manifest(sp)))
    deployment = Deployment.objects.create(name=sp.guid, manifest_text="name: x\n")
    for i in range(2):
        inst = Instance.objects.create(
            deployment=deployment, group="web", uuid=f"web-uuid-{i}", index=i, az=f"az{i + 1}"
        )
        vm = Vm.objects.create(instance=inst, cid=f"vm-{i}", agent_id=f"agent-{i}", active=True)
        IpAddress.objects.create(
            address=f"10.0.0.{10 + i}", network_name="infra", instance=inst, vm=vm
        )
        beat = {"job": "web", "index": i, "job_state": "running", "vitals": VITALS}
        record(f"hm.agent.heartbeat.agent-{i}", json.dumps(beat).encode())
    return services.get_staged_product(sp.guid)


def test_status_then_an_instances_logs(admin, deployed, monkeypatch, tmp_path):
    queued: list[int] = []
    monkeypatch.setattr(runner, "_sender", queued.append)  # the worker: played below
    page = admin
    page.goto(f"/products/{deployed.guid}/")
    tabs = page.locator("nav.tile-tabs a")
    expect(tabs).to_have_text(["Settings", "Status", "Credentials", "Logs"])
    expect(page.locator("nav.tile-tabs a[aria-current=page]")).to_have_text("Settings")
    page.click("nav.tabs a:has-text('Status')")
    page.wait_for_url(f"**/products/{deployed.guid}/status/")
    # The current tab is marked, and drawn as the open tab: white, the accent on top.
    current = page.locator("nav.tile-tabs a[aria-current=page]")
    expect(current).to_have_text("Status")
    expect(tabs.filter(has_text="Settings")).not_to_have_attribute("aria-current", "page")
    style = "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).borderTopColor]"
    assert current.evaluate(style) == ["rgb(255, 255, 255)", ACCENT]
    assert tabs.filter(has_text="Logs").evaluate(style)[0] != "rgb(255, 255, 255)"
    # At 800 px the tabs stay on one line, in the window, and each is a comfortable target.
    page.set_viewport_size({"width": 800, "height": 900})
    boxes = [t.bounding_box() for t in tabs.all()]
    assert len({round(b["y"]) for b in boxes}) == 1, boxes
    assert boxes[-1]["x"] + boxes[-1]["width"] <= 800 and min(b["height"] for b in boxes) >= 28
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # The instances table scrolls in its box rather than breaking words mid-word.
    lines = "e => { const r = document.createRange(); r.selectNodeContents(e); "
    lines += "return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }"
    for word in ("Index", "IPs", "Memory", "Swap", "Disks"):
        assert page.locator("table.status th", has_text=word).evaluate(lines) == 1, word
    assert page.locator("#status-web-uuid-1 .process-state .badge").evaluate(lines) == 1
    page.screenshot(path=tmp_path / "status-tab-800px.png")
    page.set_viewport_size({"width": 1280, "height": 900})
    row = page.locator("tr[data-instance='web/web-uuid-1']")
    expect(row).to_contain_text("az2")
    expect(row).to_contain_text("10.0.0.11")
    expect(row.locator(".process-state")).to_contain_text("running")
    expect(row.locator(".load")).to_have_text("0.25, 0.50, 0.75")
    expect(row.locator(".cpu")).to_contain_text("12.5% user")
    expect(row.locator(".disks")).to_contain_text("system 45%")
    page.screenshot(path=tmp_path / "status-tab.png", full_page=True)

    row.locator("button.fetch-logs").click()
    page.wait_for_url(re.compile(r".*/logs/\?task=\d+"))
    task = Task.objects.get(type="fetch_logs")
    assert task.args["instances"] == ["web-uuid-1"] and queued == [task.id]
    task_row = page.locator(f"#log-task-{task.id}")
    expect(task_row).to_contain_text("not ready")

    # the worker takes the task: one instance of one fetched, then done with a bundle
    Task.objects.filter(id=task.id).update(state="processing")
    TaskEvent.objects.create(
        task=task,
        seq=1,
        data={"stage": "Fetching logs", "total": 1, "index": 1, "state": "started"},
    )
    expect(task_row).to_contain_text("0 of 1 instance")
    ref = blobstore().put(io.BytesIO(b"logs of web/1"))
    Task.objects.filter(id=task.id).update(
        state="done", result_output=json.dumps({"blob": ref.id, "sha1": ref.sha1}) + "\n"
    )
    link = task_row.locator("a.download")
    expect(link).to_be_visible()
    page.screenshot(path=tmp_path / "logs-tab-ready.png", full_page=True)
    with page.expect_download() as download:
        link.click()
    path = tmp_path / "bundle.tgz"
    download.value.save_as(path)
    assert path.read_bytes() == b"logs of web/1"


def test_email_alerts_pane(admin, director_configured, tmp_path):  # noqa: F811
    page = admin
    page.goto("/director_tile/vcenter/")
    page.click("nav.side a:has-text('Email Alerts')")
    page.wait_for_url("**/director_tile/email/")
    page.check("#id_enabled")
    page.fill("#id_host", "smtp.example.com")
    page.fill("#id_port", "587")
    page.fill("#id_from", "not-an-address")
    page.fill("#id_recipients", "ops@example.com")
    page.fill("#id_smtp_user", "hm")
    page.fill("#id_smtp_password", "smtp-secret-pw-1")
    page.click("button.primary:has-text('Save')")
    sender = page.locator("#field-from")
    expect(sender).to_have_class(re.compile("has-error"))
    expect(sender.locator(".errorlist")).to_contain_text("must be an email address")
    expect(page.locator("#id_smtp_password")).to_have_value("")
    assert alerts.email_settings() is None

    page.fill("#id_from", "bosh-hm@example.com")
    page.fill("#id_smtp_password", "smtp-secret-pw-1")
    page.click("button.primary:has-text('Save')")
    expect(page.locator(".messages")).to_contain_text("Email Alerts: saved.")
    expect(page.locator("#id_host")).to_have_value("smtp.example.com")
    expect(page.locator("#id_smtp_password")).to_have_value("")
    expect(page.locator("#field-smtp_password")).to_contain_text("A password is stored")
    page.screenshot(path=tmp_path / "email-alerts-saved.png", full_page=True)
    assert "smtp-secret-pw-1" not in page.content()
    assert alerts.email_settings()["recipients"] == ["ops@example.com"]
