"""Apply Changes with a post-deploy errand whose ``bin/run`` exits non-zero, on vcsim.

The demo tile with its smoke-tests errand rewritten to print to stdout and
stderr and exit 3, deployed through a real Celery worker, NATS and the VM
runtime (the errand's script really runs on its VM). The installation fails
at the errand's step, which names the errand; what the script printed and
its exit code reach the operator on the installation page, in the
installation's log (API) and in the director task's result; the deployment
itself stays deployed and running.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.urls import reverse

from director import services as director_services
from director.models import Deployment, Instance, Task, TaskState
from tests.director.heartbeats import agent_listener  # noqa: F401  fixture
from tiles import demo, services

from .test_apply_vcsim import jammy_stemcell, vms_in, wait_for, wait_installation, wait_task

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

__all__ = ["jammy_stemcell"]  # the session fixture, shared with test_apply_vcsim

#: The errand's bin/run: a line on each stream (the port rendered from the tile), exit 3.
FAILING_RUN = (
    "#!/bin/sh\n"
    "echo \"smoke-tests: probing the web tier on port <%= p('demo.web_port') %>\"\n"
    'echo "smoke-tests: the web tier did not answer" >&2\n'
    "exit 3\n"
)


def _configure_director(vcsim, folder: str, suffix: str) -> None:
    inv = vcsim.inventory
    services.set_iaas_configuration(
        {
            "vcenter_host": vcsim.host,
            "vcenter_username": vcsim.username,
            "vcenter_password": vcsim.password,
            "vcenter_ca_certificate": vcsim.ca_pem,
            "datacenter": inv["datacenters"][0],
            "ephemeral_datastores_string": ",".join(inv["datastores"]),
            "persistent_datastores_string": ",".join(inv["datastores"]),
            "bosh_vm_folder": folder,
            "bosh_disk_path": f"errand-disks-{suffix}",
        }
    )
    services.set_availability_zones(
        [{"name": "az1", "clusters": [{"cluster": sorted(inv["clusters"])[0]}]}]
    )
    services.set_networks(
        {
            "networks": [
                {
                    "name": "infra",
                    "subnets": [
                        {
                            "iaas_identifier": inv["portgroups"][0],
                            "cidr": "10.31.1.0/24",
                            "gateway": "10.31.1.1",
                            "dns": "10.31.0.2",
                            "reserved_ip_ranges": "10.31.1.2-10.31.1.9",
                            "availability_zone_names": ["az1"],
                        }
                    ],
                }
            ]
        }
    )
    services.set_network_and_az({"network": "infra", "singleton_availability_zone": "az1"})
    services.set_vm_types([{"name": "tiny", "cpu": 1, "ram": 256, "ephemeral_disk": 1024}])


@pytest.mark.usefixtures("agent_listener")
def test_failing_post_deploy_errand_fails_apply_changes(
    celery_worker,
    vcsim,
    vsphere_si,
    jammy_stemcell,
    settings,
    tmp_path,
    monkeypatch,
    client,
    admin_user,
):
    settings.LOCAL_VCSIM_FILE = tmp_path / "none.json"
    suffix = uuid.uuid4().hex[:8]
    folder = f"tiles-errand-{suffix}"
    dc = vcsim.inventory["datacenters"][0]
    _configure_director(vcsim, folder, suffix)
    inst0 = wait_installation(services.apply_changes("admin", deploy_products="none").id)
    assert inst0.status == "succeeded", services.installation_logs(inst0.id)

    # the demo tile, its release's smoke-tests job failing
    monkeypatch.setitem(demo.TEMPLATE_TEXT, "run.erb", FAILING_RUN)
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
            "other_availability_zones": [{"name": "az1"}],
            "network": {"name": "infra"},
        },
    )
    services.set_resource_config(staged, "web", instances=1, instance_type="tiny")
    services.set_resource_config(staged, "worker", instances=0, instance_type="tiny")
    services.set_resource_config(staged, "smoke-tests", instance_type="tiny")

    inst = wait_installation(services.apply_changes("admin").id)
    steps = list(inst.steps.order_by("seq"))
    logs = services.installation_logs(inst.id)

    # -- the installation fails at the errand's step, which names the errand ---------------
    assert inst.status == "failed", logs
    assert [(s.kind, s.state) for s in steps] == [
        ("vcenter", "succeeded"),
        ("configs", "succeeded"),
        ("stemcells", "skipped"),
        ("deploy", "succeeded"),
        ("errand", "failed"),
    ]
    errand_step = steps[4]
    assert errand_step.errand == "smoke-tests"
    assert errand_step.label == f"Run errand smoke-tests for {staged.guid}"
    errand_task = Task.objects.get(id=errand_step.task_id)
    assert errand_task.type == "run_errand" and errand_task.state == TaskState.ERROR
    errand_instance = Instance.objects.get(deployment__name=staged.guid, group="smoke-tests")
    failure = (
        f"Errand 'smoke-tests' completed with error (exit code 3) on "
        f"smoke-tests/{errand_instance.uuid}: smoke-tests: the web tier did not answer"
    )
    assert errand_step.message == failure
    assert inst.message == f"Run errand smoke-tests for {staged.guid}: {failure}"

    # -- what the operator reads: the installation page and its log (API) -----------------
    client.force_login(admin_user)
    page = client.get(reverse("installation", args=[inst.id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert f"===== Run errand smoke-tests for {staged.guid}: failed (task {errand_task.id})" in html
    assert "completed with error (exit code 3)" in html
    assert "smoke-tests: the web tier did not answer" in html
    api_logs = client.get(reverse("api-installation-logs", args=[inst.id]))
    assert api_logs.status_code == 200
    assert (
        f"Installation failed: Run errand smoke-tests for {staged.guid}: {failure}"
        in (api_logs.json()["logs"])
    )

    # the errand task's result: the script's own stdout, stderr and exit code, as BOSH's CLI
    # shows them (the port in stdout was rendered from the tile's configuration)
    out = client.get(reverse("director-task-output", args=[errand_task.id]), {"type": "result"})
    assert out.status_code == 200
    assert out.json()["state"] == "error"
    (result,) = [json.loads(line) for line in out.json()["output"].splitlines()]
    assert result["instance"] == {"group": "smoke-tests", "id": errand_instance.uuid}
    assert result["exit_code"] == 3
    assert result["stdout"] == "smoke-tests: probing the web tier on port 8080\n"
    assert result["stderr"] == "smoke-tests: the web tier did not answer\n"
    task_page = client.get(reverse("task", args=[errand_task.id]), {"type": "result"})
    assert task_page.status_code == 200
    assert "smoke-tests: probing the web tier on port 8080" in task_page.content.decode()

    # -- the deployment stays deployed: its VM runs its job, the errand's VM is gone -------
    deployment = Deployment.objects.get(name=staged.guid)
    assert "demo-web" in deployment.manifest_text
    assert services.get_staged_product(staged.guid).deployed_version == product.version
    vms = vms_in(vsphere_si, dc, folder)
    (web,) = Instance.objects.filter(deployment__name=staged.guid, group="web")
    assert list(vms) == [web.active_vm.cid]
    assert vms[web.active_vm.cid].runtime.powerState == "poweredOn"
    assert errand_instance.active_vm is None
    # its Status tab shows the agent's heartbeat: the web job running on that VM
    status_url = reverse("product-status", args=[staged.guid])
    page = wait_for(
        lambda: ">running</span>" in (text := client.get(status_url).content.decode()) and text,
        60,
        "the web instance reported running on the Status tab",
    )
    assert re.findall(r'data-instance="([a-z-]+)/', page) == ["web"], page
    assert page.count(">running</span>") == 1
    # nothing is left to deploy: the next Apply Changes would only run the errand again
    entry = next(
        c
        for c in services.pending_changes(with_plan=False)["product_changes"]
        if c["guid"] == staged.guid
    )
    assert entry["action"] == "unchanged"
