"""The deployment services without a worker: refusals, the plan preview, input errors."""

import pytest
import yaml

from director.models import (
    Config,
    Credential,
    Deployment,
    Release,
    ReleaseJob,
    ReleaseVersion,
    Stemcell,
    Task,
    VariableSet,
)
from director.services import deployments
from opsconsole.errors import Conflict, NotFound, ServiceError

from .conftest import CLOUD_CONFIG, zookeeper_manifest

pytestmark = pytest.mark.django_db


@pytest.fixture
def uploaded():
    Config.objects.create(type="cloud", name="default", content=CLOUD_CONFIG)
    Stemcell.objects.create(name="sc", version="1.9", operating_system="ubuntu-jammy", cid="sc-a")
    Stemcell.objects.create(name="sc", version="1.10", operating_system="ubuntu-jammy", cid="sc-b")
    rv = ReleaseVersion.objects.create(
        release=Release.objects.create(name="zookeeper"), version="1"
    )
    ReleaseJob.objects.create(
        release_version=rv,
        name="zookeeper",
        version="x",
        spec={
            "properties": {"client_port": {"default": 2181}, "password": {}},
            "provides": [{"name": "peers", "type": "zk"}],
            "consumes": [{"name": "peers", "type": "zk"}],
        },
    )


def text(manifest):
    return yaml.safe_dump(manifest)


def test_plan_previews_without_writing_anything(uploaded):
    result = deployments.plan("zk", text(zookeeper_manifest("zk")))
    assert result["summary"] == {"create": 5, "recreate": 0, "update": 0, "delete": 0, "none": 0}
    [group] = result["instance_groups"]
    assert [i["az"] for i in group["instances"]] == ["z1", "z2", "z3", "z1", "z2"]
    assert group["instances"][0]["ips"] == ["10.10.1.10"]
    assert all(i["reasons"] == ["new instance"] for i in group["instances"])
    assert result["variables_to_generate"] == ["zk_password"]
    assert group["update"]["max_in_flight"] == "2"
    assert not Credential.objects.exists()
    assert not Deployment.objects.exists() and not VariableSet.objects.exists()
    assert not Task.objects.exists()


def test_plan_names_the_wrong_path(uploaded):
    manifest = zookeeper_manifest("zk")
    manifest["instance_groups"][0]["jobs"][0]["name"] = "zookeepr"
    with pytest.raises(ServiceError) as exc:
        deployments.plan("zk", text(manifest))
    assert exc.value.errors == {
        "instance_groups/zookeeper/jobs/zookeepr": [
            "job 'zookeepr' is not in release 'zookeeper/1'"
        ]
    }
    manifest = zookeeper_manifest("zk", azs=["z1", "z9"])
    with pytest.raises(ServiceError) as exc:
        deployments.plan("zk", text(manifest))
    assert "instance_groups/zookeeper/azs" in exc.value.errors
    manifest = zookeeper_manifest("zk")
    manifest["releases"][0]["version"] = "7"
    with pytest.raises(ServiceError) as exc:
        deployments.plan("zk", text(manifest))
    assert exc.value.errors == {
        "releases/zookeeper": [
            "Release 'zookeeper/7' is not uploaded (upload it with upload-release)"
        ]
    }


def test_latest_stemcell_is_the_highest_version(uploaded):
    from director.execution.prepare import resolve_stemcells

    refs, _ = resolve_stemcells(
        {"stemcells": [{"alias": "d", "os": "ubuntu-jammy", "version": "latest"}]}
    )
    assert refs["d"].version == "1.10" and refs["d"].cid == "sc-b"
    refs, _ = resolve_stemcells({"stemcells": [{"alias": "d", "name": "sc", "version": "1.9"}]})
    assert refs["d"].cid == "sc-a"


@pytest.mark.parametrize(
    "manifest_text, ops, path",
    [
        ("name: [", None, "manifest"),
        ("name: zk\n", None, "instance_groups"),
        (text(zookeeper_manifest("zk")), ["- {type: replace, path: /nope/x, value: 1}"], "ops/0/"),
    ],
)
def test_deploy_refuses_bad_manifests_at_once(manifest_text, ops, path):
    with pytest.raises(ServiceError) as exc:
        deployments.deploy(manifest_text, "admin", ops=ops)
    assert any(key.startswith(path) for key in exc.value.errors), exc.value.errors
    assert not Task.objects.exists()


def test_ops_and_vars_are_applied_and_vars_stay_out_of_the_task(uploaded):
    ops = ["- {type: replace, path: /instance_groups/name=zookeeper/instances, value: 3}"]
    task = deployments.deploy(
        text(zookeeper_manifest("zk")), "admin", ops=ops, vars={"zk_password": "s3cret-value"}
    )
    assert task.type == "update_deployment" and task.deployment_name == "zk"
    assert task.description == "create deployment"
    assert yaml.safe_load(task.args["manifest_text"])["instance_groups"][0]["instances"] == 3
    assert "s3cret-value" not in str(task.args)
    assert Credential.latest("/opsconsole/zk/zk_password").value == "s3cret-value"


def test_a_second_deploy_is_refused_naming_the_running_task(uploaded):
    first = deployments.deploy(text(zookeeper_manifest("zk")), "admin")
    with pytest.raises(Conflict) as exc:
        deployments.deploy(text(zookeeper_manifest("zk")), "admin")
    assert str(exc.value) == f"Deployment 'zk' is being changed by task {first.id}"
    Deployment.objects.create(name="zk")
    with pytest.raises(Conflict):
        deployments.delete_deployment("zk", "admin")
    with pytest.raises(NotFound):
        deployments.delete_deployment("other", "admin")
