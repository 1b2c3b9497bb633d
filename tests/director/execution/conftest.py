"""A director on the session's vcsim, run by the real Celery worker, for deploy tests.

``director_env`` uploads (per test, the test database is emptied between
tests) a cpi-config whose VM folder and disk folder are this test's own
(``it-<id>``), so that what vCenter holds can be counted exactly; a
cloud-config with three AZs over vcsim's two clusters and one manual network
with a subnet per AZ on a distributed portgroup; the stemcell and the
zookeeper-like release through the director's upload tasks. It also reads
back what vCenter holds (``vms()``), the way an operator would check.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyVmomi import vim

from director import runner, services
from director.models import Config, Task, TaskState
from tests.director.builders import build_release

#: A hang guard, not a speed check: on a loaded CI machine a 5-instance deploy with
#: agents took over 120 s (benchmarks/ measures speed).
TASK_TIMEOUT = 300.0


def wait_terminal(task: Task, timeout: float = TASK_TIMEOUT) -> Task:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = services.get_task(task.id)
        if task.is_terminal:
            return task
        time.sleep(0.1)
    raise AssertionError(f"task {task.id} still {task.state} after {timeout} s")


def wait_done(task: Task, timeout: float = TASK_TIMEOUT) -> Task:
    task = wait_terminal(task, timeout)
    assert task.state == TaskState.DONE, f"task {task.id} {task.state}: {task.result}"
    return task


def events(task: Task) -> list[dict]:
    return runner.read_output(task, "event").events


def cpi_calls(task: Task) -> list[dict]:
    text = runner.read_output(task, "cpi").text
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def stemcell_tgz(tmp_path_factory) -> Path:
    from cpi.stemcell_builder import build_stemcell

    return build_stemcell(
        tmp_path_factory.mktemp("exec-stemcell") / "stemcell.tgz",
        name="bosh-vsphere-esxi-ubuntu-jammy-go_agent",
        version="1.100",
        operating_system="ubuntu-jammy",
    )


@pytest.fixture(scope="session")
def release_tgz(tmp_path_factory) -> Path:
    return build_release(tmp_path_factory.mktemp("exec-release") / "zk.tgz", version="0.0.10")


CLOUD_CONFIG = """
azs:
- {name: z1, cloud_properties: {datacenters: [{name: DC0, clusters: [DC0_C0: {}]}]}}
- {name: z2, cloud_properties: {datacenters: [{name: DC0, clusters: [DC0_C1: {}]}]}}
- {name: z3, cloud_properties: {datacenters: [{name: DC0, clusters: [DC0_C0: {}]}]}}
vm_types:
- {name: small, cloud_properties: {cpu: 1, ram: 256, disk: 256}}
- {name: large, cloud_properties: {cpu: 2, ram: 512, disk: 256}}
disk_types:
- {name: 1GB, disk_size: 1024}
- {name: 2GB, disk_size: 2048}
networks:
- name: default
  type: manual
  subnets:
  - {range: 10.10.1.0/24, gateway: 10.10.1.1, dns: [10.10.0.2], reserved: [10.10.1.2 - 10.10.1.9],
     azs: [z1], cloud_properties: {name: DC0_DVPG0}}
  - {range: 10.10.2.0/24, gateway: 10.10.2.1, dns: [10.10.0.2], reserved: [10.10.2.2 - 10.10.2.9],
     azs: [z2], cloud_properties: {name: DC0_DVPG0}}
  - {range: 10.10.3.0/24, gateway: 10.10.3.1, dns: [10.10.0.2], reserved: [10.10.3.2 - 10.10.3.9],
     azs: [z3], cloud_properties: {name: DC0_DVPG1}}
