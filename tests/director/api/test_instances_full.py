"""``GET deployments/{name}/instances?format=full``: ``bosh instances --ps --vitals``.

The heartbeats are recorded as the agent listener records them
(``director.agents.listener.record``, from the subject and the bytes an
agent publishes), so the API shows what an agent's heartbeat really leaves
behind: BOSH's process state, the processes, the vitals (the agent's
strings) and the time of the last heartbeat. Without ``format`` the shape is
unchanged; an unknown ``format`` is a 400 naming the parameter.

On vcsim with the real agents (the VM runtime, nats-server, a worker, the
agent listener): after a deploy every instance reads ``running`` with its
job's processes and the vitals its VM runtime measured.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from director import services
from director.agents.listener import record
from director.models import AgentHeartbeat, Instance, Vm
from tests.director.execution.conftest import (  # noqa: F401  fixtures of the vcsim test
    director_env,
    release_tgz,
    stemcell_tgz,
    wait_done,
)
from tests.director.execution.test_agents_vcsim import build_greeter_release, greeter_manifest
from tests.director.heartbeats import agent_listener, beat, zk_deployment  # noqa: F401  fixture

pytestmark = pytest.mark.django_db

D = "/api/v0/director"


@pytest.fixture
def zk(director_dirs):
    """zk: instance 0 heartbeating, 1 with a VM that never beat, 2 without a VM."""
    return zk_deployment(instances=3, vms=2)


def test_full_format_shows_what_the_agent_reported(admin_api, zk):
    beat("agent-0")
    body = admin_api.get(f"{D}/deployments/zk/instances", {"format": "full"})
    assert body.status_code == 200, body.content
    rows = {r["instance"]: r for r in body.json()}
    seen = AgentHeartbeat.objects.get(agent_id="agent-0").last_heartbeat_at

    zk0 = rows["zookeeper/uuid-0"]
    assert zk0["vm_cid"] == "vm-0" and zk0["ips"] == ["10.0.0.10"]  # the plain fields stay
    assert zk0["process_state"] == "running"
    assert zk0["processes"] == [
        {
            "name": "zookeeper",
            "state": "running",
            "uptime": {"secs": 125},
            "cpu": {"total": 0.4},
            "mem": {"kb": 51200, "percent": 1.2},
        },
        {"name": "zk-metrics", "state": "failing"},
    ]
    assert zk0["vitals"] == {
        "load": ["0.25", "0.50", "0.75"],
        "cpu": {"user": "12.5", "sys": "1.5", "wait": "0.2"},
        "mem": {"percent": "26", "kb": "1048576"},
        "swap": {"percent": "0", "kb": "0"},
        "uptime": {"secs": 93784},
        "disk": {
            "system": {"percent": "45", "inode_percent": "30"},
            "ephemeral": {"percent": "21", "inode_percent": "3"},
            "persistent": {"percent": "7", "inode_percent": "1"},
        },
    }
    assert zk0["last_heartbeat"] == seen.isoformat()

    # a VM whose agent never beat; an instance without a VM
    assert set(rows["zookeeper/uuid-1"]) == set(zk0) == set(rows["zookeeper/uuid-2"])
    assert rows["zookeeper/uuid-1"]["process_state"] == "unresponsive agent"
    assert rows["zookeeper/uuid-1"]["processes"] == []
    assert rows["zookeeper/uuid-1"]["vitals"] is None
    assert rows["zookeeper/uuid-1"]["last_heartbeat"] is None
    assert rows["zookeeper/uuid-2"]["vm_cid"] is None
    assert rows["zookeeper/uuid-2"]["process_state"] is None
    assert rows["zookeeper/uuid-2"]["vitals"] is None


def test_job_state_silence_and_shutdown_as_bosh_words(admin_api, zk, settings):
    settings.HM_AGENT_TIMEOUT = 60
    beat("agent-0", job_state="failing")
    beat("agent-1", job_state="stopped", processes=[])

    def states():
        rows = admin_api.get(f"{D}/deployments/zk/instances?format=full").json()
        return [r["process_state"] for r in rows]

    assert states() == ["failing", "stopped", None]
    # agent-0 silent for longer than the health monitor's agent timeout
    AgentHeartbeat.objects.filter(agent_id="agent-0").update(
        last_heartbeat_at=timezone.now() - timedelta(seconds=61)
    )
    # agent-1 announced its shutdown (hm.agent.shutdown.<id>)
    record("hm.agent.shutdown.agent-1", b"{}")
    assert states() == ["unresponsive agent", "unresponsive agent", None]
    # the vitals of the last beat stay readable
    rows = admin_api.get(f"{D}/deployments/zk/instances?format=full").json()
    assert rows[0]["vitals"]["load"] == ["0.25", "0.50", "0.75"]


def test_odd_agent_payloads_keep_the_documented_shape(admin_api, zk):
    beat(
        "agent-0",
        vitals={"load": ["1.00", {"x": 1}], "cpu": "busy", "mem": {"percent": "5", "secret": "s"}},
        processes=[{"name": "zk", "state": "running", "mem": "lots"}, "junk", {"state": "x"}],
    )
    row = admin_api.get(f"{D}/deployments/zk/instances?format=full").json()[0]
    assert row["vitals"] == {"load": ["1.00"], "mem": {"percent": "5"}, "disk": {}}
    assert row["processes"] == [{"name": "zk", "state": "running"}]


def test_without_format_the_shape_is_unchanged(admin_api, zk):
    beat("agent-0")
    row = admin_api.get(f"{D}/deployments/zk/instances").json()[0]
    assert set(row) == {
        "id",
        "group",
        "index",
        "instance",
        "az",
        "state",
        "bootstrap",
        "ignore",
        "expects_vm",
        "ips",
        "vm_cid",
        "agent_id",
        "disk_cids",
    }


@pytest.mark.parametrize("value", ["json", "FULL", "", "ps"])
def test_an_unknown_format_is_a_400_naming_the_parameter(admin_api, zk, value):
    response = admin_api.get(f"{D}/deployments/zk/instances", {"format": value})
    assert response.status_code == 400
    assert response.json() == {"errors": {"format": ["must be one of: full"]}}


def test_full_format_needs_a_login_and_a_deployment(admin_api, zk):
    anonymous = APIClient()
    assert anonymous.get(f"{D}/deployments/zk/instances?format=full").status_code == 401
    missing = admin_api.get(f"{D}/deployments/nope/instances?format=full")
    assert missing.status_code == 404
    assert missing.json() == {"errors": {"base": ["Deployment 'nope' does not exist"]}}


def test_query_count_stays_constant_with_heartbeats(admin_api, zk, django_assert_max_num_queries):
    beat("agent-0")
    url = f"{D}/deployments/zk/instances?format=full"
    admin_api.get(url)  # warm up
    with django_assert_max_num_queries(8) as few:
        admin_api.get(url)
    for i in range(3, 13):
        inst = Instance.objects.create(deployment=zk, group="zookeeper", uuid=f"uuid-{i}", index=i)
        Vm.objects.create(instance=inst, cid=f"vm-{i}", agent_id=f"agent-{i}", active=True)
        beat(f"agent-{i}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        rows = admin_api.get(url).json()
    assert [r["process_state"] for r in rows].count("running") == 11


# --------------------------------------------------------------------------- real agents


def _number(text: str) -> float:
    assert isinstance(text, str), text  # agents send vitals as strings
    return float(text)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("agent_listener")  # imported above from tests.director.heartbeats
def test_after_a_deploy_the_agents_view_shows_running_processes_and_vitals(
    request, vm_runtime, admin_api, admin_user, client, tmp_path
):
    env = request.getfixturevalue("director_env")  # imported above from the execution tests
    wait_done(services.upload_release(build_greeter_release(tmp_path / "greeter.tgz"), "admin"))
    wait_done(env.deploy(greeter_manifest("greet-full")), timeout=600)
    url = f"{D}/deployments/greet-full/instances?format=full"

    def settled():
        rows = [r for r in admin_api.get(url).json() if r["vm_cid"]]
        beaten = all(r["vitals"] and r["processes"] for r in rows)
        return rows if rows and beaten else None

    deadline = time.monotonic() + 30  # heartbeats every second (vm_runtime fixture)
    while (rows := settled()) is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert rows, admin_api.get(url).json()

    assert sorted(r["group"] for r in rows) == ["idle", "web", "web", "web"]  # errand: no VM
    for row in rows:
        assert row["process_state"] == "running", row
        assert row["last_heartbeat"]
        processes = row["processes"]
        assert [p["name"] for p in processes] == [row["group"]]
        process = processes[0]
        assert process["state"] == "running"
        assert process["mem"]["kb"] > 0  # the resident size of a live process
        vitals = row["vitals"]
        assert len(vitals["load"]) == 3 and all(_number(x) >= 0 for x in vitals["load"])
        assert 0 <= _number(vitals["mem"]["percent"]) <= 100 and _number(vitals["mem"]["kb"]) > 0
        assert {"user", "sys", "wait"} <= set(vitals["cpu"])
        assert 0 < _number(vitals["disk"]["system"]["percent"]) <= 100
        assert 0 < _number(vitals["disk"]["ephemeral"]["percent"]) <= 100
        assert vitals["uptime"]["secs"] >= 0
    # the heartbeat the agent sent holds the pid of the process that runs in its VM
    web = next(r for r in rows if r["group"] == "web")
    beat_of = AgentHeartbeat.objects.get(agent_id=web["agent_id"])
    pid = beat_of.processes[0]["pid"]
    run_dir = vm_runtime.root(web["vm_cid"]) / "data" / "sys" / "run" / "web"
    assert int((run_dir / "web.pid").read_text()) == pid

    # the VMs page shows the same: vitals cells and the processes row
    client.force_login(admin_user)
    page = client.get("/director/vms/?deployment=greet-full").content.decode()
    row = page[page.index(f'data-instance="web/{web["id"]}"') :]
    cells = dict(
        re.findall(r'<td class="vital ([a-z-]+)"[^>]*>(.*?)</td>', row.split("</tr>", 1)[0])
    )
    assert re.fullmatch(r"\d+\.\d\d, \d+\.\d\d, \d+\.\d\d", cells["load"]), cells
    assert re.fullmatch(r"\d+% \(.+\)", cells["memory"]), cells
    assert re.fullmatch(r"\d+%, \d+%, —", cells["disk"]), cells  # no persistent disk
    processes = row[row.index('<tr class="processes"') : row.index("</details>")]
    assert '<tr data-process="web">' in processes and ">running<" in processes
