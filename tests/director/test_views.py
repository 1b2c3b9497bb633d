"""Director pages: login required, what each page shows, the htmx fragments and 286 stop."""

import pytest

from director import runner
from director.events import record_event
from director.models import Deployment, Instance, IpAddress, Task, TaskState, Vm
from director.runner import create_task, run_task, task_handler

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def role_client(client, user_with_role):
    def make(role):
        client.force_login(user_with_role(role))
        return client

    return make


@task_handler("test_view_deploy")
def _deploy(ctx):
    stage = ctx.stage("Updating instance", tags=["zookeeper"], total=2)
    with stage.track("zookeeper/aaa (0) (canary)"):
        pass
    ctx.debug("debug line for the page")
    with stage.track("zookeeper/bbb (1)"):
        raise RuntimeError("zookeeper/bbb (1): VM creation failed")


@pytest.mark.parametrize(
    "url",
    [
        "/director/stemcells/",
        "/director/tasks/",
        "/director/vms/",
        "/director/events/",
        "/director/tasks/1/",
    ],
)
def test_pages_need_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_task_page_renders_stages_with_progress_and_the_error(admin_client):
    task = create_task("test_view_deploy", "create deployment", "admin", deployment_name="zk")
    run_task(task.id)
    page = admin_client.get(f"/director/tasks/{task.id}/").content.decode()
    assert "Updating instance" in page and "zookeeper/aaa (0) (canary)" in page
    assert 'aria-valuenow="100"' in page  # one finished + one failed of 2
    assert "Error: zookeeper/bbb (1): VM creation failed" in page
    assert 'class="badge error">error<' in page
    assert 'hx-trigger="every 1s"' not in page  # a finished task is not polled


def test_running_task_page_polls_and_fragment_appends_new_events(admin_client):
    task = create_task("test_view_deploy", "create deployment", "admin")
    Task.objects.filter(id=task.id).update(state=TaskState.PROCESSING)
    log = runner.EventLog(task)
    stage = log.stage("Creating missing vms", total=2)
    with stage.track("zookeeper/aaa (0)"):
        pass

    page = admin_client.get(f"/director/tasks/{task.id}/").content.decode()
    assert f'hx-get="/director/tasks/{task.id}/?type=event&amp;after=2"' in page
    assert 'hx-trigger="every 1s"' in page

    nothing_new = admin_client.get(f"/director/tasks/{task.id}/?type=event&after=2", **HTMX)
    assert nothing_new.status_code == 200
    body = nothing_new.content.decode()
    assert "<html" not in body and 'id="task-poller"' in body and "task-stages" not in body

    with stage.track("zookeeper/bbb (1)"):
        pass
    fragment = admin_client.get(f"/director/tasks/{task.id}/?type=event&after=2", **HTMX)
    body = fragment.content.decode()
    assert fragment.status_code == 200
    assert 'hx-swap-oob="beforeend:#task-lines"' in body
    assert (
        "3 " in body
        and "zookeeper/bbb (1)" in body
        and "zookeeper/aaa (0)" not in body.split("task-lines")[1]
    )
    assert "after=4" in body  # the next poll starts after the last event
    assert 'aria-valuenow="100"' in body  # the stage re-rendered: 2/2


def test_terminal_task_fragment_answers_286(admin_client):
    task = create_task("test_view_deploy", "x", "admin")
    run_task(task.id)
    response = admin_client.get(f"/director/tasks/{task.id}/?type=event&after=0", **HTMX)
    assert response.status_code == 286
    body = response.content.decode()
    assert (
        'class="badge error">error<' in body
        and "hx-trigger" not in body.split('id="task-poller"')[1].split(">")[0]
    )


def test_debug_tab_appends_by_offset_and_is_hidden_from_restricted_roles(admin_client, role_client):
    task = create_task("test_view_deploy", "x", "admin")
    Task.objects.filter(id=task.id).update(state=TaskState.PROCESSING)
    ctx = runner.TaskContext(Task.objects.get(id=task.id))
    ctx.debug("first line")
    page = admin_client.get(f"/director/tasks/{task.id}/?type=debug").content.decode()
    assert "first line" in page
    size = (runner.task_dir(task.id) / "debug").stat().st_size
    ctx.debug("second line")
    fragment = admin_client.get(
        f"/director/tasks/{task.id}/?type=debug&after={size}", **HTMX
    ).content.decode()
    assert "second line" in fragment and "first line" not in fragment
    assert 'hx-swap-oob="beforeend:#task-log"' in fragment

    restricted = role_client("restricted_control")
    page = restricted.get(f"/director/tasks/{task.id}/?type=debug").content.decode()
    assert "may not read the debug log" in page and "first line" not in page


def test_tasks_page_lists_with_state_badges_and_filters(admin_client):
    done = create_task("test_view_deploy", "deploy zk", "admin", deployment_name="zk")
    Task.objects.filter(id=done.id).update(state=TaskState.DONE)
    create_task("test_view_deploy", "deploy cf", "admin", deployment_name="cf")
    page = admin_client.get("/director/tasks/").content.decode()
    assert "deploy zk" in page and "deploy cf" in page and 'class="badge done">done<' in page
    fragment = admin_client.get("/director/tasks/?state=done", **HTMX).content.decode()
    assert "<html" not in fragment and "deploy zk" in fragment and "deploy cf" not in fragment


def test_events_page_and_fragment_filter(admin_client):
    with_parent = record_event("create", "deployment", "zk", user="ops", deployment="zk")
    record_event(
        "create", "deployment", "zk", user="ops", deployment="zk", parent=with_parent, error="boom"
    )
    record_event("update", "cloud-config", "default", user="ops")
    page = admin_client.get("/director/events/").content.decode()
    assert f"&larr; {with_parent.id}" in page and "boom" in page and "cloud-config" in page
    fragment = admin_client.get(
        "/director/events/?object_type=cloud-config", **HTMX
    ).content.decode()
    assert "<html" not in fragment and "cloud-config" in fragment and "boom" not in fragment


def test_vms_page_shows_instances_from_the_database(admin_client):
    deployment = Deployment.objects.create(name="zk")
    inst = Instance.objects.create(
        deployment=deployment, group="zookeeper", uuid="u-1", index=0, az="z1", bootstrap=True
    )
    vm = Vm.objects.create(instance=inst, cid="vm-123", agent_id="a-1", active=True)
    IpAddress.objects.create(address="10.0.0.5", network_name="default", instance=inst, vm=vm)
    page = admin_client.get("/director/vms/?deployment=zk").content.decode()
    assert "zookeeper/u-1 (0)" in page and "vm-123" in page and "10.0.0.5" in page and "z1" in page
    fragment = admin_client.get("/director/vms/?deployment=zk", **HTMX).content.decode()
    assert "<html" not in fragment and "vm-123" in fragment
