"""Tile runtime configs without vCenter: names, secrets as references, the review, the upload.

The path through a real worker and vcsim is ``test_apply_vcsim.py``; here
the same services are driven directly, with the director's config table
and deployments as the database holds them.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
import yaml
from django.db import connection
from django.urls import reverse

from director.models import Config, Credential, Deployment
from tiles import services
from tiles.services import foresight, pending
from tiles.services import runtime_configs as rc
from tiles.services.installations import configs as configs_step

pytestmark = pytest.mark.django_db

AUDIT_TOKEN = "audit-token-5f2c9e7d"

#: A runtime-config-only tile: an os-conf-style login banner addon for one deployment.
BANNER_TILE = """
name: banner
product_version: '1.0.0'
label: Login Banner
stemcell_criteria: {os: ubuntu-jammy, version: '1.0'}
releases:
- {name: os-conf, version: '1.0', file: os-conf-1.0.tgz}
property_blueprints:
- {name: text, type: string, configurable: true, default: Authorized use only}
- {name: audit_token, type: secret, configurable: true}
- {name: target, type: string, configurable: true, default: no-deployment}
form_types:
- name: banner
  label: Banner
  property_inputs:
  - {reference: .properties.text, label: Text}
  - {reference: .properties.audit_token, label: Audit token}
  - {reference: .properties.target, label: Deployment}
runtime_configs:
- name: login-banner
  runtime_config: |
    releases: [{name: os-conf, version: '1.0'}]
    addons:
    - name: login-banner
      jobs:
      - name: login_banner
        release: os-conf
        properties:
          login_banner:
            text: (( .properties.text.value ))
            audit_token: (( .properties.audit_token.value ))
      include: {deployments: [(( .properties.target.value ))]}
"""


@pytest.fixture(autouse=True)
def no_vcenter(monkeypatch):
    monkeypatch.setattr(
        foresight, "host_capacity", lambda: foresight.Capacity(error="vCenter not asked")
    )


@pytest.fixture
def banner(director_configured):
    from director.models import Release, ReleaseVersion

    ReleaseVersion.objects.create(release=Release.objects.create(name="os-conf"), version="1.0")
    services.import_product(BANNER_TILE.encode(), "banner.yml", "admin")
    staged = services.stage_product("banner", "1.0.0")
    services.set_properties(staged, {".properties.audit_token": {"value": AUDIT_TOKEN}})
    return services.get_staged_product(staged.guid)


def set_target(staged, target: str):
    services.set_properties(staged, {".properties.target": {"value": target}})
    return services.get_staged_product(staged.guid)


class _Stage:
    @contextmanager
    def track(self, name):
        yield


class _Ctx:
    """The part of a director task context the configs step uses."""

    def stage(self, name, total=None):
        return _Stage()


def upload(staged_products, deleted=()):
    """What the configs step does with an installation's snapshot of these products."""
    products = {}
    for sp in staged_products:
        configs = rc.render(sp)
        products[sp.guid] = {
            "runtime_configs": configs,
            "runtime_credentials": rc.credentials(sp, configs.values()),
        }
    for guid in deleted:
        products[guid] = {"runtime_configs": {}}
    return configs_step._update_runtime_configs(_Ctx(), products, "admin")


def test_named_as_ops_manager_names_them_with_secrets_as_references(banner):
    configs = rc.render(banner)
    # Ops Manager: TILE_NAME-GUID-RUNTIME_CONFIG_NAME; the guid already starts with the tile name.
    assert banner.guid.startswith("banner-")
    assert list(configs) == [f"{banner.guid}-login-banner"]
    doc = yaml.safe_load(configs[f"{banner.guid}-login-banner"])
    props = doc["addons"][0]["jobs"][0]["properties"]["login_banner"]
    assert props == {
        "text": "Authorized use only",
        "audit_token": f"((/opsmgr/{banner.guid}/audit_token.value))",
    }
    assert AUDIT_TOKEN not in json.dumps(configs)
    assert rc.credentials(banner, configs.values()) == {
        f"/opsmgr/{banner.guid}/audit_token": {"value": AUDIT_TOKEN}
    }


