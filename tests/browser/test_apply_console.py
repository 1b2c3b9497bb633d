"""An operator follows an Apply Changes that fails, fixes the cause and retries, in a browser.

Real everything: the live server, a Celery worker with NATS and the VM runtime
(the agents of vcsim's VMs), Redis, vcsim, Debian chromium. The Director tile
and the demo tile are set up through the services (the browser walk of those
forms is test_apply_flow.py); what is walked here:

1. Review Pending Changes: the summary on top (install, 2 VMs to create),
   coloured badges, Apply on top, and the warning the plan foresees when
   the web job's VM type is larger than any vCenter host.
2. Apply Changes despite the warning: vCenter finds no host for web's VM.
   The "Changes not applied" box names the instance and the message and
   links to the task's line (shown), the failed bars are red, the heading
   holds no error, the dashboard tile says "Apply failed".
3. A smaller VM type, Retry: a new installation with the same products,
   watched live: the overall bar advances, the log follows its end until
   the operator scrolls up (and again on "Follow the log"), the banner on
   another page links to it, Review Pending Changes says it runs instead
   of showing a plan computed mid-deploy; it succeeds, canary marked on the timeline;
   the tile reads "Deployed".
4. A VM powered off in vCenter and a changed property: Review Pending
   Changes warns that updating it will fail; marking the product for
   deletion warns of the persistent disks it destroys.

Screenshots go to the test's tmp_path.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
from playwright.sync_api import expect
from pyVim.task import WaitForTask

from director import services as director_services
from director.models import Task, TaskState, Vm
from tiles import demo, services
from tiles.models import Installation

from .conftest import login

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

RED = "rgb(198, 40, 40)"  # --err


def wait_for(predicate, timeout: float = 300, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} not reached within {timeout} s")


def wait_task(task_id: int) -> None:
    task = wait_for(
        lambda: (t := Task.objects.get(id=task_id)).is_terminal and t, what=f"task {task_id}"
    )
    assert task.state == TaskState.DONE, task.result


def configure_director(vcsim, folder: str) -> None:
    inv = vcsim.inventory
    services.set_iaas_configuration(
        {
            "vcenter_host": vcsim.host,
            "vcenter_username": vcsim.username,
            "vcenter_password": vcsim.password,
            "vcenter_ca_certificate": vcsim.ca_pem,
            "datacenter": inv["datacenters"][0],
            "ephemeral_datastores_string": inv["datastores"][0],
            "persistent_datastores_string": inv["datastores"][0],
            "bosh_vm_folder": folder,
            "bosh_template_folder": f"{folder}_Templates",
            "bosh_disk_path": f"{folder}_Disks",
        }
    )
    services.set_availability_zones(
        [{"name": "az1", "clusters": [{"cluster": inv["clusters"][0]}]}]
    )
    services.set_networks(
        {
            "networks": [
                {
                    "name": "default",
                    "subnets": [
                        {
                            "iaas_identifier": inv["portgroups"][0],
                            "cidr": "10.46.0.0/24",
                            "gateway": "10.46.0.1",
                            "dns": "10.46.0.2",
                            "reserved_ip_ranges": "10.46.0.1-10.46.0.9",
                            "availability_zone_names": ["az1"],
                        }
                    ],
                }
            ]
        }
    )
    services.set_network_and_az({"network": "default", "singleton_availability_zone": "az1"})
    services.set_vm_types(
        [
            # Not last: with none of small.disk, small, medium compilation takes the last.
            {"name": "huge", "cpu": 128, "ram": 4194304, "ephemeral_disk": 2048},
            {"name": "nano", "cpu": 1, "ram": 512, "ephemeral_disk": 1024},
            {"name": "micro", "cpu": 1, "ram": 1024, "ephemeral_disk": 2048},
        ]
    )


def bar_value(page, selector: str) -> int:
    return int(page.locator(selector).get_attribute("aria-valuenow"))


def test_failed_apply_summary_retry_banner_and_pending_review(
    page, live_server, admin_user, celery_worker, vcsim, vsphere_si, tmp_path, settings
):
    settings.LOCAL_VCSIM_FILE = tmp_path / "no-vcsim.json"
    folder = f"bc-{uuid.uuid4().hex[:8]}"
    configure_director(vcsim, folder)
    inst = services.apply_changes("admin", deploy_products="none")
    wait_for(lambda: Installation.objects.get(id=inst.id).status != "running", what="director")
    assert Installation.objects.get(id=inst.id).status == "succeeded"

    from cpi.stemcell_builder import build_stemcell

    stemcell = build_stemcell(
        tmp_path / "stemcell.tgz",
        name="bosh-vsphere-esxi-ubuntu-jammy-go_agent",
        version="1.0",
        operating_system="ubuntu-jammy",
    )
    wait_task(director_services.upload_stemcell(str(stemcell), "admin").id)
    pivotal = demo.build_pivotal(tmp_path / "demo")
    with open(pivotal, "rb") as fh:
        product = services.import_product(fh, pivotal.name, "admin")
    for task_id in product.release_task_ids:
        wait_task(task_id)
    staged = services.stage_product(product.name, product.version)
    guid = staged.guid
    services.set_networks_and_azs(
        staged,
        {
            "singleton_availability_zone": {"name": "az1"},
            "other_availability_zones": [{"name": "az1"}],
            "network": {"name": "default"},
        },
    )
    services.set_resource_config(staged, "web", instances=1, instance_type="huge")
    services.set_resource_config(staged, "worker", instances=1, instance_type="nano")
    services.set_resource_config(staged, "smoke-tests", instances=0)

    # -- 1. Review Pending Changes: summary, badges, foreseen warning ------------------
    login(page, "admin", "admin-password-1")
    page.goto("/pending_changes/")
    row = page.locator(f"#summary-{guid}")
    expect(row.locator(".action")).to_have_text("install")
    expect(row.locator("td.count")).to_have_text(["2", "0", "0", "0"])  # web/0, worker/0
    expect(page.locator(f"#change-{guid} .foreseen")).to_contain_text(
        "web: VM type huge (128 CPU, 4194304 MB RAM) is larger than any host in vCenter"
    )
    expect(page.locator(f"#change-{guid} table.plan .badge.create")).to_have_count(2)
    badge_colour = "e => getComputedStyle(e).backgroundColor"
    create_bg = page.locator(f"#change-{guid} table.plan .badge.create").first.evaluate(
        badge_colour
    )
    assert create_bg == "rgb(215, 240, 216)", create_bg  # green, not the plain grey badge
    assert page.locator("#apply-changes-top").is_visible()
    page.screenshot(path=str(tmp_path / "pending-review.png"), full_page=True)

    # -- 2. Apply (the top button) despite the warning: it fails on web's VM --------------
    page.click("#apply-changes-top")
    page.wait_for_url(re.compile(r"/installations/\d+/$"))
    first_url = page.url
    first_id = int(first_url.rstrip("/").rsplit("/", 1)[1])
    expect(page.locator("#apply-banner")).to_have_count(0)  # this page is the live view
    expect(page.locator("#inst-status-badge")).to_have_text("failed", timeout=300_000)

    # The "changes not applied" box, red bars, no error as the heading.
    box = page.locator("#inst-failure")
    expect(box.locator("h2")).to_have_text("Changes not applied")
    expect(box.locator(".failed-step")).to_contain_text("Creating missing vms")
    expect(box.locator(".failed-instance")).to_contain_text(re.compile(r"^web/[0-9a-f-]+ \(0\)$"))
    expect(box.locator(".failed-message")).to_contain_text("No valid placement found")
    expect(page.locator("h1")).to_have_text(f"Installation {first_id} failed")
    deploy_row = page.locator("tr.step.failed")
    expect(deploy_row).to_have_count(1)
    expect(deploy_row).to_contain_text("opsconsole-demo")
    fill = deploy_row.locator(".progress.failed > span")
    assert fill.evaluate("e => getComputedStyle(e).backgroundColor") == RED
    assert int(deploy_row.locator("[role=progressbar]").get_attribute("aria-valuenow")) < 100
    stage = page.locator("#inst-instances .stage.failed")
    expect(stage).to_have_count(1)
    assert (
        stage.locator(".progress > span").first.evaluate("e => getComputedStyle(e).backgroundColor")
        == RED
    )
    failed_bar = page.locator("svg.timeline g.bar.failed")
    expect(failed_bar).to_have_count(1)
    assert failed_bar.locator("rect").evaluate("e => getComputedStyle(e).fill") == RED
    expect(page.locator("#inst-poller")).not_to_have_attribute("hx-get", re.compile(".+"))
    page.screenshot(path=str(tmp_path / "installation-failed.png"), full_page=True)

    # The link goes to the task's failed line, shown.
    href = box.locator("a.failed-task").get_attribute("href")
    assert re.search(r"/director/tasks/\d+/#event-\d+$", href), href
    page.click("a.failed-task")
    line = page.locator(f"#{href.rsplit('#', 1)[1]}")
    expect(line).to_be_visible()
    expect(line).to_contain_text("failed")
    page.screenshot(path=str(tmp_path / "task-failed-line.png"))

    # The dashboard says which tile failed.
    page.goto("/")
    tile = page.locator(f"#tile-{guid}")
    expect(tile.locator(".deploy-state")).to_contain_text(f"Apply failed: installation {first_id}")
    assert tile.evaluate("e => getComputedStyle(e).borderTopColor") == RED
    expect(page.locator("#tile-director .deploy-state")).to_have_text("Deployed")
    page.screenshot(path=str(tmp_path / "dashboard-failed.png"), full_page=True)

    # -- 3. Fix the cause, Retry, and watch it live ----------------------------------------
    services.set_resource_config(staged, "web", instance_type="micro")
    page.goto(first_url)
    page.set_viewport_size({"width": 1280, "height": 420})  # a log box of some 14 lines
    page.click("#retry")
    page.wait_for_url(re.compile(r"/installations/\d+/$"))
    retry_url = page.url
    assert retry_url != first_url
    retry_id = int(retry_url.rstrip("/").rsplit("/", 1)[1])
    expect(page.locator(".messages")).to_contain_text(
        f"Retrying installation {first_id} as installation {retry_id}"
    )
    page.evaluate("window.__notReloaded = true")

    # The banner, on another page, while it runs.
    other = page.context.new_page()
    other.goto("/director/tasks/")
    banner = other.locator("#apply-banner")
    expect(banner).to_contain_text(f"Apply Changes is running: installation {retry_id}")
    other.screenshot(path=str(tmp_path / "banner.png"), full_page=True)
    # A tile's form says that what is saved now applies next time.
    other.goto(f"/products/{guid}/forms/app_config/")
    notice = other.locator(".apply-running-notice")
    expect(notice).to_contain_text("What you save here now applies with the next Apply Changes")
    expect(notice.locator("a")).to_have_attribute("href", f"/installations/{retry_id}/")
    other.screenshot(path=str(tmp_path / "form-during-apply.png"), full_page=True)
    # Review Pending Changes says it runs, instead of a plan computed mid-deploy.
    other.goto("/pending_changes/")
    applying = other.locator("#applying-notice")
    expect(applying).to_contain_text(f"Apply Changes is running: installation {retry_id}")
    expect(applying).to_contain_text("This review is right once it finishes")
    expect(applying.locator("a").first).to_have_attribute("href", f"/installations/{retry_id}/")
    expect(other.locator(f"#change-{guid} table.plan")).to_have_count(0)
    expect(other.locator(f"#change-{guid} .plan-waiting")).to_contain_text(
        f"shown once installation {retry_id} finishes"
    )
    other.screenshot(path=str(tmp_path / "pending-during-apply.png"), full_page=True)
    # A second Apply Changes is refused, linking to the running one.
    other.click("#apply-changes-top")
    other.wait_for_url("**/pending_changes/")
    refusal = other.locator(".messages li.error")
    expect(refusal).to_contain_text(
        f"Apply Changes is already running: installation {retry_id} started by admin."
    )
    other.screenshot(path=str(tmp_path / "second-apply-refused.png"), full_page=True)
    refusal.locator("a").click()
    other.wait_for_url(retry_url)
    other.close()
    assert Installation.objects.count() == 3  # director, failed, retry: none refused

    percents, followed, paused, instance_bars = [], False, False, set()
    log = page.locator("#inst-log")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = page.locator("#inst-status-badge").inner_text()
        percents.append(bar_value(page, "#inst-progress"))
        if state == "running":  # the running deploy's instances, each with its own bar
            for bar in page.locator("#inst-instances li.instance-step [role=progressbar]").all():
                instance_bars.add(int(bar.get_attribute("aria-valuenow")))
        geometry = log.evaluate("e => [e.scrollTop, e.clientHeight, e.scrollHeight]")
        if state == "running" and geometry[2] > geometry[1] + 40 and not followed:
            # Overflowing while running: the log shows its end.
            assert geometry[0] + geometry[1] >= geometry[2] - 30, geometry
            followed = True
            page.screenshot(path=str(tmp_path / "installation-running.png"), full_page=True)
            # Scrolled up to read: it stays there while lines arrive.
            log.evaluate("e => { e.scrollTop = 0; e.dispatchEvent(new Event('scroll')); }")
            expect(page.locator("#log-follow-state")).to_contain_text("Paused")
            lines = log.inner_text().count("\n")
            until = time.monotonic() + 30  # polled from here: the page's CSP forbids eval
            while time.monotonic() < until and not paused:
                page.wait_for_timeout(200)
                paused = log.inner_text().count("\n") > lines
                percents.append(bar_value(page, "#inst-progress"))
            assert log.evaluate("e => e.scrollTop") == 0  # still where the operator left it
            page.click("#log-follow")
            expect(page.locator("#log-follow")).to_be_hidden()
            assert log.evaluate("e => e.scrollTop + e.clientHeight >= e.scrollHeight - 30")
        if state != "running":
            break
        page.wait_for_timeout(300)
    expect(page.locator("#inst-status-badge")).to_have_text("succeeded")
    assert page.evaluate("window.__notReloaded") is True
    assert followed and paused, (followed, paused, percents, log.inner_text()[-3000:])
    moving = [p for p in percents if 0 < p < 100]
    # it advanced live (the page never reloaded): seen part-way, then further
    assert moving and moving[0] < max(percents), percents
    assert bar_value(page, "#inst-progress") == 100
    assert instance_bars, "no per-instance progress seen while the deploy ran"
    steps = page.locator("#inst-steps tr.step [role=progressbar]")
    expect(steps).to_have_count(page.locator("#inst-steps tr.step").count())
    done = page.locator("#inst-steps tr.step.succeeded [role=progressbar]")
    assert done.count() >= 1
    assert {s.get_attribute("aria-valuenow") for s in done.all()} == {"100"}
    expect(page.locator("#inst-failure")).to_have_count(0)
    expect(page.locator("#inst-elapsed")).to_contain_text(re.compile(r"^took \d"))
    canaries = page.locator("svg.timeline g.bar.canary text.label")  # one per instance group
    expect(canaries).to_have_text([re.compile(r"^Updating instance: (web|worker)/")] * 2)
    expect(page.locator("svg.timeline g.bar.failed")).to_have_count(0)
    retried = Installation.objects.get(id=retry_id)
    assert retried.deploy_products == Installation.objects.get(id=first_id).deploy_products
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(tmp_path / "installation-retried.png"), full_page=True)
    # At 800 px the live view (steps, instances, timeline) stays in the window; the
    # timeline is not shrunk to fit (its labels stay 11 px): its box scrolls sideways.
    page.set_viewport_size({"width": 800, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    scroller = page.locator("#timeline-scroll")
    assert scroller.bounding_box()["width"] <= 800
    drawn = "e => e.getBoundingClientRect().width / e.viewBox.baseVal.width"
    assert page.locator("svg.timeline").evaluate(drawn) >= 1
    on_screen = "e => e.getScreenCTM().a * parseFloat(getComputedStyle(e).fontSize)"
    assert canaries.first.evaluate(on_screen) >= 11  # px, as the label is drawn
    scroller.evaluate("e => { e.scrollLeft = e.scrollWidth; }")
    end = scroller.evaluate("e => e.scrollLeft")
    assert end > 0  # the bars' right end is reachable
    # The live view's poll replaces the picture: it stays where the operator scrolled it.
    scroller.evaluate("e => { e.dataset.before = 'poll'; }")
    page.evaluate(
        "url => htmx.ajax('GET', url, {target: '#inst-poller', swap: 'outerHTML'})",
        f"{retry_url}?fragment=log&after=0",
    )
    expect(page.locator("#timeline-scroll:not([data-before])")).to_have_count(1)
    kept = 0
    for _ in range(20):  # restored once htmx has settled the swap
        kept = scroller.evaluate("e => e.scrollLeft")
        if kept == end:
            break
        page.wait_for_timeout(100)
    assert kept == end, (kept, end)
    scroller.evaluate("e => { e.scrollLeft = 0; }")
    page.screenshot(path=str(tmp_path / "installation-800px.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/")
    expect(page.locator(f"#tile-{guid} .deploy-state")).to_have_text("Deployed")
    # The Change Log: the failed apply and its retry, each linking to its page.
    page.goto("/changelog/")
    for inst_id, status in ((first_id, "failed"), (retry_id, "succeeded")):
        row = page.locator(f"#installation-{inst_id}")
        expect(row.locator("td .badge").first).to_have_text(status)
        expect(row.locator("a.button")).to_have_attribute("href", f"/installations/{inst_id}/")
    page.screenshot(path=str(tmp_path / "changelog.png"), full_page=True)

    # -- 4. Foreseen: a powered-off VM; data loss before a deletion -----------------------
    worker_vm = Vm.objects.get(
        active=True, instance__deployment__name=guid, instance__group="worker"
    )
    dc = vcsim.inventory["datacenters"][0]
    index = vsphere_si.content.searchIndex
    vm = index.FindChild(index.FindByInventoryPath(f"{dc}/vm/{folder}"), worker_vm.cid)
    WaitForTask(vm.PowerOffVM_Task())
    services.set_properties(
        services.get_staged_product(guid), {".properties.greeting": {"value": "Hello again"}}
    )
    page.goto("/pending_changes/")
    expect(page.locator(f"#summary-{guid} .action")).to_have_text("update")
    expect(page.locator(f"#change-{guid} .foreseen")).to_contain_text(
        f"its VM {worker_vm.cid} is powered off in vCenter"
    )
    page.screenshot(path=str(tmp_path / "pending-powered-off.png"), full_page=True)

    services.unstage_product(guid)
    page.goto("/pending_changes/")
    loss = page.locator(f"#data-loss-{guid}")
    expect(loss).to_contain_text("Data loss")
    expect(loss).to_contain_text("Its 2 instances")
    expect(loss.locator(".lost-disks li")).to_have_count(1)  # web's persistent disk
    expect(loss.locator(".lost-disks")).to_contain_text("web/")
    expect(page.locator(f"#summary-{guid} td.count")).to_have_text(["0", "0", "0", "2"])
    confirm = page.locator("#apply-form").get_attribute("data-confirm")
    assert "persistent disk" in confirm and "data on those disks is lost" in confirm
    page.screenshot(path=str(tmp_path / "pending-delete.png"), full_page=True)
    # Answering no keeps everything.
    page.once("dialog", lambda d: d.dismiss())
    page.click("#apply-changes-top")
    page.wait_for_timeout(500)
    assert "/pending_changes/" in page.url
    assert Installation.objects.count() == 3
