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

import re

import pytest

from tests.director.heartbeats import VITALS, beat, zk_deployment

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def admin_client(client, admin_user, settings, tmp_path):
    settings.LOCAL_VCSIM_FILE = tmp_path / "no-vcsim.json"  # no vCenter to ask
    client.force_login(admin_user)
    return client


@pytest.fixture
def zk():
    """zk: two instances with a VM; only agent-0 has beat."""
    deployment = zk_deployment(instances=2, vms=2)
    beat("agent-0")
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
    beat("agent-0", job_state="failing", vitals={**VITALS, "load": ["2.00", "1.00", "0.50"]})
    row = _row(admin_client.get("/director/vms/").content.decode(), "zookeeper/uuid-0")
    assert _cell(row, "load") == "2.00, 1.00, 0.50"
    assert ">failing<" in row
