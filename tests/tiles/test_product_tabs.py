"""A tile's Status and Logs tabs (Ops Manager's), and the status API's vitals.

The director side is seeded as a deploy leaves it (a deployment named by the
tile's guid, instances with VMs and IPs) and heartbeats are recorded as the
agent listener records them, so the tab shows what an agent really reports.
What the ``fetch_logs`` task does with real agents is tested on vcsim
(tests/director/execution/test_operations_vcsim.py); here the tab's side:
who may start one, what task it queues, its progress and its download link.
"""

from __future__ import annotations

import io
import json

import pytest
from django.urls import reverse

from director.agents.listener import record
from director.blobstore import blobstore
from director.models import Deployment, Instance, IpAddress, Task, TaskEvent, Vm
from tests.director.heartbeats import VITALS
from tiles import services

pytestmark = pytest.mark.django_db

API = "/api/v0"


@pytest.fixture
def deployed(small, stemcell, small_release):
    sp = services.get_staged_product(small.guid)
    services._mark_deployed(sp, services.manifest_yaml(services.render_manifest(sp)))
    return services.get_staged_product(sp.guid)


@pytest.fixture
def instances(deployed):
    """web/0 heartbeating, web/1 with a VM that never beat, the errand without a VM."""
    deployment = Deployment.objects.create(name=deployed.guid, manifest_text="name: x\n")
    out = []
    for i in range(2):
        inst = Instance.objects.create(
            deployment=deployment, group="web", uuid=f"web-uuid-{i}", index=i, az=f"az{i + 1}"
        )
        vm = Vm.objects.create(instance=inst, cid=f"vm-{i}", agent_id=f"agent-{i}", active=True)
        IpAddress.objects.create(
            address=f"10.0.0.{10 + i}", network_name="infra", instance=inst, vm=vm
        )
        out.append(inst)
    Instance.objects.create(deployment=deployment, group="check", uuid="check-uuid", index=0)
    payload = {
        "deployment": deployed.guid,
        "job": "web",
        "index": 0,
        "job_state": "running",
        "node_id": "web-uuid-0",
        "number_of_processes": 1,
        "vitals": VITALS,
        "processes": [{"name": "web", "state": "running"}],
    }
    record("hm.agent.heartbeat.agent-0", json.dumps(payload).encode())
    return out


def _login(client, user_with_role, role):
    client.force_login(user_with_role(role))
    return client


# --------------------------------------------------------------------------- Status


