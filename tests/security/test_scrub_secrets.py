"""An upgraded console holds no secret in clear that an older console wrote.

Before secrets by reference, Apply Changes handed the director tile
manifests with the values written in: the director kept them in
``director_deployment`` (``manifest_text``, ``manifest``), in instances'
``spec_json``, in the deploy task's ``args`` and task logs. The old state is
built here as the old renderer wrote it; then the data migration or
``manage.py scrub_secrets`` runs, and every column of every table and every
task log is searched for the values: none is left. The references are in
place, the director still resolves them to what was deployed, the next
Review Pending Changes shows the product unchanged, and a second run
changes nothing.
"""

from __future__ import annotations

import importlib
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from director.manifest.interpolate import MISSING, interpolate
from director.manifest.yaml import dump_yaml, load_yaml
from director.models import Credential, Deployment, Instance, Task, TaskEvent
from tests.tiles.conftest import IAAS
from tiles import services
from tiles.manifest import render_manifest as render_pure
from tiles.services.scrub import MIN_SECRET_LENGTH

from .test_tile_secrets import OLD_KEY, PEER_TOKEN, secret_texts, stage_vault
from .test_tile_secrets_apply import table_dump

pytestmark = pytest.mark.django_db

VC_PASSWORD = IAAS["vcenter_password"]


@pytest.fixture
def old_console(security_dirs, director_configured, stemcell):
    """A tile deployed by a console from before secrets by reference, with what it left."""
    staged = stage_vault()
    ctx = replace(services.render_context(staged), credential_root=None)
    old = render_pure(services.product_template(staged), staged.all_values(), ctx)
    text = services.manifest_yaml(old)
    assert OLD_KEY in text
    services._mark_deployed(staged, text)
    staged = services.get_staged_product(staged.guid)

    deployment = Deployment.objects.create(
        name=staged.guid, manifest_text=text, manifest=dump_yaml(old)
    )
    [group] = old["instance_groups"]
    jobs = group["jobs"]
    Instance.objects.create(
        deployment=deployment,
        group=group["name"],
        uuid="0b1c2d3e-aaaa-4bbb-8ccc-000000000001",
        index=0,
        spec_json={
            "apply_spec": {
                "deployment": staged.guid,
                "job": {"name": group["name"], "templates": [{"name": j["name"]} for j in jobs]},
                "properties": {j["name"]: j.get("properties") or {} for j in jobs},
                "links": {},
            },
            "applied": {"stemcell": ["bosh-vsphere", "1.0"], "jobs_fingerprint": "f00d"},
            "job_state": "running",
        },
    )
    task = Task.objects.create(
        type="update_deployment",
        description="create deployment",
        username="admin",
        deployment_name=staged.guid,
        state="done",
        args={"manifest_text": text, "recreate": False, "dry_run": False, "fix": False},
        result=f"/deployments/{staged.guid}",
    )
    storage = old["instance_groups"][0]["jobs"][0]["properties"]["demo"]["storage"]
    TaskEvent.objects.create(
        task=task,
        seq=1,
        data={"time": 1, "type": "warning", "message": f"cannot reach {storage['url']}"},
    )
    admin_password = staged.secrets[".properties.admin"]["password"]
    ssh_key = staged.secrets[".properties.ssh"]["private_key_pem"]
    logs = Path(settings.TASK_LOG_DIR) / str(task.id)
    logs.mkdir(parents=True)
    (logs / "debug").write_text(
        f"2026-01-01 [main] login admin/{admin_password} to vcenter with {VC_PASSWORD}\n"
    )
    (logs / "cpi").write_text(json.dumps({"request": {"private_key": ssh_key}}) + "\n")
    (logs / "cpi").chmod(0o600)
    secrets = secret_texts(staged) | {OLD_KEY, PEER_TOKEN, VC_PASSWORD}
    assert {admin_password, ssh_key} <= secrets
    return staged, old, secrets


def migrated_state():
    """Historical models (the migration's frozen state, not the model classes) of the
    schema the test database has: every app migrated. The state at tiles 0006 itself
    would name columns later migrations renamed (director 0006's ``blob_path``)."""
    from django.db.migrations.executor import MigrationExecutor

    return MigrationExecutor(connection).loader.project_state()


