"""The Tile Developer Guide's accessor table, row by row, through a staged product.

A ``consumer`` tile's manifest holds every ``$ops_manager``, ``$director``,
``$runtime`` and ``$self`` accessor and the product-context ones; a small
``cf`` tile (the platform: ``.cloud_controller.system_domain`` and
``apps_domain``, ``.properties.smtp_from``) is staged beside it. Each row
checks what the rendered manifest (``GET .../manifest``) holds. Secrets
(the Director VM password, client secrets) render as ``((/opsmgr/...))``
references and reach the director as deploy vars, never in the manifest.
A reference that cannot resolve is a 422 naming the accessor and the tile
it needs, never a 500.
"""

from __future__ import annotations

import pytest

from tiles import services

from .conftest import director_configured  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

API = "/api/v0"

CF_TILE = """
name: cf
product_version: '{version}'
label: Small Footprint TAS
releases: [{{name: capi, version: '1', file: capi-1.tgz}}]
property_blueprints:
- {{name: smtp_from, type: email, configurable: true, optional: true}}
form_types:
- name: domains
  label: Domains
  property_inputs:
  - {{reference: .cloud_controller.system_domain, label: System domain}}
job_types:
- name: cloud_controller
  resource_label: Cloud Controller
  instance_definition: {{name: instances, type: integer, configurable: true, default: 1}}
  resource_definitions: [{{name: ram, type: integer, default: 1024}}]
  property_blueprints:
  - {{name: system_domain, type: domain, configurable: true}}
{apps_domain}
  templates: [{{name: cloud_controller_ng, release: capi}}]
"""
APPS_DOMAIN = "  - {name: apps_domain, type: domain, configurable: true}"

ROWS = {
    # $ops_manager
    "$ops_manager.ca_certificate": "ca",
    "$ops_manager.trusted_certificates": "ca",
    "$ops_manager.http_proxy": "",
    "$ops_manager.https_proxy": "",
    "$ops_manager.no_proxy": "",
    "$ops_manager.instance_types_catalog": "catalog",
    # $director
    "$director.deployment_ip": "127.0.0.1",
    "$director.username": "vcap",
    "$director.password": "((/opsmgr/{director}/director_vm_credentials.password))",
    "$director.ntp_servers": [],
    "$director.ca_public_key": "ca",
    "$director.hostname": "127.0.0.1",
    "$director.tld": "bosh",
    "$director.bosh_metrics_forwarder_client_name": "bosh_metrics_forwarder",
    "$director.bosh_metrics_forwarder_client_secret": (
        "((/opsmgr/{director}/bosh_metrics_forwarder_client.secret))"
    ),
    "$director.dns_release_present": False,
    # $runtime, from the staged cf tile
    "$runtime.system_domain": "sys.example.com",
    "$runtime.apps_domain": "apps.example.com",
    "$runtime.system_api_url": "https://api.sys.example.com",
    "$runtime.login_url": "https://login.sys.example.com",
    "$runtime.uaa_url": "https://uaa.sys.example.com",
    "$runtime.console_url": "https://apps.sys.example.com",
    "$runtime.default_reply_to": "cf@example.com",
    "$runtime.default_from": "cf@example.com",
    # $self
    "$self.uaa_client_name": "{guid}",
    "$self.uaa_client_secret": "((/opsmgr/{guid}/uaa_client.secret))",
    "$self.service_network": "services",
    "$self.stemcell_version": "1.5",
    # product context
    "..cf.deployment_name": "{cf}",
    "..cf.network_name": "infra",
    "..cf.present?": True,
    "..consumer.deployment_name": "{guid}",
    "..cf.cloud_controller.system_domain.value": "sys.example.com",
    "..cf.properties.smtp_from.value": "cf@example.com",
}


def consumer_tile(rows) -> str:
    lines = "\n".join(f"      r{i}: (( {expr} ))" for i, expr in enumerate(rows))
    return f"""
name: consumer
product_version: '1.0'
label: Consumer
stemcell_criteria: {{os: ubuntu-jammy, version: '1.5'}}
releases: [{{name: consumer-release, version: '1', file: consumer-release-1.tgz}}]
job_types:
- name: app
  resource_label: App
  instance_definition: {{name: instances, type: integer, configurable: true, default: 1}}
  resource_definitions: [{{name: ram, type: integer, default: 1024}}]
  templates:
  - name: app
    release: consumer-release
    manifest: |
{lines}
"""


def _assign(sp):
    services.set_networks_and_azs(
        sp,
        {
            "singleton_availability_zone": {"name": "az1"},
            "other_availability_zones": [{"name": "az1"}],
            "network": {"name": "infra"},
            "service_network": {"name": "services"},
        },
    )


def _stage(text, name, version):
    services.import_product(text.encode(), f"{name}.yml", "admin")
    sp = services.stage_product(name, version)
    _assign(sp)
    return services.get_staged_product(sp.guid)


def _stage_cf(version="2.8.6", apps_domain=True, values=None):
    text = CF_TILE.format(version=version, apps_domain=APPS_DOMAIN if apps_domain else "")
    sp = _stage(text, "cf", version)
    services.set_properties(
        sp,
        values
        or {
            ".cloud_controller.system_domain": "sys.example.com",
            **({".cloud_controller.apps_domain": "apps.example.com"} if apps_domain else {}),
            ".properties.smtp_from": "cf@example.com",
        },
    )
    return sp


@pytest.fixture
def rendered(director_configured, stemcell, admin_api):  # noqa: F811
    cf = _stage_cf()
    consumer = _stage(consumer_tile(list(ROWS)), "consumer", "1.0")
    res = admin_api.get(f"{API}/staged/products/{consumer.guid}/manifest")
    assert res.status_code == 200, res.content
    props = res.json()["manifest"]["instance_groups"][0]["jobs"][0]["properties"]
    ca, _ = services.root_ca()
    subst = {
        "director": director_configured.guid,
        "guid": consumer.guid,
        "cf": cf.guid,
    }
    return props, ca, subst


