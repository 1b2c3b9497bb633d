"""Upgrading a staged tile runs the new version's migrations/v1/*.js, as Ops Manager does.

Each test builds small .pivotal files (metadata and migrations, no releases),
imports both versions, stages the first, configures it and stages the second.
"""

from __future__ import annotations

import io
import zipfile

import pytest

from tiles import services
from tiles.models import Product, StagedProduct

pytestmark = pytest.mark.django_db

JOB = """
job_types:
- name: web
  resource_label: Web
  instance_definition: {name: instances, type: integer, configurable: true, default: 1}
  resource_definitions:
  - {name: ram, type: integer, default: 1024}
  templates:
  - {name: web, release: small-release, manifest: 'port: 1'}
"""

V1 = (
    """
name: mig
product_version: '1.0.0'
label: Mig
stemcell_criteria: {os: ubuntu-jammy, version: '1.0'}
property_blueprints:
- {name: old_port, type: port, configurable: true, default: 8080}
- {name: api_key, type: secret, configurable: true, optional: true}
- {name: legacy, type: string, configurable: true, optional: true}
- {name: greeting, type: string, configurable: true, default: hello}
form_types:
- name: settings
  label: Settings
  property_inputs:
  - {reference: .properties.old_port, label: Port}
  - {reference: .properties.api_key, label: Key}
  - {reference: .properties.legacy, label: Legacy}
  - {reference: .properties.greeting, label: Greeting}
"""
    + JOB
)

V2 = (
    """
name: mig
product_version: '1.1.0'
label: Mig
stemcell_criteria: {os: ubuntu-jammy, version: '1.0'}
property_blueprints:
- {name: new_port, type: port, configurable: true, default: 9090}
- {name: token, type: secret, configurable: true, optional: true}
- {name: greeting, type: string, configurable: true, default: hello}
- {name: verbose, type: boolean, configurable: true, default: true}
form_types:
- name: settings
  label: Settings
  property_inputs:
  - {reference: .properties.new_port, label: Port}
  - {reference: .properties.token, label: Token}
  - {reference: .properties.greeting, label: Greeting}
  - {reference: .properties.verbose, label: Verbose}
"""
    + JOB
)

RENAME = """
exports.migrate = function(input) {
  var p = input.properties;
  p['.properties.new_port'] = p['.properties.old_port'];
  delete p['.properties.old_port'];
  p['.properties.token'] = p['.properties.api_key'];
  delete p['.properties.api_key'];
  delete p['.properties.legacy'];
  p['.properties.greeting'].value += ' from ' + getCurrentProductVersion();
  return input;
};
"""


