"""An operator's first day, in a browser: configure the BOSH Director tile from
vcsim's inventory, import and configure the demo tile, review pending changes,
Apply Changes, and find the VMs in vCenter; then change one property and see
that only that change is shown, planned and applied.

Real everything: the live server, a Celery worker on the test database,
Redis, vcsim, Debian chromium.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
from playwright.sync_api import expect
from pyVmomi import vim

from director import services as director_services
from director.models import Task, TaskState, Vm
from tiles import demo
from tiles.models import StagedProduct

from .conftest import login

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]


def wait_tasks_done(timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = Task.objects.filter(state__in=[TaskState.QUEUED, TaskState.PROCESSING])
        if not busy.exists():
            failed = Task.objects.filter(state=TaskState.ERROR)
            assert not failed.exists(), [(t.id, t.description, t.result) for t in failed]
            return
        time.sleep(0.3)
    raise AssertionError("director tasks still running")


def saved(page, pane: str) -> None:
    expect(page.locator(".messages")).to_contain_text(f"{pane}: saved.")


def vms_in_folder(si, folder_name: str) -> dict[str, vim.VirtualMachine]:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.Folder], True)
    try:
        folders = [f for f in view.view if f.name == folder_name]
    finally:
        view.Destroy()
    out = {}
    for f in folders:
        for child in f.childEntity:
            if isinstance(child, vim.VirtualMachine):
                out[child.name] = child
    return out


def configure_director(page, vcsim, vm_folder: str) -> dict:
    page.goto("/director_tile/vcenter/")
    page.fill("#id_vcenter_host", f"127.0.0.1:{vcsim.port}")
    page.fill("#id_vcenter_username", vcsim.username)
    page.fill("#id_vcenter_password", vcsim.password)
    page.fill("#id_vcenter_ca_certificate", vcsim.ca_pem)
    page.check("#id_ssl_verification_enabled")
    page.click("#test-connection")
    expect(page.locator("#vcenter-inventory")).to_contain_text("Connected to vCenter")
    inventory = {
        key: page.locator(f"#inv-{key}").inner_text().split(", ")
        for key in ("clusters", "datastores", "portgroups")
    }
    assert inventory["clusters"] == sorted(vcsim.inventory["clusters"])
    datacenter = page.locator("#vcenter-inventory strong").inner_text()
    # The inventory became the choices of the form's fields.
    assert page.locator("#dl-datastores option").count() == len(inventory["datastores"])
    page.fill("#id_datacenter", datacenter)
    page.fill("#id_ephemeral_datastores_string", inventory["datastores"][0])
    page.fill("#id_persistent_datastores_string", inventory["datastores"][0])
    page.fill("#id_bosh_vm_folder", vm_folder)
    page.fill("#id_bosh_template_folder", f"{vm_folder}_Templates")
    page.fill("#id_bosh_disk_path", f"{vm_folder}_Disks")
    page.click("button.primary:has-text('Save')")
    saved(page, "vCenter Config")

    page.click("nav.side >> text=Create Availability Zones")
    page.click("#add-az")
    page.fill("#az-0-name", "az1")
    page.fill("#az-0-cluster-0-cluster", inventory["clusters"][0])
    page.click("#add-az")
    page.fill("#az-1-name", "az2")
    page.fill("#az-1-cluster-0-cluster", inventory["clusters"][1])
    page.click("button.primary:has-text('Save')")
    saved(page, "Create Availability Zones")

    page.click("nav.side >> text=Create Networks")
    page.click("#add-network")
    page.fill("#net-0-name", "default")
    page.fill("#net-0-subnet-0-iaas_identifier", inventory["portgroups"][0])
    page.fill("#net-0-subnet-0-cidr", "10.44.0.0/24")
    page.fill("#net-0-subnet-0-gateway", "10.44.0.1")
    page.fill("#net-0-subnet-0-reserved_ip_ranges", "10.44.0.1-10.44.0.9")
    page.fill("#net-0-subnet-0-dns", "10.44.0.2")
    page.check("input[name=net-0-subnet-0-azs][value=az1]")
    page.check("input[name=net-0-subnet-0-azs][value=az2]")
    page.click("button.primary:has-text('Save')")
    saved(page, "Create Networks")

    page.click("nav.side >> text=Assign AZ and Network")
    page.select_option("#singleton_availability_zone", "az1")
    page.select_option("#network", "default")
    page.click("button.primary:has-text('Save')")
    saved(page, "Assign AZ and Network")
    return inventory


def apply_and_wait(page, timeout_ms: int = 240_000) -> str:
    page.click("#apply-changes")
    page.wait_for_url(re.compile(r"/installations/\d+/$"))
    badge = page.locator("#inst-status-badge")
    expect(badge).to_have_text(re.compile("succeeded|failed"), timeout=timeout_ms)
    status = badge.inner_text()
    assert status == "succeeded", page.locator("#inst-log").inner_text()[-4000:]
    return page.url


def no_cli_advice(page) -> None:
    """A GUI page tells what the console does, never a CLI command to run."""
    main = page.locator("main")
    for cli in ("update-config", "upload-stemcell", "upload-release", "bosh -d", "bosh "):
        expect(main).not_to_contain_text(cli)


def diff_lines(page, guid: str) -> list[str]:
    block = page.locator(f"#change-{guid} pre[data-diff=manifest]")
    return [
        line
        for line in block.inner_text().splitlines()
        if line[:1] in ("+", "-") and not line.startswith(("+++", "---"))
    ]


def test_configure_import_apply_and_change(
    page, live_server, admin_user, celery_worker, vcsim, vsphere_si, tmp_path
):
    vm_folder = f"bt-{uuid.uuid4().hex[:8]}"
    login(page, "admin", "admin-password-1")
    expect(page.locator("#tile-director")).to_contain_text("Incomplete")

    configure_director(page, vcsim, vm_folder)

    # The director goes first on its own: its cpi-config is what the stemcell upload uses.
    page.goto("/pending_changes/")
    expect(page.locator(".change").first).to_contain_text("BOSH Director")
    no_cli_advice(page)
    page.screenshot(path=str(tmp_path / "pending_first_install.png"), full_page=True)
    apply_and_wait(page)
    stemcell = demo_stemcell(tmp_path)
    director_services.upload_stemcell(str(stemcell), "admin")
    wait_tasks_done()

    # Import the demo tile and stage it.
    page.goto("/")
    page.set_input_files("#import-file", str(demo.build_pivotal(tmp_path / "pivotal")))
    page.click("button:has-text('Import')")
    expect(page.locator(".messages")).to_contain_text("Imported Demo App 1.0.0")
    wait_tasks_done()  # the release upload
    page.click("button[aria-label='Stage opsconsole-demo 1.0.0']")
    staged = StagedProduct.objects.get()
    guid = staged.guid

    # Assign AZs and Networks (the page the tile opens on).
    page.select_option("#id_singleton_availability_zone", "az1")
    page.check("input[name=other_availability_zones][value=az1]")
    page.check("input[name=other_availability_zones][value=az2]")
    page.select_option("#id_network", "default")
    page.click("button.primary:has-text('Save')")
    saved(page, "Assign AZs and Networks")

    # App Settings: an invalid port is refused beside the field, nothing saved.
    page.click("nav.side >> text=App Settings")
    page.fill("#id_properties__greeting", "Hello from the browser")
    page.fill("#id_web__port", "70000")
    page.click("button.primary:has-text('Save')")
    expect(page.locator("#field-web__port .errorlist")).to_have_text(
        "HTTP port must be between 1 and 65535."
    )
    staged.refresh_from_db()
    assert ".properties.greeting" not in staged.values and ".web.port" not in staged.values
    page.fill("#id_web__port", "8080")
    page.click("button.primary:has-text('Save')")
    saved(page, "App Settings")

    # Storage: the selector re-renders its option's fields without a page load.
    page.click("nav.side >> text=Storage")
    page.check("input[name=properties__storage][value=s3]")
    expect(page.locator("#id_properties__storage__s3__endpoint")).to_be_visible()
    page.check("input[name=properties__storage][value=local]")
    expect(page.locator("#id_properties__storage__local__retention_days")).to_be_visible()
    page.fill("#id_properties__storage__local__retention_days", "14")
    page.click("button.primary:has-text('Save')")
    saved(page, "Storage")

    # Worker Queues: add a row with htmx.
    page.click("nav.side >> text=Worker Queues")
    page.click("#add-properties__queues")
    page.fill("#id_properties__queues-1-name", "mail")
    page.fill("#id_properties__queues-1-concurrency", "3")
    page.click("button.primary:has-text('Save')")
    saved(page, "Worker Queues")

    # Resource Config: web 2 instances with its 1 GB disk, worker 1.
    page.click("nav.side >> text=Resource Config")
    page.fill("#id_web__instances", "2")
    page.select_option("#id_web__instance_type", "micro")
    page.fill("#id_worker__instances", "1")
    page.select_option("#id_worker__instance_type", "nano")
    page.fill("#id_smoke-tests__instances", "0")
    page.click("button.primary:has-text('Save')")
    saved(page, "Resource Config")

    page.goto("/")
    expect(page.locator(f"#tile-{guid}")).to_contain_text("Configured")
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    # Review Pending Changes: the manifest diff and the plan.
    page.goto("/pending_changes/")
    change = page.locator(f"#change-{guid}")
    expect(change.locator(".action")).to_have_text("install")
    added = diff_lines(page, guid)
    assert ("+", "greeting: Hello from the browser") in [(x[0], x[1:].strip()) for x in added]
    # the generated admin password: a reference to the variable store, never its value
    assert any(f"((/opsmgr/{guid}/" in line for line in added)
    plan_rows = change.locator("table.plan tbody tr")
    expect(plan_rows).to_have_count(3)  # web/0, web/1, worker/0
    expect(change.locator("table.plan")).to_contain_text("create")
    no_cli_advice(page)
    page.screenshot(path=str(tmp_path / "pending_changes.png"), full_page=True)
    apply_and_wait(page)

    vms = vms_in_folder(vsphere_si, vm_folder)
    deployed = {
        vm.cid: vm for vm in Vm.objects.filter(active=True, instance__deployment__name=guid)
    }
    assert set(vms) == set(deployed)
    groups = sorted(vm.instance.group for vm in deployed.values())
    assert groups == ["web", "web", "worker"]
    for cid, vm in vms.items():
        assert vm.runtime.powerState == "poweredOn"
        group = deployed[cid].instance.group
        expected_ram = {"web": 1024, "worker": 512}[group]  # micro, nano
        assert vm.config.hardware.memoryMB == expected_ram
        disks = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
        assert len(disks) == (3 if group == "web" else 2), (group, len(disks))
    first_cids = {cid: deployed[cid].instance.name for cid in deployed}

    # A second apply with one changed property: only that diff, only web updated.
    page.goto(f"/products/{guid}/forms/app_config/")
    page.fill("#id_properties__greeting", "Hello again")
    page.click("button.primary:has-text('Save')")
    saved(page, "App Settings")
    page.goto("/pending_changes/")
    change = page.locator(f"#change-{guid}")
    expect(change.locator(".action")).to_have_text("update")
    assert [(line[0], line[1:].strip()) for line in diff_lines(page, guid)] == [
        ("-", "greeting: Hello from the browser"),
        ("+", "greeting: Hello again"),
    ]
    rows = change.locator("table.plan tbody tr")
    expect(rows).to_have_count(2)
    for i in range(2):
        assert rows.nth(i).inner_text().startswith("web/")
        expect(rows.nth(i)).to_contain_text("update")
    apply_and_wait(page)
    after = {
        vm.cid: vm.instance.name
        for vm in Vm.objects.filter(active=True, instance__deployment__name=guid)
    }
    assert after == first_cids  # updated in place: same VMs
    assert set(vms_in_folder(vsphere_si, vm_folder)) == set(first_cids)


def demo_stemcell(tmp_path):
    from cpi.stemcell_builder import build_stemcell

    return build_stemcell(
        tmp_path / "stemcell.tgz",
        name="bosh-vsphere-esxi-ubuntu-jammy-go_agent",
        version="1.0",
        operating_system="ubuntu-jammy",
    )
