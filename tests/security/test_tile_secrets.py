"""Tile secrets reach the director by reference, and no diff shows one.

A tile's secret and credential properties render into its manifest as
references to the director's variable store, named the way Ops Manager
names them in CredHub (``((/opsmgr/<product guid>/<property>.<accessor>))``);
the values go to the store, encrypted, when Apply Changes deploys. So the
manifest can be stored, shown and diffed anywhere. Review Pending Changes
never shows a secret: not a changed one's new value, not its old value, not
in a manifest deployed by a console from before references.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tiles import services
from tiles.manifest import render_manifest as render_pure

pytestmark = pytest.mark.django_db

#: A tile with every secret kind, its job properties on the demo release's ``demo-web`` job.
VAULT_TILE = """
name: vault
product_version: '1.0.0'
label: Vault
stemcell_criteria: {os: ubuntu-jammy, version: '1.0'}
releases:
- {name: opsconsole-demo, version: 1.0.0, file: opsconsole-demo-1.0.0.tgz}
property_blueprints:
- {name: api_key, type: secret, configurable: true, optional: true}
- {name: admin, type: simple_credentials, default: {identity: admin}}
- {name: hashed, type: salted_credentials, default: {identity: ops}}
- {name: tls, type: rsa_cert_credentials, default: {domains: [vault.example.com]}}
- {name: ssh, type: rsa_pkey_credentials}
- name: peers
  type: collection
  configurable: true
  optional: true
  property_blueprints:
  - {name: name, type: string, configurable: true}
  - {name: token, type: secret, configurable: true}
form_types:
- name: settings
  label: Settings
  property_inputs:
  - {reference: .properties.api_key, label: API key}
  - reference: .properties.peers
    label: Peers
    property_inputs:
    - {reference: name, label: Name}
    - {reference: token, label: Token}
job_types:
- name: web
  resource_label: Web
  instance_definition: {name: instances, type: integer, configurable: true, default: 1}
  resource_definitions:
  - {name: ram, type: integer, default: 256}
  - {name: cpu, type: integer, default: 1}
  - {name: ephemeral_disk, type: integer, default: 1024}
  - {name: persistent_disk, type: integer, default: 0}
  templates:
  - name: demo-web
    release: opsconsole-demo
    manifest: |
      demo:
        admin:
          username: (( .properties.admin.identity ))
          password: (( .properties.admin.password ))
        storage:
          api_key: (( .properties.api_key.value ))
          url: https://ops:(( .properties.api_key.value ))@vault.example.com
          hash: (( .properties.hashed.sha512_hashed_password ))
          tls: (( .properties.tls.cert_and_private_key_pems ))
          ssh_key: (( .properties.ssh.private_key_pem ))
          ssh_public: (( .properties.ssh.public_key_openssh ))
          peers: (( .properties.peers.value ))
"""

OLD_KEY = "old-api-key-4f1c9a"
NEW_KEY = "new-api-key-8b2e7d"
PEER_TOKEN = "peer-token-5d0a3e"


def stage_vault():
    services.import_product(VAULT_TILE.encode(), "vault.yml", "admin")
    staged = services.stage_product("vault", "1.0.0")
    services.set_networks_and_azs(
        staged,
        {
            "singleton_availability_zone": {"name": "az1"},
            "other_availability_zones": [{"name": "az1"}],
            "network": {"name": "infra"},
        },
    )
    services.set_properties(
        services.get_staged_product(staged.guid),
        {
            ".properties.api_key": {"value": {"secret": OLD_KEY}},
            ".properties.peers": {"value": [{"name": "east", "token": {"secret": PEER_TOKEN}}]},
        },
    )
    return services.get_staged_product(staged.guid)


def secret_texts(staged) -> set[str]:
    """Every secret of the product as text, the salted password's hash included."""
    from tiles.services.diffs import secret_strings

    return {s for s in secret_strings(staged.secrets) if len(s) >= 8}


@pytest.fixture
def vault(director_configured, stemcell):
    return stage_vault()


