"""The director API: every route anonymous (401), read-only roles writing (403), allowed (2xx);
the shapes callers rely on; constant query counts as rows grow."""

import io

import pytest
import yaml

from director import runner
from director.events import record_event
from director.models import (
    Config,
    Deployment,
    Event,
    Instance,
    IpAddress,
    PersistentDisk,
    Release,
    ReleaseJob,
    ReleaseVersion,
    Stemcell,
    Task,
    TaskState,
    Vm,
)
from tests.director.builders import build_release, build_stemcell_tgz

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]

CLOUD_CONFIG = """
azs:
- {name: z1, cloud_properties: {datacenters: [{name: DC0, clusters: [DC0_C0: {}]}]}}
vm_types:
- {name: small, cloud_properties: {cpu: 1, ram: 1024, disk: 4096}}
networks:
- name: default
  type: manual
  subnets:
  - {range: 10.0.0.0/24, gateway: 10.0.0.1, azs: [z1], cloud_properties: {name: VM Network}}
compilation: {workers: 1, network: default, az: z1, vm_type: small}
"""


def add_instances(deployment, count, start=0):
    for i in range(start, start + count):
        inst = Instance.objects.create(
            deployment=deployment, group="zookeeper", uuid=f"uuid-{i}", index=i, az="z1"
        )
        vm = Vm.objects.create(instance=inst, cid=f"vm-{i}", agent_id=f"agent-{i}", active=True)
        IpAddress.objects.create(
            address=f"10.0.0.{10 + i}", network_name="default", instance=inst, vm=vm
        )
        PersistentDisk.objects.create(instance=inst, disk_cid=f"disk-{i}", size=1024, active=True)


@pytest.fixture
def world(tmp_path):
    """A little of everything, so every route has something to show."""
    stemcell = Stemcell.objects.create(
        name="bosh-vsphere-esxi-ubuntu-jammy-go_agent",
        version="1.0",
        operating_system="ubuntu-jammy",
        cid="sc-1",
    )
    release = Release.objects.create(name="zookeeper")
    rv = ReleaseVersion.objects.create(release=release, version="0.0.10")
    ReleaseJob.objects.create(
        release_version=rv,
        name="zookeeper",
        version="abc",
        spec={"packages": ["java"], "properties": {"client_port": {"default": 2181}}},
    )
    cloud = Config.objects.create(type="cloud", name="default", content=CLOUD_CONFIG)
    deployment = Deployment.objects.create(name="zk", manifest_text="name: zk\n")
    deployment.stemcells.add(stemcell)
    deployment.release_versions.add(rv)
    deployment.configs.add(cloud)
    add_instances(deployment, 2)
    # a logs fetch: active on zk, yet not one that blocks a deploy or delete of zk
    task = runner.create_task("fetch_logs", "fetch job logs", "admin", deployment_name="zk")
    event = record_event("create", "deployment", "zk", user="admin", task=task, deployment="zk")
    return {"task": task, "event": event, "config": cloud, "tmp": tmp_path}


def stemcell_upload(world):
    return {
        "stemcell[file]": io.BytesIO(
            build_stemcell_tgz(world["tmp"] / "s.tgz", version="9.9").read_bytes()
        )
    }


def release_upload(world):
    return {
        "release[file]": io.BytesIO(
            build_release(world["tmp"] / "r.tgz", version="0.0.11").read_bytes()
        )
    }


