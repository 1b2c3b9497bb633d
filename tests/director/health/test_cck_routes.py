"""Cloud check routes and ``manage.py cck``: who may, what bad input gets, what task is queued.

(What the scan and the resolutions do is tested on vcsim in test_cck_vcsim.py.)
"""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from director.models import Deployment, DeploymentProblem, Instance, PersistentDisk, Task
from director.services import deployments
from opsconsole.errors import Conflict

pytestmark = pytest.mark.django_db

D = "/api/v0/director/deployments"
MANIFEST = """name: zk
releases: [{name: r, version: "1"}]
stemcells: [{alias: default, os: ubuntu-jammy, version: latest}]
update: {canaries: 1, max_in_flight: 1, canary_watch_time: 1000, update_watch_time: 1000}
instance_groups:
- {name: zk, instances: 1, azs: [z1], vm_type: small, stemcell: default, networks: [{name: default}], jobs: [{name: zk, release: r}]}
"""


@pytest.fixture
def world():
    deployment = Deployment.objects.create(name="zk", manifest_text="name: zk\n")
    inst = Instance.objects.create(deployment=deployment, group="zk", uuid="u-1", index=0)
    disk = PersistentDisk.objects.create(instance=inst, disk_cid="disk-1", size=1024, active=False)
    vm_problem = DeploymentProblem.objects.create(
        deployment=deployment,
        type="missing_vm",
        resource_id=inst.id,
        data={"instance_group": "zk", "vm_cid": "vm-1", "description": "VM for 'zk/u-1' missing."},
    )
    disk_problem = DeploymentProblem.objects.create(
        deployment=deployment, type="inactive_disk", resource_id=disk.id, data={}
    )
    DeploymentProblem.objects.create(
        deployment=deployment, type="missing_vm", resource_id=inst.id, state="closed"
    )
    return {"vm": vm_problem, "disk": disk_problem}


def cck_tasks():
    return Task.objects.filter(type__in=["cck_scan", "cck_apply_resolutions"])


def test_anonymous_gets_401(api_client, world):
    assert api_client.post(f"{D}/zk/scans").status_code == 401
    assert api_client.get(f"{D}/zk/problems").status_code == 401
    assert api_client.put(f"{D}/zk/problems", {"auto": True}, format="json").status_code == 401


@pytest.mark.parametrize("role", ["full_view", "restricted_view"])
def test_read_only_roles_may_list_but_not_scan_or_resolve(role_api, world, role):
    client = role_api(role)
    assert client.get(f"{D}/zk/problems").status_code == 200
    assert client.post(f"{D}/zk/scans").status_code == 403
    assert client.put(f"{D}/zk/problems", {"auto": True}, format="json").status_code == 403
    assert not cck_tasks().exists()


def test_open_problems_are_listed_with_boshs_resolutions(admin_api, world):
    response = admin_api.get(f"{D}/zk/problems")
    assert response.status_code == 200
    vm, disk = response.json()["results"]  # the closed one is not listed
    assert vm["id"] == world["vm"].id and vm["type"] == "missing_vm"
    assert vm["description"] == "VM for 'zk/u-1' missing." and vm["instance_group"] == "zk"
    assert vm["resolutions"][2] == {
        "name": "recreate_vm",
        "plan": "Recreate VM and wait for processes to start",
    }
    assert [r["name"] for r in disk["resolutions"]] == ["ignore", "delete_disk", "activate_disk"]


def test_a_scan_is_a_202_task(admin_api, world):
    response = admin_api.post(f"{D}/zk/scans")
    assert response.status_code == 202
    task = Task.objects.get(id=response.json()["id"])
    assert (task.type, task.deployment_name, task.description) == ("cck_scan", "zk", "scan cloud")
    assert response["Location"].endswith(f"/tasks/{task.id}")


def test_unknown_deployment_is_a_404(admin_api, db):
    assert admin_api.post(f"{D}/nope/scans").status_code == 404
    assert admin_api.get(f"{D}/nope/problems").status_code == 404
    assert admin_api.put(f"{D}/nope/problems", {"auto": True}, format="json").status_code == 404


