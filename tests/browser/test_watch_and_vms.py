"""An operator watches a deploy and then looks at its VMs, in a browser.

A director on vcsim (cpi-config with a VM folder of this test's own,
cloud-config, stemcell and release uploaded by the real Celery worker), a
3-instance deployment whose watch times make the deploy last several
seconds. The operator opens the task page as the deploy starts and watches,
without reloading: the event log grows, the "Updating instance" progress bar
moves, the state badge turns ``done``. Then the VMs page: each instance with
its IP, VM CID and ``poweredOn`` read from vCenter; one VM powered off in
vCenter (pyvmomi, behind the director's back) reads ``poweredOff`` after the
table's own refresh, again without a reload.

Screenshots are written to the test's tmp_path (``task-running.png``,
``task-done.png``, ``vms.png``, ``vms-powered-off.png``).
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
import yaml
from playwright.sync_api import expect
from pyVim.task import WaitForTask

from director import services
from director.models import Config, Instance, TaskState
from tests.director.builders import build_release
from tests.director.execution.conftest import (
    CLOUD_CONFIG,
    cpi_config,
    services_deploy,
    wait_done,
    zookeeper_manifest,
)
from tests.director.heartbeats import agent_listener  # noqa: F401  fixture

from .conftest import login

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

#: Each instance's watch: canary, then two more one at a time, makes the deploy last ~6 s.
WATCH_MS = 2000


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    from cpi.stemcell_builder import build_stemcell

    out = tmp_path_factory.mktemp("watch-artifacts")
    stemcell = build_stemcell(
        out / "stemcell.tgz",
        name="bosh-vsphere-esxi-ubuntu-jammy-go_agent",
        version="1.200",
        operating_system="ubuntu-jammy",
    )
    return stemcell, build_release(out / "zk.tgz", version="0.0.20")


@pytest.fixture
def director_on_vcsim(celery_worker, vcsim, artifacts) -> str:
    """The director's configs and uploads; returns this test's VM folder."""
    folder = f"bw-{uuid.uuid4().hex[:8]}"
    Config.objects.create(
        type="cpi", name="default", content=cpi_config(vcsim, folder, f"{folder}-d")
    )
    Config.objects.create(type="cloud", name="default", content=CLOUD_CONFIG)
    stemcell, release = artifacts
    wait_done(services.upload_stemcell(stemcell, "admin"))
    wait_done(services.upload_release(release, "admin"))
    return folder


def line_count(page) -> int:
    text = page.locator("#task-lines").text_content() or ""
    return len([line for line in text.splitlines() if line.strip()])


def updating_percent(page) -> int | None:
    bar = page.locator("section[data-stage='Updating instance'] [role=progressbar]")
    if bar.count() == 0:
        return None
    return int(bar.get_attribute("aria-valuenow"))


@pytest.mark.usefixtures("agent_listener")  # imported above from tests.director.heartbeats
def test_watch_a_deploy_then_see_its_vms(
    page, live_server, admin_user, director_on_vcsim, vcsim, vsphere_si, tmp_path
):
    login(page, "admin", "admin-password-1")
    manifest = zookeeper_manifest(
        "watched",
        instances=3,
        update={
            "canaries": 1,
            "max_in_flight": 1,
            "canary_watch_time": WATCH_MS,
            "update_watch_time": WATCH_MS,
        },
    )
    task = services_deploy(yaml.safe_dump(manifest))

    # The task page, opened as the deploy starts; a marker tells us if the page ever reloads.
    page.goto(f"/director/tasks/{task.id}/")
    page.evaluate("window.__notReloaded = true")
    expect(page.locator("#task-state")).to_contain_text(re.compile("queued|processing"))
    page.locator("details:has(#task-lines) > summary").click()  # show the raw event lines

    expect(page.locator("#task-lines")).not_to_have_text("", timeout=30_000)
    first = line_count(page)
    percents: set[int] = set()
    samples: list[tuple[str, int]] = []  # (state badge, event lines shown)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = page.locator("#task-state").inner_text().strip()
        samples.append((state, line_count(page)))
        pct = updating_percent(page)
        if pct is not None and 0 < pct < 100 and not any(0 < p < 100 for p in percents):
            page.screenshot(path=str(tmp_path / "task-running.png"), full_page=True)
        if pct is not None:
            percents.add(pct)
        if state in ("done", "error", "cancelled", "timeout"):
            break
        page.wait_for_timeout(250)
    expect(page.locator("#task-state")).to_have_text("done")
    page.screenshot(path=str(tmp_path / "task-done.png"), full_page=True)
    assert page.evaluate("window.__notReloaded") is True

    # The log grew while we watched: first a few lines, more while running, then everything.
    final = line_count(page)
    running = [n for state, n in samples if state == "processing"]
    # (the last lines may land a poll before the state badge turns "done")
    assert running and any(first < n < final for n in running), (first, final, samples)
    events = services.get_task(task.id)
    assert events.state == TaskState.DONE
    from director import runner

    assert final == len(runner.read_output(events, "event", limit=100000).events)
    # The lines are the events in order, each once.
    seqs = [
        int(line.split()[0])
        for line in page.locator("#task-lines").text_content().splitlines()
        if line.strip()
    ]
    assert seqs == list(range(1, final + 1))
    # The "Updating instance" bar moved through the instances and ended full.
    assert updating_percent(page) == 100
    assert any(0 < p < 100 for p in percents), percents
    expect(page.locator("#task-poller")).not_to_have_attribute("hx-get", re.compile(".+"))

    # The VMs page: every instance with its IP, CID and vCenter's power state.
    instances = list(
        Instance.objects.filter(deployment__name="watched")
        .order_by("index")
        .prefetch_related("vms", "ip_addresses")
    )
    assert len(instances) == 3
    page.goto("/director/vms/?deployment=watched")
    page.evaluate("window.__notReloaded = true")
    rows = page.locator("#vm-table tr[id^=instance-]")  # each followed by its processes row
    expect(rows).to_have_count(3)
    for inst in instances:
        tr = page.locator(f"#instance-{inst.uuid}")
        vm = inst.active_vm
        expect(tr.locator(".instance")).to_contain_text(f"zookeeper/{inst.uuid} ({inst.index})")
        expect(tr.locator(".ips")).to_have_text(inst.ip_addresses.get().address)
        expect(tr.locator(".vm-cid")).to_have_text(vm.cid)
        expect(tr.locator(".vm-type")).to_have_text("small")
        expect(tr.locator(".process-state")).to_have_text("running")
        expect(tr.locator(".power-state")).to_have_text("poweredOn")
    expect(page.locator(f"#instance-{instances[0].uuid} .instance")).to_contain_text("bootstrap")
    page.screenshot(path=str(tmp_path / "vms.png"), full_page=True)

    # Powered off in vCenter: the table's next refresh shows it, no reload.
    victim = instances[1]
    dc = vcsim.inventory["datacenters"][0]
    index = vsphere_si.content.searchIndex
    vm = index.FindChild(
        index.FindByInventoryPath(f"{dc}/vm/{director_on_vcsim}"), victim.active_vm.cid
    )
    WaitForTask(vm.PowerOffVM_Task())
    victim_row = page.locator(f"#instance-{victim.uuid}")
    expect(victim_row.locator(".power-state")).to_have_text("poweredOff", timeout=15_000)
    expect(victim_row.locator(".process-state")).to_have_text("unresponsive agent")
    for other in (instances[0], instances[2]):
        expect(page.locator(f"#instance-{other.uuid} .power-state")).to_have_text("poweredOn")
    assert page.evaluate("window.__notReloaded") is True
    page.screenshot(path=str(tmp_path / "vms-powered-off.png"), full_page=True)