@pytest.mark.parametrize("row", list(ROWS), ids=list(ROWS))
def test_accessor_row(rendered, row):
    props, ca, subst = rendered
    got = props[f"r{list(ROWS).index(row)}"]
    expected = ROWS[row]
    if expected == "ca":
        assert got == ca
    elif expected == "catalog":
        assert {t["name"] for t in got} >= {"micro", "large"}
        assert all({"name", "cpu", "ram", "ephemeral_disk"} <= set(t) for t in got)
    elif isinstance(expected, str):
        assert got == expected.format(**subst)
    else:
        assert got == expected


def test_context_secrets_reach_the_director_as_vars_not_in_the_manifest(
    director_configured,  # noqa: F811
    stemcell,
):
    sp = _stage(consumer_tile(["$director.password", "$self.uaa_client_secret"]), "consumer", "1.0")
    manifest = services.manifest_yaml(services.render_manifest(sp))
    creds = services.manifest_credentials(sp)
    password = creds[f"/opsmgr/{director_configured.guid}/director_vm_credentials"]["password"]
    client = creds[f"/opsmgr/{sp.guid}/uaa_client"]["secret"]
    assert len(password) >= 20 and len(client) >= 20 and password != client
    assert password not in manifest and client not in manifest
    # Stable across renders: a redeploy does not rotate them.
    assert services.manifest_credentials(sp) == creds


# --------------------------------------------------------------------------
# A reference that cannot resolve: a 422 naming the accessor and the tile


def _manifest_errors(admin_api, guid):
    res = admin_api.get(f"{API}/staged/products/{guid}/manifest")
    assert res.status_code == 422, res.content
    return " ".join(m for ms in res.json()["errors"].values() for m in ms)


def test_runtime_without_the_platform_tile_names_what_it_needs(
    director_configured,  # noqa: F811
    stemcell,
    admin_api,
):
    sp = _stage(consumer_tile(["$runtime.system_api_url"]), "consumer", "1.0")
    text = _manifest_errors(admin_api, sp.guid)
    assert "$runtime.system_api_url needs the platform tile 'cf'" in text
    # The pending changes page lists it against the product, and does not fail.
    pending = admin_api.get(f"{API}/staged/pending_changes")
    assert pending.status_code == 200
    [entry] = [c for c in pending.json()["product_changes"] if c["guid"] == sp.guid]
    assert any("$runtime.system_api_url" in w for w in entry["warnings"])


def test_runtime_when_the_platform_version_lacks_the_property(
    director_configured,  # noqa: F811
    stemcell,
    admin_api,
):
    _stage_cf("1.12.0", apps_domain=False)
    sp = _stage(consumer_tile(["$runtime.apps_domain"]), "consumer", "1.0")
    text = _manifest_errors(admin_api, sp.guid)
    assert (
        "$runtime.apps_domain: the platform tile 'cf' 1.12.0 has no property "
        ".cloud_controller.apps_domain" in text
    )


def test_runtime_when_the_platform_domain_is_not_set(
    director_configured,  # noqa: F811
    stemcell,
    admin_api,
):
    _stage_cf(values={".properties.smtp_from": "cf@example.com"})
    sp = _stage(consumer_tile(["$runtime.uaa_url"]), "consumer", "1.0")
    text = _manifest_errors(admin_api, sp.guid)
    assert "$runtime.uaa_url: .cloud_controller.system_domain of the platform tile 'cf'" in text
    assert "is not set" in text


def test_cross_product_reference_to_a_version_without_the_property(
    director_configured,  # noqa: F811
    stemcell,
    admin_api,
):
    _stage_cf("1.12.0", apps_domain=False)
    sp = _stage(
        consumer_tile(["..cf.cloud_controller.apps_domain.value"]),
        "consumer",
        "1.0",
    )
    text = _manifest_errors(admin_api, sp.guid)
    assert "..cf.cloud_controller.apps_domain.value" in text
    assert "'cf' 1.12.0" in text


def test_cross_product_reference_to_a_missing_product(
    director_configured,  # noqa: F811
    stemcell,
    admin_api,
):
    sp = _stage(consumer_tile(["..p-redis.properties.port.value"]), "consumer", "1.0")
    text = _manifest_errors(admin_api, sp.guid)
    assert "product 'p-redis' is not installed, needed by ..p-redis.properties.port.value" in text


def test_unknown_context_key_is_named(director_configured, stemcell, admin_api):  # noqa: F811
    sp = _stage(consumer_tile(["$runtime.nope"]), "consumer", "1.0")
    assert "unknown accessor $runtime.nope" in _manifest_errors(admin_api, sp.guid)


def test_product_page_names_the_accessor_it_cannot_resolve(
    director_configured,  # noqa: F811
    stemcell,
    client,
    admin_user,
):
    from django.urls import reverse

    sp = _stage(consumer_tile(["$runtime.system_api_url"]), "consumer", "1.0")
    client.force_login(admin_user)
    page = client.get(reverse("product-resources", args=[sp.guid]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "The manifest cannot be rendered" in text
    assert "$runtime.system_api_url needs the platform tile" in text
    # Once the platform tile is staged the page is clean and the URL renders.
    _stage_cf()
    text = client.get(reverse("product-resources", args=[sp.guid])).content.decode()
    assert "The manifest cannot be rendered" not in text
    manifest = services.render_manifest(services.get_staged_product(sp.guid))
    assert manifest["instance_groups"][0]["jobs"][0]["properties"] == {
        "r0": "https://api.sys.example.com"
    }
