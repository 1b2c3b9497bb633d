"""The VMs page (``/director/vms/``): ``bosh vms`` rows plus vCenter's live power state.

Against vcsim: VMs made in a folder of this test's own with pyvmomi, the
director's rows pointing at them, a cpi config naming that folder. The page
shows each instance's IPs, CID, VM type, disk, process state and the power
state vCenter holds now (one VM powered off behind the director's back
reads ``poweredOff`` and its agent ``unresponsive``); a cid vCenter does
not have reads "not in vCenter". When vCenter cannot be reached or is not
configured the page still renders from the database under a banner naming
the error, never a 500. The htmx fragment refreshes itself every 5 s; the
``?deployment=`` filter; queries stay constant as rows grow.
"""

from __future__ import annotations

import re
import uuid

import pytest
import yaml
from django.utils import timezone
from pyVim.task import WaitForTask
from pyVmomi import vim

from director.models import (
    AgentHeartbeat,
    Config,
    Deployment,
    Instance,
    IpAddress,
    PersistentDisk,
    Vm,
)
from tests.director.execution.conftest import cpi_config

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def no_local_vcsim(settings, tmp_path):
    """No `make run` vcsim to fall back to: only a cpi config names a vCenter."""
    settings.LOCAL_VCSIM_FILE = tmp_path / "no-vcsim.json"


@pytest.fixture
def admin_client(client, admin_user, no_local_vcsim):
    client.force_login(admin_user)
    return client


def add_instance(
    deployment: Deployment,
    index: int,
    cid: str | None,
    ip: str,
    *,
    group: str = "zookeeper",
    running: bool = True,
    disk: str | None = None,
) -> Instance:
    agent_id = f"agent-{uuid.uuid4()}"
    inst = Instance.objects.create(
        deployment=deployment,
        group=group,
        uuid=str(uuid.uuid4()),
        index=index,
        az=f"z{index + 1}",
        bootstrap=index == 0,
        spec_json={"applied": {"vm_type": "small"}},
    )
    # what the VM's agent last said in its heartbeat (the agent listener's row)
    AgentHeartbeat.objects.create(
        agent_id=agent_id,
        last_heartbeat_at=timezone.now(),
        job_state="running" if running else "stopped",
    )
    vm = None
    if cid:
        vm = Vm.objects.create(instance=inst, cid=cid, agent_id=agent_id, active=True)
    IpAddress.objects.create(address=ip, network_name="default", instance=inst, vm=vm)
    if disk:
        PersistentDisk.objects.create(instance=inst, disk_cid=disk, size=1024, active=True)
    return inst


class Folder:
    """VMs in a vcsim folder of this test's own, removed at the end."""

    def __init__(self, si, datacenter: str, name: str):
        self.si, self.datacenter, self.name = si, datacenter, name
        index = si.content.searchIndex
        dc = index.FindByInventoryPath(datacenter)
        self.folder = dc.vmFolder.CreateFolder(name)
        self.pool = index.FindByInventoryPath(f"{datacenter}/host/DC0_C0").resourcePool
        self.vms: dict[str, vim.VirtualMachine] = {}

    def create(self, name: str) -> str:
        spec = vim.vm.ConfigSpec(
            name=name,
            guestId="otherGuest64",
            numCPUs=1,
            memoryMB=32,
            files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"),
        )
        WaitForTask(self.folder.CreateVM_Task(spec, self.pool))
        vm = self.si.content.searchIndex.FindChild(self.folder, name)
        WaitForTask(vm.PowerOnVM_Task())
        self.vms[name] = vm
        return name

    def power_off(self, name: str) -> None:
        WaitForTask(self.vms[name].PowerOffVM_Task())

    def destroy(self) -> None:
        for vm in self.vms.values():
            if vm.runtime.powerState != "poweredOff":
                WaitForTask(vm.PowerOffVM_Task())
            WaitForTask(vm.Destroy_Task())
        WaitForTask(self.folder.Destroy_Task())


@pytest.fixture
def vc_folder(vcsim, vsphere_si):
    name = f"vp-{uuid.uuid4().hex[:8]}"
    folder = Folder(vsphere_si, vcsim.inventory["datacenters"][0], name)
    Config.objects.create(type="cpi", name="default", content=cpi_config(vcsim, name, f"{name}-d"))
    try:
        yield folder
    finally:
        folder.destroy()


