"""Errand services and routes on a deployment row (no worker): what a caller is told.

``GET deployments/{name}/errands`` lists the errands; ``POST .../errands/{errand}/runs``
answers 202 with the queued ``run_errand`` task, or a clear error naming what is
wrong (unknown deployment or errand: 404; bad instances or flags: 422; busy: 409).
"""

import pytest
import yaml

from director import runner
from director.models import Deployment, Release, ReleaseJob, ReleaseVersion, Task
from director.services import deployments, errands
from opsconsole.errors import ServiceError

from .conftest import errand_manifest

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]

D = "/api/v0/director"


@pytest.fixture
def deployment():
    """``zk`` as last deployed: zookeeper + smoke-tests job colocated, errand group ``smoke``."""
    rv = ReleaseVersion.objects.create(
        release=Release.objects.create(name="zookeeper"), version="0.0.10"
    )
    ReleaseJob.objects.create(
        release_version=rv, name="zookeeper", version="a", spec={"templates": {"ctl": "bin/ctl"}}
    )
    ReleaseJob.objects.create(
        release_version=rv, name="smoke-tests", version="b", spec={"templates": {"r": "bin/run"}}
    )
    text = yaml.safe_dump(errand_manifest("zk", colocated=True))
    d = Deployment.objects.create(name="zk", manifest_text=text, manifest=text)
    d.release_versions.add(rv)
    return d


def test_list_errands(admin_api, deployment):
    response = admin_api.get(f"{D}/deployments/zk/errands")
    assert response.status_code == 200
    assert response.json() == [
        {
            "name": "smoke",
            "kind": "instance_group",
            "instance_groups": [{"name": "smoke", "lifecycle": "errand", "jobs": ["smoke-tests"]}],
        },
        {
            "name": "smoke-tests",
            "kind": "job",
            "instance_groups": [
                {"name": "zookeeper", "lifecycle": "service", "jobs": ["smoke-tests"]},
                {"name": "smoke", "lifecycle": "errand", "jobs": ["smoke-tests"]},
            ],
        },
    ]
    assert admin_api.get(f"{D}/deployments/nope/errands").json() == {
        "errors": {"deployment": ["Deployment 'nope' does not exist"]}
    }


def test_run_answers_202_with_the_queued_task(admin_api, deployment):
    response = admin_api.post(
        f"{D}/deployments/zk/errands/smoke-tests/runs",
        {"keep_alive": True, "instances": ["zookeeper", {"group": "smoke", "id": "0"}]},
        format="json",
    )
    assert response.status_code == 202, response.content
    task = Task.objects.get()
    assert response["Location"].endswith(f"{D}/tasks/{task.id}")
    assert response.json()["id"] == task.id
    assert (task.type, task.state, task.deployment_name, task.username) == (
        "run_errand",
        "queued",
        "zk",
        "admin",
    )
    assert task.description == "run errand smoke-tests from deployment zk"
    assert task.args == {
        "errand": "smoke-tests",
        "keep_alive": True,
        "when_changed": False,
        "instances": ["zookeeper", "smoke/0"],
    }


def test_bosh_spellings_of_the_flags(admin_api, deployment):
    response = admin_api.post(
        f"{D}/deployments/zk/errands/smoke/runs",
        {"keep-alive": True, "when-changed": True},
        format="json",
    )
    assert response.status_code == 202
    assert Task.objects.get().args["keep_alive"] is True
    assert Task.objects.get().args["when_changed"] is True


@pytest.mark.parametrize(
    "url, body, status, errors",
    [
        (
            "deployments/zk/errands/zookeeper/runs",
            {},
            404,
            {
                "errand": [
                    "Errand 'zookeeper' does not exist in deployment 'zk' "
                    "(its errands: smoke, smoke-tests)"
                ]
            },
        ),
        (
            "deployments/nope/errands/smoke/runs",
            {},
            404,
            {"deployment": ["Deployment 'nope' does not exist"]},
        ),
        (
            "deployments/zk/errands/smoke/runs",
            {"instances": ["zookeeper/0"]},
            422,
            {
                "instances/0": [
                    "'zookeeper/0': errand 'smoke' does not run on instance group "
                    "'zookeeper' (it runs on: smoke)"
                ]
            },
        ),
        (
            "deployments/zk/errands/smoke/runs",
            {"instances": "smoke"},
            422,
            {"instances": ["must be a list of group or group/id"]},
        ),
        (
            "deployments/zk/errands/smoke/runs",
            {"keep_alive": "yes please"},
            422,
            {"keep_alive": ["must be true or false"]},
        ),
    ],
)
def test_refusals_name_what_is_wrong(admin_api, deployment, url, body, status, errors):
    response = admin_api.post(f"{D}/{url}", body, format="json")
    assert response.status_code == status
    assert response.json() == {"errors": errors}
    assert not Task.objects.exists()


def test_a_deployment_being_changed_refuses_the_run(admin_api, deployment):
    busy = runner.create_task("update_deployment", "update", "admin", deployment_name="zk")
    response = admin_api.post(f"{D}/deployments/zk/errands/smoke/runs", {}, format="json")
    assert response.status_code == 409
    assert response.json() == {
        "errors": {"deployment": [f"Deployment 'zk' is being changed by task {busy.id}"]}
    }


def test_a_deployment_never_deployed_has_no_errands(deployment):
    Deployment.objects.create(name="empty")
    with pytest.raises(ServiceError) as err:
        errands.run_errand("empty", "smoke", "admin")
    assert err.value.status == 404


@pytest.mark.parametrize("method, url", [("get", "errands"), ("post", "errands/smoke/runs")])
def test_anonymous_gets_401(api_client, deployment, method, url):
    response = getattr(api_client, method)(f"{D}/deployments/zk/{url}", {}, format="json")
    assert response.status_code == 401


@pytest.mark.parametrize("role", ["full_view", "restricted_view"])
def test_read_only_roles_read_but_may_not_run(role_api, deployment, role):
    client = role_api(role)
    assert client.get(f"{D}/deployments/zk/errands").status_code == 200
    response = client.post(f"{D}/deployments/zk/errands/smoke/runs", {}, format="json")
    assert response.status_code == 403
    assert not Task.objects.exists()


def test_restricted_control_may_run(role_api, deployment):
    client = role_api("restricted_control")
    response = client.post(f"{D}/deployments/zk/errands/smoke/runs", {}, format="json")
    assert response.status_code == 202


def test_enqueue_false_creates_a_task_no_worker_is_sent(
    deployment, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        task = errands.run_errand("zk", "smoke", "admin", enqueue=False)
    assert callbacks == []
    assert task.state == "queued" and task.type == "run_errand"
    Task.objects.filter(id=task.id).update(state="done")  # else the next run is refused (409)
    with django_capture_on_commit_callbacks() as callbacks:
        errands.run_errand("zk", "smoke-tests", "admin", instances=["zookeeper"])
    assert len(callbacks) == 1


def test_a_running_errand_refuses_a_deploy_at_once(deployment):
    """A deploy during an errand run is refused naming the errand's task, not left to time out."""
    busy = runner.create_task("run_errand", "errand", "admin", deployment_name="zk")
    with pytest.raises(ServiceError) as err:
        deployments.delete_deployment("zk", "admin")
    assert err.value.status == 409
    assert err.value.errors == {
        "deployment": [f"Deployment 'zk' is being changed by task {busy.id}"]
    }