def test_a_runtime_config_only_tile_needs_no_network_and_no_stemcell(banner):
    checks, warnings = services.product_checks(banner)
    assert all(checks.values()), warnings
    entry = pending.product_change(banner)
    assert entry["action"] == "install"
    assert entry["manifest_diff"] == "" and entry["plan"] is None  # no deployment of its own
    assert entry["render_errors"] == {}


def test_review_diffs_them_per_product_without_secrets(banner, admin_api, admin_client):
    name = f"{banner.guid}-login-banner"
    entry = next(
        c for c in services.pending_changes()["product_changes"] if c["guid"] == banner.guid
    )
    assert [(e["name"], e["status"]) for e in entry["runtime_configs"]] == [
        (name, "to_be_installed")
    ]
    diff = entry["runtime_configs"][0]["diff"]
    assert f"+++ staged/runtime-configs/{name}.yml" in diff
    assert "+    release: os-conf" in diff
    assert f"+        audit_token: ((/opsmgr/{banner.guid}/audit_token.value))" in diff
    assert f"runtime config {name}: to be installed" in entry["notes"]

    api = admin_api.get("/api/v0/staged/pending_changes")
    assert api.status_code == 200
    api_entry = next(c for c in api.json()["product_changes"] if c["guid"] == banner.guid)
    assert api_entry["runtime_configs"] == entry["runtime_configs"]
    assert AUDIT_TOKEN not in api.content.decode()
    product_diff = admin_api.get(f"/api/v0/products/{banner.guid}/diff").json()
    assert product_diff["runtime_configs"] == entry["runtime_configs"]

    page = admin_client.get(reverse("pending-changes")).content.decode()
    assert 'data-diff="runtime-configs"' in page
    assert f"audit_token: ((/opsmgr/{banner.guid}/audit_token.value))" in page
    assert AUDIT_TOKEN not in page


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_uploaded_under_its_name_secrets_only_in_the_variable_store(banner):
    name = f"{banner.guid}-login-banner"
    assert upload([banner]) == [f"runtime-config {name}"]
    stored = Config.latest("runtime", name)
    assert "audit_token: ((/opsmgr/" in stored.content and AUDIT_TOKEN not in stored.content
    with connection.cursor() as cur:
        cur.execute("SELECT content FROM director_config WHERE name = %s", [name])
        raw = cur.fetchone()[0]
    assert AUDIT_TOKEN not in raw and "login_banner" not in raw  # encrypted at rest too
    assert Credential.latest(f"/opsmgr/{banner.guid}/audit_token").value == {"value": AUDIT_TOKEN}
    # Uploaded again unchanged: nothing written; the review then shows it as the same.
    assert upload([banner]) == []
    entry = pending.product_change(services.get_staged_product(banner.guid), with_plan=False)
    assert [e["status"] for e in entry["runtime_configs"]] == ["same"]
    assert entry["runtime_configs"][0]["diff"] == ""


def test_changed_text_is_a_different_config_and_deleting_the_tile_removes_it(banner):
    name = f"{banner.guid}-login-banner"
    upload([banner])
    services._mark_deployed(banner, "")  # what Apply Changes' deploy step records for it
    banner = services.get_staged_product(banner.guid)
    assert pending.product_change(banner, with_plan=False)["action"] == "unchanged"
    services.set_properties(banner, {".properties.text": {"value": "Keep out"}})
    banner = services.get_staged_product(banner.guid)
    entry = pending.product_change(banner, with_plan=False)
    # Its only change is its runtime config: an update.
    assert entry["action"] == "update"
    assert entry["runtime_configs"][0]["status"] == "different"
    assert [
        line
        for line in entry["runtime_configs"][0]["diff"].splitlines()
        if line.startswith(("+ ", "- "))
    ] == ["-        text: Authorized use only", "+        text: Keep out"]
    assert upload([banner]) == [f"runtime-config {name}"]
    assert "Keep out" in Config.latest("runtime", name).content

    services.unstage_product(banner.guid)
    banner = services.get_staged_product(banner.guid)
    entry = pending.product_change(banner, with_plan=False)
    assert entry["action"] == "delete"
    assert [(e["name"], e["status"]) for e in entry["runtime_configs"]] == [(name, "to_be_deleted")]
    assert upload([], deleted=[banner.guid]) == [f"runtime-config {name} (deleted)"]
    assert Config.latest("runtime", name) is None


