"""Watching and acting on an Apply Changes, as the pages show it (Django client).

The installation page (progress bars, instance steps, timeline, failure box,
Retry, polling that stops with 286), the running-apply banner on every page,
the refusal of a second apply with its link, and each tile's deploy state on
the dashboard. Installations and their director tasks are written as rows
here; the browser tests run real ones.
"""

from __future__ import annotations

import re
import time

import pytest
from django.urls import reverse

from director.models import Task, TaskEvent
from tiles import director_tile, services
from tiles.context_processors import running_apply
from tiles.models import Installation, InstallationStep, StagedProduct
from tiles.views import progress

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def viewer_client(client, user_with_role):
    client.force_login(user_with_role("full_view"))
    return client


def deploy_events(task: Task, t0: float, *, fail_second: bool = False, running: bool = False):
    """A deploy's event log: web/0 as canary, then web/1 (failed or still running)."""
    lines = [
        {"time": t0, "stage": "Preparing deployment", "tags": [], "total": 1,
         "task": "Preparing deployment", "index": 1, "state": "started", "progress": 0},
        {"time": t0 + 1, "stage": "Preparing deployment", "tags": [], "total": 1,
         "task": "Preparing deployment", "index": 1, "state": "finished", "progress": 100},
        {"time": t0 + 1, "stage": "Updating instance", "tags": ["web"], "total": 2,
         "task": "web/aaaa (0) (canary)", "index": 1, "state": "started", "progress": 0},
        {"time": t0 + 5, "stage": "Updating instance", "tags": ["web"], "total": 2,
         "task": "web/aaaa (0) (canary)", "index": 1, "state": "finished", "progress": 100},
        {"time": t0 + 5, "stage": "Updating instance", "tags": ["web"], "total": 2,
         "task": "web/bbbb (1)", "index": 2, "state": "started", "progress": 0},
        {"time": t0 + 6, "stage": "Updating instance", "tags": ["web"], "total": 2,
         "task": "web/bbbb (1)", "index": 2, "state": "in_progress", "progress": 40,
         "data": {"status": "starting jobs"}},
    ]  # fmt: skip
    if fail_second:
        lines += [
            {"time": t0 + 8, "stage": "Updating instance", "tags": ["web"], "total": 2,
             "task": "web/bbbb (1)", "index": 2, "state": "failed", "progress": 100,
             "data": {"error": "'web/bbbb (1)' is not running after update: web (failing)"}},
            {"time": t0 + 8, "error": {"code": 100, "message": "'web/bbbb (1)' is not running"}},
        ]  # fmt: skip
    for seq, data in enumerate(lines, 1):
        TaskEvent.objects.create(task=task, seq=seq, data=data)
    return lines


def make_installation(status: str, *, fail: bool = False) -> tuple[Installation, Task]:
    inst = Installation.objects.create(
        user_name="ops", status=status, deploy_products=["p-bosh-guid", "small-guid"]
    )
    InstallationStep.objects.create(
        installation=inst, seq=1, kind="vcenter", label="Check the vCenter connection",
        state="succeeded", product_name="p-bosh",
    )  # fmt: skip
    task = Task.objects.create(
        type="update_deployment", description="deploy", state="error" if fail else "processing"
    )
    deploy_events(task, time.time() - 10, fail_second=fail)
    InstallationStep.objects.create(
        installation=inst, seq=2, kind="deploy", label="Deploy Small", product_guid="small-guid",
        product_name="small", product_version="1.0.0", action="update", task=task,
        state="failed" if fail else "running",
        message="'web/bbbb (1)' is not running after update: web (failing)" if fail else "",
    )  # fmt: skip
    InstallationStep.objects.create(
        installation=inst, seq=3, kind="errand", label="Run errand check",
        product_guid="small-guid", state="skipped" if fail else "pending",
        message="not run: an earlier step failed" if fail else "",
    )  # fmt: skip
    if fail:
        inst.message = "Deploy Small: 'web/bbbb (1)' is not running after update: web (failing)"
        inst.save()
    return inst, task


def bar(html: str, label: str) -> dict:
    """The attributes of the progress bar labelled ``label``."""
    tag = re.search(
        rf'<div class="progress ([a-z_]+)"[^>]*aria-label="{re.escape(label)}"[^>]*>', html
    )
    assert tag, f"no progress bar {label!r}"
    attrs = dict(re.findall(r'([a-z-]+)="([^"]*)"', tag.group(0)))
    attrs["state"] = tag.group(1)
    return attrs


