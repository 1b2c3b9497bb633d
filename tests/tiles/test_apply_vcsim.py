"""Apply Changes end to end: the Director tile on vcsim, the demo tile, a real Celery worker.

The operator's path: fill the Director tile from vcsim's inventory (test
connection lists it), import the demo tile (its release goes to the
director), configure it, apply; then change one property and apply again.
What is checked is what vCenter holds and what the installation records.
"""

from __future__ import annotations

import time
import uuid

import pytest
import yaml
from django.db import transaction
from pyVmomi import vim

from director import services as director_services
from director.models import Deployment, Instance, Task, TaskState
from tiles import services
from tiles.models import Installation

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="session")
def jammy_stemcell(tmp_path_factory):
    from cpi.stemcell_builder import build_stemcell

    return build_stemcell(
        tmp_path_factory.mktemp("tiles-stemcell") / "stemcell.tgz",
        name="bosh-vsphere-esxi-ubuntu-jammy-go_agent",
        version="1.0",
        operating_system="ubuntu-jammy",
    )


def wait_for(predicate, timeout: float = 180, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout} s")


def wait_task(task_id: int) -> Task:
    task = wait_for(
        lambda: (t := Task.objects.get(id=task_id)).is_terminal and t, what=f"task {task_id}"
    )
    assert task.state == TaskState.DONE, f"task {task_id} {task.state}: {task.result}"
    return task


def wait_installation(inst_id: int, timeout: float = 300) -> Installation:
    return wait_for(
        lambda: (i := Installation.objects.get(id=inst_id)).status != "running" and i,
        timeout,
        f"installation {inst_id}",
    )


def vms_in(si, datacenter: str, folder: str) -> dict[str, vim.VirtualMachine]:
    f = si.content.searchIndex.FindByInventoryPath(f"{datacenter}/vm/{folder}")
    if f is None:
        return {}
    return {vm.name: vm for vm in f.childEntity if isinstance(vm, vim.VirtualMachine)}