D = "/api/v0/director"
# (method, url, body (None, dict, or callable(world) -> multipart files), status when allowed)
ROUTES = [
    ("get", f"{D}/stemcells", None, 200),
    ("post", f"{D}/stemcells", stemcell_upload, 202),
    ("post", "/api/v0/stemcells", stemcell_upload, 202),
    ("delete", f"{D}/stemcells/bosh-vsphere-esxi-ubuntu-jammy-go_agent/1.0", None, 202),
    ("get", f"{D}/releases", None, 200),
    ("post", f"{D}/releases", release_upload, 202),
    ("get", f"{D}/configs", None, 200),
    ("post", f"{D}/configs", {"type": "runtime", "name": "dns", "content": "addons: []\n"}, 201),
    ("delete", f"{D}/configs?type=cloud&name=default", None, 204),
    ("get", f"{D}/configs/{{config}}", None, 200),
    ("get", f"{D}/deployments", None, 200),
    ("post", f"{D}/deployments", {"manifest": "name: zk\n"}, 422),
    ("get", f"{D}/deployments/zk", None, 200),
    ("delete", f"{D}/deployments/zk", None, 202),
    ("get", f"{D}/deployments/zk/instances", None, 200),
    ("get", f"{D}/deployments/zk/vms", None, 200),
    ("post", f"{D}/deployments/zk/plan", {"manifest": "name: zk\n"}, 422),
    ("get", f"{D}/resurrection", None, 200),
    ("put", f"{D}/resurrection", {"resurrection_paused": True}, 200),
    ("get", f"{D}/tasks", None, 200),
    ("get", f"{D}/tasks/{{task}}", None, 200),
    ("get", f"{D}/tasks/{{task}}/output?type=event", None, 200),
    ("get", f"{D}/tasks/{{task}}/output?type=debug", None, 200),
    ("post", f"{D}/tasks/{{task}}/cancel", None, 202),
    ("get", f"{D}/events", None, 200),
    ("get", f"{D}/events/{{event}}", None, 200),
]


def call(client, method, url, body, world):
    url = url.format(task=world["task"].id, event=world["event"].id, config=world["config"].id)
    if callable(body):
        return getattr(client, method)(url, body(world), format="multipart")
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, format="json")


def route_id(route):
    return f"{route[0].upper()} {route[1]}"


@pytest.mark.parametrize("route", ROUTES, ids=route_id)
def test_anonymous_gets_401(api_client, world, route):
    method, url, body, _ = route
    response = call(api_client, method, url, body, world)
    assert response.status_code == 401
    assert "errors" in response.json()


@pytest.mark.parametrize("route", [r for r in ROUTES if r[0] != "get"], ids=route_id)
@pytest.mark.parametrize("role", ["full_view", "restricted_view"])
def test_read_only_roles_may_not_change_anything(role_api, world, route, role):
    method, url, body, _ = route
    response = call(role_api(role), method, url, body, world)
    assert response.status_code == 403
    assert response.json()["errors"]["base"] == ["Your role may not change this."]


@pytest.mark.parametrize("route", ROUTES, ids=route_id)
def test_allowed(admin_api, world, route):
    method, url, body, expected = route
    response = call(admin_api, method, url, body, world)
    assert response.status_code == expected, response.content


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if r[0] == "get" and "debug" not in r[1]], ids=route_id
)
def test_read_only_roles_may_read(role_api, world, route):
    method, url, body, expected = route
    assert call(role_api("restricted_view"), method, url, body, world).status_code == expected


def test_debug_and_cpi_logs_need_a_role_that_sees_credentials(role_api, world):
    task = world["task"]
    restricted = role_api("restricted_control")
    for kind in ("debug", "cpi"):
        response = restricted.get(f"{D}/tasks/{task.id}/output?type={kind}")
        assert response.status_code == 403
    assert role_api("full_view").get(f"{D}/tasks/{task.id}/output?type=cpi").status_code == 200


def test_restricted_control_may_write(role_api, world):
    response = role_api("restricted_control").post(
        f"{D}/configs", {"type": "runtime", "content": "addons: []\n"}, format="json"
    )
    assert response.status_code == 201


# --------------------------------------------------------------------------- shapes


def test_stemcell_upload_answers_202_with_the_task_location(admin_api, world):
    response = admin_api.post(f"{D}/stemcells", stemcell_upload(world), format="multipart")
    assert response.status_code == 202
    body = response.json()
    task = Task.objects.get(id=body["id"])
    assert task.type == "update_stemcell" and task.state == TaskState.QUEUED
    assert body["state"] == "queued" and body["user"] == "admin"
    assert response["Location"].endswith(f"/api/v0/director/tasks/{task.id}")


def test_a_bad_stemcell_is_refused_422_and_nothing_is_written(admin_api, world, settings):
    tgz = build_stemcell_tgz(world["tmp"] / "bad.tgz", image=None)
    before = Task.objects.count()
    response = admin_api.post(
        "/api/v0/stemcells", {"stemcell[file]": io.BytesIO(tgz.read_bytes())}, format="multipart"
    )
    assert response.status_code == 422
    assert response.json() == {"errors": {"stemcell": ["image: not in the tarball"]}}
    assert Task.objects.count() == before
    for kept in (settings.UPLOAD_DIR, settings.STEMCELL_LIBRARY_DIR):  # the rejected file is gone
        assert not kept.exists() or list(kept.iterdir()) == []