def test_the_manifest_holds_references_and_the_store_values(vault):
    manifest = services.render_manifest(vault)
    props = manifest["instance_groups"][0]["jobs"][0]["properties"]["demo"]
    var = f"/opsmgr/{vault.guid}"
    assert props["admin"] == {
        "username": f"(({var}/admin.identity))",
        "password": f"(({var}/admin.password))",
    }
    storage = props["storage"]
    assert storage["api_key"] == f"(({var}/api_key.value))"
    assert storage["url"] == f"https://ops:(({var}/api_key.value))@vault.example.com"
    assert storage["hash"] == f"(({var}/hashed.sha512_hashed_password))"
    assert storage["tls"] == f"(({var}/tls.cert_and_private_key_pems))"
    [peer] = storage["peers"]
    staged = services.get_staged_product(vault.guid)
    guid = staged.secrets[".properties.peers"][0]["guid"]
    assert peer["name"] == "east" and peer["token"] == f"(({var}/peers/{guid}/token.value))"
    text = services.manifest_yaml(manifest)
    for secret in secret_texts(staged) | {OLD_KEY, PEER_TOKEN}:
        assert secret not in text

    stored = services.manifest_credentials(staged)
    admin = staged.secrets[".properties.admin"]
    assert stored[f"{var}/admin"] == {"identity": "admin", "password": admin["password"]}
    assert stored[f"{var}/api_key"] == {"value": OLD_KEY}
    assert stored[f"{var}/peers/{guid}/token"] == {"value": PEER_TOKEN}
    assert stored[f"{var}/hashed"]["sha512_hashed_password"].startswith("$6$")
    assert stored[f"{var}/tls"]["cert_and_private_key_pems"].endswith(
        staged.secrets[".properties.tls"]["private_key_pem"]
    )
    assert stored[f"{var}/ssh"]["public_key_openssh"].startswith("ssh-rsa ")


def _deployed_by_an_older_console(staged) -> None:
    """What an apply before secrets by reference recorded: the values written in."""
    ctx = replace(services.render_context(staged), credential_root=None)
    old = render_pure(services.product_template(staged), staged.all_values(), ctx)
    assert OLD_KEY in services.manifest_yaml(old)
    services._mark_deployed(staged, services.manifest_yaml(old))


def _shown(guid: str) -> str:
    pending = services.pending_changes(with_plan=False)
    entry = next(c for c in pending["product_changes"] if c["guid"] == guid)
    return json.dumps([entry, services.product_diff(guid)])


def test_a_changed_secret_shows_neither_value_in_an_old_deployed_manifests_diff(vault):
    staged = services.get_staged_product(vault.guid)
    _deployed_by_an_older_console(staged)
    secrets = secret_texts(services.get_staged_product(vault.guid))
    services.set_properties(
        services.get_staged_product(vault.guid),
        {".properties.api_key": {"value": {"secret": NEW_KEY}}},
    )
    entry = services.pending_changes(with_plan=False)["product_changes"][1]
    assert entry["action"] == "update"
    lines = [line.replace(" ", "") for line in entry["manifest_diff"].splitlines()]
    assert "-api_key:((redacted))" in lines  # the old value, hidden
    assert f"+api_key:((/opsmgr/{vault.guid}/api_key.value))" in lines
    shown = _shown(vault.guid)
    for secret in secrets | {OLD_KEY, NEW_KEY, PEER_TOKEN}:
        assert secret not in shown


def test_a_changed_secret_behind_a_reference_is_an_update_naming_it(vault):
    staged = services.get_staged_product(vault.guid)
    services._mark_deployed(staged, services.manifest_yaml(services.render_manifest(staged)))
    entry = services.pending_changes(with_plan=False)["product_changes"][1]
    assert entry["action"] == "unchanged"

    services.set_properties(
        services.get_staged_product(vault.guid),
        {".properties.api_key": {"value": {"secret": NEW_KEY}}},
    )
    entry = services.pending_changes(with_plan=False)["product_changes"][1]
    assert entry["action"] == "update"  # the manifest is the same; the value behind it is not
    assert entry["manifest_diff"].startswith("# secret values changed: .properties.api_key ")
    diff = services.product_diff(vault.guid)["manifest"]
    assert diff["status"] == "different"
    assert "secret values changed: .properties.api_key" in diff["diff"]
    shown = _shown(vault.guid)
    assert OLD_KEY not in shown and NEW_KEY not in shown
