"""Installations run inline (the worker's code path without the queue): steps, failure, logs."""

from __future__ import annotations

import json

import pytest
import yaml

from director.models import Config, DirectorAttribute, Stemcell
from tiles import director_tile, services
from tiles.models import Installation
from tiles.services import installations, rendering

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def vcenter_logins(monkeypatch):
    """vcenter.example.com is no vCenter: the first step's login is recorded, not made.

    The real login (and a wrong password) is tested on vcsim in test_apply_vcenter.py.
    """
    logins: list[dict] = []
    monkeypatch.setattr(
        director_tile, "test_vcenter_connection", lambda iaas=None: logins.append(iaas) or {}
    )
    return logins


def test_director_only_apply_stores_configs_and_snapshot(director_configured, vcenter_logins):
    services.set_director_configuration({"resurrector_enabled": False, "minimum_down_jobs": 2})
    inst = services.apply_changes("admin", deploy_products="none")
    assert installations.run_installation(inst.id) == "succeeded"
    inst.refresh_from_db()
    assert inst.status == "succeeded" and inst.finished_at is not None
    vcenter, step = inst.steps.all()
    assert vcenter.state == "succeeded" and vcenter.task is None
    assert vcenter.message == (
        "logged in to vCenter vcenter.example.com as admin@vsphere.local; datacenter DC0 found"
    )
    assert vcenter_logins[0]["vcenter_password"] == "s3cret-vc-password"
    assert step.state == "succeeded" and step.task.type == "update_director_configs"
    assert (
        step.task.result == "updated cpi-config, cloud-config, resurrection, VM security"
    )  # generated VM passwords: on by default
    cloud = yaml.safe_load(Config.latest("cloud").content)
    assert [a["name"] for a in cloud["azs"]] == ["az1", "az2"]
    cpi = yaml.safe_load(Config.latest("cpi").content)
    assert cpi["cpis"][0]["properties"]["host"] == "vcenter.example.com"
    assert DirectorAttribute.get("resurrection_paused") == "true"
    assert json.loads(DirectorAttribute.get("hm_meltdown"))["minimum_down_jobs"] == 2
    # the director reads the vCenter from the cpi-config the tile rendered
    from director.cloud import cloud_properties

    name, props = cloud_properties()
    assert name == "default" and props["vcenters"][0]["user"] == "admin@vsphere.local"
    assert services.pending_changes(with_plan=False)["product_changes"][0]["action"] == "unchanged"
    logs = services.installation_logs(inst.id)
    assert "Updating director configs: cloud-config (done)" in logs
    assert "s3cret-vc-password" not in logs
    # a redelivered message does not run it again
    assert installations.run_installation(inst.id) == "succeeded"
    assert Config.objects.filter(type="cloud").count() == 1


def counting_renders(monkeypatch) -> list[str]:
    """The deployment names the tile manifest renderer is called for, in order."""
    renders: list[str] = []
    real = rendering._render

    def counting(template, values, ctx):
        renders.append(ctx.deployment_name)
        return real(template, values, ctx)

    monkeypatch.setattr(rendering, "_render", counting)
    return renders


def test_apply_renders_each_manifest_once_and_the_worker_deploys_that_text(
    small, stemcell, small_release, monkeypatch
):
    renders = counting_renders(monkeypatch)
    inst = services.apply_changes("admin")
    assert renders == [small.guid]  # checks, action and snapshot share one render
    reviewed = yaml.safe_load(inst.snapshot["products"][small.guid]["manifest"])
    assert reviewed["name"] == small.guid
    installations.run_installation(inst.id)
    assert renders == [small.guid]  # the worker deploys the snapshot, it renders nothing