def test_a_bad_release_is_refused_422_naming_the_missing_key(admin_api, world, settings):
    def edit(mf):
        del mf["version"]

    tgz = build_release(world["tmp"] / "bad.tgz", edit=edit)
    before = (Task.objects.count(), ReleaseVersion.objects.count())
    response = admin_api.post(
        f"{D}/releases", {"release[file]": io.BytesIO(tgz.read_bytes())}, format="multipart"
    )
    assert response.status_code == 422
    assert response.json() == {"errors": {"release": ["release.MF: missing key 'version'"]}}
    assert (Task.objects.count(), ReleaseVersion.objects.count()) == before
    assert list(settings.UPLOAD_DIR.iterdir()) == []


def test_not_a_tarball_and_no_file(admin_api, world):
    response = admin_api.post(
        f"{D}/releases", {"release[file]": io.BytesIO(b"hello")}, format="multipart"
    )
    assert response.status_code == 422
    assert response.json()["errors"]["release"][0].startswith("not a gzip tarball")
    response = admin_api.post(f"{D}/releases", {}, format="multipart")
    assert response.status_code == 400
    assert "release[file]" in response.json()["errors"]


def test_reupload_of_an_existing_release_is_a_finished_no_op(admin_api, world):
    tgz = build_release(world["tmp"] / "r.tgz", version="0.0.10")
    response = admin_api.post(
        f"{D}/releases", {"release[file]": io.BytesIO(tgz.read_bytes())}, format="multipart"
    )
    assert response.status_code == 200
    assert response.json()["state"] == "done"
    assert response.json()["result"] == "Release 'zookeeper/0.0.10' already exists"


def test_stemcells_list_shows_cid_and_users(admin_api, world):
    body = admin_api.get(f"{D}/stemcells").json()
    assert body["count"] == 1
    assert body["results"][0] | {} == {
        "name": "bosh-vsphere-esxi-ubuntu-jammy-go_agent",
        "version": "1.0",
        "operating_system": "ubuntu-jammy",
        "cid": "sc-1",
        "api_version": None,
        "cpi": "",
        "deployments": ["zk"],
    }


def test_releases_list_shows_jobs(admin_api, world):
    body = admin_api.get(f"{D}/releases").json()
    version = body["results"][0]["release_versions"][0]
    assert version["version"] == "0.0.10" and version["currently_deployed"] is True
    assert version["jobs"][0]["name"] == "zookeeper"
    assert version["jobs"][0]["properties"] == {"client_port": {"default": 2181}}


def test_configs_versioning_and_unchanged(admin_api, world):
    url = f"{D}/configs"
    first = admin_api.post(
        url, {"type": "runtime", "name": "dns", "content": "addons: []\n"}, format="json"
    )
    assert first.status_code == 201
    same = admin_api.post(
        url, {"type": "runtime", "name": "dns", "content": "addons: []\n"}, format="json"
    )
    assert same.status_code == 200 and same.json()["message"] == "unchanged"
    assert same.json()["id"] == first.json()["id"]
    second = admin_api.post(
        url,
        {"type": "runtime", "name": "dns", "content": "addons: []\nreleases: []\n"},
        format="json",
    )
    assert second.status_code == 201 and second.json()["id"] != first.json()["id"]

    latest = admin_api.get(f"{url}?type=runtime&name=dns").json()["results"]
    assert [c["id"] for c in latest] == [second.json()["id"]]
    every = admin_api.get(f"{url}?type=runtime&name=dns&latest=false").json()["results"]
    assert [c["id"] for c in every] == [second.json()["id"], first.json()["id"]]
    assert Event.objects.filter(object_type="runtime-config", object_name="dns").count() == 2


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"name": "x", "content": "a: 1"}, {"type": ["is required"]}),
        ({"type": "cloud"}, {"content": ["is required"]}),
        ({"type": "runtime", "content": "[1, 2]"}, {"content": ["must be a YAML map"]}),
        ({"type": "runtime", "content": "a: [1"}, "content"),
        ({"type": "cpi", "content": "cpis: []"}, {"cpis": ["must list at least one CPI"]}),
        (
            {"type": "cpi", "content": "cpis: [{name: a, type: aws, properties: {}}]"},
            {"cpis/a/type": ["only 'vsphere' is supported"]},
        ),
        (
            {"type": "resurrection", "content": "rules: [{enabled: maybe}]"},
            {"rules/0/enabled": ["must be true or false"]},
        ),
    ],
)
def test_bad_configs_are_refused_naming_the_field(admin_api, world, body, errors):
    response = admin_api.post(f"{D}/configs", body, format="json")
    assert response.status_code in (400, 422)
    got = response.json()["errors"]
    if isinstance(errors, str):
        assert errors in got
    else:
        assert got == errors


