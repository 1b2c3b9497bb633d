"""Review Pending Changes as the page shows it: the summary on top, Apply on top, plan
badges, GUI words instead of CLI advice, the data-loss warning before a product is
deleted, and the warnings the plan foresees (VM type too large, VM powered off)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from director.models import Deployment, Instance, PersistentDisk, Vm
from tests.tiles.test_apply import counting_renders
from tiles import services
from tiles.models import Installation
from tiles.services import foresight, pending

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture(autouse=True)
def no_vcenter(monkeypatch):
    """vcenter.example.com is no vCenter: host capacity is what each test says."""
    monkeypatch.setattr(
        foresight, "host_capacity", lambda: foresight.Capacity(error="vCenter not asked")
    )


def instance_plan(name, change, reasons=()):
    return {"name": name, "label": name, "az": "az1", "change": change, "reasons": list(reasons)}


PLAN = {
    "summary": {"create": 2, "update": 1, "recreate": 1, "delete": 0, "none": 1},
    "instance_groups": [
        {
            "name": "web",
            "instances": [
                instance_plan("web/a (0)", "update", ["properties changed"]),
                instance_plan("web/b (1)", "recreate", ["vm_type changed"]),
                instance_plan("web/c (2)", "create"),
                instance_plan("web/d (3)", "create"),
                instance_plan("web/e (4)", "none"),
            ],
        }
    ],
    "warnings": [],
}


def summary_row(page: str, guid: str) -> tuple[str, list[str]]:
    row = re.search(rf'<tr id="summary-{guid}">(.*?)</tr>', page, re.S).group(1)
    action = re.search(r'<span class="badge ([a-z]+) action">', row).group(1)
    return action, re.findall(r'<td class="num count">(\d+)</td>', row)


def test_summary_on_top_with_counts_badges_and_apply(admin_client, small, monkeypatch):
    monkeypatch.setattr(pending, "_plan", lambda *a, **k: PLAN)
    page = admin_client.get(reverse("pending-changes")).content.decode()
    summary = page[page.index('id="pending-summary"') :]
    # The summary and an Apply button come before the first product's section.
    assert page.index('id="apply-changes-top"') < page.index('id="pending-summary"')
    assert page.index('id="pending-summary"') < page.index('class="card change')
    assert 'id="apply-changes"' in page  # and at the bottom, as before
    assert summary_row(page, small.guid) == ("install", ["2", "1", "1", "0"])
    director_guid = services.get_director().guid
    assert summary_row(page, director_guid) == ("install", [])
    assert "cpi-config and cloud-config are stored first" in summary.split("</tr>")[1]
    # Coloured badges per change in the plan table.
    plan = page[page.index('<table class="plan">') :]
    for change in ("create", "update", "recreate"):
        assert f'<span class="badge {change}">{change}</span>' in plan
    assert ".badge.recreate" in open("static/css/console.css").read()


def test_the_page_renders_each_manifest_once(admin_client, small, monkeypatch):
    renders = counting_renders(monkeypatch)
    page = admin_client.get(reverse("pending-changes")).content.decode()
    assert summary_row(page, small.guid)[0] == "install"
    assert renders == [small.guid]  # the diff, the plan and the VM-size foresight share it


def test_first_install_says_what_the_gui_does_not_the_cli(admin_client, small):
    # The director has no cloud-config yet: its plan error advises a CLI command.
    raw = pending.product_change(services.get_staged_product(small.guid))["plan"]
    assert "update-config --type cloud" in str(raw)
    page = admin_client.get(reverse("pending-changes")).content.decode()
    assert "update-config" not in page and "--type cloud" not in page
    assert "This Apply Changes stores the BOSH Director tile&#x27;s cloud-config first" in page


def test_stemcell_and_release_advice_in_gui_words(admin_client, small, monkeypatch):
    errors = {
        "stemcells/default": [
            "Stemcell os 'ubuntu-jammy' version '1.0' is not uploaded (upload it with upload-stemcell)"
        ],
        "releases/small-release": [
            "Release 'small-release/1.0' is not uploaded (upload it with upload-release)"
        ],
    }
    monkeypatch.setattr(pending, "_plan", lambda *a, **k: {"errors": errors})
    page = admin_client.get(reverse("pending-changes")).content.decode()
    assert "upload-stemcell" not in page and "upload-release" not in page
    assert (
        "is not uploaded (import it on the Stemcells page: Apply Changes uploads it from the "
        "Stemcell Library)"
    ) in page
    assert "(import the product file that carries it again" in page


def deployed_with_disks(guid: str) -> list[Instance]:
    dep = Deployment.objects.create(name=guid)
    out = []
    for i, group in enumerate(("web", "web", "worker")):
        inst = Instance.objects.create(deployment=dep, group=group, uuid=f"u{i}", index=i % 2)
        Vm.objects.create(instance=inst, cid=f"vm-{i}", agent_id=f"agent-{i}", active=True)
        if group == "web":
            PersistentDisk.objects.create(
                instance=inst, disk_cid=f"disk-{i}", size=10240, active=True
            )
        out.append(inst)
    return out


def test_deleting_a_product_warns_of_data_loss_and_asks_first(admin_client, small):
    deployed_with_disks(small.guid)
    small.deployed_version = "1.0.0"
    small.save()
    services.unstage_product(small.guid)
    page = admin_client.get(reverse("pending-changes")).content.decode()
    box = page[page.index(f'id="data-loss-{small.guid}"') :]
    box = box[: box.index("</div>")]
    assert "Data loss:" in box
    assert "Its 3 instances (web/u0 (0), web/u1 (1), worker/u2 (0))" in box
    assert "2 persistent disks are destroyed; the data on the disks is lost" in box
    assert "web/u0 (0): disk disk-0 (10240 MB)" in box and "disk-1" in box
    assert summary_row(page, small.guid) == ("delete", ["0", "0", "0", "3"])
    confirm = re.search(r'<form method="post" id="apply-form" data-confirm="([^"]*)"', page)
    assert confirm and "Apply Changes deletes Small (3 instances, 2 persistent disks)" in (
        confirm.group(1)
    )


def test_no_confirmation_when_nothing_is_deleted(admin_client, small):
    page = admin_client.get(reverse("pending-changes")).content.decode()
    assert '<form method="post" id="apply-form" >' in page
    assert "Data loss" not in page


def test_vm_type_too_large_for_any_host(admin_client, small, monkeypatch):
    capacity = foresight.Capacity(
        hosts=[foresight.Host("esx-1", 4, 8192), foresight.Host("esx-2", 8, 4096)]
    )
    monkeypatch.setattr(foresight, "host_capacity", lambda: capacity)
    services.set_vm_types(
        [
            {"name": "fits", "cpu": 4, "ram": 8192, "ephemeral_disk": 1024},
            {"name": "huge", "cpu": 8, "ram": 8192, "ephemeral_disk": 1024},
        ]
    )
    services.set_resource_config(small, "web", instance_type="huge")
    page = admin_client.get(reverse("pending-changes")).content.decode()
    section = page[page.index(f'id="change-{small.guid}"') :]
    assert (
        "web: VM type huge (8 CPU, 8192 MB RAM) is larger than any host in vCenter "
        "(the largest have 8 CPU cores and 8192 MB of memory): its VMs cannot power on"
    ) in section
    # The compilation workers take the last VM type (none of small.disk, small, medium): huge.
    director = page[page.index(f'id="change-{services.get_director().guid}"') :]
    director = director[: director.index("</section>")]
    assert "Compilation: VM type huge (8 CPU, 8192 MB RAM) is larger than any host" in director
    services.set_resource_config(small, "web", instance_type="fits")
    services.set_vm_types(
        [
            {"name": "huge", "cpu": 8, "ram": 8192, "ephemeral_disk": 1024},
            {"name": "fits", "cpu": 4, "ram": 8192, "ephemeral_disk": 1024},
        ]
    )
    page = admin_client.get(reverse("pending-changes")).content.decode()
    assert "is larger than any host" not in page
    # vCenter not answering: the check is skipped, saying so.
    monkeypatch.setattr(
        foresight, "host_capacity", lambda: foresight.Capacity(error="connection refused")
    )
    page = admin_client.get(reverse("pending-changes")).content.decode()
    assert "VM sizes were not checked against the vCenter hosts: connection refused" in page


def test_automatic_compilation_vm_type_fits_a_small_host(admin_client, small, monkeypatch):
    """The built-in catalog's Automatic compilation type powers on where vcsim's hosts (2
    cores, 4 GB) do: no warning, and the cloud-config compiles on small.disk."""
    from tiles import director_tile

    capacity = foresight.Capacity(hosts=[foresight.Host(f"esx-{i}", 2, 4095) for i in range(3)])
    monkeypatch.setattr(foresight, "host_capacity", lambda: capacity)
    services.set_vm_types(None)
    assert director_tile.render_cloud_config()["compilation"]["vm_type"] == "small.disk"
    page = admin_client.get(reverse("pending-changes")).content.decode()
    director = page[page.index(f'id="change-{services.get_director().guid}"') :]
    assert "Compilation:" not in director[: director.index("</section>")]
    # The operator's choice in the compilation job's Resource Config wins, and is checked.
    d = services.get_director()
    d.resource_config = {"compilation": {"instance_type": "large"}}
    d.save()
    assert director_tile.render_cloud_config()["compilation"]["vm_type"] == "large"
    page = admin_client.get(reverse("pending-changes")).content.decode()
    assert "Compilation: VM type large (2 CPU, 8192 MB RAM) is larger than any host" in page


def test_powered_off_vm_of_an_updated_deployment(admin_client, small, monkeypatch):
    from director.services import vms

    instances = deployed_with_disks(small.guid)
    small.deployed_version = "1.0.0"
    small.deployed_manifest = "name: old\n"
    small.save()
    states = {"vm-0": "poweredOn", "vm-1": "poweredOff", "vm-2": "poweredOn"}
    monkeypatch.setattr(vms, "live_vm_states", lambda cids: states)
    page = admin_client.get(reverse("pending-changes")).content.decode()
    assert summary_row(page, small.guid)[0] == "update"
    section = page[page.index(f'id="change-{small.guid}"') :]
    assert (
        f"web/{instances[1].uuid} (1): its VM vm-1 is powered off in vCenter, so its agent "
        "cannot answer and updating it will fail"
    ) in section
    assert "vm-0 is powered off" not in page


def test_while_an_apply_runs_the_review_says_so_instead_of_a_half_finished_plan(
    admin_client, small, monkeypatch
):
    from director.services import vms

    instances = deployed_with_disks(small.guid)
    small.deployed_version = "1.0.0"
    small.deployed_manifest = "name: old\n"
    small.save()
    # What the director would plan mid-deploy: an instance the running apply is updating.
    half_done = {
        "summary": {"recreate": 1},
        "instance_groups": [
            {"name": "web", "instances": [
                instance_plan("web/u0 (0)", "recreate", ["previous deploy did not finish"])
            ]}
        ],
    }  # fmt: skip
    planned = []
    monkeypatch.setattr(pending, "_plan", lambda *a, **k: planned.append(a) or half_done)
    states = {"vm-0": "poweredOn", "vm-1": "poweredOff", "vm-2": "poweredOn"}
    monkeypatch.setattr(vms, "live_vm_states", lambda cids: states)
    running = Installation.objects.create(user_name="ops", status="running")

    page = admin_client.get(reverse("pending-changes")).content.decode()
    notice = page[page.index('id="applying-notice"') :]
    notice = notice[: notice.index("</div>")]
    assert f'<a href="/installations/{running.id}/">installation {running.id}</a>' in notice
    assert "started by ops" in notice
    assert "This review is right once it finishes" in notice
    assert page.index('id="applying-notice"') < page.index('id="pending-summary"')
    # No plan asked for, none shown; the summary and the product say when it comes.
    assert planned == []
    assert "previous deploy did not finish" not in page and '<table class="plan">' not in page
    assert summary_row(page, small.guid) == ("update", [])
    row = re.search(rf'<tr id="summary-{small.guid}">(.*?)</tr>', page, re.S).group(1)
    assert f"plan shown once installation {running.id} finishes" in row
    section = page[page.index(f'id="change-{small.guid}"') :]
    assert f'class="card change update while-applying" id="change-{small.guid}"' in page
    assert (
        f'class="help plan-waiting">Director\'s plan: shown once <a href="/installations/'
        f'{running.id}/">installation {running.id}</a> finishes'
    ) in section
    assert f"(against what was deployed before installation {running.id})" in section
    # Power states are not read while it may be stopping or recreating VMs.
    assert "is powered off" not in page

    # Once it has finished: the plan and the warnings are back, the notice gone.
    Installation.objects.filter(id=running.id).update(status="succeeded")
    page = admin_client.get(reverse("pending-changes")).content.decode()
    assert 'id="applying-notice"' not in page and "plan-waiting" not in page
    assert len(planned) == 1 and summary_row(page, small.guid) == ("update", ["0", "0", "1", "0"])
    assert "previous deploy did not finish" in page
    assert f"web/{instances[1].uuid} (1): its VM vm-1 is powered off" in page


def test_oversized_vm_types_is_pure_over_the_manifest():
    manifest = {
        "instance_groups": [
            {"name": "web", "instances": 2, "vm_type": "large"},
            {"name": "off", "instances": 0, "vm_type": "large"},  # no VM: nothing to warn
            {"name": "db", "instances": 1, "vm_type": "unknown"},
        ]
    }
    capacity = foresight.Capacity(hosts=[foresight.Host("esx", 1, 1024)])
    warnings = foresight.oversized_vm_types(manifest, capacity)
    assert len(warnings) == 1 and warnings[0].startswith("web: VM type large (2 CPU, 8192 MB")
    assert foresight.oversized_vm_types(manifest, foresight.Capacity(error="down")) == []
