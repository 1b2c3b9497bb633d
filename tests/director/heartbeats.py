"""What agents report, for the tests that read it back: heartbeats and the listener that records them.

``beat`` records a heartbeat as the agent listener records one
(``director.agents.listener.record``, from the subject and the bytes an
agent publishes): the ``zk`` deployment's ``zookeeper`` job with ``VITALS``
and ``PROCESSES`` unless told otherwise. ``zk_deployment`` is the deployment
those heartbeats name. ``agent_listener`` is a fixture (import it into the
test module) running what ``runstack``'s agent listener runs, on the test's
nats-server, until the test ends: the real agents' heartbeats reach
``AgentHeartbeat``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from director.agents.listener import AgentListener, record
from director.models import Deployment, Instance, IpAddress, Vm

#: The vitals as agents send them (strings); an uptime of 1d 2h 3m 4s.
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
#: One running process (up 2m 5s, with its pid) and one failing with nothing more to say.
PROCESSES = [
    {
        "name": "zookeeper",
        "state": "running",
        "uptime": {"secs": 125},
        "mem": {"kb": 51200, "percent": 1.2},
        "cpu": {"total": 0.4},
        "pid": 4242,
    },
    {"name": "zk-metrics", "state": "failing"},
]


def beat(agent_id: str, **fields) -> None:
    """Publish-and-record: what the listener does with ``hm.agent.heartbeat.<agent_id>``."""
    payload = {
        "deployment": "zk",
        "job": "zookeeper",
        "index": 0,
        "job_state": "running",
        "node_id": "uuid-0",
        "number_of_processes": len(PROCESSES),
        "vitals": VITALS,
        "processes": PROCESSES,
        **fields,
    }
    record(f"hm.agent.heartbeat.{agent_id}", json.dumps(payload).encode())


def zk_deployment(instances: int, vms: int) -> Deployment:
    """``zk``: ``instances`` zookeeper instances in z1, the first ``vms`` with a VM
    (``vm-<i>``, agent ``agent-<i>``), each with the IP ``10.0.0.<10 + i>``."""
    deployment = Deployment.objects.create(name="zk", manifest_text="name: zk\n")
    for i in range(instances):
        inst = Instance.objects.create(
            deployment=deployment, group="zookeeper", uuid=f"uuid-{i}", index=i, az="z1"
        )
        vm = None
        if i < vms:
            vm = Vm.objects.create(instance=inst, cid=f"vm-{i}", agent_id=f"agent-{i}", active=True)
        IpAddress.objects.create(
            address=f"10.0.0.{10 + i}", network_name="default", instance=inst, vm=vm
        )
    return deployment


@pytest.fixture
def agent_listener(nats_server):
    """What ``runstack``'s agent listener does: the agents' heartbeats reach ``AgentHeartbeat``,
    where the API and the VMs page read each VM's process state and vitals."""
    loop = asyncio.new_event_loop()
    listener = AgentListener(nats_server.url, nats_server.pki)
    thread = threading.Thread(target=loop.run_until_complete, args=(listener.run(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not listener.ready.is_set() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert listener.ready.is_set(), "the agent listener did not subscribe"
    try:
        yield listener
    finally:
        loop.call_soon_threadsafe(listener.stop)
        thread.join(15)
        assert not thread.is_alive(), "the agent listener did not stop"
        loop.close()
