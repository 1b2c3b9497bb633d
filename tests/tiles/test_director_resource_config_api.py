"""The Director tile's compilation resource config through Ops Manager's API (the paths and
bodies ``om configure-director``'s ``resource-configuration`` uses), and ``.../resources``."""

from __future__ import annotations

import pytest

from tiles import director_tile

pytestmark = pytest.mark.django_db

API = "/api/v0"


@pytest.fixture
def director_guid(director_configured):
    return director_configured.guid


def _job_url(guid: str, job_guid: str) -> str:
    return f"{API}/staged/products/{guid}/jobs/{job_guid}/resource_config"


def test_the_director_lists_its_compilation_job(admin_api, director_guid):
    listed = admin_api.get(f"{API}/staged/products").json()
    assert listed[0]["guid"] == director_guid and listed[0]["type"] == "p-bosh"
    (job,) = admin_api.get(f"{API}/staged/products/{director_guid}/jobs").json()["jobs"]
    assert job["name"] == "compilation" and job["guid"].startswith("compilation-")
    body = admin_api.get(_job_url(director_guid, job["guid"]))
    assert body.status_code == 200 and body["ETag"] == '"0"'
    data = body.json()
    assert data["instances"] == "automatic" and data["instance_type"] == {"id": "automatic"}
    assert data["automatic"]["instances"] == 4


def test_put_sets_what_the_cloud_config_compiles_with(admin_api, director_guid):
    job_guid = director_tile.resource_config.compilation_job_guid()
    res = admin_api.put(
        _job_url(director_guid, job_guid),
        {"instances": 2, "instance_type": {"id": "medium"}, "elb_names": []},
        format="json",
    )
    assert res.status_code == 200, res.content
    assert res.json()["instances"] == 2 and res.json()["instance_type"] == {"id": "medium"}
    assert res["ETag"] != '"0"'
    cloud = admin_api.get(f"{API}/staged/cloud_config").json()["cloud_config"]
    assert cloud["compilation"]["workers"] == 2 and cloud["compilation"]["vm_type"] == "medium"
    # the pane in the browser shows the same save
    assert director_tile.get_director().resource_config["compilation"] == {
        "instances": 2,
        "instance_type": "medium",
    }
    # "automatic" puts both back; the job is also found by its name
    back = admin_api.put(
        _job_url(director_guid, "compilation"),
        {"instances": "automatic", "instance_type": {"id": "automatic"}},
        format="json",
    )
    assert back.json()["instances"] == "automatic"
    assert director_tile.get_director().resource_config["compilation"] == {}


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"instances": 0}, "instances", "must be at least 1"),
        ({"instances": "many"}, "instances", "must be an integer"),
        ({"instance_type": {"id": "huge"}}, "instance_type.id", "'huge' is not a VM type"),
        ({"instance_type": {}}, "instance_type.id", "is required"),
        ({"instance_type": 7}, "instance_type", "must be"),
        ({"persistent_disk": {"size_mb": "20480"}}, "persistent_disk.size_mb", "no persistent"),
        ({"internet_connected": True}, "internet_connected", "cannot take effect"),
        ({"elb_names": ["lb"]}, "elb_names", "cannot take effect"),
        ({"nsx": {}}, "nsx", "unknown field"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(admin_api, director_guid, body, field, message):
    res = admin_api.put(_job_url(director_guid, "compilation"), body, format="json")
    assert res.status_code == 422, res.content
    assert message in " ".join(res.json()["errors"][field])
    assert director_tile.get_director().resource_config == {}


def test_stale_if_match_is_409_and_unknown_job_404(admin_api, director_guid):
    url = _job_url(director_guid, "compilation")
    etag = admin_api.get(url)["ETag"]
    assert admin_api.put(url, {"instances": 3}, format="json").status_code == 200
    stale = admin_api.put(url, {"instances": 5}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 409
    assert director_tile.get_director().resource_config["compilation"]["instances"] == 3
    missing = admin_api.get(_job_url(director_guid, "director"))
    assert missing.status_code == 404 and "job_guid" in missing.json()["errors"]


def test_read_only_roles_may_read_not_write(role_api, director_guid):
    viewer = role_api("full_view")
    url = _job_url(director_guid, "compilation")
    assert viewer.get(url).status_code == 200
    assert viewer.put(url, {"instances": 2}, format="json").status_code == 403
    assert director_tile.get_director().resource_config == {}


def test_resources_lists_each_job(admin_api, director_guid, small):
    admin_api.put(_job_url(director_guid, "compilation"), {"instances": 6}, format="json")
    (comp,) = admin_api.get(f"{API}/staged/products/{director_guid}/resources").json()["resources"]
    assert comp["identifier"] == "compilation" and comp["instances"] == 6
    assert comp["instance_type_id"] == "" and comp["instance_type_best_fit"]
    body = admin_api.get(f"{API}/staged/products/{small.guid}/resources")
    assert body.status_code == 200
    rows = {r["identifier"]: r for r in body.json()["resources"]}
    assert set(rows) == {"web", "check"}
    assert rows["web"]["instances_best_fit"] == 2 and rows["web"]["persistent_disk_best_fit"]
    assert admin_api.get(f"{API}/staged/products/nope-1/resources").status_code == 404
