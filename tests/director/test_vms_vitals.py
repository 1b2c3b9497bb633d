"""The VMs page shows what each VM's agent last reported: ``bosh vms --vitals`` and the processes.

Heartbeats are recorded as the agent listener records them
(``director.agents.listener.record``). Each instance row carries the vitals
columns (load, CPU user/sys/wait, memory, system/ephemeral/persistent
disk) and is followed by a row with the heartbeat's time, uptime and swap
and the processes in a ``<details>``; an instance whose agent never beat
shows "—" in each vital cell. vCenter is not configured here: the rows come from the database under
the vCenter banner, which is enough for what the agents said.
"""

from __future__ import annotations

import json
import re

import pytest

from director.agents.listener import record
from director.models import Deployment, Instance, IpAddress, Vm

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]

HTMX = {"HTTP_HX_REQUEST": "true"}

VITALS = {
    "cpu": {"sys": "1.5", "user": "12.5", "wait": "0.2"},
    "disk": {
        "ephemeral": {"inode_percent": "3", "percent": "21"},
        "persistent": {"inode_percent": "1", "percent": "7"},
        "system": {"inode_percent": "30", "percent": "45"},
    },
    "load": ["0.25", "0.50", "0.75"],
    "mem": {"kb": "1048576", "percent": "26"},
    "swap": {"kb": "0", "percent": "0"},
    "uptime": {"secs": 93784},
}


@pytest.fixture
def admin_client(client, admin_user, settings, tmp_path):
    settings.LOCAL_VCSIM_FILE = tmp_path / "no-vcsim.json"  # no vCenter to ask
    client.force_login(admin_user)
    return client


@pytest.fixture
def zk():
    deployment = Deployment.objects.create(name="zk", manifest_text="name: zk\n")
    for i in range(2):
        inst = Instance.objects.create(
            deployment=deployment, group="zookeeper", uuid=f"uuid-{i}", index=i, az="z1"
        )
        vm = Vm.objects.create(instance=inst, cid=f"vm-{i}", agent_id=f"agent-{i}", active=True)
        IpAddress.objects.create(
            address=f"10.0.0.{10 + i}", network_name="default", instance=inst, vm=vm
        )
    payload = {
        "deployment": "zk",
        "job": "zookeeper",
        "index": 0,
        "job_state": "running",
        "node_id": "uuid-0",
        "number_of_processes": 2,
        "vitals": VITALS,
        "processes": [
            {
                "name": "zookeeper",
                "state": "running",
                "uptime": {"secs": 125},
                "mem": {"kb": 51200, "percent": 1.2},
                "cpu": {"total": 0.4},
            },
            {"name": "zk-metrics", "state": "failing"},
        ],
    }
    record("hm.agent.heartbeat.agent-0", json.dumps(payload).encode())
    return deployment


def _row(html: str, name: str) -> str:
    match = re.search(
        rf'<tr id="instance-[^"]*" data-instance="{re.escape(name)}".*?</tr>', html, re.S
    )
    assert match, f"no row for {name}"
    return match.group(0)


def _processes(html: str, name: str) -> str:
    match = re.search(
        rf'<tr class="processes" data-instance="{re.escape(name)}">.*?</details>|'
        rf'<tr class="processes" data-instance="{re.escape(name)}">.*?</tr>',
        html,
        re.S,
    )
    assert match, f"no processes row for {name}"
    return match.group(0)


def _cell(row: str, css: str) -> str:
    match = re.search(rf'<td class="vital {css}"[^>]*>(.*?)</td>', row, re.S)
    assert match, f"no {css} cell"
    return match.group(1).replace("\xa0", " ")


def test_vitals_columns_from_the_last_heartbeat(admin_client, zk):
    html = admin_client.get("/director/vms/").content.decode()
    headings = ("Load (1m, 5m, 15m)", "CPU (user, sys, wait)", "Memory", "Disk (system, ")
    for heading in headings:
        assert f">{heading}" in html
    row = _row(html, "zookeeper/uuid-0")
    assert 'class="badge ok">running<' in row
    assert _cell(row, "load") == "0.25, 0.50, 0.75"
    assert _cell(row, "cpu") == "12.5%, 1.5%, 0.2%"
    assert _cell(row, "memory") == "26% (1.0 GB)"
    assert 'title="swap 0% (0 bytes)"' in row.replace("\xa0", " ")
    assert _cell(row, "disk") == "45%, 21%, 7%"  # system, ephemeral, persistent
    assert 'title="system 45% (30i%); ephemeral 21% (3i%); persistent 7% (1i%)"' in row

    # the agent of zookeeper/uuid-1 never beat: a dash in every vital cell
    silent = _row(html, "zookeeper/uuid-1")
    assert "unresponsive agent" in silent
    cells = re.findall(r'<td class="vital ([a-z-]+)"[^>]*>(.*?)</td>', silent)
    assert len(cells) == 4 and {text for _, text in cells} == {"—"}
    assert "Heartbeat: — (none yet)" in _processes(html, "zookeeper/uuid-1")
    beat_line = _processes(html, "zookeeper/uuid-0").replace("\xa0", " ")
    assert "uptime 1d 2h 3m 4s · swap 0% (0 bytes)" in beat_line


def test_processes_of_an_instance_in_a_details_row(admin_client, zk):
    html = admin_client.get("/director/vms/", **HTMX).content.decode()  # the refreshed fragment
    processes = _processes(html, "zookeeper/uuid-0")
    assert '<details id="processes-uuid-0">' in processes
    assert "2 processes of zookeeper/uuid-0" in processes
    rows = dict(re.findall(r'<tr data-process="([^"]+)">(.*?)</tr>', processes, re.S))
    assert set(rows) == {"zookeeper", "zk-metrics"}
    assert 'class="badge ok">running<' in rows["zookeeper"]
    assert '<td class="uptime">0d 0h 2m 5s</td>' in rows["zookeeper"]
    assert '<td class="cpu">0.4%</td>' in rows["zookeeper"]
    assert "1.2% (50.0" in rows["zookeeper"]
    assert 'class="badge error">failing<' in rows["zk-metrics"]
    assert '<td class="mem">—</td>' in rows["zk-metrics"]


def test_a_newer_heartbeat_replaces_the_vitals(admin_client, zk):
    newer = {"job_state": "failing", "vitals": {**VITALS, "load": ["2.00", "1.00", "0.50"]}}
    record("hm.agent.heartbeat.agent-0", json.dumps(newer).encode())
    row = _row(admin_client.get("/director/vms/").content.decode(), "zookeeper/uuid-0")
    assert _cell(row, "load") == "2.00, 1.00, 0.50"
    assert ">failing<" in row