def task_logs() -> dict[str, str]:
    root = Path(settings.TASK_LOG_DIR)
    return {str(p): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def leaks(secrets: set[str]) -> list[str]:
    return [
        f"{where}: {s[:10]}..."
        for where, text in {**table_dump(), **task_logs()}.items()
        for s in secrets
        if s in text
    ]


def run_command(capture) -> str:
    out = io.StringIO()
    with capture(execute=True):
        call_command("scrub_secrets", stdout=out)
    return out.getvalue()


def pending_entry(guid: str) -> dict:
    changes = services.pending_changes(with_plan=False)["product_changes"]
    return next(c for c in changes if c["guid"] == guid)


def test_the_old_state_holds_secrets_in_clear(old_console):
    _, _, secrets = old_console
    assert leaks(secrets)  # what the scrub is for; and that the search below can find them
    assert pending_entry(old_console[0].guid)["action"] == "update"


def test_scrub_secrets_leaves_references_and_no_value(
    old_console, django_capture_on_commit_callbacks
):
    staged, old, secrets = old_console
    output = run_command(django_capture_on_commit_callbacks)

    assert leaks(secrets) == []
    for secret in secrets:
        assert secret not in output
    for table in (
        "director_deployment",
        "director_instance",
        "director_task",
        "director_taskevent",
    ):
        assert table in output
    assert "file " in output and "/debug:" in output

    # The references the renderer writes now, identities included (they hold no secret).
    var = f"/opsmgr/{staged.guid}"
    deployment = Deployment.objects.get(name=staged.guid)
    for text in (deployment.manifest_text, deployment.manifest):
        assert f"(({var}/admin.password))" in text
        assert f"(({var}/admin.identity))" in text
    [instance] = Instance.objects.filter(deployment=deployment)
    demo = instance.spec_json["apply_spec"]["properties"]["demo-web"]["demo"]
    assert demo["storage"]["api_key"] == f"(({var}/api_key.value))"
    assert demo["storage"]["url"] == f"https://ops:(({var}/api_key.value))@vault.example.com"
    assert instance.spec_json["applied"]["jobs_fingerprint"] == "f00d"
    task = Task.objects.get(deployment_name=staged.guid)
    assert load_yaml(task.args["manifest_text"]) == load_yaml(deployment.manifest_text)
    event = TaskEvent.objects.get(task=task)
    assert (
        event.data["message"]
        == f"cannot reach https://ops:(({var}/api_key.value))@vault.example.com"
    )
    debug = Path(settings.TASK_LOG_DIR, str(task.id), "debug").read_text()
    assert f"(({var}/admin.password))" in debug and "((redacted))" in debug  # vCenter's
    assert Path(settings.TASK_LOG_DIR, str(task.id), "cpi").stat().st_mode & 0o777 == 0o600

    # The director resolves them to what was deployed: the store holds the values.
    def lookup(name):
        row = Credential.latest(name)
        return MISSING if row is None else row.value

    assert interpolate(load_yaml(deployment.manifest_text), lookup) == old

    # Review Pending Changes: nothing changed for the product.
    assert pending_entry(staged.guid)["action"] == "unchanged"
    assert services.product_diff(staged.guid)["manifest"] == {"status": "same", "diff": ""}
    deployed = services.get_staged_product(staged.guid).deployed_manifest
    assert deployed == services.manifest_yaml(services.render_manifest(staged))


def test_a_second_run_changes_nothing(old_console, django_capture_on_commit_callbacks):
    run_command(django_capture_on_commit_callbacks)
    tables, logs = table_dump(), task_logs()
    output = run_command(django_capture_on_commit_callbacks)
    assert output.strip() == "No secret in clear found; nothing changed."
    assert table_dump() == tables and task_logs() == logs


def test_by_value_only_still_leaves_no_secret(old_console, django_capture_on_commit_callbacks):
    """Without a render (the tile's template unreadable, say) values are replaced where found."""
    staged, _, secrets = old_console
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("scrub_secrets", "--no-render", stdout=out)
    assert leaks(secrets) == []
    text = Deployment.objects.get(name=staged.guid).manifest_text
    assert f"((/opsmgr/{staged.guid}/admin.password))" in text
    # Short public values are left where the renderer's place for them is not known.
    assert len("admin") < MIN_SECRET_LENGTH and "username: admin" in text


def test_the_migration_scrubs_with_the_historical_models(
    old_console, django_capture_on_commit_callbacks, capsys
):
    staged, _, secrets = old_console
    migration = importlib.import_module("tiles.migrations.0006_scrub_secrets")
    state = migrated_state()
    with django_capture_on_commit_callbacks(execute=True):
        migration.scrub(state.apps, None)
    assert leaks(secrets) == []
    printed = capsys.readouterr().out
    assert "director_deployment" in printed
    assert not any(s in printed for s in secrets)
    assert pending_entry(staged.guid)["action"] == "unchanged"


def test_the_command_refuses_while_a_task_runs(old_console, django_capture_on_commit_callbacks):
    from django.core.management.base import CommandError

    staged, _, secrets = old_console
    Task.objects.create(type="update_deployment", description="x", username="a", state="processing")
    with pytest.raises(CommandError, match="while work runs"):
        run_command(django_capture_on_commit_callbacks)
    assert leaks(secrets)  # nothing changed


def test_yaml_of_the_rewritten_manifest_keeps_its_layout(
    old_console, django_capture_on_commit_callbacks
):
    """Only the values change: the text is dumped as the console wrote it (key order kept)."""
    staged, old, _ = old_console
    run_command(django_capture_on_commit_callbacks)
    text = Deployment.objects.get(name=staged.guid).manifest_text
    assert list(yaml.safe_load(text)) == list(old)


def test_a_deleted_tiles_secrets_are_found_in_the_installation_snapshots(
    security_dirs, director_configured, stemcell, django_capture_on_commit_callbacks
):
    """Its staged row is gone; the snapshot of the Apply Changes that deployed it remains."""
    from tiles.models import Installation, StagedProduct

    staged = stage_vault()
    guid = staged.guid
    text = services.manifest_yaml(
        render_pure(
            services.product_template(staged),
            staged.all_values(),
            replace(services.render_context(staged), credential_root=None),
        )
    )
    Installation.objects.create(
        status="succeeded",
        snapshot={
            "products": {
                guid: {
                    "product_id": staged.product_id,
                    "action": "install",
                    "manifest": text,
                    "state": {"values": staged.values, "secrets": staged.secrets},
                }
            }
        },
    )
    secrets = secret_texts(staged) | {OLD_KEY, PEER_TOKEN}
    StagedProduct.objects.filter(pk=staged.pk).delete()
    Task.objects.create(
        type="update_deployment",
        description="create deployment",
        username="admin",
        deployment_name=guid,
        state="done",
        args={"manifest_text": text},
    )
    assert leaks(secrets)

    run_command(django_capture_on_commit_callbacks)
    assert leaks(secrets) == []
    manifest = Task.objects.get(deployment_name=guid).args["manifest_text"]
    assert f"api_key: ((/opsmgr/{guid}/api_key.value))" in manifest


def test_after_migrate_the_references_are_placed_exactly(
    old_console, django_capture_on_commit_callbacks, monkeypatch
):
    """The migration's models may be older than the renderer's: then migrate finishes the job."""
    from django.apps import apps as installed
    from django.db.models.signals import post_migrate

    from director.models import DirectorAttribute
    from tiles.services import scrub

    staged, _, secrets = old_console
    migration = importlib.import_module("tiles.migrations.0006_scrub_secrets")
    state = migrated_state()
    with monkeypatch.context() as m:  # a later migration changed a table the renderer reads
        m.setattr(scrub, "_render_with_references", lambda pk: None)
        with django_capture_on_commit_callbacks(execute=True):
            migration.scrub(state.apps, None)
    assert leaks(secrets) == []
    assert pending_entry(staged.guid)["action"] == "update"  # "username: admin" is left
    assert DirectorAttribute.get(scrub.PENDING_ATTRIBUTE) == "1"

    with django_capture_on_commit_callbacks(execute=True):
        tiles = installed.get_app_config("tiles")
        post_migrate.send(
            sender=tiles,
            app_config=tiles,
            verbosity=0,
            interactive=False,
            using="default",
            apps=installed,
            plan=[],
        )
    assert pending_entry(staged.guid)["action"] == "unchanged"
    assert DirectorAttribute.get(scrub.PENDING_ATTRIBUTE) is None
    assert leaks(secrets) == []


def test_the_smtp_password_is_redacted_where_the_vcenter_password_is(
    security_dirs, director_configured, django_capture_on_commit_callbacks
):
    """The health monitor's SMTP password (``DirectorAttribute.secret``) is found as vCenter's:
    a task's log, result and event, an installation's message get ``((redacted))``; the
    encrypted column keeps it, so the mailer still logs in."""
    from director.health.alerts import email_password, set_email_settings
    from tiles.models import Installation

    smtp_password = "smtp-S3cret-relay"
    set_email_settings(
        {
            "recipients": ["ops@example.com"],
            "from": "hm@example.com",
            "host": "smtp.example.com",
            "username": "hm",
            "password": smtp_password,
        }
    )
    said = f"login hm/{smtp_password} to smtp, vcenter with {VC_PASSWORD}"
    task = Task.objects.create(
        type="update_deployment", description="x", username="admin", state="error", result=said
    )
    TaskEvent.objects.create(task=task, seq=1, data={"time": 1, "type": "error", "message": said})
    Installation.objects.create(status="failed", message=said)
    logs = Path(settings.TASK_LOG_DIR) / str(task.id)
    logs.mkdir(parents=True)
    (logs / "debug").write_text(f"2026-01-01 [main] {said}\n")
    assert leaks({smtp_password}) and leaks({VC_PASSWORD})

    output = run_command(django_capture_on_commit_callbacks)

    assert leaks({smtp_password}) == [] and leaks({VC_PASSWORD}) == []
    assert smtp_password not in output
    redacted = "login hm/((redacted)) to smtp, vcenter with ((redacted))"
    assert Task.objects.get(pk=task.pk).result == redacted
    assert TaskEvent.objects.get(task=task).data["message"] == redacted
    assert Installation.objects.get().message == redacted
    assert redacted in (logs / "debug").read_text()
    assert email_password() == smtp_password