def test_a_bad_cloud_config_names_the_manifest_path(admin_api, world):
    bad = yaml.safe_load(CLOUD_CONFIG)
    bad["networks"][0]["subnets"][0]["gateway"] = "192.168.1.1"
    response = admin_api.post(
        f"{D}/configs", {"type": "cloud", "content": yaml.safe_dump(bad)}, format="json"
    )
    assert response.status_code == 422
    paths = list(response.json()["errors"])
    assert any(p.startswith("networks/default/subnets/0") for p in paths), paths


def test_deployment_shows_manifest_and_instances(admin_api, world):
    body = admin_api.get(f"{D}/deployments/zk").json()
    assert body["manifest"] == "name: zk\n"
    assert body["releases"] == [{"name": "zookeeper", "version": "0.0.10"}]
    assert body["cloud_config"] == [{"id": str(world["config"].id), "name": "default"}]
    instances = admin_api.get(f"{D}/deployments/zk/instances").json()
    assert instances[0] == {
        "id": "uuid-0",
        "group": "zookeeper",
        "index": 0,
        "instance": "zookeeper/uuid-0",
        "az": "z1",
        "state": "started",
        "bootstrap": False,
        "ignore": False,
        "expects_vm": True,
        "ips": ["10.0.0.10"],
        "vm_cid": "vm-0",
        "agent_id": "agent-0",
        "disk_cids": ["disk-0"],
    }
    vms = admin_api.get(f"{D}/deployments/zk/vms").json()
    assert [v["vm_cid"] for v in vms] == ["vm-0", "vm-1"]
    assert admin_api.get(f"{D}/deployments/nope").status_code == 404
    assert admin_api.get(f"{D}/deployments/nope/instances").json() == {
        "errors": {"base": ["Deployment 'nope' does not exist"]}
    }


def test_deploy_refuses_a_manifest_fragment_naming_the_missing_parts(admin_api, world):
    response = admin_api.post(f"{D}/deployments", {"manifest": "name: zk\n"}, format="json")
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {"releases", "stemcells", "instance_groups"} <= set(errors)
    assert not Task.objects.filter(type="update_deployment").exclude(id=world["task"].id).exists()
    response = admin_api.post(f"{D}/deployments", {}, format="json")
    assert response.status_code == 400 and "manifest" in response.json()["errors"]


def test_delete_deployment_is_a_task_and_a_second_one_conflicts(admin_api, world):
    first = admin_api.delete(f"{D}/deployments/zk")
    assert first.status_code == 202
    task = Task.objects.get(id=first.json()["id"])
    assert (task.type, task.deployment_name) == ("delete_deployment", "zk")
    second = admin_api.delete(f"{D}/deployments/zk")
    assert second.status_code == 409
    assert second.json()["errors"] == {
        "deployment": [f"Deployment 'zk' is being changed by task {task.id}"]
    }
    assert admin_api.delete(f"{D}/deployments/nope").status_code == 404


def test_tasks_filters_and_timeout_on_read(admin_api, world, settings):
    from datetime import timedelta

    from django.utils import timezone

    other = runner.create_task("update_stemcell", "create stemcell", "admin")
    Task.objects.filter(id=other.id).update(
        state=TaskState.PROCESSING,
        checkpoint_time=timezone.now() - timedelta(seconds=settings.TASK_CHECKPOINT_INTERVAL * 7),
    )
    ids = [t["id"] for t in admin_api.get(f"{D}/tasks?deployment=zk").json()["results"]]
    assert ids == [world["task"].id]
    queued = admin_api.get(f"{D}/tasks?state=queued,processing").json()["results"]
    assert [t["id"] for t in queued] == [world["task"].id]  # the stale one timed out
    assert admin_api.get(f"{D}/tasks/{other.id}").json()["state"] == "timeout"
    bad = admin_api.get(f"{D}/tasks?state=bogus")
    assert bad.status_code == 422 and "state" in bad.json()["errors"]
    assert admin_api.get(f"{D}/tasks/999999").status_code == 404


