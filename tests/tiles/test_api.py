"""The console API: Ops Manager paths and body shapes, roles on every route, errors never 500."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

import tiles
from tiles import services

from .conftest import AZS, IAAS, NETWORKS, SMALL_TILE

pytestmark = pytest.mark.django_db

API = "/api/v0"


def _deploy_snapshot(sp):
    sp = services.get_staged_product(sp.guid)
    services._mark_deployed(sp, services.manifest_yaml(services.render_manifest(sp)))
    return services.get_staged_product(sp.guid)


@pytest.fixture
def world(small, stemcell, small_release):
    """A staged and deployed small tile, so every route has something to show."""
    sp = _deploy_snapshot(small)
    inst = services.apply_changes("admin", deploy_products="none")
    inst.status = "succeeded"  # not run here (no worker): recorded as ended
    inst.save()
    return {"guid": sp.guid, "job": services.list_jobs(sp)[0]["guid"], "installation": inst.id}


def routes(w):
    g, j, i = w["guid"], w["job"], w["installation"]
    az_guid = services.list_availability_zones()[0]["guid"]
    return [
        # (method, path, body, write?)
        ("get", "/available_products", None, False),
        ("get", "/staged/products", None, False),
        ("get", f"/staged/products/{g}", None, False),
        ("get", f"/staged/products/{g}/properties", None, False),
        (
            "put",
            f"/staged/products/{g}/properties",
            {"properties": {".properties.port": {"value": 9001}}},
            True,
        ),
        ("get", f"/staged/products/{g}/networks_and_azs", None, False),
        (
            "put",
            f"/staged/products/{g}/networks_and_azs",
            {
                "networks_and_azs": {
                    "singleton_availability_zone": {"name": "az1"},
                    "network": {"name": "infra"},
                }
            },
            True,
        ),
        ("get", f"/staged/products/{g}/jobs", None, False),
        ("get", f"/staged/products/{g}/jobs/{j}/resource_config", None, False),
        ("put", f"/staged/products/{g}/jobs/{j}/resource_config", {"instances": 3}, True),
        ("get", f"/staged/products/{g}/errands", None, False),
        (
            "put",
            f"/staged/products/{g}/errands",
            {"errands": [{"name": "check", "post_deploy": False}]},
            True,
        ),
        ("get", f"/staged/products/{g}/manifest", None, False),
        ("get", "/staged/director/properties", None, False),
        (
            "put",
            "/staged/director/properties",
            {"director_configuration": {"max_threads": 8}},
            True,
        ),
        ("get", "/staged/director/availability_zones", None, False),
        (
            "post",
            "/staged/director/availability_zones?ignore_unreachable_vcenter=true",
            {"availability_zone": {"name": "az9", "clusters": [{"cluster": "DC0_C0"}]}},
            True,
        ),
        (
            "put",
            "/staged/director/availability_zones?ignore_unreachable_vcenter=true",
            {"availability_zones": [*AZS, {"name": "az8", "clusters": [{"cluster": "DC0_C0"}]}]},
            True,
        ),
        (
            "put",
            f"/staged/director/availability_zones/{az_guid}?ignore_unreachable_vcenter=true",
            {"availability_zone": {"name": "az1", "clusters": [{"cluster": "DC0_C1"}]}},
            True,
        ),
        ("get", "/staged/director/networks", None, False),
        ("put", "/staged/director/networks?ignore_unreachable_vcenter=true", NETWORKS, True),
        ("get", "/staged/director/network_and_az", None, False),
        (
            "put",
            "/staged/director/network_and_az",
            {
                "network_and_az": {
                    "network": {"name": "infra"},
                    "singleton_availability_zone": {"name": "az1"},
                }
            },
            True,
        ),
        ("get", "/staged/cloud_config", None, False),
        ("get", "/vm_types", None, False),
        ("get", "/disk_types", None, False),
        ("get", "/staged/pending_changes", None, False),
        ("get", f"/products/{g}/diff", None, False),
        ("get", "/director/diff", None, False),
        ("get", "/installations", None, False),
        ("get", f"/installations/{i}", None, False),
        ("get", f"/installations/{i}/logs", None, False),
        ("get", "/deployed/products", None, False),
        ("get", f"/deployed/products/{g}/manifest", None, False),
        ("get", f"/deployed/products/{g}/status", None, False),
        ("get", f"/deployed/products/{g}/credentials", None, False),
        ("get", f"/deployed/products/{g}/credentials/.properties.admin", None, False),
        ("delete", "/staged", None, True),
    ]


def call(client, method, path, body):
    return (
        getattr(client, method)(API + path, body, format="json")
        if body is not None
        else getattr(client, method)(API + path)
    )


def test_every_route_anonymous_forbidden_allowed(world, role_api, admin_api):
    from rest_framework.test import APIClient

    anonymous = APIClient()
    viewer = role_api("full_view")
    for method, path, body, write in routes(world):
        res = call(anonymous, method, path, body)
        assert res.status_code == 401, (method, path, res.status_code)
        assert "errors" in res.json()
        res = call(viewer, method, path, body)
        if write:
            assert res.status_code == 403, (method, path, res.status_code)
        else:
            assert res.status_code == 200, (method, path, res.status_code, res.content[:300])
    for method, path, body, _ in routes(world):
        res = call(admin_api, method, path, body)
        assert res.status_code in (200, 201), (method, path, res.status_code, res.content[:300])


def test_restricted_roles_get_no_credential_values(world, role_api):
    g = world["guid"]
    for role in ("restricted_control", "restricted_view"):
        client = role_api(role)
        res = client.get(f"{API}/deployed/products/{g}/credentials/.properties.admin")
        assert res.status_code == 403
        assert res.json() == {"errors": {"credential": ["Your role may not see credentials."]}}
        assert client.get(f"{API}/deployed/products/{g}/credentials").json() == {
            "credentials": [".properties.api_key", ".properties.admin", ".properties.tls"]
        }
        for path in (f"/deployed/products/{g}/manifest", f"/staged/products/{g}/manifest"):
            web = client.get(API + path).json()["manifest"]["instance_groups"][0]
            # a reference to the variable store, never the value
            assert (
                web["jobs"][0]["properties"]["admin_password"] == f"((/opsmgr/{g}/admin.password))"
            )
    viewer = role_api("full_view")
    value = viewer.get(f"{API}/deployed/products/{g}/credentials/.properties.admin").json()
    assert value["credential"]["type"] == "simple_credentials"
    assert value["credential"]["value"]["identity"] == "admin"
    assert len(value["credential"]["value"]["password"]) >= 16


def test_upload_stage_configure_flow_with_ops_manager_shapes(director_configured, admin_api):
    upload = SimpleUploadedFile("small.yml", SMALL_TILE.encode(), content_type="application/x-yaml")
    res = admin_api.post(f"{API}/available_products", {"product[file]": upload}, format="multipart")
    assert res.status_code == 200, res.content
    assert res.json()["name"] == "small" and res.json()["product_version"] == "1.0.0"
    again = SimpleUploadedFile("small.yml", SMALL_TILE.encode())
    res = admin_api.post(f"{API}/available_products", {"product[file]": again}, format="multipart")
    assert res.status_code == 409
    assert "already imported" in res.json()["errors"]["product[file]"][0]
    res = admin_api.post(f"{API}/available_products", {}, format="multipart")
    assert res.status_code == 400 and "product[file]" in res.json()["errors"]
    assert admin_api.get(f"{API}/available_products").json()[0]["product_version"] == "1.0.0"

    res = admin_api.post(
        f"{API}/staged/products", {"name": "small", "product_version": "1.0.0"}, format="json"
    )
    assert res.status_code == 201
    guid = res.json()["guid"]
    assert re.fullmatch(r"small-[0-9a-f]{20}", guid)
    listed = admin_api.get(f"{API}/staged/products").json()
    assert [p["type"] for p in listed] == ["p-bosh", "small"]
    assert listed[1] == {
        "installation_name": guid,
        "guid": guid,
        "type": "small",
        "product_version": "1.0.0",
        "label": "Small",
        "marked_for_deletion": False,
        "deployed_product_version": None,
        "warnings": [],
    }
    res = admin_api.post(f"{API}/staged/products", {"name": "small"}, format="json")
    assert res.status_code == 400 and res.json() == {"errors": {"product_version": ["is required"]}}

    props = admin_api.get(f"{API}/staged/products/{guid}/properties").json()["properties"]
    assert props[".properties.port"] == {
        "type": "port",
        "configurable": True,
        "credential": False,
        "optional": False,
        "value": 8080,
    }
    assert props[".properties.admin"]["value"] == {"identity": "admin", "password": "***"}
    res = admin_api.put(
        f"{API}/staged/products/{guid}/properties",
        {
            "properties": {
                ".properties.greeting": {"value": "Bad!"},
                ".properties.port": {"value": 9000},
            }
        },
        format="json",
    )
    assert res.status_code == 422
    assert res.json() == {"errors": {".properties.greeting": ["Only lower-case letters."]}}
    props = admin_api.get(f"{API}/staged/products/{guid}/properties").json()["properties"]
    assert props[".properties.port"]["value"] == 8080
    res = admin_api.put(
        f"{API}/staged/products/{guid}/properties",
        {"properties": {".properties.api_key": {"value": {"secret": "top-secret-key"}}}},
        format="json",
    )
    assert res.json()["properties"][".properties.api_key"]["value"] == {"secret": "***"}
    res = admin_api.put(f"{API}/staged/products/{guid}/properties", [1, 2], format="json")
    assert res.status_code == 400

    body = {
        "networks_and_azs": {
            "singleton_availability_zone": {"name": "az1"},
            "other_availability_zones": [{"name": "az1"}, {"name": "az2"}],
            "network": {"name": "infra"},
        }
    }
    res = admin_api.put(f"{API}/staged/products/{guid}/networks_and_azs", body, format="json")
    assert res.status_code == 200
    assert res.json() == body
    bad = {
        "networks_and_azs": {
            "singleton_availability_zone": {"name": "nope"},
            "network": {"name": "infra"},
        }
    }
    res = admin_api.put(f"{API}/staged/products/{guid}/networks_and_azs", bad, format="json")
    assert res.status_code == 422
    assert res.json()["errors"]["singleton_availability_zone"] == [
        "'nope' is not an availability zone"
    ]

    jobs = admin_api.get(f"{API}/staged/products/{guid}/jobs").json()["jobs"]
    assert [j["name"] for j in jobs] == ["web", "check"] and set(jobs[0]) == {"name", "guid"}
    url = f"{API}/staged/products/{guid}/jobs/{jobs[0]['guid']}/resource_config"
    res = admin_api.put(
        url,
        {
            "instances": 3,
            "instance_type": {"id": "medium"},
            "persistent_disk": {"size_mb": "20480"},
        },
        format="json",
    )
    assert res.status_code == 200
    rc = admin_api.get(url).json()
    assert rc["instances"] == 3 and rc["instance_type"] == {"id": "medium"}
    assert rc["persistent_disk"] == {"size_mb": "20480"}
    res = admin_api.put(url, {"instances": 9, "instance_type": {"id": "huge"}}, format="json")
    assert res.status_code == 422
    assert res.json()["errors"] == {
        "instances": ["must be at most 4"],
        "instance_type.id": ["'huge' is not in the VM type catalog"],
    }
    assert (
        admin_api.get(f"{API}/staged/products/{guid}/jobs/nope/resource_config").status_code == 404
    )

    res = admin_api.put(
        f"{API}/staged/products/{guid}/errands",
        {"errands": [{"name": "check", "post_deploy": False}]},
        format="json",
    )
    assert res.json()["errands"][0]["post_deploy"] is False

    res = admin_api.get(f"{API}/staged/products/{guid}/manifest")
    assert res.status_code == 200
    web = res.json()["manifest"]["instance_groups"][0]
    assert web["instances"] == 3 and web["vm_type"] == "medium"

    res = admin_api.delete(f"{API}/staged/products/{guid}")
    assert res.json() == {"component": {"guid": guid}}
    assert admin_api.get(f"{API}/staged/products/{guid}").status_code == 404
    res = admin_api.delete(f"{API}/available_products?product_name=small&version=1.0.0")
    assert res.status_code == 200
    assert admin_api.get(f"{API}/available_products").json() == []
    res = admin_api.delete(f"{API}/available_products?product_name=small")
    assert res.status_code == 400 and "version" in res.json()["errors"]


def test_director_tile_api_shapes(db, tiles_dirs, admin_api):
    d_guid = admin_api.get(f"{API}/staged/products").json()[0]["guid"]
    assert re.fullmatch(r"p-bosh-[0-9a-f]{20}", d_guid)
    res = admin_api.delete(f"{API}/staged/products/{d_guid}")
    assert res.status_code == 422 and "cannot be deleted" in res.json()["errors"]["guid"][0]

    res = admin_api.put(
        f"{API}/staged/director/properties?ignore_unreachable_vcenter=true",
        {"iaas_configuration": IAAS},
        format="json",
    )
    assert res.status_code == 200
    iaas = res.json()["iaas_configuration"]
    assert iaas["vcenter_password"] == "***" and iaas["vcenter_host"] == "vcenter.example.com"
    res = admin_api.put(
        f"{API}/staged/director/properties",
        {
            "iaas_configuration": {"vcenter_host": "bad host!"},
            "director_configuration": {"max_threads": 0},
        },
        format="json",
    )
    assert res.status_code == 422
    assert set(res.json()["errors"]) == {
        "iaas_configuration/vcenter_host",
        "director_configuration/max_threads",
    }
    res = admin_api.put(f"{API}/staged/director/properties", {"nope": {}}, format="json")
    assert res.status_code == 422

    res = admin_api.post(
        f"{API}/staged/director/availability_zones?ignore_unreachable_vcenter=true",
        {
            "availability_zone": {
                "name": "az1",
                "clusters": [{"cluster": "DC0_C0", "res_pool": "rp"}],
            }
        },
        format="json",
    )
    assert res.status_code == 201
    az = res.json()["availability_zone"]
    assert az["name"] == "az1" and az["clusters"][0]["res_pool"] == "rp" and az["guid"]
    res = admin_api.put(
        f"{API}/staged/director/availability_zones/{az['guid']}?ignore_unreachable_vcenter=true",
        {"availability_zone": {"name": "az1", "clusters": [{"cluster": "DC0_C1"}]}},
        format="json",
    )
    assert res.json()["availability_zone"]["clusters"][0]["cluster"] == "DC0_C1"
    res = admin_api.put(
        f"{API}/staged/director/networks?ignore_unreachable_vcenter=true",
        {
            "networks": [
                {
                    "name": "n",
                    "subnets": [
                        {
                            "iaas_identifier": "pg",
                            "cidr": "10.0.0.0/24",
                            "gateway": "10.1.0.1",
                            "availability_zone_names": ["az1"],
                        }
                    ],
                }
            ]
        },
        format="json",
    )
    assert res.status_code == 422
    assert res.json() == {
        "errors": {"networks/n/subnets/0/gateway": ["10.1.0.1 is not inside 10.0.0.0/24"]}
    }
    assert admin_api.get(f"{API}/staged/cloud_config").status_code == 422
    body = {
        "networks": [
            {
                "name": "n",
                "subnets": [
                    {
                        "iaas_identifier": "pg",
                        "cidr": "10.0.0.0/24",
                        "gateway": "10.0.0.1",
                        "dns": "8.8.8.8",
                        "reserved_ip_ranges": "10.0.0.1-10.0.0.5",
                        "availability_zone_names": ["az1"],
                    }
                ],
            }
        ]
    }
    res = admin_api.put(
        f"{API}/staged/director/networks?ignore_unreachable_vcenter=true", body, format="json"
    )
    assert res.status_code == 200
    assert res.json()["networks"][0]["subnets"][0]["reserved_ip_ranges"] == "10.0.0.1-10.0.0.5"
    cloud = admin_api.get(f"{API}/staged/cloud_config").json()["cloud_config"]
    assert cloud["networks"][0]["subnets"][0]["cloud_properties"] == {"name": "pg"}
    vm_types = admin_api.get(f"{API}/vm_types").json()["vm_types"]
    assert {
        "name": "micro",
        "cpu": 1,
        "ram": 1024,
        "ephemeral_disk": 8192,
        "builtin": True,
    } in vm_types

    diff = admin_api.get(f"{API}/director/diff").json()
    assert set(diff) >= {"manifest", "cloud_config", "runtime_configs", "cpi_configs"}
    assert diff["cpi_configs"][0]["status"] == "to_be_installed"
    assert "s3cret-vc-password" not in str(diff)
    pending = admin_api.get(f"{API}/staged/pending_changes").json()["product_changes"]
    assert pending[0]["guid"] == d_guid and pending[0]["action"] == "install"


def test_installations_api(small, stemcell, small_release, admin_api):
    res = admin_api.post(f"{API}/installations", {"deploy_products": "bogus"}, format="json")
    assert res.status_code == 422
    res = admin_api.post(
        f"{API}/installations", {"deploy_products": "all", "ignore_warnings": False}, format="json"
    )
    assert res.status_code == 202, res.content
    inst_id = res.json()["install"]["id"]
    assert res["Location"].endswith(f"/api/v0/installations/{inst_id}")
    res = admin_api.post(f"{API}/installations", {}, format="json")
    assert res.status_code == 409
    assert f"Installation {inst_id} started by admin" in res.json()["errors"]["install"][0]
    one = admin_api.get(f"{API}/installations/{inst_id}").json()
    assert one["status"] == "running" and one["user_name"] == "admin"
    assert [(p["kind"], p["action"]) for p in one["products"]] == [
        ("vcenter", ""),
        ("configs", "update"),
        ("stemcells", ""),
        ("deploy", "install"),
        ("errand", ""),
    ]
    listed = admin_api.get(f"{API}/installations").json()["installations"]
    assert [i["id"] for i in listed] == [inst_id]
    logs = admin_api.get(f"{API}/installations/{inst_id}/logs").json()["logs"]
    assert f"Installation {inst_id} by admin" in logs
    assert admin_api.get(f"{API}/installations/999999").status_code == 404
    assert admin_api.get(f"{API}/deployed/products/nope/status").status_code == 404


def test_malformed_bodies_are_4xx_with_field_errors(world, admin_api):
    g, j = world["guid"], world["job"]
    cases = [
        ("put", f"/staged/products/{g}/properties", {"properties": "x"}, 422, "properties"),
        ("put", f"/staged/products/{g}/properties", {"props": {}}, 400, "properties"),
        (
            "put",
            f"/staged/products/{g}/properties",
            {"properties": {".properties.port": {"value": 0}}},
            422,
            ".properties.port",
        ),
        ("put", f"/staged/products/{g}/jobs/{j}/resource_config", ["x"], 400, "body"),
        ("put", f"/staged/products/{g}/errands", {"errands": "x"}, 422, "errands"),
        (
            "put",
            f"/staged/products/{g}/networks_and_azs",
            {"networks_and_azs": 3},
            422,
            "networks_and_azs",
        ),
        ("put", "/staged/director/networks", {"networks": "x"}, 422, "networks"),
        (
            "put",
            "/staged/director/availability_zones",
            {"availability_zones": {}},
            422,
            "availability_zones",
        ),
        (
            "post",
            "/staged/director/availability_zones",
            {"availability_zone": []},
            422,
            "availability_zone",
        ),
        ("put", "/vm_types", {"vm_types": "x"}, 422, "vm_types"),
        ("post", "/installations", {"errands": {"nope": {}}}, 422, "errands/nope"),
        (
            "post",
            "/installations",
            {"errands": {g: {"run_post_deploy": True}}},
            422,
            f"errands/{g}/run_post_deploy",
        ),
        ("put", f"/staged/products/{g}", {"to_version": "7.7"}, 404, "product_version"),
    ]
    for method, path, body, code, key in cases:
        res = call(admin_api, method, path, body)
        assert res.status_code == code, (path, body, res.status_code, res.content[:200])
        errors = res.json()["errors"]
        assert any(k.startswith(key) or key.endswith(k) for k in errors), (path, errors)


def test_a_collections_duplicate_names_the_row_as_the_form_counts_it(admin_api):
    metadata = (Path(tiles.__file__).parent / "demo" / "metadata.yml").read_bytes()
    product = services.import_product(metadata, "metadata.yml", "admin")
    guid = services.stage_product(product.name, product.version).guid
    queues = [{"name": "mail"}, {"name": "jobs"}, {"name": "mail"}]
    res = admin_api.put(
        f"{API}/staged/products/{guid}/properties",
        {"properties": {".properties.queues": {"value": queues}}},
        format="json",
    )
    assert res.status_code == 422
    assert res.json() == {
        "errors": {".properties.queues[2].name": ['must be unique: row 1 already uses "mail"']}
    }
