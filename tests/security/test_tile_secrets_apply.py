"""After Apply Changes, no table, log or task argument holds a tile secret in clear.

The operator's path on vcsim with a real Celery worker: the Director tile,
the demo release, a tile with every secret kind (a secret, generated simple
and salted credentials, a certificate, an RSA key, a collection with a
secret field), Apply Changes. Then every column of every table, the task
logs, the logs dir and the worker's log are searched for each secret: none
is there. The director still resolves them: the deploy's variable set holds
the reviewed values, and the instance's VM holds them in its rendered job
files (the agent's ``/var/vcap/jobs``, from the templates archive in the
blobstore), while the spec the director keeps for the instance holds no
properties. A changed secret is an update that reaches the store and the VM.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from director import services as director_services
from director.execution.prepare import prepare
from director.execution.variables import PreviewVariables
from director.models import Deployment, Instance, Task, TaskState, VariableSet, Vm
from tiles import services
from tiles.models import Installation
from tiles.services.diffs import secret_strings

from .test_tile_secrets import NEW_KEY, OLD_KEY, PEER_TOKEN, stage_vault

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="session")
def jammy_stemcell(tmp_path_factory):
    from cpi.stemcell_builder import build_stemcell

    return build_stemcell(
        tmp_path_factory.mktemp("secrets-stemcell") / "stemcell.tgz",
        name="bosh-vsphere-esxi-ubuntu-jammy-go_agent",
        version="1.0",
        operating_system="ubuntu-jammy",
    )


def wait_for(predicate, timeout: float = 300, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} not reached within {timeout} s")


def wait_task(task_id: int) -> Task:
    task = wait_for(
        lambda: (t := Task.objects.get(id=task_id)).is_terminal and t, what=f"task {task_id}"
    )
    assert task.state == TaskState.DONE, f"task {task_id} {task.state}: {task.result}"
    return task


def apply(deploy_products: str = "all") -> Installation:
    inst_id = services.apply_changes("admin", deploy_products=deploy_products).id
    inst = wait_for(
        lambda: (i := Installation.objects.get(id=inst_id)).status != "running" and i,
        what=f"installation {inst_id}",
    )
    assert inst.status == "succeeded", services.installation_logs(inst.id)
    return inst


def configure_director_on(vcsim) -> None:
    inv = vcsim.inventory
    suffix = uuid.uuid4().hex[:8]
    services.set_iaas_configuration(
        {
            "vcenter_host": vcsim.host,
            "vcenter_username": vcsim.username,
            "vcenter_password": vcsim.password,
            "vcenter_ca_certificate": vcsim.ca_pem,
            "datacenter": inv["datacenters"][0],
            "ephemeral_datastores_string": ",".join(inv["datastores"]),
            "persistent_datastores_string": ",".join(inv["datastores"]),
            "bosh_vm_folder": f"secrets-{suffix}",
            "bosh_disk_path": f"secrets-disks-{suffix}",
        }
    )
    services.set_availability_zones(
        [{"name": "az1", "clusters": [{"cluster": inv["clusters"][0]}]}]
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


def table_dump() -> dict[str, str]:
    """Every column of every row of every table, as text, by table."""
    out = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            cells = []
            for row in cursor.fetchall():
                for cell in row:
                    if isinstance(cell, memoryview | bytes):
                        cell = bytes(cell).decode("utf-8", "replace")
                    cells.append(str(cell))
            out[table] = "\n".join(cells)
    return out


def log_texts(worker) -> dict[str, str]:
    """The task logs, the logs dir and the worker's own log."""
    out = {}
    paths = [worker.log_path]
    for root in (Path(settings.TASK_LOG_DIR), Path(settings.DATA_DIR) / "logs"):
        if root.exists():
            paths.extend(p for p in root.rglob("*") if p.is_file())
    for p in paths:
        out[str(p)] = p.read_bytes().decode("utf-8", "replace")
    return out


def assert_nowhere(secrets: set[str], worker) -> None:
    assert secrets
    for where, text in {**table_dump(), **log_texts(worker)}.items():
        leaked = [s[:12] + "..." for s in secrets if s in text]
        assert not leaked, f"{where} holds secrets in clear: {leaked}"