def test_task_output_and_cancel(admin_api, world):
    task = world["task"]
    log = runner.EventLog(task)
    log.warning("first line")
    with log.stage("Preparing deployment", total=1).track("Binding deployment"):
        pass
    body = admin_api.get(f"{D}/tasks/{task.id}/output?type=event&after=2").json()
    assert [e["seq"] for e in body["events"]] == [3] and body["next"] == 3
    assert body["events"][0]["state"] == "finished" and body["done"] is False
    assert admin_api.get(f"{D}/tasks/{task.id}/output?type=bogus").status_code == 400

    assert admin_api.post(f"{D}/tasks/{task.id}/cancel").json()["state"] == "cancelled"
    again = admin_api.post(f"{D}/tasks/{task.id}/cancel")
    assert again.status_code == 409
    assert again.json()["errors"]["state"] == [
        f"Task {task.id} is cancelled and cannot be cancelled"
    ]


def test_events_filters_newest_first_and_paging(admin_api, world):
    for i in range(5):
        record_event("update", "deployment", "cf", deployment="cf", user="ops", context={"n": i})
    body = admin_api.get(f"{D}/events?deployment=cf&limit=2").json()
    assert [e["context"]["n"] for e in body["results"]] == [4, 3]
    following = admin_api.get(body["next"]).json()
    assert [e["context"]["n"] for e in following["results"]] == [2, 1]
    assert (
        admin_api.get(f"{D}/events?object_type=deployment&action=create").json()["results"][0][
            "object_name"
        ]
        == "zk"
    )
    assert admin_api.get(f"{D}/events?before_id=x").status_code == 400
    # times beyond any calendar, or impossible dates, are refused naming the parameter
    for query in ("after_time=999999999999999", "before_time=2026-13-45T00:00:00"):
        refused = admin_api.get(f"{D}/events?{query}")
        assert refused.status_code == 400, (query, refused.content)
        assert query.split("=")[0] in refused.json()["errors"]


def test_resurrection_toggle(admin_api, world):
    assert admin_api.get(f"{D}/resurrection").json() == {"resurrection": True}
    assert admin_api.put(
        f"{D}/resurrection", {"resurrection_paused": True}, format="json"
    ).json() == {"resurrection": False}
    assert admin_api.get(f"{D}/resurrection").json() == {"resurrection": False}
    bad = admin_api.put(f"{D}/resurrection", {"resurrection_paused": "maybe"}, format="json")
    assert bad.status_code == 400


def test_info_names_the_director(admin_api):
    body = admin_api.get(f"{D}/info").json()
    assert body["cpi"] == "vsphere_cpi" and body["user"] == "admin" and body["uuid"]


# --------------------------------------------------------------------------- query counts


def _grow(world, n):
    deployment = Deployment.objects.get(name="zk")
    add_instances(deployment, n, start=100)
    for i in range(n):
        runner.create_task("update_stemcell", f"t{i}", "admin", deployment_name="zk")
        record_event("update", "deployment", "zk", deployment="zk")
        Stemcell.objects.create(name=f"s{i}", version="1", cid=f"sc-x{i}").deployments.add(
            deployment
        )
        rv = ReleaseVersion.objects.create(
            release=Release.objects.create(name=f"r{i}"), version="1"
        )
        ReleaseJob.objects.create(release_version=rv, name="j", version="1")
        Config.objects.create(type="runtime", name=f"c{i}", content="a: 1")


@pytest.mark.parametrize(
    "url",
    [
        f"{D}/stemcells",
        f"{D}/releases",
        f"{D}/configs",
        f"{D}/deployments",
        f"{D}/deployments/zk",
        f"{D}/deployments/zk/instances",
        f"{D}/deployments/zk/vms",
        f"{D}/tasks",
        f"{D}/events",
    ],
)
def test_query_counts_stay_constant_as_rows_grow(
    admin_api, world, url, django_assert_max_num_queries
):
    admin_api.get(url)  # warm up (session, content types)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        assert admin_api.get(url).status_code == 200
    _grow(world, 12)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert admin_api.get(url).status_code == 200
