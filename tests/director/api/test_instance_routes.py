"""``bosh logs`` and instance actions from the API, the VMs page and ``manage.py``: who may,
what bad input gets, what task is queued. (What the tasks do is tested on vcsim with the real
agents in tests/director/execution/test_operations_vcsim.py.)"""

from __future__ import annotations

import io
import json
import uuid

import pytest
from django.core.management import CommandError, call_command

from director import runner
from director.blobstore import blobstore
from director.models import Deployment, Instance, ReleaseJob, Task, Vm

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]

D = "/api/v0/director"
MANIFEST = """name: web
instance_groups:
- {name: web, instances: 2, jobs: [{name: web, release: r}]}
- {name: smoke, lifecycle: errand, instances: 1, jobs: [{name: smoke, release: r}]}
"""


@pytest.fixture
def world():
    deployment = Deployment.objects.create(name="web", manifest_text=MANIFEST, manifest=MANIFEST)
    web = []
    for index in range(2):
        inst = Instance.objects.create(
            deployment=deployment, group="web", uuid=str(uuid.uuid4()), index=index
        )
        Vm.objects.create(
            instance=inst, cid=f"vm-{inst.uuid}", agent_id=str(uuid.uuid4()), active=True
        )
        web.append(inst)
    smoke = Instance.objects.create(
        deployment=deployment, group="smoke", uuid=str(uuid.uuid4()), index=0
    )
    return {"deployment": deployment, "web": web, "smoke": smoke}


def _bundle(content: bytes = b"a tgz") -> str:
    ref = blobstore().put(io.BytesIO(content))
    Task.objects.create(
        type="fetch_logs",
        description="fetch job logs",
        state="done",
        deployment_name="web",
        result_output=json.dumps({"blob": ref.id, "sha1": ref.sha1}) + "\n",
    )
    return ref.id


def action_url(world, ident=None) -> str:
    web = world["web"][0]
    return f"{D}/deployments/web/instances/web/{ident or web.uuid}/actions"


# --------------------------------------------------------------------------- who may


def test_anonymous_gets_401(api_client, world):
    blob = _bundle()
    assert api_client.post(f"{D}/deployments/web/logs", {}, format="json").status_code == 401
    assert api_client.get(f"{D}/resources/{blob}").status_code == 401
    body = {"action": "stop"}
    assert api_client.post(action_url(world), body, format="json").status_code == 401


@pytest.mark.parametrize("role", ["full_view", "restricted_view"])
def test_read_only_roles_may_not_act_or_fetch_logs(role_api, world, role):
    client = role_api(role)
    assert client.post(action_url(world), {"action": "stop"}, format="json").status_code == 403
    assert client.post(f"{D}/deployments/web/logs", {}, format="json").status_code == 403
    assert not Task.objects.filter(type__in=["change_instance_state", "fetch_logs"]).exists()


def test_logs_need_a_role_that_sees_credentials(role_api, world):
    blob = _bundle(b"job logs with secrets")
    restricted = role_api("restricted_control")
    assert restricted.post(f"{D}/deployments/web/logs", {}, format="json").status_code == 403
    assert restricted.get(f"{D}/resources/{blob}").status_code == 403
    assert role_api("restricted_view").get(f"{D}/resources/{blob}").status_code == 403
    # restricted_control may still act on instances
    response = restricted.post(action_url(world), {"action": "restart"}, format="json")
    assert response.status_code == 202
    download = role_api("full_view").get(f"{D}/resources/{blob}")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"job logs with secrets"


# --------------------------------------------------------------------------- instance actions


def test_an_action_is_a_task_with_its_location(admin_api, world):
    web = world["web"][1]
    response = admin_api.post(
        f"{D}/deployments/web/instances/web/{web.index}/actions",
        {"action": "stop", "hard": True},
        format="json",
    )
    assert response.status_code == 202
    task = Task.objects.get(id=response.json()["id"])
    assert response["Location"].endswith(f"{D}/tasks/{task.id}")
    assert task.type == "change_instance_state" and task.deployment_name == "web"
    assert task.description == f"stop --hard instance web/{web.index}"
    assert task.args == {"action": "stop", "hard": True, "group": "web", "instances": [web.uuid]}


