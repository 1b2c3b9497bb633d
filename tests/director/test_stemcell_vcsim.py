"""Stemcell upload and delete as tasks, through the vSphere CPI, against vcsim."""

import json

import pytest
from pyVmomi import vim

from director import runner, uploads
from director.models import Event, Stemcell, Task, TaskState

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]


@pytest.fixture
def local_vcenter(vcsim, settings, tmp_path):
    """Point the director at the session's vcsim, as `make run` does with its vcsim.json."""
    facts = {
        "host": vcsim.host,
        "username": vcsim.username,
        "password": vcsim.password,
        "cert_file": str(vcsim.cert_file),
        "inventory": vcsim.inventory,
    }
    settings.LOCAL_VCSIM_FILE = tmp_path / "vcsim.json"
    settings.LOCAL_VCSIM_FILE.write_text(json.dumps(facts))
    return vcsim


@pytest.fixture(scope="module")
def stemcell_tgz(tmp_path_factory):
    from cpi.stemcell_builder import build_stemcell

    return build_stemcell(
        tmp_path_factory.mktemp("stemcell") / "stemcell.tgz", name="test-stemcell", version="7.1"
    )


def vm_names(si):
    view = si.content.viewManager.CreateContainerView(
        si.content.rootFolder, [vim.VirtualMachine], True
    )
    try:
        return {vm.name for vm in view.view}
    finally:
        view.Destroy()


def run(task_type, args):
    task = runner.create_task(task_type, task_type, "admin", args=args)
    runner.run_task(task.id)
    task.refresh_from_db()
    return task


def test_upload_then_delete_a_stemcell(local_vcenter, vsphere_si, stemcell_tgz):
    upload = uploads.save_upload(stemcell_tgz, "stemcell")
    task = run("update_stemcell", {"path": str(upload)})
    assert task.state == TaskState.DONE, task.result
    assert task.result == "/stemcells/test-stemcell/7.1"

    stemcell = Stemcell.objects.get(name="test-stemcell", version="7.1")
    assert stemcell.operating_system == "ubuntu-jammy"
    assert stemcell.cid.startswith("sc-")
    assert stemcell.cid in vm_names(vsphere_si)  # the template VM vCenter now holds
    assert not upload.exists()
    cpi_log = runner.read_output(task, "cpi").text
    assert "create_stemcell" in cpi_log
    assert local_vcenter.password not in cpi_log
    assert Event.objects.filter(object_type="stemcell", action="create").exists()

    again = run("update_stemcell", {"path": str(uploads.save_upload(stemcell_tgz, "stemcell"))})
    assert again.state == TaskState.DONE
    assert again.result == "Stemcell 'test-stemcell/7.1' already exists"
    assert Stemcell.objects.count() == 1

    deleted = run("delete_stemcell", {"name": "test-stemcell", "version": "7.1"})
    assert deleted.state == TaskState.DONE, deleted.result
    assert not Stemcell.objects.exists()
    assert stemcell.cid not in vm_names(vsphere_si)


def test_a_stemcell_used_by_a_deployment_is_not_deleted(local_vcenter):
    from director.models import Deployment

    stemcell = Stemcell.objects.create(name="used", version="1", cid="sc-used")
    Deployment.objects.create(name="zk").stemcells.add(stemcell)
    task = run("delete_stemcell", {"name": "used", "version": "1"})
    assert task.state == TaskState.ERROR
    assert task.result == "Stemcell 'used/1' is still in use by: zk"
    assert Stemcell.objects.filter(name="used").exists()


def test_no_vcenter_at_all_fails_the_task_clearly(settings, tmp_path, stemcell_tgz):
    settings.LOCAL_VCSIM_FILE = tmp_path / "absent.json"
    task = run("update_stemcell", {"path": str(uploads.save_upload(stemcell_tgz, "stemcell"))})
    assert task.state == TaskState.ERROR
    assert task.result.startswith("no vCenter configured")
    assert not Stemcell.objects.exists()
    assert Task.objects.get(id=task.id).finished_at


def cpi_config_for(vcsim, password=None):
    import yaml

    return yaml.safe_dump(
        {
            "cpis": [
                {
                    "name": "vcenter-1",
                    "type": "vsphere",
                    "properties": {
                        "host": vcsim.host,
                        "user": vcsim.username,
                        "password": password or vcsim.password,
                        "connection_options": {"ca_cert": vcsim.ca_pem},
                        "datacenters": [
                            {
                                "name": vcsim.inventory["datacenters"][0],
                                "clusters": vcsim.inventory["clusters"][:1],
                                "datastore_pattern": ".*",
                                "persistent_datastore_pattern": ".*",
                            }
                        ],
                    },
                }
            ]
        }
    )


def test_the_cpi_config_wins_over_the_local_vcsim(
    vcsim, vsphere_si, settings, tmp_path, stemcell_tgz
):
    from director import services

    settings.LOCAL_VCSIM_FILE = tmp_path / "absent.json"
    services.update_config("cpi", "default", cpi_config_for(vcsim), "admin")
    upload = uploads.save_upload(stemcell_tgz, "stemcell")
    task = run("update_stemcell", {"path": str(upload)})
    assert task.state == TaskState.DONE, task.result
    assert Stemcell.objects.get().cid in vm_names(vsphere_si)
    assert "Using CPI 'vcenter-1'" in runner.read_output(task, "debug").text
    run("delete_stemcell", {"name": "test-stemcell", "version": "7.1"})


def test_vcenter_check_logs_in_to_the_configured_vcenter(vcsim, local_vcenter):
    from director import services
    from director.vcenter import vcenter_check

    check = vcenter_check()
    assert check.ok and "(vcsim)" in check.detail
    services.update_config("cpi", "default", cpi_config_for(vcsim), "admin")
    check = vcenter_check()
    assert check.ok and "(vcenter-1)" in check.detail
    services.update_config(
        "cpi", "default", cpi_config_for(vcsim, password="wrong-password"), "admin"
    )
    check = vcenter_check()
    assert not check.ok and "refused or did not answer" in check.detail
