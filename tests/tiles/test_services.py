"""Tiles services on a real database: import, stage, properties, panes, manifest, pending, revert."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
import yaml

from director.manifest import parse_cloud_config, parse_manifest, validate_against_cloud_config
from tests.corpus import needs_corpus
from tiles import services
from tiles.models import Product, StagedProduct

from .conftest import EXAMPLE, SMALL_TILE, TILE_GENERATOR

pytestmark = pytest.mark.django_db


def errors_of(excinfo) -> dict:
    return excinfo.value.errors


# --------------------------------------------------------------------------- import


@pytest.mark.parametrize(
    "path", [EXAMPLE, TILE_GENERATOR], ids=["example-product", "tile-generator"]
)
@needs_corpus
def test_import_corpus_metadata_and_refuse_duplicate(tiles_dirs, path):
    product = services.import_product(path.read_bytes(), path.name, "admin")
    data = yaml.safe_load(path.read_text())
    assert (product.name, product.version) == (data["name"], str(data["product_version"]))
    assert [p.name for p in services.list_available_products()] == [data["name"]]
    with pytest.raises(services.Conflict) as exc:
        services.import_product(path.read_bytes(), path.name, "admin")
    assert "already imported" in errors_of(exc)["product[file]"][0]
    assert Product.objects.count() == 1


def test_import_invalid_template_names_the_path_and_stores_nothing(tiles_dirs):
    bad = SMALL_TILE.replace("type: port", "type: portt")
    with pytest.raises(services.ServiceError) as exc:
        services.import_product(bad.encode(), "bad.yml", "admin")
    message = errors_of(exc)["product[file]"][0]
    assert "property_blueprints/1/type" in message and "portt" in message
    assert Product.objects.count() == 0


def test_import_pivotal_uploads_its_release_to_the_director(tiles_dirs):
    from director.models import Task
    from tiles import demo

    path = demo.build_pivotal(tiles_dirs / "out")
    with open(path, "rb") as fh:
        product = services.import_product(fh, path.name, "admin")
    assert product.name == demo.PRODUCT_NAME
    assert product.releases == [
        {"name": "opsconsole-demo", "version": "1.0.0", "file": "opsconsole-demo-1.0.0.tgz"}
    ]
    tasks = list(Task.objects.filter(id__in=product.release_task_ids))
    assert [t.type for t in tasks] == ["update_release"]
    assert tasks[0].args["name"] == "opsconsole-demo"


def test_import_pivotal_missing_release_is_refused(tiles_dirs):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("metadata/small.yml", SMALL_TILE)
    with pytest.raises(services.ServiceError) as exc:
        services.import_product(buf.getvalue(), "small.pivotal", "admin")
    assert (
        "releases/small-release-1.0.tgz is not in the .pivotal"
        in errors_of(exc)["product[file]"][0]
    )
    assert not Product.objects.exists()


def test_delete_available_product_refused_while_staged(small):
    with pytest.raises(services.Conflict):
        services.delete_available_product("small", "1.0.0")
    services.unstage_product(small.guid)  # never deployed: removed at once
    assert not StagedProduct.objects.exists()
    assert services.delete_unused_products() == 1
    assert not Product.objects.exists()


# --------------------------------------------------------------------------- staging and properties


def test_stage_generates_credentials_and_masks_them(small):
    assert re.fullmatch(r"small-[0-9a-f]{20}", small.guid)
    props = services.get_properties(small)
    admin = props[".properties.admin"]
    assert admin["credential"] is True and admin["configurable"] is False
    assert admin["value"] == {"identity": "admin", "password": "***"}
    assert props[".properties.tls"]["value"]["private_key_pem"] == "***"
    assert props[".properties.tls"]["value"]["cert_pem"].startswith("-----BEGIN CERTIFICATE")
    revealed = services.get_properties(small, reveal_secrets=True)[".properties.admin"]["value"]
    assert len(revealed["password"]) >= 16
    assert props[".properties.greeting"] == {
        "type": "string",
        "configurable": True,
        "credential": False,
        "optional": False,
        "value": "hello",
    }
    # The secret is not in the plain column.
    raw = StagedProduct.objects.values_list("values", flat=True).get(pk=small.pk)
    assert ".properties.admin" not in raw


def test_generated_certificate_is_signed_by_the_console_root_ca(small):
    from cryptography import x509

    cert_pem = services.get_properties(small)[".properties.tls"]["value"]["cert_pem"]
    ca_pem, _ = services.root_ca()
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["small.example.com"]


@pytest.mark.parametrize(
    "values, ref, message",
    [
        (
            {".properties.greeting": {"value": "Hello!"}},
            ".properties.greeting",
            "Only lower-case letters.",
        ),
        ({".properties.port": {"value": 70000}}, ".properties.port", None),
        ({".properties.nope": {"value": 1}}, ".properties.nope", "unknown property"),
        (
            {".properties.admin": {"value": {"identity": "a", "password": "b"}}},
            ".properties.admin",
            "is not configurable",
        ),
    ],
)
def test_invalid_value_names_the_ref_and_saves_nothing(small, values, ref, message):
    before = (small.values, small.secrets)
    with pytest.raises(services.ServiceError) as exc:
        services.set_properties(small, {".properties.port": {"value": 9000}, **values})
    errors = errors_of(exc)
    assert list(errors) == [ref]
    if message:
        assert errors[ref] == [message]
    fresh = services.get_staged_product(small.guid)
    assert (fresh.values, fresh.secrets) == before
    assert services.get_properties(fresh)[".properties.port"]["value"] == 8080


def test_secret_round_trip_keeps_stored_value(small):
    services.set_properties(small, {".properties.api_key": {"value": {"secret": "abcd-1234"}}})
    sp = services.get_staged_product(small.guid)
    assert services.get_properties(sp)[".properties.api_key"]["value"] == {"secret": "***"}
    services.set_properties(
        sp,
        {".properties.api_key": {"value": {"secret": "***"}}, ".properties.port": {"value": 9000}},
    )
    sp = services.get_staged_product(small.guid)
    assert sp.secrets[".properties.api_key"] == {"secret": "abcd-1234"}
    assert sp.values[".properties.port"] == 9000


def test_upgrade_keeps_values_of_properties_that_still_exist(small):
    services.set_properties(
        small, {".properties.greeting": {"value": "good day"}, ".properties.port": {"value": 9000}}
    )
    admin_before = services.get_staged_product(small.guid).secrets[".properties.admin"]
    v2 = (
        SMALL_TILE.replace("product_version: '1.0.0'", "product_version: '1.1.0'")
        .replace(
            "- {name: port, type: port, configurable: true, default: 8080}\n",
            "- {name: port, type: string, configurable: true, default: x}\n",
        )
        .replace("port: (( .properties.port.value ))", "")
    )
    services.import_product(v2.encode(), "small-1.1.yml", "admin")
    upgraded = services.stage_product("small", "1.1.0")
    assert upgraded.guid == small.guid
    assert upgraded.product.version == "1.1.0"
    props = services.get_properties(upgraded)
    assert props[".properties.greeting"]["value"] == "good day"
    assert props[".properties.port"]["value"] == "x"  # type changed: value dropped
    assert upgraded.secrets[".properties.admin"] == admin_before
    with pytest.raises(services.Conflict):
        services.stage_product("small", "1.1.0")


def test_stage_unknown_version(director_configured):
    with pytest.raises(services.NotFound) as exc:
        services.stage_product("small", "9.9")
    assert "product_version" in errors_of(exc)


def _stage_bare_cf():
    """A ``cf`` tile without properties: tile-generator's tile requires ``cf >= 1.9``."""
    services.import_product(b"name: cf\nproduct_version: '2.0'\n", "cf.yml", "admin")
    return services.stage_product("cf", "2.0")