def pivotal(metadata: str, migrations: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata/mig.yml", metadata)
        for name, source in (migrations or {}).items():
            zf.writestr(f"migrations/v1/{name}", source)
    return buf.getvalue()


@pytest.fixture
def staged_v1(director_configured):
    services.import_product(pivotal(V1), "mig-1.0.0.pivotal", "admin")
    staged = services.stage_product("mig", "1.0.0")
    services.set_properties(
        staged,
        {
            ".properties.old_port": {"value": 7443},
            ".properties.api_key": {"value": {"secret": "k3y-very-secret"}},
            ".properties.legacy": {"value": "old stuff"},
        },
    )
    return services.get_staged_product(staged.guid)


def test_import_keeps_the_migrations_in_name_order(director_configured):
    product = services.import_product(
        pivotal(V2, {"201701010000_b.js": "// b", "201601010000_a.js": "// a"}),
        "mig-1.1.0.pivotal",
        "admin",
    )
    assert [m["name"] for m in product.migrations] == ["201601010000_a.js", "201701010000_b.js"]


def test_a_migration_renaming_a_property_keeps_its_value_under_the_new_name(staged_v1):
    services.import_product(
        pivotal(V2, {"201601010000_rename.js": RENAME}), "mig-1.1.0.pivotal", "admin"
    )
    upgraded = services.stage_product("mig", "1.1.0")
    assert upgraded.guid == staged_v1.guid
    props = services.get_properties(upgraded, reveal_secrets=True)
    assert props[".properties.new_port"]["value"] == 7443  # not the new default 9090
    assert props[".properties.token"]["value"] == {"secret": "k3y-very-secret"}
    assert props[".properties.greeting"]["value"] == "hello from 1.0.0"
    assert props[".properties.verbose"]["value"] is True
    stored = StagedProduct.objects.get(guid=upgraded.guid)
    assert ".properties.old_port" not in stored.values
    assert ".properties.legacy" not in stored.values
    assert stored.secrets[".properties.token"] == {"secret": "k3y-very-secret"}
    # the secret is kept encrypted, never in the plain columns or the upgrade record
    assert "k3y-very-secret" not in repr(stored.values) + repr(stored.upgrade)


def test_without_the_migration_the_renamed_value_is_lost(staged_v1):
    """What the migration fixes: an upgrade that only keeps same-named properties."""
    services.import_product(pivotal(V2), "mig-1.1.0.pivotal", "admin")
    upgraded = services.stage_product("mig", "1.1.0")
    props = services.get_properties(upgraded)
    assert props[".properties.new_port"]["value"] == 9090


def test_migrations_the_old_version_shipped_do_not_run_again(staged_v1):
    """Ops Manager's chaining: only the migrations new in the target version run."""
    old = Product.objects.get(name="mig", version="1.0.0")
    old.migrations = [{"name": "201601010000_rename.js", "source": "// shipped with 1.0.0"}]
    old.save()
    services.import_product(
        pivotal(
            V2,
            {
                "201601010000_rename.js": "exports.migrate = function(i) { throw new Error('ran'); };",
                "201701010000_port.js": RENAME,
            },
        ),
        "mig-1.1.0.pivotal",
        "admin",
    )
    upgraded = services.stage_product("mig", "1.1.0")
    assert services.get_properties(upgraded)[".properties.new_port"]["value"] == 7443
    assert upgraded.upgrade["steps"][-1]["migrations"] == ["migrations/v1/201701010000_port.js"]


@pytest.mark.parametrize(
    "source, message",
    [
        ("exports.migrate = function(input) { throw new Error('no way'); };", "Error: no way"),
        ("exports.migrate = function(input) { while (true) {} };", "did not finish within"),
        (
            "exports.migrate = function(input) { var a = [];"
            " while (true) { a.push(new Array(100000).fill(1)); } };",
            "MB of memory",
        ),
        ("exports.migrate = function(input) {", "SyntaxError"),
        ("exports.migrate = function(input) { abortMigration('too old'); };", "aborted: too old"),
        ("exports.migrate = function(input) { return 42; };", "must return {properties"),
    ],
)
def test_a_failing_migration_refuses_the_upgrade_naming_the_file(
    staged_v1, monkeypatch, source, message
):
    from tiles import jsmigrations

    # the loop must hit the time limit; the others must not (a loaded machine is slow)
    timeout = 1.0 if message == "did not finish within" else 60.0
    monkeypatch.setattr(jsmigrations, "TIMEOUT_SECONDS", timeout)
    monkeypatch.setattr(jsmigrations, "MAX_HEAP_BYTES", 64 * 1024 * 1024)
    services.import_product(
        pivotal(V2, {"201601010000_ok.js": RENAME, "201801010000_bad.js": source}),
        "mig-1.1.0.pivotal",
        "admin",
    )
    before = StagedProduct.objects.get(guid=staged_v1.guid)
    with pytest.raises(services.ServiceError) as exc:
        services.stage_product("mig", "1.1.0")
    assert exc.value.status == 422
    (error,) = exc.value.errors["product_version"]
    assert "migrations/v1/201801010000_bad.js" in error
    assert message in error
    after = StagedProduct.objects.get(guid=staged_v1.guid)
    assert after.product.version == "1.0.0"
    assert after.values == before.values and after.secrets == before.secrets


def test_the_api_refuses_a_failing_upgrade_with_422(staged_v1, admin_api):
    services.import_product(
        pivotal(V2, {"201801010000_bad.js": "exports.migrate = function(i) { i.x.y = 1; };"}),
        "mig-1.1.0.pivotal",
        "admin",
    )
    r = admin_api.post(
        "/api/v0/staged/products", {"name": "mig", "product_version": "1.1.0"}, format="json"
    )
    assert r.status_code == 422, r.content
    (error,) = r.json()["errors"]["product_version"]
    assert "migrations/v1/201801010000_bad.js" in error and "TypeError" in error


def test_pending_changes_show_the_upgrade_with_secrets_redacted(staged_v1, client, admin_user):
    services.import_product(
        pivotal(V2, {"201601010000_rename.js": RENAME}), "mig-1.1.0.pivotal", "admin"
    )
    services.stage_product("mig", "1.1.0")
    (change,) = [
        c
        for c in services.pending_changes(with_plan=False)["product_changes"]
        if c["product_name"] == "mig"
    ]
    (step,) = change["upgrade"]
    assert step["from_version"] == "1.0.0" and step["to_version"] == "1.1.0"
    assert step["migrations"] == ["migrations/v1/201601010000_rename.js"]
    by_ref = {c["ref"]: c for c in step["changes"]}
    assert by_ref[".properties.new_port"] == {
        "change": "renamed",
        "from": ".properties.old_port",
        "ref": ".properties.new_port",
        "value": 7443,
    }
    assert by_ref[".properties.token"]["change"] == "renamed"
    assert by_ref[".properties.token"]["value"] == {"secret": "***"}
    assert by_ref[".properties.legacy"]["change"] == "removed"
    assert by_ref[".properties.verbose"]["change"] == "added"
    assert by_ref[".properties.greeting"]["change"] == "changed"

    from django.urls import reverse

    client.force_login(admin_user)
    page = client.get(reverse("pending-changes"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Upgrade 1.0.0 → 1.1.0" in html
    assert "201601010000_rename.js" in html
    assert (
        "<code>.properties.new_port</code>" in html and "<code>.properties.old_port</code>" in html
    )
    assert "k3y-very-secret" not in html