def test_running_installation_shows_progress_instances_timeline_and_polls(admin_client):
    inst, task = make_installation("running")
    url = reverse("installation", args=[inst.id])
    page = admin_client.get(url).content.decode()

    overall = bar(page, "Apply Changes progress")
    # vCenter 100; deploy 80 (prepare done, canary done, web/1 at 40: 240 of 3 steps); errand 0
    assert overall["aria-valuenow"] == "60" and overall["role"] == "progressbar"
    assert bar(page, "Deploy Small")["aria-valuenow"] == "80"
    assert re.search(r'id="inst-elapsed">running for \d+s<', page)
    # Per-instance progress of the running deploy, canary marked.
    instances = page[page.index('id="inst-instances"') :]
    assert "web/aaaa (0)" in instances and 'badge canary">canary' in instances
    assert bar(instances, "web/bbbb (1)")["aria-valuenow"] == "40"
    assert "starting jobs" in instances
    # The timeline: one bar per instance step (not "Preparing deployment"), the canary marked.
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert svg.count('<g class="bar') == 2
    # Never drawn below its own size (its labels would shrink): its box scrolls instead.
    width = progress.LABEL_WIDTH + progress.BAR_WIDTH + 50
    assert f'viewBox="0 0 {width} ' in svg and f'style="min-width:{width}px"' in svg
    assert page.index('class="timeline-scroll"') < page.index("<svg")
    assert svg.count("canary-mark") == 1 and 'class="bar running"' in svg
    # The log follows its end (static JS) and the poller asks every second.
    assert '<pre id="inst-log" class="log" data-follow>' in page
    assert f'hx-get="{url}?fragment=log&amp;after=' in page

    # A poll with the page's prefix: running, so 200 (not 286); nothing new, nothing appended.
    after = re.search(r'data-after="(\d+)"', page).group(1)
    digest = re.search(r"digest=([0-9a-f]+)", page).group(1)
    poll = {"fragment": "log", "after": after, "digest": digest}
    response = admin_client.get(url, poll, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    fragment = response.content.decode()
    assert "<html" not in fragment and "inst-log" not in fragment
    assert '<div id="inst-live" hx-swap-oob="true">' in fragment
    # web/1 finishes: its line goes above the errand's header, so the log is replaced whole.
    TaskEvent.objects.create(
        task=task, seq=7,
        data={"time": time.time(), "stage": "Updating instance", "tags": ["web"], "total": 2,
              "task": "web/bbbb (1)", "index": 2, "state": "finished", "progress": 100},
    )  # fmt: skip
    fragment = admin_client.get(url, poll, HTTP_HX_REQUEST="true").content.decode()
    assert bar(fragment, "Deploy Small")["aria-valuenow"] == "100"
    log = re.search(r'<pre id="inst-log" class="log" data-follow hx-swap-oob="true">(.*?)</pre>',
                    fragment, re.S)  # fmt: skip
    assert log and "web/bbbb (1) (done)\n===== Run errand check: pending" in log.group(1)


def test_failed_installation_summary_red_bars_and_no_error_heading(admin_client):
    inst, task = make_installation("failed", fail=True)
    url = reverse("installation", args=[inst.id])
    page = admin_client.get(url).content.decode()
    heading = re.search(r"<h1>(.*?)</h1>", page, re.S).group(1)
    assert "not running" not in heading and 'badge failed" id="inst-status-badge">failed' in heading

    box = page[
        page.index('id="inst-failure"') : page.index("</section>", page.index("inst-failure"))
    ]
    assert "Changes not applied" in box
    assert "Deploy Small — Updating instance web" in box
    assert '<dd class="failed-instance">web/bbbb (1)</dd>' in box
    assert "is not running after update: web (failing)" in box
    assert f'href="/director/tasks/{task.id}/#event-7"' in box  # the failed line
    assert f'action="{reverse("installation-retry", args=[inst.id])}"' in box
    assert 'id="retry"' in box
    assert f'href="{reverse("product", args=["small-guid"])}"' in box  # where to fix it

    deploy = bar(page, "Deploy Small")
    assert deploy["state"] == "failed" and deploy["aria-valuenow"] == "80"  # red, not full
    assert bar(page, "Apply Changes progress")["state"] == "failed"
    instances = page[page.index('id="inst-instances"') :]
    failed = bar(instances, "web/bbbb (1)")
    assert failed["state"] == "failed" and failed["aria-valuenow"] == "40"
    assert 'class="bar failed"' in page  # the timeline bar

    # Terminal: the poll answers 286, htmx stops.
    response = admin_client.get(
        url, {"fragment": "log", "after": "0", "digest": "x"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 286
    assert 'id="inst-failure"' in response.content.decode()


def test_failed_installation_viewer_sees_no_retry_and_cannot_post(viewer_client):
    inst, _ = make_installation("failed", fail=True)
    page = viewer_client.get(reverse("installation", args=[inst.id])).content.decode()
    assert "Changes not applied" in page and 'id="retry"' not in page
    response = viewer_client.post(reverse("installation-retry", args=[inst.id]))
    assert response.status_code == 403
    assert Installation.objects.count() == 1


def test_retry_needs_login_and_an_existing_installation(client, admin_client):
    inst, _ = make_installation("failed", fail=True)
    url = reverse("installation-retry", args=[inst.id])
    assert client.get(url).status_code in (302, 405)
    assert admin_client.get(url).status_code == 405
    assert admin_client.post(reverse("installation-retry", args=[999999])).status_code == 404


def test_retry_starts_the_same_selection_again(admin_client, director_configured, monkeypatch):
    monkeypatch.setattr(director_tile, "test_vcenter_connection", lambda iaas=None: {})
    first = services.apply_changes("admin", deploy_products="none")
    Installation.objects.filter(id=first.id).update(status="failed", message="boom")
    response = admin_client.post(reverse("installation-retry", args=[first.id]))
    retried = Installation.objects.exclude(id=first.id).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("installation", args=[retried.id])
    assert retried.status == "running" and retried.deploy_products == "none"
    assert retried.user_name == "admin"
    page = admin_client.get(response["Location"]).content.decode()
    assert f"Retrying installation {first.id} as installation {retried.id}." in page


def test_retry_and_second_apply_refused_with_a_link_to_the_running_one(admin_client):
    failed, _ = make_installation("failed", fail=True)
    running = Installation.objects.create(user_name="alice", status="running")
    response = admin_client.post(reverse("installation-retry", args=[failed.id]), follow=True)
    page = response.content.decode()
    link = f'<a href="{reverse("installation", args=[running.id])}">installation {running.id}</a>'
    assert f"Apply Changes is already running: {link} started by alice." in page
    assert Installation.objects.count() == 2

    response = admin_client.post(
        reverse("pending-changes"), {"deploy_products": ["x"]}, follow=True
    )
    assert (
        f"Apply Changes is already running: {link} started by alice." in response.content.decode()
    )
    assert Installation.objects.count() == 2


def test_banner_on_every_page_while_an_apply_runs(admin_client, django_assert_num_queries):
    assert 'id="apply-banner"' not in admin_client.get(reverse("dashboard")).content.decode()
    old = Installation.objects.create(user_name="ops", status="failed")
    running = Installation.objects.create(user_name="alice", status="running")
    link = f'href="{reverse("installation", args=[running.id])}">installation {running.id}</a>'
    for url in (reverse("dashboard"), reverse("tasks"), reverse("installation", args=[old.id])):
        page = admin_client.get(url).content.decode()
        banner = page[page.index('id="apply-banner"') :][:400]
        assert link in banner and "started by alice" in banner
    # Not on the running installation's own page: that page is the live view.
    page = admin_client.get(reverse("installation", args=[running.id])).content.decode()
    assert 'id="apply-banner"' not in page
    # Tile forms say what is saved now applies next time.
    page = admin_client.get(reverse("director-tile", args=["vcenter"])).content.decode()
    assert "What you save here now applies with the next Apply Changes" in page

    # One query, on the primary key; none for a page that does not show it.
    class Req:
        user = type("U", (), {"is_authenticated": True})()

    lazy = running_apply(Req())["running_apply"]
    with django_assert_num_queries(1) as ctx:
        assert lazy().id == running.id
        assert lazy().id == running.id
    assert "ORDER BY" in ctx.captured_queries[0]["sql"]
    assert running_apply(type("R", (), {"user": None})()) == {}
    Installation.objects.filter(id=running.id).update(status="succeeded")
    assert 'id="apply-banner"' not in admin_client.get(reverse("dashboard")).content.decode()


def test_dashboard_tile_states_after_a_failed_apply(admin_client, director_configured):
    from tests.tiles.conftest import SMALL_TILE

    services.import_product(SMALL_TILE.encode(), "small.yml", "admin")
    staged = services.stage_product("small", "1.0.0")
    d = director_tile.get_director()
    d.deployed_state = director_tile.director_state(d)
    d.deployed_at = d.updated_at
    d.save()
    page = admin_client.get(reverse("dashboard")).content.decode()
    assert tile_state(page, "director") == "deployed"
    assert tile_state(page, staged.guid) == "pending"  # never deployed

    inst = Installation.objects.create(user_name="ops", status="failed")
    InstallationStep.objects.create(
        installation=inst, seq=1, kind="vcenter", label="Check", product_guid=d.guid,
        state="succeeded",
    )  # fmt: skip
    InstallationStep.objects.create(
        installation=inst, seq=2, kind="deploy", label="Deploy Small", product_guid=staged.guid,
        state="failed",
    )  # fmt: skip
    page = admin_client.get(reverse("dashboard")).content.decode()
    assert tile_state(page, "director") == "deployed"
    assert tile_state(page, staged.guid) == "failed"
    tile = page[page.index(f'id="tile-{staged.guid}"') :][:1500]
    assert re.search(rf'class="tile [a-z]+ failed" id="tile-{staged.guid}"', page)  # red border
    assert f'Apply failed: <a href="{reverse("installation", args=[inst.id])}">' in tile

    # A later installation without the product does not hide its failure ...
    later = Installation.objects.create(user_name="ops", status="succeeded")
    InstallationStep.objects.create(
        installation=later, seq=1, kind="vcenter", label="Check", product_guid=d.guid,
        state="succeeded",
    )  # fmt: skip
    assert tile_state(admin_client.get(reverse("dashboard")).content.decode(), staged.guid) == (
        "failed"
    )
    # ... one that deploys it does.
    InstallationStep.objects.create(
        installation=later, seq=2, kind="deploy", label="Deploy Small", product_guid=staged.guid,
        state="succeeded",
    )  # fmt: skip
    StagedProduct.objects.filter(id=staged.id).update(
        deployed_version="1.0.0",
        deployed_at=d.updated_at,
    )
    staged = services.get_staged_product(staged.guid)
    staged.deployed_state = {
        k: getattr(staged, k)
        for k in ("values", "secrets", "network_and_azs", "resource_config", "errands")
    }
    staged.save()
    page = admin_client.get(reverse("dashboard")).content.decode()
    assert tile_state(page, staged.guid) == "deployed"
    # A saved edit is pending again.
    services.set_properties(staged, {".properties.greeting": {"value": "hi there"}})
    page = admin_client.get(reverse("dashboard")).content.decode()
    assert tile_state(page, staged.guid) == "pending"


def tile_state(page: str, tile: str) -> str:
    start = page.index(f'id="tile-{tile}"')
    found = re.search(r'data-deploy-state="([a-z]+)"', page[start:])
    return found.group(1)


def test_fold_keeps_a_failed_steps_progress_and_times():
    events = [
        (1, {"time": 10, "stage": "Updating instance", "tags": ["web"], "total": 1,
             "task": "web/x (0) (canary)", "index": 1, "state": "started", "progress": 0}),
        (2, {"time": 12, "stage": "Updating instance", "tags": ["web"], "total": 1,
             "task": "web/x (0) (canary)", "index": 1, "state": "in_progress", "progress": 30}),
        (3, {"time": 75, "stage": "Updating instance", "tags": ["web"], "total": 1,
             "task": "web/x (0) (canary)", "index": 1, "state": "failed", "progress": 100,
             "data": {"error": "boom"}}),
        (4, {"time": 75, "error": {"code": 1, "message": "boom"}}),
        (5, {"stage": "Broken", "index": "x"}),
    ]  # fmt: skip
    task = progress.fold_events(9, events, now=100)
    (step,) = task.steps
    assert (step.state, step.progress, step.failed_seq, step.error) == ("failed", 30, 3, "boom")
    assert step.canary and step.instance == "web/x (0)" and step.elapsed_text == "1m 05s"
    assert task.stages[0].state == "failed" and task.stages[0].percent == 30
    assert task.errors == [(4, "boom")]
    assert progress.duration_text(3723) == "1h 02m 03s"


def test_timeline_of_a_big_deploy_keeps_its_failures_and_latest_steps():
    events, seq = [], 0
    for i in range(progress.MAX_BARS + 50):
        for state in ("started", "failed" if i == 3 else "finished"):
            seq += 1
            events.append(
                (seq, {"time": 1000 + i, "stage": "Updating instance", "tags": ["web"],
                       "total": 250, "task": f"web/u{i} ({i})", "index": i + 1, "state": state,
                       "progress": 100 if state != "started" else 0})
            )  # fmt: skip
    step = InstallationStep(seq=1, kind="deploy", label="Deploy", state="failed")
    steps = [progress.StepProgress(step, progress.fold_events(1, events, now=2000), 50)]
    picture = progress.timeline(steps, now=2000)
    assert len(picture.bars) == progress.MAX_BARS and picture.hidden == 50
    assert [b.label for b in picture.bars if b.state == "failed"] == [
        "Updating instance: web/u3 (3)"
    ]
    assert picture.bars[-1].label == f"Updating instance: web/u{progress.MAX_BARS + 49} (249)"