@needs_corpus
def test_tile_generator_and_example_product_stage_and_list_properties(director_configured):
    _stage_bare_cf()
    for path in (EXAMPLE, TILE_GENERATOR):
        product = services.import_product(path.read_bytes(), path.name, "admin")
        staged = services.stage_product(product.name, product.version)
        props = services.get_properties(staged)
        template = product.template()
        assert set(props) == {p.reference for p in template.iter_property_references()}
        for ref, entry in props.items():
            if entry["credential"] and entry["value"] is not None and entry["type"] != "uuid":
                assert "***" in str(entry["value"]), ref


# --------------------------------------------------------------------------- panes


def test_networks_and_azs_need_a_subnet_in_each_az(small):
    with pytest.raises(services.ServiceError) as exc:
        services.set_networks_and_azs(
            small,
            {
                "singleton_availability_zone": {"name": "az1"},
                "other_availability_zones": [{"name": "az2"}, {"name": "az9"}],
                "network": {"name": "services"},
            },
        )
    errors = errors_of(exc)
    assert errors["other_availability_zones"] == ["'az9' is not an availability zone"]
    assert errors["network"] == ["network 'services' has no subnet in availability zone 'az2'"]
    assert services.get_networks_and_azs(services.get_staged_product(small.guid))[
        "networks_and_azs"
    ]["network"] == {"name": "infra"}