def test_a_failing_step_fails_the_installation_and_skips_the_rest(small, stemcell, small_release):
    inst = services.apply_changes("admin")
    kinds = [s.kind for s in inst.steps.order_by("seq")]
    assert kinds == ["vcenter", "configs", "stemcells", "deploy", "errand"]
    Stemcell.objects.all().delete()  # gone before the worker uploads stemcells and deploys
    assert installations.run_installation(inst.id) == "failed"
    inst = Installation.objects.get(id=inst.id)
    steps = list(inst.steps.order_by("seq"))
    assert [s.state for s in steps] == ["succeeded", "succeeded", "failed", "skipped", "skipped"]
    assert steps[2].message == (
        f"{small.guid}: missing stemcell ubuntu-jammy 1.0: neither the director "
        "nor the Stemcell Library has one"
    )
    assert steps[3].message == "not run: an earlier step failed"
    assert inst.status == "failed" and "missing stemcell" in inst.message
    logs = services.installation_logs(inst.id)
    assert "Installation failed: Upload missing stemcells" in logs
    assert not services.get_staged_product(small.guid).is_deployed
    # a failed installation does not block the next one
    services.apply_changes("admin", deploy_products="none")


def test_errand_overrides_for_one_apply(small, stemcell, small_release):
    inst = services.apply_changes(
        "admin", errands={small.guid: {"run_post_deploy": {"check": False}}}
    )
    assert [s.kind for s in inst.steps.all()] == ["vcenter", "configs", "stemcells", "deploy"]
    assert inst.errands == {small.guid: {"run_post_deploy": {"check": False}}}


def test_ignore_warnings_lets_an_incomplete_but_renderable_product_go(small, stemcell):
    with pytest.raises(services.ServiceError) as exc:
        services.apply_changes("admin")
    assert exc.value.errors[small.guid] == ["Missing release: small-release/1.0"]
    inst = services.apply_changes("admin", ignore_warnings="true")
    assert inst.ignore_warnings is True


def test_unstaged_deployed_product_is_deleted_by_the_apply(small, stemcell, small_release):
    from tiles.models import StagedProduct

    sp = services.get_staged_product(small.guid)
    services._mark_deployed(sp, services.manifest_yaml(services.render_manifest(sp)))
    services.unstage_product(small.guid)
    inst = services.apply_changes("admin")
    steps = list(inst.steps.order_by("seq"))
    assert [(s.kind, s.action) for s in steps] == [
        ("vcenter", ""),
        ("configs", "update"),
        ("delete", "delete"),
    ]
    assert installations.run_installation(inst.id) == "succeeded"
    # no deployment existed in the director: the staged product is simply removed
    assert not StagedProduct.objects.filter(guid=small.guid).exists()
    assert services.list_available_products()[0].name == "small"


def test_an_installation_whose_worker_is_gone_does_not_block_the_next(director_configured):
    from datetime import timedelta

    from django.utils import timezone

    from director.models import Task

    lost = services.apply_changes("admin", deploy_products="none")
    Installation.objects.filter(id=lost.id).update(started_at=timezone.now() - timedelta(hours=1))
    assert services.running_installation() is None
    lost.refresh_from_db()
    assert lost.status == "failed" and "no worker started" in lost.message

    dead = services.apply_changes("admin", deploy_products="none")
    task = Task.objects.create(
        type="update_director_configs",
        description="x",
        state="processing",
        checkpoint_time=timezone.now() - timedelta(hours=1),
    )
    Installation.objects.filter(id=dead.id).update(worker_started_at=timezone.now())
    dead.steps.filter(kind="configs").update(state="running", task=task)
    Task.objects.filter(id=task.id).update(checkpoint_time=timezone.now())
    with pytest.raises(services.Conflict):  # its task checkpoints: still running
        services.apply_changes("admin", deploy_products="none")
    Task.objects.filter(id=task.id).update(checkpoint_time=timezone.now() - timedelta(hours=1))
    assert services.apply_changes("admin", deploy_products="none").id > dead.id
    dead.refresh_from_db()
    assert dead.status == "failed" and "timed out" in dead.message
