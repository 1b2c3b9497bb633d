"""The agent listener records what agents publish, as the health monitor hears it."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from director.agents.listener import AgentListener
from director.models import AgentAlert, AgentHeartbeat
from tests.asyncutil import run_apart

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

HEARTBEAT = {
    "deployment": "zookeeper",
    "job": "zookeeper",
    "index": 2,
    "job_state": "running",
    "node_id": "3f1c2d4e-0000-4000-8000-000000000001",
    "number_of_processes": 2,
    "vitals": {
        "cpu": {"user": "1.2", "sys": "0.4", "wait": "0.0"},
        "load": ["0.09", "0.04", "0.01"],
        "mem": {"percent": "35", "kb": "1459960"},
        "disk": {"system": {"percent": "41", "inode_percent": "12"}},
    },
}


@pytest.fixture
def listener(nats_server):
    """An AgentListener in a thread of its own, subscribed before the test goes on."""
    loop = asyncio.new_event_loop()
    agent_listener = AgentListener(nats_server.url, nats_server.pki, sync_interval=0.5)

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(agent_listener.run())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    _until("the listener subscribed", agent_listener.ready.is_set)
    try:
        yield agent_listener
    finally:
        loop.call_soon_threadsafe(agent_listener.stop)
        thread.join(15)
        assert not thread.is_alive()


def _until(what, predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"no {what} within {timeout:.0f} s")


def test_heartbeats_are_recorded_per_agent(listener, fake_agent):
    fake_agent.publish(f"hm.agent.heartbeat.{fake_agent.agent_id}", HEARTBEAT)
    beat = _until(
        "heartbeat row", lambda: AgentHeartbeat.objects.filter(agent_id=fake_agent.agent_id).first()
    )
    first_seen = beat.last_heartbeat_at
    assert (beat.deployment, beat.job, beat.index, beat.job_state) == (
        "zookeeper",
        "zookeeper",
        2,
        "running",
    )
    assert beat.instance_id == HEARTBEAT["node_id"] and beat.number_of_processes == 2
    assert beat.vitals["mem"] == {"percent": "35", "kb": "1459960"}

    processes = [{"name": "zookeeper", "state": "failing"}]
    fake_agent.publish(
        f"hm.agent.heartbeat.{fake_agent.agent_id}",
        {**HEARTBEAT, "job_state": "failing", "processes": processes},
    )
    beat = _until(
        "the second heartbeat",
        lambda: AgentHeartbeat.objects.filter(
            agent_id=fake_agent.agent_id, job_state="failing"
        ).first(),
    )
    assert beat.last_heartbeat_at > first_seen and beat.processes == processes
    assert AgentHeartbeat.objects.filter(agent_id=fake_agent.agent_id).count() == 1


def test_alerts_and_shutdown_are_recorded(listener, fake_agent):
    fake_agent.publish(
        f"hm.agent.alert.{fake_agent.agent_id}",
        {
            "id": "1700000000.123@localhost",
            "severity": 1,
            "title": "zookeeper (10.0.0.5) - Does not exist - restart",
            "summary": "process is not running",
            "created_at": 1700000000,
        },
    )
    alert = _until(
        "alert row", lambda: AgentAlert.objects.filter(agent_id=fake_agent.agent_id).first()
    )
    assert alert.severity == 1 and alert.title.startswith("zookeeper (10.0.0.5) - Does not exist")
    assert alert.created_at.timestamp() == 1700000000

    fake_agent.publish(f"hm.agent.shutdown.{fake_agent.agent_id}", b"null")
    _until(
        "shutdown noted",
        lambda: AgentHeartbeat.objects.filter(
            agent_id=fake_agent.agent_id, shutdown_at__isnull=False
        ).exists(),
    )


def test_bad_payloads_are_dropped_and_the_listener_goes_on(listener, fake_agent):
    subject = f"hm.agent.heartbeat.{fake_agent.agent_id}"
    fake_agent.publish(subject, b"{not json")
    fake_agent.publish(subject, ["a", "list"])
    fake_agent.publish(subject, {**HEARTBEAT, "index": "two"})
    fake_agent.publish(subject, HEARTBEAT)
    beat = _until(
        "the good heartbeat",
        lambda: AgentHeartbeat.objects.filter(agent_id=fake_agent.agent_id).first(),
    )
    assert beat.index == 2  # the bad one before it wrote nothing


def test_an_agent_cannot_beat_for_another(listener, agent_factory):
    honest, liar = agent_factory(), agent_factory()
    liar.publish(f"hm.agent.heartbeat.{honest.agent_id}", {**HEARTBEAT, "job_state": "failing"})
    liar.publish(f"hm.agent.heartbeat.{liar.agent_id}", HEARTBEAT)  # its own gets through
    _until("the liar's own heartbeat", AgentHeartbeat.objects.filter(agent_id=liar.agent_id).exists)
    assert not AgentHeartbeat.objects.filter(agent_id=honest.agent_id).exists()


def test_the_listener_keeps_nats_users_in_step_with_the_vms(nats_server, agent_tls_for):
    """bosh-nats-sync: a VM's agent may connect; once its VM is deleted, it may not."""
    import uuid

    from director.agents import nats_auth
    from director.models import Deployment, Instance, Vm

    deployment = Deployment.objects.create(name=f"zk-{uuid.uuid4().hex[:6]}")
    instance = Instance.objects.create(
        deployment=deployment, group="zookeeper", uuid=str(uuid.uuid4()), index=0
    )
    agent_id = str(uuid.uuid4())
    vm = Vm.objects.create(instance=instance, cid=f"vm-{agent_id}", agent_id=agent_id)
    loop = asyncio.new_event_loop()
    syncing = AgentListener(
        nats_server.url, nats_server.pki, nats_dir=nats_server.directory, sync_interval=0.2
    )
    thread = threading.Thread(target=loop.run_until_complete, args=(syncing.run(),), daemon=True)
    thread.start()
    try:
        _until(
            "the VM's agent allowed",
            lambda: agent_id in nats_auth.allowed_agents(nats_server.directory),
        )
        assert _refused(nats_server.url, agent_tls_for(agent_id)) is None
        # deleted long after it was allowed: the grace for agents without a VM row is over
        agents = nats_auth._read_agents(nats_server.directory)
        agents[agent_id] -= 2 * nats_auth.DEFAULT_GRACE
        nats_auth._write_all(nats_server.directory, agents)
        vm.delete()
        _until(
            "the agent removed",
            lambda: agent_id not in nats_auth.allowed_agents(nats_server.directory),
        )
        assert _refused(nats_server.url, agent_tls_for(agent_id)) is not None
    finally:
        loop.call_soon_threadsafe(syncing.stop)
        thread.join(15)


def _refused(url, context):
    import nats

    async def attempt():
        nc = await nats.connect(
            url,
            tls=context,
            tls_hostname="default.nats.bosh-internal",
            allow_reconnect=False,
            connect_timeout=3,
            max_reconnect_attempts=0,
        )
        await nc.close()

    try:
        run_apart(attempt())
    except Exception as exc:
        return exc
    return None