def test_auto_picks_boshs_automatic_resolutions(admin_api, world):
    response = admin_api.put(f"{D}/zk/problems", {"auto": True}, format="json")
    assert response.status_code == 202
    task = Task.objects.get(id=response.json()["id"])
    assert task.type == "cck_apply_resolutions"
    assert task.args["resolutions"] == {
        str(world["vm"].id): "recreate_vm_without_wait",
        str(world["disk"].id): "ignore",
    }


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "resolutions"),
        ({"resolutions": []}, "resolutions"),
        ({"auto": "yes"}, "auto"),
        ({"resolutions": {"VM": "no_such_thing"}}, "resolutions.VM"),
        ({"resolutions": {"DISK": "recreate_vm"}}, "resolutions.DISK"),
    ],
)
def test_bad_bodies_are_422_naming_the_entry(admin_api, world, body, field):
    ids = {"VM": str(world["vm"].id), "DISK": str(world["disk"].id)}
    for key, value in ids.items():
        field = field.replace(key, value)
    if isinstance(body.get("resolutions"), dict):
        body = {"resolutions": {ids[k]: v for k, v in body["resolutions"].items()}}
    response = admin_api.put(f"{D}/zk/problems", body, format="json")
    assert response.status_code == 422, response.content
    assert field in response.json()["errors"]
    assert not cck_tasks().exists()


def test_a_deployment_being_changed_is_a_409(admin_api, world):
    Task.objects.create(type="update_deployment", description="deploy", deployment_name="zk")
    assert admin_api.post(f"{D}/zk/scans").status_code == 409
    assert admin_api.put(f"{D}/zk/problems", {"auto": True}, format="json").status_code == 409
    assert not cck_tasks().exists()


def test_manage_py_cck_report_fails_cleanly_for_an_unknown_deployment(db):
    with pytest.raises(CommandError, match="Deployment 'nope' does not exist"):
        call_command("cck", "nope", "--report", stdout=io.StringIO())


# --------------------------------------------------------------------------- the page


def page(deployment="zk"):
    return f"/director/vms/{deployment}/cloud-check"


@pytest.fixture
def logged_in(client, user_with_role):
    def make(role):
        client.force_login(user_with_role(role))
        return client

    return make


def test_the_page_needs_a_login(client, world):
    response = client.get(page())
    assert response.status_code == 302 and "login" in response["Location"]


def test_the_page_lists_open_problems_with_their_resolutions(logged_in, world):
    body = logged_in("admin").get(page()).content.decode()
    assert "VM for &#x27;zk/u-1&#x27; missing." in body
    assert f'name="resolution_{world["vm"].id}"' in body
    assert '<option value="recreate_vm">Recreate VM and wait for processes to start' in body
    assert "Apply resolutions" in body and 'name="scan"' in body


def test_a_read_only_role_sees_problems_but_may_not_act(logged_in, world):
    client = logged_in("full_view")
    body = client.get(page()).content.decode()
    assert "missing_vm" in body and "Apply resolutions" not in body and 'name="scan"' not in body
    response = client.post(page(), {"scan": "1"}, follow=True)
    assert "Your role may not do that." in response.content.decode()
    assert not cck_tasks().exists()


def test_scan_and_apply_from_the_page_queue_tasks(logged_in, world):
    client = logged_in("admin")
    response = client.post(page(), {"scan": "1"})
    task = Task.objects.get(type="cck_scan")
    assert response["Location"].endswith(f"/tasks/{task.id}/")
    Task.objects.filter(id=task.id).update(state="done")  # as the worker leaves it
    response = client.post(page(), {"apply": "1", f"resolution_{world['vm'].id}": "recreate_vm"})
    task = Task.objects.get(type="cck_apply_resolutions")
    assert task.args["resolutions"] == {str(world["vm"].id): "recreate_vm"}
    assert response["Location"].endswith(f"/tasks/{task.id}/")


def test_a_bad_resolution_from_the_page_comes_back_naming_it(logged_in, world):
    client = logged_in("admin")
    form = {"apply": "1", f"resolution_{world['disk'].id}": "recreate_vm"}
    body = client.post(page(), form, follow=True).content.decode()
    assert "&#x27;recreate_vm&#x27; is not a resolution of inactive_disk" in body
    assert not cck_tasks().exists()


def test_an_unknown_deployment_page_is_a_404(logged_in, db):
    assert logged_in("admin").get(page("nope")).status_code == 404


def test_a_cloud_check_task_holds_off_a_second_one_and_a_deploy(admin_api, world):
    assert admin_api.post(f"{D}/zk/scans").status_code == 202
    response = admin_api.put(f"{D}/zk/problems", {"auto": True}, format="json")
    assert response.status_code == 409
    assert "is being changed by task" in str(response.json())
    with pytest.raises(Conflict, match="being changed by task"):
        deployments.deploy(MANIFEST, "admin")
