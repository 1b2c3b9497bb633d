"""``POST /api/v0/director/deployments`` with ``fix`` (BOSH ``?fix=true``): the flag reaches the task.

What the deploy then does with it is tested on vcsim (tests/director/execution/test_fix_vcsim.py).
"""

from __future__ import annotations

import pytest
import yaml

from director.models import Task
from tests.director.execution.conftest import zookeeper_manifest

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]

URL = "/api/v0/director/deployments"


def manifest() -> str:
    return yaml.safe_dump(zookeeper_manifest("fixme", instances=1))


@pytest.mark.parametrize(
    ("query", "body", "fix"),
    [
        ("?fix=true", {}, True),
        ("", {"fix": True}, True),
        ("?fix=1", {}, True),
        ("", {"fix": False}, False),
        ("", {}, False),
    ],
)
def test_fix_as_a_query_parameter_or_in_the_body_reaches_the_deploy_task(
    admin_api, query, body, fix
):
    response = admin_api.post(f"{URL}{query}", {"manifest": manifest(), **body}, format="json")
    assert response.status_code == 202, response.content
    task = Task.objects.get(id=response.json()["id"])
    assert task.type == "update_deployment" and task.args["fix"] is fix


@pytest.mark.parametrize("name", ["fix", "recreate", "dry_run"])
def test_a_flag_that_is_not_a_yes_or_no_is_a_400_naming_it(admin_api, name):
    response = admin_api.post(f"{URL}?{name}=maybe", {"manifest": manifest()}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {name: ["must be true or false, got 'maybe'"]}
    assert not Task.objects.filter(type="update_deployment").exists()


def test_manage_py_deploy_fix_queues_a_fix_deploy(db, tmp_path, director_dirs):
    from django.core.management import call_command

    path = tmp_path / "m.yml"
    path.write_text(manifest())
    call_command("deploy", str(path), "--fix", "--no-wait")
    task = Task.objects.get(type="update_deployment")
    assert task.args["fix"] is True and task.deployment_name == "fixme"