def test_resource_config_constraints(small):
    jobs = services.list_jobs(small)
    assert [j["name"] for j in jobs] == ["web", "check"]
    assert re.fullmatch(r"web-[0-9a-f]{20}", jobs[0]["guid"])
    assert services.job_name_for_guid(small, jobs[0]["guid"]) == "web"
    rc = services.get_resource_config(small, "web")
    assert rc["instances"] == "automatic" and rc["automatic"]["instances"] == 2
    assert rc["persistent_disk"] == {"size_mb": "automatic"}
    for kwargs, field, message in [
        ({"instances": 5}, "instances", "must be at most 4"),
        ({"instances": "two"}, "instances", "'two' is not a whole number"),
        (
            {"instance_type": {"id": "huge"}},
            "instance_type.id",
            "'huge' is not in the VM type catalog",
        ),
        ({"persistent_disk_mb": "512"}, "persistent_disk.size_mb", "must be at least 1024 MB"),
    ]:
        with pytest.raises(services.ServiceError) as exc:
            services.set_resource_config(small, "web", **kwargs)
        assert errors_of(exc) == {field: [message]}
    with pytest.raises(services.ServiceError) as exc:
        services.set_resource_config(small, "check", instances=3)
    assert "not configurable" in errors_of(exc)["instances"][0]
    rc = services.set_resource_config(
        small, "web", instances=3, instance_type={"id": "medium"}, persistent_disk_mb="20480"
    )
    assert rc["instances"] == 3 and rc["instance_type"] == {"id": "medium"}
    assert rc["persistent_disk"] == {"size_mb": "20480"}


def test_errands(small):
    assert services.get_errands(small) == [
        {"name": "check", "label": "check", "post_deploy": "default", "default_post_deploy": True}
    ]
    services.set_errands(small, {"errands": [{"name": "check", "post_deploy": False}]})
    assert services.get_errands(services.get_staged_product(small.guid))[0]["post_deploy"] is False
    with pytest.raises(services.ServiceError) as exc:
        services.set_errands(
            small,
            [{"name": "nope", "post_deploy": True}, {"name": "check", "post_deploy": "sometimes"}],
        )
    assert set(errors_of(exc)) == {"errands/nope", "errands/check/post_deploy"}


# --------------------------------------------------------------------------- Director tile