compilation: {workers: 1, network: default, az: z1, vm_type: small}
"""


def zookeeper_manifest(name: str, instances: int = 5, **changes: Any) -> dict:
    """A zookeeper-like deployment: one group over 3 AZs with persistent disks."""
    group = {
        "name": "zookeeper",
        "azs": ["z1", "z2", "z3"],
        "instances": instances,
        "jobs": [
            {
                "name": "zookeeper",
                "release": "zookeeper",
                "properties": {"password": "((zk_password))"},
            }
        ],
        "vm_type": "small",
        "stemcell": "default",
        "persistent_disk_type": "1GB",
        "networks": [{"name": "default"}],
    }
    update = {
        "canaries": 1,
        "max_in_flight": 2,
        "canary_watch_time": 50,
        "update_watch_time": 50,
    }
    update.update(changes.pop("update", {}))
    group.update(changes)
    return {
        "name": name,
        "releases": [{"name": "zookeeper", "version": "latest"}],
        "stemcells": [{"alias": "default", "os": "ubuntu-jammy", "version": "latest"}],
        "update": update,
        "instance_groups": [group],
        "variables": [{"name": "zk_password", "type": "password"}],
    }


@dataclass
class VcVm:
    """A VM as vCenter holds it."""

    name: str
    cpu: int
    ram: int
    power: str
    networks: list[str]
    disks: list[str]
    settings: dict
    metadata: dict

    @property
    def ips(self) -> list[str]:
        return sorted(n.get("ip") for n in (self.settings.get("networks") or {}).values())


@dataclass
class DirectorEnv:
    si: Any
    folder: str
    disk_path: str
    datacenter: str

    def deploy(self, manifest: dict, **kwargs: Any) -> Task:
        return services_deploy(yaml.safe_dump(manifest), **kwargs)

    def vm_folder(self) -> Any:
        index = self.si.content.searchIndex
        return index.FindByInventoryPath(f"{self.datacenter}/vm/{self.folder}")

    def vms(self) -> dict[str, VcVm]:
        folder = self.vm_folder()
        if folder is None:
            return {}
        fields = {f.key: f.name for f in self.si.content.customFieldsManager.field or []}
        out = {}
        for vm in folder.childEntity:
            if not isinstance(vm, vim.VirtualMachine):
                continue
            devices = vm.config.hardware.device
            nets = []
            disks = []
            for d in devices:
                if isinstance(d, vim.vm.device.VirtualEthernetCard):
                    port = getattr(d.backing, "port", None)
                    if port is not None:
                        pg = next(
                            (
                                n.name
                                for n in vm.network
                                if isinstance(n, vim.dvs.DistributedVirtualPortgroup)
                                and n.key == port.portgroupKey
                            ),
                            port.portgroupKey,
                        )
                        nets.append(pg)
                    else:
                        nets.append(getattr(d.backing, "deviceName", "?"))
                if isinstance(d, vim.vm.device.VirtualDisk):
                    file = d.backing.fileName.rsplit("/", 1)[-1]
                    if file.startswith("disk-"):
                        disks.append(file[: -len(".vmdk")])
            userdata = next(
                (o.value for o in vm.config.extraConfig or [] if o.key == "guestinfo.userdata"),
                None,
            )
            settings = json.loads(base64.b64decode(userdata)) if userdata else {}
            out[vm.name] = VcVm(
                name=vm.name,
                cpu=vm.config.hardware.numCPU,
                ram=vm.config.hardware.memoryMB,
                power=str(vm.runtime.powerState),
                networks=nets,
                disks=disks,
                settings=settings,
                metadata={fields.get(cv.key): cv.value for cv in vm.customValue or []},
            )
        return out

    def disk_files(self) -> set[str]:
        """``disk-<uuid>`` names of the VMDKs in this test's disk folder, on every datastore."""
        from pyVim.task import WaitForTask

        dc = next(e for e in self.si.content.rootFolder.childEntity if e.name == self.datacenter)
        names = set()
        for ds in dc.datastore:
            task = ds.browser.SearchDatastore_Task(
                datastorePath=f"[{ds.name}] {self.disk_path}",
                searchSpec=vim.host.DatastoreBrowser.SearchSpec(matchPattern=["*.vmdk"]),
            )
            try:
                WaitForTask(task)
            except Exception:
                continue
            for f in task.info.result.file or []:
                if f.path.startswith("disk-") and not f.path.endswith("-flat.vmdk"):
                    names.add(f.path[: -len(".vmdk")])
        return names


def services_deploy(text: str, **kwargs: Any) -> Task:
    from director.services import deployments

    return deployments.deploy(text, "admin", **kwargs)


def cpi_config(vcsim, folder: str, disk_path: str) -> str:
    inv = vcsim.inventory
    return yaml.safe_dump(
        {
            "cpis": [
                {
                    "name": "vcsim",
                    "type": "vsphere",
                    "properties": {
                        "host": vcsim.host,
                        "user": vcsim.username,
                        "password": vcsim.password,
                        "connection_options": {"ca_cert": vcsim.ca_pem},
                        "default_disk_type": "thin",
                        "datacenters": [
                            {
                                "name": inv["datacenters"][0],
                                "vm_folder": folder,
                                "template_folder": "BOSH_Templates",
                                "disk_path": disk_path,
                                "datastore_pattern": "^LocalDS_",
                                "persistent_datastore_pattern": "^LocalDS_",
                                "clusters": list(inv["clusters"]),
                            }
                        ],
                    },
                }
            ]
        }
    )


@pytest.fixture
def director_env(celery_worker, vcsim, vsphere_si, stemcell_tgz, release_tgz) -> DirectorEnv:
    suffix = uuid.uuid4().hex[:8]
    folder, disk_path = f"it-{suffix}", f"it-disks-{suffix}"
    Config.objects.create(type="cpi", name="default", content=cpi_config(vcsim, folder, disk_path))
    Config.objects.create(type="cloud", name="default", content=CLOUD_CONFIG)
    wait_done(services.upload_stemcell(stemcell_tgz, "admin"))
    wait_done(services.upload_release(release_tgz, "admin"))
    return DirectorEnv(vsphere_si, folder, disk_path, vcsim.inventory["datacenters"][0])