def test_a_group_action_acts_on_each_instance_of_the_group(admin_api, world):
    response = admin_api.post(
        f"{D}/deployments/web/instances/web/actions", {"action": "recreate"}, format="json"
    )
    assert response.status_code == 202
    task = Task.objects.get(id=response.json()["id"])
    assert task.args["instances"] == [i.uuid for i in world["web"]]


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({}, "action", "must be one of start, stop, restart, recreate"),
        ({"action": "reboot"}, "action", "must be one of"),
        ({"action": "start", "hard": True}, "hard", "only 'stop' takes hard"),
        ({"action": "stop", "hard": "yes"}, "hard", "must be true or false"),
    ],
)
def test_bad_action_bodies_are_422_naming_the_field(admin_api, world, body, field, message):
    response = admin_api.post(action_url(world), body, format="json")
    assert response.status_code == 422
    assert message in " ".join(response.json()["errors"][field])
    assert not Task.objects.exists()


def test_unknown_deployment_group_or_instance_is_404(admin_api, world):
    body = {"action": "stop"}
    response = admin_api.post(f"{D}/deployments/nope/instances/web/0/actions", body, format="json")
    assert response.status_code == 404 and "deployment" in response.json()["errors"]
    response = admin_api.post(f"{D}/deployments/web/instances/db/0/actions", body, format="json")
    assert response.status_code == 404
    assert (
        "no instance group 'db' (its groups: smoke, web)"
        in response.json()["errors"]["instance"][0]
    )
    response = admin_api.post(f"{D}/deployments/web/instances/web/7/actions", body, format="json")
    assert response.status_code == 404
    assert "no instance 'web/7'" in response.json()["errors"]["instance"][0]
    assert not Task.objects.exists()


def test_an_errand_group_has_no_vms_to_act_on(admin_api, world):
    smoke = world["smoke"]
    response = admin_api.post(
        f"{D}/deployments/web/instances/smoke/{smoke.uuid}/actions",
        {"action": "start"},
        format="json",
    )
    assert response.status_code == 422
    assert "is an errand" in response.json()["errors"]["instance"][0]


def test_a_second_change_while_one_is_queued_is_409_naming_it(admin_api, world):
    first = admin_api.post(action_url(world), {"action": "restart"}, format="json")
    assert first.status_code == 202
    second = admin_api.post(action_url(world), {"action": "stop"}, format="json")
    assert second.status_code == 409
    assert f"being changed by task {first.json()['id']}" in second.json()["errors"]["deployment"][0]
    # deploys, deletes and errands ask the same question before they queue
    assert runner.changing_task("web").id == first.json()["id"]


# --------------------------------------------------------------------------- logs


def test_fetch_logs_is_a_task_for_the_instances_named(admin_api, world):
    a, b = world["web"]
    response = admin_api.post(
        f"{D}/deployments/web/logs",
        {"instances": [f"web/{b.uuid}"], "type": "agent"},
        format="json",
    )
    assert response.status_code == 202
    task = Task.objects.get(id=response.json()["id"])
    assert task.type == "fetch_logs"
    assert task.args == {"instances": [b.uuid], "log_type": "agent", "filters": None}
    response = admin_api.post(f"{D}/deployments/web/logs", {}, format="json")
    assert Task.objects.get(id=response.json()["id"]).args["instances"] == [
        world["smoke"].uuid,
        a.uuid,
        b.uuid,
    ]


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"type": "system"}, "type", "must be one of job, agent"),
        ({"instances": ["web/9"]}, "instances/0", "no instance 'web/9'"),
        ({"instances": ["db"]}, "instances/0", "no instance group 'db'"),
        ({"instances": [3]}, "instances/0", "must be group or group/id"),
        ({"instances": "web"}, "instances", "must be a list"),
        ({"filters": "*.log"}, "filters", "must be a list of glob patterns"),
    ],
)
def test_bad_logs_requests_are_422_naming_the_field(admin_api, world, body, field, message):
    response = admin_api.post(f"{D}/deployments/web/logs", body, format="json")
    assert response.status_code == 422
    assert message in " ".join(response.json()["errors"][field])
    assert not Task.objects.exists()