def test_director_tile_and_demo_tile_applied_on_vcsim(
    celery_worker, vcsim, vsphere_si, jammy_stemcell, settings, tmp_path
):
    from tiles import demo

    settings.LOCAL_VCSIM_FILE = tmp_path / "none.json"
    inv = vcsim.inventory
    dc = inv["datacenters"][0]
    suffix = uuid.uuid4().hex[:8]
    folder = f"tiles-{suffix}"

    # -- Director tile: vCenter, test connection, AZs, networks, VM types ----------------
    iaas = {
        "vcenter_host": vcsim.host,
        "vcenter_username": vcsim.username,
        "vcenter_password": vcsim.password,
        "vcenter_ca_certificate": vcsim.ca_pem,
        "datacenter": dc,
        "ephemeral_datastores_string": ",".join(inv["datastores"]),
        "persistent_datastores_string": ",".join(inv["datastores"]),
        "bosh_vm_folder": folder,
        "bosh_disk_path": f"tiles-disks-{suffix}",
    }
    found = services.test_vcenter_connection(iaas)
    assert found["clusters"] == sorted(inv["clusters"])
    assert found["datastores"] == sorted(inv["datastores"])
    assert set(inv["portgroups"]) <= set(found["portgroups"])
    with pytest.raises(services.ServiceError) as exc:
        services.test_vcenter_connection({**iaas, "vcenter_password": "wrong"})
    assert (
        "incorrect user name or password"
        in exc.value.errors["iaas_configuration/vcenter_password"][0]
    )
    with pytest.raises(services.ServiceError) as exc:
        services.test_vcenter_connection({**iaas, "vcenter_host": "127.0.0.1:1"})
    assert "127.0.0.1:1" in exc.value.errors["iaas_configuration/vcenter_host"][0]

    services.set_iaas_configuration(iaas)
    services.set_availability_zones(
        [
            {"name": "az1", "clusters": [{"cluster": found["clusters"][0]}]},
            {"name": "az2", "clusters": [{"cluster": found["clusters"][1]}]},
        ]
    )
    services.set_networks(
        {
            "networks": [
                {
                    "name": "infra",
                    "subnets": [
                        {
                            "iaas_identifier": inv["portgroups"][0],
                            "cidr": "10.30.1.0/24",
                            "gateway": "10.30.1.1",
                            "dns": "10.30.0.2",
                            "reserved_ip_ranges": "10.30.1.2-10.30.1.9",
                            "availability_zone_names": ["az1"],
                        },
                        {
                            "iaas_identifier": inv["portgroups"][1],
                            "cidr": "10.30.2.0/24",
                            "gateway": "10.30.2.1",
                            "dns": "10.30.0.2",
                            "reserved_ip_ranges": "10.30.2.2-10.30.2.9",
                            "availability_zone_names": ["az2"],
                        },
                    ],
                }
            ]
        }
    )
    services.set_network_and_az({"network": "infra", "singleton_availability_zone": "az1"})
    services.set_vm_types(
        [
            {"name": "tiny", "cpu": 1, "ram": 256, "ephemeral_disk": 1024},
            {"name": "small", "cpu": 2, "ram": 512, "ephemeral_disk": 2048},
        ]
    )

    # -- director only: the cpi-config and cloud-config reach the director --------------
    inst0 = wait_installation(services.apply_changes("admin", deploy_products="none").id)
    assert inst0.status == "succeeded", services.installation_logs(inst0.id)
    assert services.director_diff()["cloud_config"]["status"] == "same"
    assert services.pending_changes()["product_changes"][0]["action"] == "unchanged"

    # -- stemcell and the demo tile (its release goes to the director) --------------------
    wait_task(director_services.upload_stemcell(jammy_stemcell, "admin").id)
    pivotal = demo.build_pivotal(tmp_path / "demo")
    with open(pivotal, "rb") as fh:
        product = services.import_product(fh, pivotal.name, "admin")
    for task_id in product.release_task_ids:
        wait_task(task_id)
    staged = services.stage_product(product.name, product.version)
    services.set_networks_and_azs(
        staged,
        {
            "singleton_availability_zone": {"name": "az1"},
            "other_availability_zones": [{"name": "az1"}, {"name": "az2"}],
            "network": {"name": "infra"},
        },
    )
    services.set_resource_config(staged, "web", instances=2, instance_type="tiny")
    services.set_resource_config(staged, "worker", instances=1, instance_type="small")
    services.set_resource_config(staged, "smoke-tests", instance_type="tiny")

    pending = services.pending_changes()["product_changes"]
    assert [c["action"] for c in pending] == ["unchanged", "install"]
    entry = pending[1]
    assert all(entry["completeness_checks"].values()), entry["warnings"]
    assert entry["plan"]["summary"]["create"] == 3, entry["plan"]

    # -- first apply ----------------------------------------------------------------------
    inst = services.apply_changes("admin")
    inst = wait_installation(inst.id)
    steps = list(inst.steps.order_by("seq"))
    logs = services.installation_logs(inst.id)
    assert inst.status == "succeeded", logs
    assert [(s.kind, s.state) for s in steps] == [
        ("vcenter", "succeeded"),
        ("configs", "succeeded"),
        ("stemcells", "skipped"),  # uploaded to the director before: nothing missing
        ("deploy", "succeeded"),
        ("errand", "succeeded"),
    ]
    assert steps[3].action == "install" and steps[3].task_id
    # The errand ran as a director task on its own VM, which is gone again afterwards.
    errand_task = Task.objects.get(id=steps[4].task_id)
    assert errand_task.type == "run_errand" and errand_task.state == TaskState.DONE
    assert "exit code 0" in errand_task.result
    assert f"Task {steps[3].task_id} |" in logs

    vms = vms_in(vsphere_si, dc, folder)
    assert len(vms) == 3
    # The errand's instance stays known to the director, without a VM (as in BOSH).
    errand_instances = Instance.objects.filter(deployment__name=staged.guid, group="smoke-tests")
    assert [i.active_vm for i in errand_instances] == [None]
    instances = list(
        Instance.objects.filter(deployment__name=staged.guid)
        .exclude(group="smoke-tests")
        .order_by("group", "index")
    )
    assert [(i.group, i.index) for i in instances] == [("web", 0), ("web", 1), ("worker", 0)]
    sizes = {
        i.group: {
            (vms[v.cid].config.hardware.numCPU, vms[v.cid].config.hardware.memoryMB)
            for v in i.vms.filter(active=True)
        }
        for i in instances
    }
    assert sizes == {"web": {(1, 256)}, "worker": {(2, 512)}}
    assert sorted(i.az for i in instances if i.group == "web") == ["az1", "az2"]
    first_cids = set(vms)

    staged = services.get_staged_product(staged.guid)
    assert staged.deployed_version == product.version
    assert services.pending_changes()["product_changes"][1]["action"] == "unchanged"
    status = services.deployed_status(staged.guid)
    assert {r["cid"] for r in status} == first_cids

    # -- second apply with one changed property ------------------------------------------
    services.set_properties(staged, {".properties.greeting": {"value": "Hello again"}})
    entry = services.pending_changes()["product_changes"][1]
    assert entry["action"] == "update"
    changed_lines = [
        line
        for line in entry["manifest_diff"].splitlines()
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    ]
    assert changed_lines == [
        "-        greeting: Hello from opsconsole",
        "+        greeting: Hello again",
    ]
    planned = {
        g["name"]: {i["change"] for i in g["instances"]} for g in entry["plan"]["instance_groups"]
    }
    assert planned["web"] == {"update"} and planned["worker"] == {"none"}, entry["plan"]

    # What was reviewed is what deploys: an edit saved after the click, before the worker
    # starts (the installation is queued when this transaction commits), waits for the next.
    with transaction.atomic():
        clicked = services.apply_changes("admin")
        services.set_properties(staged, {".properties.greeting": {"value": "Edited later"}})
    inst2 = wait_installation(clicked.id)
    assert inst2.status == "succeeded", services.installation_logs(inst2.id)
    deployed = services.deployed_manifest(staged.guid)
    web_group = next(g for g in deployed["instance_groups"] if g["name"] == "web")
    assert "greeting: Hello again" in yaml.safe_dump(web_group)
    director_manifest = Deployment.objects.get(name=staged.guid).manifest_text
    assert "Hello again" in director_manifest and "Edited later" not in director_manifest
    entry = services.pending_changes(with_plan=False)["product_changes"][1]
    assert entry["action"] == "update" and "greeting: Edited later" in entry["manifest_diff"]
    deploy_step = inst2.steps.get(kind="deploy")
    assert deploy_step.action == "update"
    assert set(vms_in(vsphere_si, dc, folder)) == first_cids  # updated in place, nothing recreated
    updated = {
        e.data.get("task", "").split("/")[0]
        for e in deploy_step.task.events.all()
        if e.data.get("stage") == "Updating instance"
    }
    assert updated == {"web"}