def test_status_tab_shows_each_instance_with_its_vitals(instances, deployed, client, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("product-status", args=[deployed.guid]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'aria-current="page" class="active">Status</a>' in html
    assert 'data-instance="web/web-uuid-0"' in html and 'data-instance="web/web-uuid-1"' in html
    assert "check-uuid" not in html  # an errand without a VM is not listed (bosh vms)
    row0 = html[html.index('id="status-web-uuid-0"') : html.index('id="status-web-uuid-1"')]
    for text in ("az1", "10.0.0.10", "vm-0", "0.25, 0.50, 0.75", "12.5% user", "26% (1.0"):
        assert text in row0, text
    assert "system 45% (inodes 30%)" in row0 and "ephemeral 21%" in row0
    assert ">running</span>" in row0 and "never" not in row0
    row1 = html[html.index('id="status-web-uuid-1"') :]
    assert "unresponsive agent" in row1 and ">never<" in row1
    # each instance's logs: a button that starts its log download
    assert 'name="instances" value="web/web-uuid-0"' in row0
    # the table refreshes itself: an htmx request gets the table alone
    frag = client.get(
        reverse("product-status", args=[deployed.guid]) + "?fragment=table", HTTP_HX_REQUEST="true"
    )
    assert frag.content.decode().startswith('<div id="status-table"')
    assert "0.25, 0.50, 0.75" in frag.content.decode()


def test_status_api_carries_the_vitals_in_ops_managers_shape(instances, deployed, admin_api):
    body = admin_api.get(f"{API}/deployed/products/{deployed.guid}/status")
    assert body.status_code == 200
    rows = {r["id"]: r for r in body.json()["status"]}
    assert set(rows) == {"web-uuid-0", "web-uuid-1"}
    web0 = rows["web-uuid-0"]
    assert web0["job-name"] == "web" and web0["az_name"] == "az1" and web0["ips"] == ["10.0.0.10"]
    assert web0["load_avg"] == ["0.25", "0.50", "0.75"]
    assert web0["cpu"] == {"sys": "1.5", "user": "12.5", "wait": "0.2"}
    assert web0["memory"] == {"kb": "1048576", "percent": "26"}
    assert web0["system_disk"] == {"inode_percent": "30", "percent": "45"}
    assert web0["persistent_disk"] == {"inode_percent": "1", "percent": "7"}
    assert web0["process_state"] == "running" and web0["last_heartbeat"]
    assert rows["web-uuid-1"]["cpu"] is None
    assert rows["web-uuid-1"]["process_state"] == "unresponsive agent"


def test_a_tile_never_deployed_says_so_on_both_tabs(small, client, admin_user):
    client.force_login(admin_user)
    for name in ("product-status", "product-logs"):
        page = client.get(reverse(name, args=[small.guid]))
        assert page.status_code == 200
        assert 'id="not-deployed"' in page.content.decode()
        assert "is not deployed yet" in page.content.decode()
    refused = client.post(reverse("product-logs", args=[small.guid]), {"instances": ""})
    assert refused.status_code == 409
    assert "not deployed yet" in refused.content.decode()
    assert not Task.objects.exists()


def test_the_settings_page_links_every_tab(deployed, client, admin_user):
    client.force_login(admin_user)
    html = client.get(reverse("product", args=[deployed.guid]), follow=True).content.decode()
    for name in ("product-status", "product-credentials", "product-logs"):
        assert f'href="{reverse(name, args=[deployed.guid])}"' in html


def test_unknown_product_is_404(client, admin_user, db):
    client.force_login(admin_user)
    assert client.get(reverse("product-status", args=["nope-1"])).status_code == 404
    assert client.get(reverse("product-logs", args=["nope-1"])).status_code == 404


# --------------------------------------------------------------------------- Logs


def test_a_log_request_queues_fetch_logs_and_shows_it(instances, deployed, client, admin_user):
    client.force_login(admin_user)
    url = reverse("product-logs", args=[deployed.guid])
    page = client.get(url).content.decode()
    for value in ('value=""', 'value="web"', 'value="web/web-uuid-1"'):
        assert value in page
    res = client.post(url, {"instances": "web/web-uuid-1", "type": "agent"})
    task = Task.objects.get(type="fetch_logs")
    assert res.status_code == 302 and res["Location"].startswith(f"{url}?task={task.id}")
    assert task.deployment_name == deployed.guid
    assert task.args["instances"] == ["web-uuid-1"] and task.args["log_type"] == "agent"
    html = client.get(res["Location"]).content.decode()
    assert f'id="log-task-{task.id}"' in html and "hx-trigger" in html
    assert "not ready" in html

    client.post(url, {"instances": ""})
    whole = Task.objects.filter(type="fetch_logs").order_by("-id").first()
    assert sorted(whole.args["instances"]) == ["check-uuid", "web-uuid-0", "web-uuid-1"]


def test_a_bad_log_request_names_the_field(instances, deployed, client, admin_user):
    client.force_login(admin_user)
    url = reverse("product-logs", args=[deployed.guid])
    res = client.post(url, {"instances": "nope/7"})
    assert res.status_code == 422
    assert "instances/0" in res.content.decode()
    res = client.post(url, {"instances": "web", "type": "kernel"})
    assert res.status_code == 422 and "type: must be one of job, agent" in res.content.decode()
    assert not Task.objects.exists()


def _progress(task, finished: int, total: int = 2) -> None:
    for i in range(1, finished + 1):
        TaskEvent.objects.create(
            task=task,
            seq=i,
            data={"stage": "Fetching logs", "total": total, "index": i, "state": "finished"},
        )


def test_a_running_log_task_polls_its_progress_then_offers_the_tgz(
    instances, deployed, client, admin_user
):
    client.force_login(admin_user)
    url = reverse("product-logs", args=[deployed.guid])
    client.post(url, {"instances": "web"})
    task = Task.objects.get(type="fetch_logs")
    Task.objects.filter(id=task.id).update(state="processing")
    _progress(task, 1)
    poll = client.get(f"{url}?task={task.id}", HTTP_HX_REQUEST="true")
    assert poll.status_code == 200
    row = poll.content.decode()
    assert "1 of 2 instances" in row and 'aria-valuenow="50"' in row and "hx-trigger" in row

    ref = blobstore().put(io.BytesIO(b"the bundle"))
    Task.objects.filter(id=task.id).update(
        state="done", result_output=json.dumps({"blob": ref.id, "sha1": ref.sha1}) + "\n"
    )
    done = client.get(f"{url}?task={task.id}", HTTP_HX_REQUEST="true")
    assert done.status_code == 286  # htmx stops polling
    row = done.content.decode()
    link = f'href="{API}/director/resources/{ref.id}"'
    assert link in row and "hx-trigger" not in row
    download = client.get(f"{API}/director/resources/{ref.id}")
    assert b"".join(download.streaming_content) == b"the bundle"


def test_a_failed_log_task_says_why(instances, deployed, client, admin_user):
    client.force_login(admin_user)
    url = reverse("product-logs", args=[deployed.guid])
    client.post(url, {"instances": "web"})
    task = Task.objects.get(type="fetch_logs")
    Task.objects.filter(id=task.id).update(
        state="error", result="None of the instances has a VM to fetch logs from"
    )
    res = client.get(f"{url}?task={task.id}", HTTP_HX_REQUEST="true")
    assert res.status_code == 286
    assert "None of the instances has a VM" in res.content.decode()


def test_another_tiles_task_is_not_polled_here(instances, deployed, client, admin_user):
    client.force_login(admin_user)
    other = Task.objects.create(type="fetch_logs", description="x", deployment_name="other")
    url = reverse("product-logs", args=[deployed.guid])
    assert client.get(f"{url}?task={other.id}", HTTP_HX_REQUEST="true").status_code == 404


@pytest.mark.parametrize("role", ["full_view", "restricted_view", "restricted_control"])
def test_roles_that_may_not_fetch_logs_get_no_button_and_403(
    instances, deployed, client, user_with_role, role
):
    _login(client, user_with_role, role)
    url = reverse("product-logs", args=[deployed.guid])
    html = client.get(url).content.decode()
    assert 'id="fetch-logs"' not in html
    status = client.get(reverse("product-status", args=[deployed.guid])).content.decode()
    assert "Download logs</button>" not in status
    assert client.post(url, {"instances": ""}).status_code == 403
    assert not Task.objects.exists()


def test_restricted_roles_see_no_download_link(instances, deployed, client, user_with_role):
    ref = blobstore().put(io.BytesIO(b"the bundle"))
    Task.objects.create(
        type="fetch_logs",
        description="fetch job logs of all instances",
        state="done",
        deployment_name=deployed.guid,
        result_output=json.dumps({"blob": ref.id}) + "\n",
    )
    _login(client, user_with_role, "restricted_control")
    html = client.get(reverse("product-logs", args=[deployed.guid])).content.decode()
    assert "fetch job logs of all instances" in html
    assert ref.id not in html and "your role may not download it" in html


def test_anonymous_is_sent_to_login(deployed, client):
    for name in ("product-status", "product-logs"):
        res = client.get(reverse(name, args=[deployed.guid]))
        assert res.status_code == 302 and "login" in res["Location"]


# --------------------------------------------------------------------------- Ops Manager's logs API


def _job_guid(admin_api, guid: str, name: str) -> str:
    jobs = admin_api.get(f"{API}/staged/products/{guid}/jobs").json()["jobs"]
    return next(j["guid"] for j in jobs if j["name"] == name)


def test_the_logs_api_fetches_lists_and_serves_a_jobs_logs(instances, deployed, admin_api):
    job = _job_guid(admin_api, deployed.guid, "web")
    url = f"{API}/deployed/products/{deployed.guid}/jobs/{job}/logs"
    res = admin_api.post(url)
    assert res.status_code == 202, res.content
    task = Task.objects.get(id=int(res.json()["id"]))
    assert res["Location"].endswith(f"/api/v0/director/tasks/{task.id}")
    assert sorted(task.args["instances"]) == ["web-uuid-0", "web-uuid-1"]
    listed = admin_api.get(url).json()["tasks"]
    assert [(t["guid"], t["status"]) for t in listed] == [(str(task.id), "downloading")]
    assert admin_api.get(f"{url}/{task.id}").status_code == 404  # not ready yet

    ref = blobstore().put(io.BytesIO(b"web logs"))
    Task.objects.filter(id=task.id).update(
        state="done", result_output=json.dumps({"blob": ref.id}) + "\n"
    )
    assert admin_api.get(url).json()["tasks"][0]["status"] == "downloaded"
    bundle = admin_api.get(f"{url}/{task.id}")
    assert bundle.status_code == 200 and bundle["Content-Type"] == "application/gzip"
    assert b"".join(bundle.streaming_content) == b"web logs"
    # a download of the whole tile is no one job's; another job lists none of these
    admin_api.post(f"{API}/director/deployments/{deployed.guid}/logs", {}, format="json")
    assert len(admin_api.get(url).json()["tasks"]) == 1
    check = _job_guid(admin_api, deployed.guid, "check")
    check_url = f"{API}/deployed/products/{deployed.guid}/jobs/{check}/logs"
    assert admin_api.get(check_url).json()["tasks"] == []
    assert admin_api.get(f"{check_url}/{task.id}").status_code == 404


def test_the_logs_api_refuses_what_it_should(instances, deployed, role_api):
    viewer = role_api("restricted_control")
    url = f"{API}/deployed/products/{deployed.guid}/jobs/web/logs"
    assert viewer.post(url).status_code == 403 and viewer.get(url).status_code == 403
    assert role_api("full_view").post(url).status_code == 403
    assert not Task.objects.exists()
    admin = role_api("admin")
    assert admin.post(f"{API}/deployed/products/{deployed.guid}/jobs/nope/logs").status_code == 404
    assert admin.post(f"{API}/deployed/products/nope-1/jobs/web/logs").status_code == 404
    assert not Task.objects.exists()


def test_status_queries_stay_constant_as_instances_grow(
    instances, deployed, client, admin_user, django_assert_max_num_queries
):
    client.force_login(admin_user)
    url = reverse("product-status", args=[deployed.guid])
    client.get(url)  # warm up
    with django_assert_max_num_queries(40) as few:
        client.get(url)
    deployment = Deployment.objects.get(name=deployed.guid)
    for i in range(2, 12):
        inst = Instance.objects.create(
            deployment=deployment, group="web", uuid=f"web-uuid-{i}", index=i, az="az1"
        )
        Vm.objects.create(instance=inst, cid=f"vm-{i}", agent_id=f"agent-{i}", active=True)
        record(
            f"hm.agent.heartbeat.agent-{i}",
            json.dumps({"job": "web", "index": i, "job_state": "running", "vitals": {}}).encode(),
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(url).content.decode()
    assert page.count('data-instance="web/') == 12
