"""What was reviewed is what deploys: Apply Changes keeps what it renders at the click.

An edit saved after the click (before the worker runs) must not reach the
director: the worker deploys the installation's snapshot, and the edit
stays a pending change for the next Apply Changes. The snapshot holds the
vCenter password and generated credentials, so its column is ciphertext.
Installations run inline here (the worker's code path); vcenter.example.com
is no vCenter, so its login check is stubbed (test_apply_vcenter.py logs in
to vcsim for real).
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from django.db import connection

from director.models import Config, Task
from tiles import director_tile, services
from tiles.models import Installation
from tiles.services import installations
from tiles.services.installations import product_steps

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def vcenter_login_passes(monkeypatch):
    monkeypatch.setattr(director_tile, "test_vcenter_connection", lambda iaas=None: {})


def _dns(cloud_text: str) -> list[str]:
    cloud = yaml.safe_load(cloud_text)
    return cloud["networks"][0]["subnets"][0]["dns"]


def test_a_director_tile_edit_after_the_click_is_not_applied(director_configured):
    inst = services.apply_changes("admin", deploy_products="none")
    networks = services.get_networks()
    networks["networks"][0]["subnets"][0]["dns"] = "9.9.9.9"
    services.set_networks(networks)  # saved after the click, before the worker runs
    services.set_director_configuration({"resurrector_enabled": False})

    assert installations.run_installation(inst.id) == "succeeded"
    assert _dns(Config.latest("cloud").content) == ["8.8.8.8"]  # the reviewed cloud-config
    from director import services as director_services

    assert director_services.resurrection_enabled() is True  # the reviewed switch
    # The edits are still staged, and still pending.
    director = services.pending_changes(with_plan=False)["product_changes"][0]
    assert director["action"] == "update"
    assert "+    - 9.9.9.9" in director["cloud_config_diff"]
    assert "-    - 8.8.8.8" in director["cloud_config_diff"]


def test_a_product_edit_after_the_click_is_not_deployed(small, stemcell, small_release):
    inst = services.apply_changes("admin", errands={small.guid: {"run_post_deploy": {}}})
    staged = services.get_staged_product(small.guid)
    services.set_properties(staged, {".properties.greeting": {"value": "edited after the click"}})
    services.set_resource_config(staged, "web", instances=3)

    installations.run_installation(inst.id)
    step = Installation.objects.get(id=inst.id).steps.get(kind="deploy")
    task = Task.objects.get(id=step.task_id)
    asked = yaml.safe_load(task.args["manifest_text"])  # what the director was told to deploy
    web = next(g for g in asked["instance_groups"] if g["name"] == "web")
    assert web["instances"] == 2
    assert web["jobs"][0]["properties"]["greeting"] == "hello"
    assert "edited after the click" not in task.args["manifest_text"]
    staged = services.get_staged_product(small.guid)
    assert services.get_properties(staged)[".properties.greeting"]["value"] == (
        "edited after the click"
    )  # still staged, for the next Apply Changes


def test_what_a_deploy_records_as_deployed_is_the_snapshot(
    small, stemcell, small_release, monkeypatch
):
    """A successful deploy step records the reviewed manifest and configuration as deployed."""
    services.set_properties(small, {".properties.greeting": {"value": "reviewed"}})
    inst = services.apply_changes("admin")
    reviewed = inst.snapshot["products"][small.guid]
    staged = services.get_staged_product(small.guid)
    services.set_properties(staged, {".properties.greeting": {"value": "edited after the click"}})

    def director_deploys(task):  # the director's answer; deploys on vcsim are tested elsewhere
        Task.objects.filter(id=task.id).update(state="done", result="ok")
        task.refresh_from_db()
        return task

    monkeypatch.setattr(product_steps, "_run_inline", director_deploys)
    assert product_steps._run_deploy(inst.steps.get(kind="deploy"), inst) is True
    staged = services.get_staged_product(small.guid)
    assert staged.deployed_manifest == reviewed["manifest"]
    assert staged.deployed_state["values"][".properties.greeting"] == "reviewed"
    web = services.deployed_manifest(small.guid)["instance_groups"][0]
    assert web["jobs"][0]["properties"]["greeting"] == "reviewed"
    # the later edit is still staged, and shows as the pending change
    assert staged.values[".properties.greeting"] == "edited after the click"
    entry = services.pending_changes(with_plan=False)["product_changes"][1]
    assert entry["action"] == "update"
    assert re.search(r"^-\s+greeting: reviewed$", entry["manifest_diff"], re.M)
    assert re.search(r"^\+\s+greeting: edited after the click$", entry["manifest_diff"], re.M)


def test_the_snapshot_is_ciphertext_at_rest(small, stemcell, small_release):
    inst = services.apply_changes("admin")
    staged = services.get_staged_product(small.guid)
    admin_password = staged.secrets[".properties.admin"]["password"]
    snapshot = Installation.objects.get(id=inst.id).snapshot
    assert "s3cret-vc-password" in snapshot["director"]["cpi_config"]  # kept, for the worker
    assert admin_password in json.dumps(snapshot)  # the staged secrets the deploy records
    with connection.cursor() as cursor:
        cursor.execute("SELECT snapshot FROM tiles_installation WHERE id = %s", [inst.id])
        [(raw,)] = cursor.fetchall()
    assert raw.startswith("gAAAA")  # a Fernet token
    for secret in ("s3cret-vc-password", admin_password, "greeting", "cpis"):
        assert secret not in raw


def test_an_installation_without_a_snapshot_fails_saying_why(director_configured):
    inst = services.apply_changes("admin", deploy_products="none")
    Installation.objects.filter(id=inst.id).update(snapshot=None)
    assert installations.run_installation(inst.id) == "failed"
    first = Installation.objects.get(id=inst.id).steps.order_by("seq").first()
    assert first.state == "failed"
    assert "holds no snapshot of the reviewed configuration" in first.message
    assert not Config.objects.exists()