@pytest.mark.parametrize(
    "subnet, key, message",
    [
        (
            {"gateway": "10.9.0.1"},
            "networks/extra/subnets/0/gateway",
            "10.9.0.1 is not inside 10.1.0.0/24",
        ),
        (
            {"gateway": "10.1.0.0"},
            "networks/extra/subnets/0/gateway",
            "10.1.0.0 is the network or broadcast address",
        ),
        (
            {"reserved_ip_ranges": "10.1.0.5-10.1.1.5"},
            "networks/extra/subnets/0/reserved_ip_ranges",
            "10.1.0.5-10.1.1.5 is not inside 10.1.0.0/24",
        ),
        (
            {"cidr": "10.0.0.128/25", "gateway": "10.0.0.129"},
            "networks/extra/subnets/0/cidr",
            "10.0.0.128/25 overlaps 10.0.0.0/24 (networks/infra/subnets/0)",
        ),
        (
            {"cidr": "10.1.0.0/33"},
            "networks/extra/subnets/0/cidr",
            "'10.1.0.0/33' is not a network in CIDR form (e.g. 10.0.0.0/24)",
        ),
        (
            {"availability_zone_names": ["az7"]},
            "networks/extra/subnets/0/availability_zone_names",
            "'az7' is not an availability zone of the director",
        ),
        (
            {"dns": "dns.example.com"},
            "networks/extra/subnets/0/dns",
            "'dns.example.com' is not an IP address",
        ),
        (
            {"iaas_identifier": ""},
            "networks/extra/subnets/0/iaas_identifier",
            "is required (the vSphere portgroup name)",
        ),
    ],
)
def test_director_network_validation(director_configured, subnet, key, message):
    from .conftest import NETWORKS

    extra = {
        "iaas_identifier": "DC0_DVPG0",
        "cidr": "10.1.0.0/24",
        "gateway": "10.1.0.1",
        "dns": "8.8.8.8",
        "availability_zone_names": ["az1"],
        **subnet,
    }
    body = {"networks": [*NETWORKS["networks"], {"name": "extra", "subnets": [extra]}]}
    with pytest.raises(services.ServiceError) as exc:
        services.set_networks(body)
    assert errors_of(exc) == {key: [message]}
    assert [n["name"] for n in services.get_networks()["networks"]] == ["infra", "services"]


def test_director_az_validation_and_in_use(director_configured, small):
    with pytest.raises(services.ServiceError) as exc:
        services.set_availability_zones(
            [
                {
                    "name": "az1",
                    "clusters": [
                        {"cluster": "C", "host_group": {"name": "h", "drs_rule": "MAYBE"}}
                    ],
                }
            ]
        )
    errors = errors_of(exc)
    assert errors["availability_zones/az1/clusters/0/host_group/drs_rule"] == [
        "must be MUST or SHOULD"
    ]
    assert "is used by network 'infra'" in errors["availability_zones/az2"][0]
    with pytest.raises(services.ServiceError) as exc:
        services.add_availability_zone({"name": "az1", "clusters": [{"cluster": "C"}]})
    assert errors_of(exc) == {"availability_zone/name": ["an availability zone 'az1' exists"]}
    az3 = services.add_availability_zone({"name": "az3", "cluster": "DC0_C0", "resource_pool": "p"})
    assert az3["clusters"][0]["res_pool"] == "p"


def test_director_properties_mask_password_and_validate(director_configured):
    props = services.director_properties()
    assert props["iaas_configuration"]["vcenter_password"] == "***"
    assert props["director_configuration"]["resurrector_enabled"] is True
    services.set_iaas_configuration({**props["iaas_configuration"], "datacenter": "DC1"})
    d = services.get_director()
    assert d.vcenter_password == "s3cret-vc-password"
    assert d.iaas_configuration["datacenter"] == "DC1"
    with pytest.raises(services.ServiceError) as exc:
        services.set_director_properties(
            iaas_configuration={"vcenter_host": "", "vcenter_ca_certificate": "not a cert"},
            director_configuration={"percent_threshold": 150, "default_vm_strategy": "yolo"},
        )
    assert set(errors_of(exc)) == {
        "iaas_configuration/vcenter_host",
        "iaas_configuration/vcenter_ca_certificate",
        "director_configuration/percent_threshold",
        "director_configuration/default_vm_strategy",
    }