def rendered_properties(deployment: str) -> dict:
    """The web job's properties as the director renders them for the instance (resolved)."""
    manifest_text = Deployment.objects.get(name=deployment).manifest_text
    prepared = prepare(manifest_text, PreviewVariables(deployment), deployment_name=deployment)
    [job] = prepared.rendered["web"]["jobs"]
    return job["properties"]["demo"]


def config_on_vm(vm_runtime, deployment: str) -> dict:
    """The web VM's rendered ``demo-web`` config (its template dumps ``p('demo')``)."""
    [instance] = Instance.objects.filter(deployment__name=deployment, group="web")
    assert "properties" not in (instance.spec_json or {}).get("apply_spec", {})
    vm = Vm.objects.get(instance=instance, active=True)
    path = vm_runtime.root(vm.cid) / "jobs" / "demo-web" / "config" / "config.yml"
    return json.loads(path.read_text())


def test_apply_changes_leaves_no_tile_secret_in_clear(
    celery_worker, vcsim, vm_runtime, jammy_stemcell
):
    from tiles import demo

    configure_director_on(vcsim)
    apply("none")  # the cpi-config reaches the director
    wait_task(director_services.upload_stemcell(jammy_stemcell, "admin").id)
    pivotal = demo.build_pivotal(Path(settings.UPLOAD_DIR) / f"demo-{uuid.uuid4().hex[:6]}")
    with open(pivotal, "rb") as fh:
        product = services.import_product(fh, pivotal.name, "admin")
    for task_id in product.release_task_ids:
        wait_task(task_id)
    staged = stage_vault()
    services.set_resource_config(staged, "web", instances=1, instance_type="tiny")

    apply()
    staged = services.get_staged_product(staged.guid)
    secrets = {s for s in secret_strings(staged.secrets) if len(s) >= 8}
    admin_password = staged.secrets[".properties.admin"]["password"]
    assert {OLD_KEY, PEER_TOKEN, admin_password} <= secrets
    assert_nowhere(secrets, celery_worker)

    # The director holds references; it resolved them from its encrypted store.
    var = f"/opsmgr/{staged.guid}"
    deployment = Deployment.objects.get(name=staged.guid)
    assert f"(({var}/admin.password))" in deployment.manifest_text
    assert f"(({var}/api_key.value))" in deployment.manifest_text
    used = {
        v.name: v.credential.value
        for v in VariableSet.objects.filter(deployment=deployment, deployed_successfully=True)
        .latest("id")
        .variables.select_related("credential")
    }
    assert used[f"{var}/admin"]["password"] == admin_password
    assert used[f"{var}/api_key"] == {"value": OLD_KEY}
    resolved = rendered_properties(staged.guid)
    assert resolved["admin"] == {"username": "admin", "password": admin_password}
    assert resolved["storage"]["api_key"] == OLD_KEY
    assert resolved["storage"]["url"] == f"https://ops:{OLD_KEY}@vault.example.com"
    assert resolved["storage"]["hash"].startswith("$6$")
    assert resolved["storage"]["peers"][0]["token"] == PEER_TOKEN
    assert resolved["storage"]["ssh_key"] == staged.secrets[".properties.ssh"]["private_key_pem"]
    # What the VM's job reads: the values, rendered by the director, fetched by the agent.
    on_vm = config_on_vm(vm_runtime, staged.guid)
    assert on_vm["admin"]["password"] == admin_password
    assert on_vm["storage"]["api_key"] == OLD_KEY
    assert on_vm["storage"]["peers"][0]["token"] == PEER_TOKEN

    # A changed secret: the same manifest, an update that reaches the store and the instance.
    services.set_properties(staged, {".properties.api_key": {"value": {"secret": NEW_KEY}}})
    entry = services.pending_changes()["product_changes"][1]
    assert entry["action"] == "update"
    assert [g["instances"][0]["change"] for g in entry["plan"]["instance_groups"]] == ["update"]
    inst = apply()
    assert inst.steps.get(kind="deploy").state == "succeeded"
    assert rendered_properties(staged.guid)["storage"]["api_key"] == NEW_KEY
    assert config_on_vm(vm_runtime, staged.guid)["storage"]["api_key"] == NEW_KEY
    assert services.pending_changes(with_plan=False)["product_changes"][1]["action"] == "unchanged"
    assert_nowhere(secrets | {NEW_KEY}, celery_worker)