def test_configs_of_others_are_left_alone(banner):
    from director import services as director_services

    director_services.update_config("runtime", "dns", "addons: []\n", "someone")
    director_services.update_config("runtime", f"{banner.guid}-old", "addons: []\n", "admin")
    upload([banner])
    names = {c.name for c in Config.latest_set("runtime")}
    # The tile's config it no longer has is deleted; the operator's own "dns" stays.
    assert names == {"dns", f"{banner.guid}-login-banner"}


MANIFEST = """
name: {name}
releases: [{{name: app, version: '1'}}]
stemcells: [{{alias: default, os: ubuntu-jammy, version: '1'}}]
update: {{canaries: 1, max_in_flight: 1, canary_watch_time: 1000, update_watch_time: 1000}}
instance_groups:
- name: web
  instances: 1
  azs: [az1]
  vm_type: small
  stemcell: default
  networks: [{{name: infra}}]
  jobs: [{{name: web, release: app}}]
"""


def test_the_directors_include_rules_decide_which_deployments_change(banner):
    for name in ("app-one", "app-two"):
        Deployment.objects.create(name=name, manifest=MANIFEST.format(name=name))
    banner = set_target(banner, "app-one")
    new = rc.projected({banner.guid: rc.render(banner)})
    assert rc.affected("app-one", MANIFEST.format(name="app-one"), new) == [
        f"{banner.guid}-login-banner"
    ]
    assert rc.affected("app-two", MANIFEST.format(name="app-two"), new) == []
    # Deployed with it (the configs pinned on the deployment): no change any more.
    upload([banner])
    Deployment.objects.get(name="app-one").configs.set(Config.latest_set("runtime"))
    assert rc.affected("app-one", MANIFEST.format(name="app-one"), rc.projected({})) == []
    # The tile deleted: app-one loses the addon, so it changes again.
    assert rc.affected("app-one", MANIFEST.format(name="app-one"), rc.projected({banner.guid: {}}))


def test_a_runtime_config_the_director_would_refuse_is_refused_at_apply(
    director_configured, admin_api
):
    from director.models import Release, ReleaseVersion

    ReleaseVersion.objects.create(release=Release.objects.create(name="os-conf"), version="1.0")
    tile = BANNER_TILE.replace(
        "releases: [{name: os-conf, version: '1.0'}]",
        "releases: [{name: os-conf, version: latest}]",
    ).replace("include: {deployments:", "include: {colours: [red], deployments:")
    services.import_product(tile.encode(), "banner.yml", "admin")
    staged = services.stage_product("banner", "1.0.0")
    services.set_properties(staged, {".properties.audit_token": {"value": AUDIT_TOKEN}})
    response = admin_api.post(
        "/api/v0/installations", {"deploy_products": [staged.guid]}, format="json"
    )
    assert response.status_code == 422, response.content
    messages = " ".join(response.json()["errors"][staged.guid])
    assert (
        "runtime_configs/login-banner/releases/os-conf/version: a runtime-config cannot use 'latest'"
        in messages
    )
    assert (
        "runtime_configs/login-banner/addons/login-banner/include/colours: unknown filter"
        in messages
    )
    assert AUDIT_TOKEN not in response.content.decode()
    assert not Config.objects.filter(type="runtime").exists()
    entry = pending.product_change(services.get_staged_product(staged.guid), with_plan=False)
    assert any("include/colours" in w for w in entry["warnings"]), entry["warnings"]