def test_cloud_config_and_cpi_config_render_and_are_accepted(director_configured):
    from cpi.vsphere.config import parse_config
    from director.cloud import properties_from_cpi_config

    cloud = parse_cloud_config(services.render_cloud_config())
    assert [a["name"] for a in cloud["azs"]] == ["az1", "az2"]
    assert cloud["azs"][0]["cloud_properties"] == {
        "datacenters": [{"name": "DC0", "clusters": [{"DC0_C0": {"resource_pool": "pool-a"}}]}]
    }
    assert cloud["azs"][1]["cloud_properties"]["datacenters"][0]["clusters"] == [
        {"DC0_C1": {"host_group": {"name": "hg1", "drs_rule": "MUST"}}}
    ]
    infra = cloud["networks"][0]
    assert infra["type"] == "manual"
    assert infra["subnets"][0]["range"] == "10.0.0.0/24"
    assert infra["subnets"][0]["reserved"] == ["10.0.0.1 - 10.0.0.9"]
    assert infra["subnets"][0]["cloud_properties"] == {"name": "DC0_DVPG0"}
    assert {"name": "medium", "cloud_properties": {"cpu": 2, "ram": 4096, "disk": 8192}} in cloud[
        "vm_types"
    ]
    assert {"name": "10240", "disk_size": 10240, "cloud_properties": {}} in cloud["disk_types"]
    assert cloud["compilation"]["az"] == "az1" and cloud["compilation"]["network"] == "infra"

    cpi = services.render_cpi_config()
    entry = cpi["cpis"][0]
    assert entry["type"] == "vsphere"
    config = parse_config(properties_from_cpi_config(entry["properties"]))
    assert config.vcenter.password == "s3cret-vc-password"
    assert config.vcenter.insecure is True
    assert [c.name for c in config.datacenter.clusters] == ["DC0_C0", "DC0_C1"]
    assert config.datacenter.datastore_pattern == "^(LocalDS_0|LocalDS_1)$"
    assert config.datacenter.persistent_datastore_pattern == "^(LocalDS_1)$"


def test_cloud_config_refused_while_director_incomplete(db, tiles_dirs):
    with pytest.raises(services.ServiceError) as exc:
        services.render_cloud_config()
    assert set(errors_of(exc)) == {"availability_zones", "networks"}


def test_vm_type_catalog(director_configured):
    assert "large" in {t["name"] for t in services.vm_types()}
    services.set_vm_types([{"name": "tiny", "cpu": 1, "ram": 512, "ephemeral_disk": 2048}])
    assert services.vm_types() == [
        {"name": "tiny", "cpu": 1, "ram": 512, "ephemeral_disk": 2048, "builtin": False}
    ]
    with pytest.raises(services.ServiceError) as exc:
        services.set_vm_types([{"name": "bad", "cpu": 0, "ram": 512, "ephemeral_disk": 2048}])
    assert errors_of(exc) == {"vm_types/bad/cpu": ["must be at least 1"]}


# --------------------------------------------------------------------------- manifest, pending, revert


def test_render_manifest_is_a_valid_deployment_for_the_cloud_config(small, stemcell):
    manifest = services.render_manifest(small)
    assert manifest["name"] == small.guid
    assert manifest["stemcells"] == [{"alias": "default", "os": "ubuntu-jammy", "version": "1.5"}]
    web = next(g for g in manifest["instance_groups"] if g["name"] == "web")
    assert web["azs"] == ["az1", "az2"] and web["instances"] == 2
    assert web["networks"] == [{"name": "infra"}]
    assert web["persistent_disk_type"] == "1024"
    assert web["jobs"][0]["properties"]["greeting"] == "hello"
    # Secrets by reference to the director's variable store, as Ops Manager does with CredHub.
    key_var = f"/opsmgr/{small.guid}/tls"
    assert web["jobs"][0]["properties"]["key"] == f"(({key_var}.private_key_pem))"
    stored = services.manifest_credentials(services.get_staged_product(small.guid))
    assert stored[key_var]["private_key_pem"].startswith("-----BEGIN RSA PRIVATE KEY")
    parsed = parse_manifest(manifest)
    cloud = parse_cloud_config(services.render_cloud_config())
    assert validate_against_cloud_config(parsed, cloud) == []