def row(page: str, inst: Instance, actions: bool = False) -> str:
    """The row's text; its Actions cell (the buttons) only with ``actions``."""
    found = re.search(rf'<tr id="instance-{inst.uuid}".*?</tr>', page, re.S)
    assert found, f"no row for {inst}"
    html = found.group(0)
    html = re.sub(r'<td class="vital [^"]*"[^>]*>.*?</td>', "", html)  # test_vms_vitals.py
    cell = re.search(r'<td class="actions">.*?</td>', html, re.S)
    if cell:
        html = cell.group(0) if actions else html.replace(cell.group(0), "")
    elif actions:
        return ""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def test_rows_show_what_the_director_holds_and_what_vcenter_holds_now(admin_client, vc_folder):
    zk = Deployment.objects.create(name="zk")
    on = add_instance(zk, 0, vc_folder.create(f"vm-{uuid.uuid4()}"), "10.10.1.10", disk="disk-a")
    off = add_instance(zk, 1, vc_folder.create(f"vm-{uuid.uuid4()}"), "10.10.2.10")
    gone = add_instance(zk, 2, f"vm-{uuid.uuid4()}", "10.10.3.10")  # deleted behind our back
    no_vm = add_instance(zk, 3, None, "10.10.3.11")
    vc_folder.power_off(off.active_vm.cid)

    response = admin_client.get("/director/vms/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "vCenter did not answer" not in page
    assert row(page, on) == (
        f"zookeeper/{on.uuid} (0) bootstrap running z1 10.10.1.10 {on.active_vm.cid} small "
        "disk-a 1024 MiB poweredOn —"
    )
    assert row(page, off) == (
        f"zookeeper/{off.uuid} (1) unresponsive agent z2 10.10.2.10 {off.active_vm.cid} small "
        "— poweredOff —"
    )
    assert row(page, gone).endswith(f"{gone.active_vm.cid} small — not in vCenter —")
    assert "unresponsive agent" in row(page, gone)
    assert row(page, no_vm) == f"zookeeper/{no_vm.uuid} (3) - z4 10.10.3.11 no VM small — — —"
    assert row(page, on, actions=True) == "Logs Stop Restart Recreate Delete VM"
    assert row(page, no_vm, actions=True) == ""  # no VM, not detached: nothing to act on

    # Powered on again in vCenter: the next refresh of the fragment says so.
    WaitForTask(vc_folder.vms[off.active_vm.cid].PowerOnVM_Task())
    fragment = admin_client.get("/director/vms/", **HTMX).content.decode()
    assert "<html" not in fragment
    assert row(fragment, off).endswith("poweredOn —") and "running" in row(fragment, off)


def test_one_vcenter_read_for_the_whole_page(admin_client, vc_folder, monkeypatch):
    from cpi.vsphere.cloud import VSphereCloud

    asked = []
    original = VSphereCloud.vm_states
    monkeypatch.setattr(
        VSphereCloud,
        "vm_states",
        lambda self, cids: asked.append(list(cids)) or original(self, cids),
    )
    cids = {}
    for name in ("zk", "kafka"):
        d = Deployment.objects.create(name=name)
        for i in range(2):
            cid = vc_folder.create(f"vm-{uuid.uuid4()}")
            cids[cid] = add_instance(d, i, cid, f"10.10.{len(cids) + 1}.20")
    page = admin_client.get("/director/vms/").content.decode()
    assert len(asked) == 1 and sorted(asked[0]) == sorted(cids)
    assert page.count("poweredOn") == 4
    # Deployments in name order, each its own table.
    assert page.index('data-deployment="kafka"') < page.index('data-deployment="zk"')


def test_unreachable_vcenter_shows_a_banner_and_the_database_rows(admin_client, vcsim):
    content = cpi_config(vcsim, "BOSH_VMs", "BOSH_Disks")
    doc = yaml.safe_load(content)
    doc["cpis"][0]["properties"]["host"] = "127.0.0.1:9"
    doc["cpis"][0]["properties"]["connection_options"]["connect_timeout"] = 1
    Config.objects.create(type="cpi", name="default", content=yaml.safe_dump(doc))
    zk = Deployment.objects.create(name="zk")
    inst = add_instance(zk, 0, "vm-abc", "10.10.1.10")

    response = admin_client.get("/director/vms/")
    assert response.status_code == 200
    page = response.content.decode()
    banner = re.search(r'class="error vcenter-error".*?</li>', page, re.S).group(0)
    assert "vCenter did not answer" in banner and "127.0.0.1:9" in banner
    assert vcsim.password not in page
    # What the database holds, with the agent's recorded state and no power state.
    assert (
        row(page, inst)
        == f"zookeeper/{inst.uuid} (0) bootstrap running z1 10.10.1.10 vm-abc small — unknown —"
    )


def test_no_vcenter_configured_is_a_banner_too(admin_client):
    zk = Deployment.objects.create(name="zk")
    add_instance(zk, 0, "vm-abc", "10.10.1.10")
    page = admin_client.get("/director/vms/").content.decode()
    assert "vCenter did not answer" in page and "no vCenter configured" in page
    assert "vm-abc" in page


def test_filter_by_deployment_and_the_fragment_refreshes_itself(admin_client):
    zk, kafka = Deployment.objects.create(name="zk"), Deployment.objects.create(name="kafka")
    add_instance(zk, 0, None, "10.10.1.10")
    add_instance(kafka, 0, None, "10.10.1.11", group="kafka")

    page = admin_client.get("/director/vms/?deployment=zk").content.decode()
    assert 'data-deployment="zk"' in page and 'data-deployment="kafka"' not in page
    assert '<option value="zk" selected>' in page
    fragment = admin_client.get("/director/vms/?deployment=zk", **HTMX).content.decode()
    assert fragment.lstrip().startswith('<div id="vm-table"')
    assert 'hx-get="/director/vms/?deployment=zk"' in fragment
    assert 'hx-trigger="every 5s"' in fragment and 'hx-swap="outerHTML"' in fragment
    assert 'data-deployment="kafka"' not in fragment

    everything = admin_client.get("/director/vms/", **HTMX).content.decode()
    assert 'hx-get="/director/vms/"' in everything
    assert 'data-deployment="zk"' in everything and 'data-deployment="kafka"' in everything

    response = admin_client.get("/director/vms/?deployment=nope", follow=True)
    page = response.content.decode()
    assert response.status_code == 200 and "Deployment &#x27;nope&#x27; does not exist" in page
    assert 'data-deployment="zk"' in page  # falls back to every deployment


def test_queries_stay_constant_as_rows_grow(admin_client, django_assert_max_num_queries):
    zk = Deployment.objects.create(name="zk")
    add_instance(zk, 0, "vm-0", "10.10.1.10", disk="disk-0")
    with django_assert_max_num_queries(20) as few:
        admin_client.get("/director/vms/")
    for i in range(1, 15):
        add_instance(zk, i, f"vm-{i}", f"10.10.1.{10 + i}", disk=f"disk-{i}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = admin_client.get("/director/vms/").content.decode()
    assert page.count('<tr id="instance-') == 15


def test_anonymous_is_sent_to_login_and_every_role_may_look(client, user_with_role, no_local_vcsim):
    response = client.get("/director/vms/", **HTMX)
    assert response.status_code == 302 and "/login/" in response["Location"]
    Deployment.objects.create(name="zk")
    for role in ("restricted_view", "full_view", "restricted_control", "full_control"):
        client.force_login(user_with_role(role))
        response = client.get("/director/vms/")
        assert response.status_code == 200 and 'data-deployment="zk"' in response.content.decode()


def test_refreshes_reuse_one_vcenter_session_until_the_cpi_config_changes(
    admin_client, vc_folder, vcsim
):
    from benchmarks.soap_calls import count_soap_calls

    zk = Deployment.objects.create(name="zk")
    add_instance(zk, 0, vc_folder.create(f"vm-{uuid.uuid4()}"), "10.10.1.10")
    with count_soap_calls() as calls:
        for _ in range(3):
            assert "poweredOn" in admin_client.get("/director/vms/", **HTMX).content.decode()
    assert calls["Login"] <= 1, calls  # one session for the three refreshes
    assert calls["RetrievePropertiesEx"] == 3, calls

    # A new cpi config (another folder): a new session, reading the new folder.
    Config.objects.create(type="cpi", name="default", content=cpi_config(vcsim, "elsewhere", "d"))
    with count_soap_calls() as calls:
        page = admin_client.get("/director/vms/", **HTMX).content.decode()
    assert calls["Login"] == 1 and calls["Logout"] == 1, calls
    assert "not in vCenter" in page


def test_the_api_lists_vms_with_vcenters_power_state(admin_api, vc_folder, no_local_vcsim):
    """``GET /api/v0/director/deployments/<name>/vms`` answers what the page shows."""
    zk = Deployment.objects.create(name="zk")
    on = add_instance(zk, 0, vc_folder.create(f"vm-{uuid.uuid4()}"), "10.10.1.10")
    off = add_instance(zk, 1, vc_folder.create(f"vm-{uuid.uuid4()}"), "10.10.2.10")
    add_instance(zk, 2, None, "10.10.3.11")  # no VM: not listed, as bosh vms does
    vc_folder.power_off(off.active_vm.cid)

    response = admin_api.get("/api/v0/director/deployments/zk/vms")
    assert response.status_code == 200 and "Warning" not in response
    got = {v["vm_cid"]: (v["power_state"], v["process_state"]) for v in response.json()}
    assert got == {
        on.active_vm.cid: ("poweredOn", "running"),
        off.active_vm.cid: ("poweredOff", "unresponsive agent"),
    }


def test_the_api_says_when_vcenter_cannot_be_asked(admin_api, no_local_vcsim):
    zk = Deployment.objects.create(name="zk")
    vm = add_instance(zk, 0, "vm-x", "10.10.1.10").active_vm
    response = admin_api.get("/api/v0/director/deployments/zk/vms")
    assert response.status_code == 200
    assert "vCenter" in response["Warning"]
    assert [(v["vm_cid"], v["power_state"]) for v in response.json()] == [(vm.cid, None)]
