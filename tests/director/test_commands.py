"""The operators' manage.py commands, with tasks run by Celery in eager mode."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from director.events import record_event
from director.models import Config, Deployment, Instance, ReleaseVersion, Task, Vm
from tests.director.builders import build_release

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("director_dirs")]


@pytest.fixture
def eager():
    """Celery runs the task inline when it is queued (on commit): unit tests only."""
    from opsconsole.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_upload_release_follows_the_task_with_progress(eager, tmp_path):
    output = run("upload-release", str(build_release(tmp_path / "zk.tgz")))
    task = Task.objects.get(type="update_release")
    assert f"Task {task.id} | " in output
    assert "Creating new packages: java/" in output and "1/2 finished (50% of stage)" in output
    assert output.rstrip().endswith(f"Task {task.id} done: Created release 'zookeeper/0.0.10'")
    assert ReleaseVersion.objects.filter(version="0.0.10").exists()

    again = run("upload-release", str(build_release(tmp_path / "zk.tgz")))
    assert again.strip() == "Release 'zookeeper/0.0.10' already exists"


def test_a_bad_release_fails_the_command_with_the_reason(tmp_path):
    def edit(mf):
        del mf["jobs"][0]["sha1"]

    with pytest.raises(
        CommandError, match=r"release: release.MF: jobs/zookeeper: missing key 'sha1'"
    ):
        run("upload-release", str(build_release(tmp_path / "bad.tgz", edit=edit)))
    assert not Task.objects.exists()
    with pytest.raises(CommandError, match="no such file"):
        run("upload-release", str(tmp_path / "missing.tgz"))


def test_a_failing_task_fails_the_command(eager, settings, tmp_path):
    from tests.director.builders import build_stemcell_tgz

    settings.LOCAL_VCSIM_FILE = tmp_path / "absent.json"  # no vCenter at all
    with pytest.raises(CommandError, match=r"Task \d+ error: no vCenter configured") as err:
        run("upload-stemcell", str(build_stemcell_tgz(tmp_path / "s.tgz")))
    assert err.value.returncode == 1


def test_update_config_and_unchanged(tmp_path):
    path = tmp_path / "runtime.yml"
    path.write_text("addons: []\n")
    assert "updated" in run("update-config", "--type", "runtime", "--name", "dns", str(path))
    assert "unchanged" in run("update-config", "--type", "runtime", "--name", "dns", str(path))
    assert Config.objects.filter(type="runtime", name="dns").count() == 1
    path.write_text("- not a map\n")
    with pytest.raises(CommandError, match="content: must be a YAML map"):
        run("update-config", "--type", "runtime", str(path))


def test_tasks_task_and_its_logs(eager, tmp_path):
    run("upload-release", str(build_release(tmp_path / "zk.tgz")))
    task = Task.objects.get()
    listing = run("tasks")
    assert "ID" in listing.splitlines()[0] and f"{task.id}" in listing and "done" in listing
    assert run("tasks", "--state", "error").count("\n") == 2  # headers only
    events = [json.loads(line) for line in run("task", str(task.id), "--event").splitlines()]
    assert events[0]["stage"] == "Extracting release"
    assert "Starting task" in run("task", str(task.id), "--debug")
    assert json.loads(run("task", str(task.id), "--result")) == {
        "name": "zookeeper",
        "version": "0.0.10",
    }
    assert f"Task {task.id} done" in run("task", str(task.id))
    with pytest.raises(CommandError, match="Task 999999 does not exist"):
        run("task", "999999")


def test_events_and_instances():
    start = record_event("create", "deployment", "zk", user="ops", deployment="zk")
    record_event("create", "deployment", "zk", user="ops", deployment="zk", parent=start)
    out = run("events", "--deployment", "zk")
    assert f"<- {start.id}" in out and "deployment" in out

    deployment = Deployment.objects.create(name="zk")
    inst = Instance.objects.create(
        deployment=deployment, group="zookeeper", uuid="u1", index=0, az="z1", bootstrap=True
    )
    Vm.objects.create(instance=inst, cid="vm-1", agent_id="a1", active=True)
    out = run("instances", "zk")
    assert "zookeeper/u1 (0)*" in out and "vm-1" in out and "1 instances" in out
    with pytest.raises(CommandError, match="Deployment 'nope' does not exist"):
        run("instances", "nope")


def test_deploy_refuses_a_fragment_naming_what_is_missing(tmp_path):
    manifest = tmp_path / "zk.yml"
    manifest.write_text("name: zk\n")
    with pytest.raises(CommandError, match="instance_groups: is required") as err:
        run("deploy", str(manifest), "--var", "a=1")
    assert err.value.returncode == 1
    with pytest.raises(CommandError, match="--var nope: use name=value"):
        run("deploy", str(manifest), "--var", "nope")
    with pytest.raises(CommandError, match="Deployment 'nope' does not exist"):
        run("delete-deployment", "nope")