def test_render_manifest_without_stemcell_names_it(small):
    with pytest.raises(services.ServiceError) as exc:
        services.render_manifest(small)
    assert "ubuntu-jammy" in errors_of(exc)["stemcells"][0]
    checks, warnings = services.product_checks(small)
    assert checks["stemcell_present"] is False and checks["releases_present"] is False
    assert "Missing stemcell: ubuntu-jammy 1.0" in warnings


def _deploy_snapshot(staged):
    """What a successful apply records (the deploy itself is tested with vcsim)."""
    staged = services.get_staged_product(staged.guid)
    services._mark_deployed(staged, services.manifest_yaml(services.render_manifest(staged)))
    return services.get_staged_product(staged.guid)


def test_pending_changes_actions_and_redacted_diff(small, stemcell, small_release):
    change = services.pending_changes(with_plan=False)["product_changes"]
    assert [c["action"] for c in change] == ["install", "install"]
    assert change[0]["product_name"] == "p-bosh"
    assert change[1]["completeness_checks"] == {
        "configuration_complete": True,
        "stemcell_present": True,
        "releases_present": True,
        "configurable_properties_valid": True,
    }
    deployed = _deploy_snapshot(small)
    assert services.pending_changes(with_plan=False)["product_changes"][1]["action"] == "unchanged"

    services.set_properties(deployed, {".properties.greeting": {"value": "good day"}})
    entry = services.pending_changes(with_plan=False)["product_changes"][1]
    assert entry["action"] == "update"
    diff = entry["manifest_diff"]
    assert "-      greeting: hello" in diff and "+      greeting: good day" in diff
    password = deployed.secrets[".properties.admin"]["password"]
    full = services.product_diff(small.guid)["manifest"]
    assert full["status"] == "different"
    assert password not in diff and password not in full["diff"]
    staged_yaml = yaml.safe_dump(services.render_manifest(services.get_staged_product(small.guid)))
    assert password not in staged_yaml  # the manifest holds a reference to the variable store
    assert f"((/opsmgr/{small.guid}/admin.password))" in staged_yaml

    services.unstage_product(small.guid)
    assert services.pending_changes(with_plan=False)["product_changes"][1]["action"] == "delete"


def test_director_diff_redacts_password(director_configured):
    from director.services import update_config

    diff = services.director_diff()
    assert diff["cloud_config"]["status"] == "to_be_installed"
    assert diff["cpi_configs"][0]["status"] == "to_be_installed"
    assert "s3cret-vc-password" not in diff["cpi_configs"][0]["diff"]
    assert "((redacted))" in diff["cpi_configs"][0]["diff"]
    update_config("cloud", "default", yaml.safe_dump(services.render_cloud_config()), "admin")
    assert services.director_diff()["cloud_config"] == {"status": "same", "diff": ""}


@needs_corpus
def test_revert_restores_deployed_state_and_drops_new_products(small, stemcell):
    deployed = _deploy_snapshot(small)
    services.set_properties(deployed, {".properties.greeting": {"value": "changed"}})
    services.set_resource_config(deployed, "web", instances=4)
    services.import_product(EXAMPLE.read_bytes(), EXAMPLE.name, "admin")
    services.stage_product("example-product", "1.0-build.0")
    services.unstage_product(small.guid)
    services.revert_staged()
    [sp] = services.list_staged_products()
    assert sp.guid == small.guid and sp.marked_for_deletion is False
    assert services.get_properties(sp)[".properties.greeting"]["value"] == "hello"
    assert services.get_resource_config(sp, "web")["instances"] == "automatic"


def test_apply_changes_refuses_incomplete_products_and_running_installations(small):
    from tiles.models import Installation

    with pytest.raises(services.ServiceError) as exc:
        services.apply_changes("admin")
    messages = errors_of(exc)[small.guid]
    assert any("stemcells: missing stemcell" in m for m in messages)
    assert not Installation.objects.exists()
    with pytest.raises(services.ServiceError) as exc:
        services.apply_changes("admin", deploy_products=["nope"])
    assert errors_of(exc) == {"deploy_products": ["'nope' is not a staged product guid"]}

    inst = services.apply_changes("admin", deploy_products="none")
    assert inst.status == "running"
    assert [s.kind for s in inst.steps.all()] == ["vcenter", "configs"]
    with pytest.raises(services.Conflict) as exc:
        services.apply_changes("admin", deploy_products="none")
    assert f"Installation {inst.id} started by admin" in errors_of(exc)["install"][0]


