"""Fixtures for the tiles service and API tests: a configured Director tile, tiles to import."""

from __future__ import annotations

import pytest

from tests.corpus import TILES as CORPUS

EXAMPLE = CORPUS / "om-fixtures/example-product-metadata.yml"
TILE_GENERATOR = CORPUS / "tile-generator/test_metadata_expected_output.yml"

#: A small tile written for these tests: two jobs, a credential, a selector, an errand.
SMALL_TILE = """
name: small
product_version: '1.0.0'
label: Small
stemcell_criteria: {os: ubuntu-jammy, version: '1.0'}
releases:
- {name: small-release, version: '1.0', file: small-release-1.0.tgz}
post_deploy_errands:
- {name: check}
property_blueprints:
- {name: greeting, type: string, configurable: true, default: hello,
   constraints: [{must_match_regex: '^[a-z ]*$', error_message: 'Only lower-case letters.'}]}
- {name: port, type: port, configurable: true, default: 8080}
- {name: api_key, type: secret, configurable: true, optional: true}
- {name: admin, type: simple_credentials, default: {identity: admin}}
- {name: tls, type: rsa_cert_credentials, default: {domains: [small.example.com]}}
form_types:
- name: settings
  label: Settings
  property_inputs:
  - {reference: .properties.greeting, label: Greeting}
  - {reference: .properties.port, label: Port}
  - {reference: .properties.api_key, label: API key}
job_types:
- name: web
  resource_label: Web
  instance_definition: {name: instances, type: integer, configurable: true, default: 2,
                        constraints: {min: 1, max: 4}}
  resource_definitions:
  - {name: ram, type: integer, default: 1024}
  - {name: cpu, type: integer, default: 1}
  - {name: ephemeral_disk, type: integer, default: 1024}
  - {name: persistent_disk, type: integer, default: 1024, constraints: {min: 1024}}
  templates:
  - name: web
    release: small-release
    manifest: |
      greeting: (( .properties.greeting.value ))
      port: (( .properties.port.value ))
      admin_password: (( .properties.admin.password ))
      key: (( .properties.tls.private_key_pem ))
- name: check
  errand: true
  resource_label: Check
  instance_definition: {name: instances, type: integer, configurable: false, default: 1}
  resource_definitions:
  - {name: ram, type: integer, default: 512}
  templates:
  - {name: check, release: small-release}
"""


@pytest.fixture
def tiles_dirs(settings, tmp_path):
    settings.TASK_LOG_DIR = tmp_path / "tasks"
    settings.BLOBSTORE_DIR = tmp_path / "blobstore"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.STEMCELL_LIBRARY_DIR = tmp_path / "stemcell_library"
    settings.LOCAL_VCSIM_FILE = tmp_path / "no-vcsim.json"
    return tmp_path


IAAS = {
    "vcenter_host": "vcenter.example.com",
    "vcenter_username": "admin@vsphere.local",
    "vcenter_password": "s3cret-vc-password",
    "datacenter": "DC0",
    "ephemeral_datastores_string": "LocalDS_0, LocalDS_1",
    "persistent_datastores_string": "LocalDS_1",
    "ssl_verification_enabled": False,
}
AZS = [
    {"name": "az1", "clusters": [{"cluster": "DC0_C0", "res_pool": "pool-a"}]},
    {
        "name": "az2",
        "clusters": [{"cluster": "DC0_C1", "host_group": {"name": "hg1", "drs_rule": "MUST"}}],
    },
]
NETWORKS = {
    "icmp_checks_enabled": False,
    "networks": [
        {
            "name": "infra",
            "subnets": [
                {
                    "iaas_identifier": "DC0_DVPG0",
                    "cidr": "10.0.0.0/24",
                    "reserved_ip_ranges": "10.0.0.1-10.0.0.9",
                    "dns": "8.8.8.8",
                    "gateway": "10.0.0.1",
                    "availability_zone_names": ["az1", "az2"],
                }
            ],
        },
        {
            "name": "services",
            "subnets": [
                {
                    "iaas_identifier": "DC0_DVPG1",
                    "cidr": "10.0.4.0/24",
                    "reserved_ip_ranges": "10.0.4.1-10.0.4.4",
                    "dns": "8.8.8.8,8.8.4.4",
                    "gateway": "10.0.4.1",
                    "availability_zone_names": ["az1"],
                }
            ],
        },
    ],
}


@pytest.fixture
def director_configured(db, tiles_dirs):
    """A complete Director tile (vCenter settings, two AZs, two networks)."""
    from tiles import services

    services.set_iaas_configuration(IAAS)
    services.set_availability_zones(AZS)
    services.set_networks(NETWORKS)
    services.set_network_and_az(
        {"network": {"name": "infra"}, "singleton_availability_zone": {"name": "az1"}}
    )
    return services.get_director()


@pytest.fixture
def stemcell(db):
    from director.models import Stemcell

    return Stemcell.objects.create(
        name="bosh-vsphere-esxi-ubuntu-jammy-go_agent",
        version="1.5",
        operating_system="ubuntu-jammy",
        cid="sc-test",
    )


@pytest.fixture
def small_release(db):
    from director.models import Release, ReleaseVersion

    rel = Release.objects.create(name="small-release")
    return ReleaseVersion.objects.create(release=rel, version="1.0")


@pytest.fixture
def small(director_configured):
    """The small tile imported, staged and assigned to az1+az2 on infra."""
    from tiles import services

    services.import_product(SMALL_TILE.encode(), "small.yml", "admin")
    staged = services.stage_product("small", "1.0.0")
    services.set_networks_and_azs(
        staged,
        {
            "singleton_availability_zone": {"name": "az1"},
            "other_availability_zones": [{"name": "az1"}, {"name": "az2"}],
            "network": {"name": "infra"},
        },
    )
    return services.get_staged_product(staged.guid)