def test_resources_serve_only_logs_bundles(admin_api, world):
    blob = _bundle(b"bundle bytes")
    response = admin_api.get(f"{D}/resources/{blob}")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="logs-{blob}.tgz"'
    assert b"".join(response.streaming_content) == b"bundle bytes"
    # a blob that exists but that no fetch_logs task produced (a release job, say)
    other = blobstore().put(io.BytesIO(b"release job")).id
    assert admin_api.get(f"{D}/resources/{other}").status_code == 404
    assert admin_api.get(f"{D}/resources/not-a-blob").status_code == 404
    blobstore().delete(blob)
    response = admin_api.get(f"{D}/resources/{blob}")
    assert response.status_code == 404
    assert "no longer in the blobstore" in response.json()["errors"]["blob"][0]
    assert not ReleaseJob.objects.exists()


# --------------------------------------------------------------------------- the VMs page


@pytest.fixture
def no_vcenter(settings, tmp_path):
    settings.LOCAL_VCSIM_FILE = tmp_path / "no-vcsim.json"


def test_vms_page_buttons_post_and_confirm(client, admin_user, world, no_vcenter):
    client.force_login(admin_user)
    html = client.get("/director/vms/").content.decode()
    web = world["web"][0]
    base = f"/director/vms/web/web/{web.uuid}"
    for action in ("logs", "stop", "restart", "recreate", "stop-hard"):
        assert f'action="{base}/{action}"' in html
    assert "<script" not in html.split("<main", 1)[-1].split("</main>", 1)[0]
    for action, words in (
        ("stop", "Its VM stays"),
        ("recreate", "same IPs, same persistent disk"),
        ("stop-hard", "delete its VM"),
    ):
        form = html.split(f'action="{base}/{action}"', 1)[1].split(">", 1)[0]
        assert "data-confirm=" in form and words in form, action
    assert f"/director/vms/web/smoke/{world['smoke'].uuid}/" not in html  # no VM: no button
    response = client.post(f"{base}/recreate")
    task = Task.objects.get(type="change_instance_state")
    assert response.status_code == 302 and response["Location"] == f"/director/tasks/{task.id}/"
    assert task.args["action"] == "recreate" and task.args["instances"] == [web.uuid]


def test_vms_page_refusals_come_back_as_messages(client, admin_user, world, no_vcenter):
    client.force_login(admin_user)
    smoke = world["smoke"]
    response = client.post(f"/director/vms/web/smoke/{smoke.uuid}/start", follow=True)
    assert "is an errand" in response.content.decode()
    assert client.post("/director/vms/web/web/0/reboot").status_code == 404
    assert not Task.objects.exists()


def test_vms_page_read_only_roles_see_no_buttons_and_may_not_post(
    client, user_with_role, world, no_vcenter
):
    client.force_login(user_with_role("full_view"))
    html = client.get("/director/vms/").content.decode()
    assert "/stop-hard" not in html and "<th>Actions</th>" not in html
    web = world["web"][0]
    response = client.post(f"/director/vms/web/web/{web.uuid}/stop", follow=True)
    assert "Your role may not do that." in response.content.decode()
    assert not Task.objects.exists()


def test_task_page_links_the_logs_bundle(client, admin_user, world):
    client.force_login(admin_user)
    blob = _bundle()
    task = Task.objects.get(type="fetch_logs")
    html = client.get(f"/director/tasks/{task.id}/").content.decode()
    assert f'href="{D}/resources/{blob}"' in html


# --------------------------------------------------------------------------- manage.py


def test_manage_py_actions_and_logs(world):
    web = world["web"][1]
    out = io.StringIO()
    call_command("stop", "web", f"web/{web.uuid}", "--hard", "--no-wait", stdout=out)
    task = Task.objects.get(type="change_instance_state")
    assert task.args == {"action": "stop", "hard": True, "group": "web", "instances": [web.uuid]}
    assert f"Task {task.id} queued: stop --hard instance web/{web.uuid}" in out.getvalue()
    with pytest.raises(CommandError, match="no instance 'web/5'"):
        call_command("recreate", "web", "web/5", "--no-wait", stdout=out)
    with pytest.raises(CommandError, match="type: must be one of job, agent|no instance group"):
        call_command("logs", "web", "db/0", stdout=out)