def test_credentials_of_a_deployed_product(small, stemcell):
    deployed = _deploy_snapshot(small)
    assert services.list_credentials(deployed.guid) == [
        ".properties.api_key",
        ".properties.admin",
        ".properties.tls",
    ]
    masked = services.get_credential(deployed.guid, ".properties.admin", reveal=False)
    assert masked == {
        "credential": {
            "type": "simple_credentials",
            "value": {"identity": "admin", "password": "***"},
        }
    }
    shown = services.get_credential(deployed.guid, ".properties.admin", reveal=True)
    assert (
        shown["credential"]["value"]["password"]
        == deployed.secrets[".properties.admin"]["password"]
    )
    manifest = services.deployed_manifest(deployed.guid)
    web = manifest["instance_groups"][0]["jobs"][0]["properties"]
    assert web["admin_password"] == f"((/opsmgr/{deployed.guid}/admin.password))"


@needs_corpus
def test_corpus_templates_render_or_name_what_is_missing(director_configured, stemcell):
    rendered = {}
    _stage_bare_cf()
    for path in (EXAMPLE, TILE_GENERATOR):
        p = services.import_product(path.read_bytes(), path.name, "admin")
        sp = services.stage_product(p.name, p.version)
        services.set_networks_and_azs(
            sp,
            {
                "singleton_availability_zone": "az1",
                "other_availability_zones": ["az1", "az2"],
                "network": "infra",
            },
        )
        sp = services.get_staged_product(sp.guid)
        try:
            rendered[p.name] = services.render_manifest(sp, require_stemcell=False)
        except services.ServiceError as exc:
            rendered[p.name] = exc.errors
    example = parse_manifest(rendered["example-product"])
    assert {g["name"] for g in example["instance_groups"]} == {"web_server", "example-errand"}
    # tile-generator's tile reads from Cloud Foundry's tile, staged here without those properties
    messages = [m for ms in rendered["test-tile"].values() for m in ms]  # type: ignore[union-attr]
    assert messages and all("(in product 'cf' 2.0)" in m for m in messages), messages


def test_collection_records_get_guids_and_keep_them(director_configured):
    from pathlib import Path

    import tiles

    metadata = (Path(tiles.__file__).parent / "demo" / "metadata.yml").read_bytes()
    p = services.import_product(metadata, "metadata.yml", "admin")
    sp = services.stage_product(p.name, p.version)
    services.set_properties(
        sp,
        {".properties.queues": {"value": [{"name": "mail", "concurrency": 4}, {"name": "jobs"}]}},
    )
    records = services.get_properties(services.get_staged_product(sp.guid))[".properties.queues"][
        "value"
    ]
    assert [r["name"]["value"] for r in records] == ["mail", "jobs"]
    assert [r["concurrency"]["value"] for r in records] == [4, 2]
    guids = [r["guid"]["value"] for r in records]
    assert all(re.fullmatch(r"[0-9a-f-]{36}", g) for g in guids)
    # Sent back in the API's shape (with guids), records keep their identity.
    services.set_properties(
        services.get_staged_product(sp.guid), {".properties.queues": {"value": records[:1]}}
    )
    again = services.get_properties(services.get_staged_product(sp.guid))[".properties.queues"][
        "value"
    ]
    assert [r["guid"]["value"] for r in again] == guids[:1]
    with pytest.raises(services.ServiceError) as exc:
        services.set_properties(
            sp, {".properties.queues": {"value": [{"name": "a"}, {"name": "a"}]}}
        )
    assert errors_of(exc) == {
        ".properties.queues[1].name": ['must be unique: row 1 already uses "a"']
    }
