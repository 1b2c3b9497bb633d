"""The director's agent client against a real nats-server (TLS, client certificates) and a fake agent."""

from __future__ import annotations

import re
import threading
import time
import uuid

import pytest

from director.agents.client import AgentClient, parse_watch_time, watch_schedule
from director.agents.errors import (
    AgentJobNotRunning,
    AgentRemoteError,
    AgentTaskCancelled,
    AgentTaskFailed,
    AgentUnknownMethod,
    AgentUnresponsive,
    MbusUnavailable,
)
from director.agents.mbus import Mbus

pytestmark = pytest.mark.integration


def client(agent, mbus, **kwargs) -> AgentClient:
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("timeout", 5)
    return AgentClient(agent.agent_id, mbus=mbus, **kwargs)


def test_round_trip_uses_bosh_envelope_and_reply_subject(fake_agent, mbus):
    agent = client(fake_agent, mbus, instance="zookeeper/3f1c (0)")
    assert agent.ping() == "pong"
    fake_agent.state["job_state"] = "failing"
    state = agent.get_state()
    assert state["agent_id"] == fake_agent.agent_id and state["job_state"] == "failing"
    assert "vitals" not in state
    assert agent.get_state(full=True)["vitals"]["cpu"]["user"] == "1.0"

    ping, plain, full = fake_agent.requests
    assert ping["protocol"] == 3 and ping["method"] == "ping" and ping["arguments"] == []
    assert (plain["arguments"], full["arguments"]) == ([], ["full"])
    replies = {r["reply_to"] for r in fake_agent.requests}
    assert len(replies) == 3  # one request id each
    for reply_to in replies:
        assert re.fullmatch(
            rf"director\.{mbus.process_uuid}\.{fake_agent.agent_id}\.[0-9a-f-]{{36}}", reply_to
        )


def test_long_running_apply_is_polled_with_get_task(fake_agent, mbus):
    fake_agent.task_polls = 3
    spec = {"deployment": "zk", "job": {"name": "zookeeper"}, "index": 0}
    assert client(fake_agent, mbus).apply(spec) == "applied"

    assert fake_agent.methods() == ["apply", "get_task", "get_task", "get_task", "get_task"]
    assert fake_agent.requests[0]["arguments"] == [spec]
    (task_id,) = fake_agent.tasks
    assert all(r["arguments"] == [task_id] for r in fake_agent.requests[1:])


def test_a_sync_method_answers_at_once(fake_agent, mbus):
    assert client(fake_agent, mbus).start() == "started"
    assert fake_agent.methods() == ["start"]


def test_exception_reply_is_a_typed_error_naming_agent_and_method(fake_agent, mbus):
    fake_agent.exceptions["start"] = "Action Failed start: monit is not reachable"
    with pytest.raises(AgentRemoteError) as caught:
        client(fake_agent, mbus, instance="zookeeper/3f1c (0)").start()
    error = caught.value
    assert (error.agent_id, error.method) == (fake_agent.agent_id, "start")
    assert str(error) == (
        f"agent '{fake_agent.agent_id}' (zookeeper/3f1c (0)): start: "
        "Action Failed start: monit is not reachable"
    )


def test_a_failed_task_names_agent_method_and_the_agents_message(fake_agent, mbus):
    fake_agent.task_errors["apply"] = "Applying: Installing package 'java': digest mismatch"
    with pytest.raises(AgentTaskFailed) as caught:
        client(fake_agent, mbus).apply({"deployment": "zk"})
    error = caught.value
    (task_id,) = fake_agent.tasks
    assert error.method == "apply" and error.task_id == task_id
    assert fake_agent.agent_id in str(error)
    assert f"Task {task_id} result: Applying: Installing package 'java'" in str(error)


def test_unknown_methods_are_tolerated_where_bosh_tolerates_them(fake_agent, mbus):
    agent = client(fake_agent, mbus)
    for method in ("run_script", "add_persistent_disk", "update_settings", "info"):
        fake_agent.exceptions[method] = f"unknown message {method}"
    assert agent.run_script("pre-start", {}) == {}
    assert agent.add_persistent_disk("disk-1", "/dev/sdc") is None
    assert agent.update_settings({"trusted_certs": ""}) is None
    assert agent.info() == {"api_version": 0}
    fake_agent.exceptions["mount_disk"] = "unknown message mount_disk"
    with pytest.raises(AgentUnknownMethod, match="mount_disk: unknown message mount_disk"):
        agent.mount_disk("disk-1")


def test_no_reply_is_agent_unresponsive_naming_the_agent(fake_agent, mbus):
    fake_agent.silent.add("start")
    started = time.monotonic()
    with pytest.raises(AgentUnresponsive) as caught:
        client(fake_agent, mbus, timeout=0.5).start()
    assert time.monotonic() - started < 5
    assert caught.value.agent_id == fake_agent.agent_id
    assert str(caught.value) == (
        f"agent '{fake_agent.agent_id}': start: timed out sending 'start' after 0.5 seconds"
    )


def test_get_state_is_retried_on_timeout_as_bosh_does(fake_agent, mbus):
    fake_agent.silent.add("get_state")
    with pytest.raises(AgentUnresponsive):
        client(fake_agent, mbus, timeout=0.3).get_state()
    assert fake_agent.methods() == ["get_state"] * 3  # the first and 2 retries


def test_wait_until_ready_waits_for_an_agent_that_comes_up_late(agent_factory, mbus):
    agent_id = str(uuid.uuid4())
    booted = threading.Timer(1.5, lambda: agent_factory(agent_id))
    booted.start()
    try:
        started = time.monotonic()
        AgentClient(agent_id, mbus=mbus).wait_until_ready(timeout=20)
        assert 1.0 < time.monotonic() - started < 20
    finally:
        booted.join()


def test_wait_until_ready_gives_up_naming_the_agent(mbus):
    agent_id = str(uuid.uuid4())  # no such agent
    with pytest.raises(AgentUnresponsive) as caught:
        AgentClient(agent_id, mbus=mbus).wait_until_ready(timeout=1.5)
    assert str(caught.value) == (
        f"agent '{agent_id}': ping: timed out pinging the agent after 1.5 seconds"
    )


def test_wait_until_running_polls_get_state_until_running(fake_agent, mbus):
    fake_agent.job_states = ["starting", "starting", "running"]
    sleeps = []
    state = client(fake_agent, mbus).wait_until_running("1000-10000", sleep=sleeps.append)
    assert state["job_state"] == "running"
    assert sleeps == [1.0, 1.0, 1.0]
    assert fake_agent.methods() == ["get_state"] * 3


def test_a_job_not_running_after_the_watch_time_is_bosh_error(fake_agent, mbus):
    fake_agent.state["job_state"] = "failing"
    fake_agent.state["processes"] = [
        {"name": "zookeeper", "state": "failing"},
        {"name": "metrics", "state": "running"},
    ]
    with pytest.raises(AgentJobNotRunning) as caught:
        client(fake_agent, mbus, instance="zookeeper/3f1c").wait_until_running(
            "0-3000", sleep=lambda s: None
        )
    assert caught.value.message == (
        "'zookeeper/3f1c' is not running after update. Review logs for failed jobs: zookeeper"
    )
    assert fake_agent.methods() == ["get_state"] * 4  # 0 s, then 3 x 1 s


def test_cancelling_an_errand_sends_cancel_task_and_returns_its_result(fake_agent, mbus):
    fake_agent.task_polls = 1000
    fake_agent.cancelled_results["run_errand"] = {"exit_code": 143, "stdout": "", "stderr": ""}
    polls = iter(range(1000))
    result = client(fake_agent, mbus).run_errand(
        "smoke-tests", should_cancel=lambda: next(polls) >= 2
    )
    assert result["exit_code"] == 143
    (task_id,) = fake_agent.tasks
    assert {"method": "cancel_task", "arguments": [task_id]}.items() <= next(
        r for r in fake_agent.requests if r["method"] == "cancel_task"
    ).items()
    assert fake_agent.requests[0]["arguments"] == ["smoke-tests"]


def test_cancelling_a_drain_stops_waiting(fake_agent, mbus):
    fake_agent.task_polls = 1000
    with pytest.raises(AgentTaskCancelled, match="drain"):
        client(fake_agent, mbus).drain("shutdown", should_cancel=lambda: True)
    assert "cancel_task" in fake_agent.methods()


def test_drain_sleeps_the_seconds_the_agent_asked_for(fake_agent, mbus):
    fake_agent.results["drain"] = 7
    slept = []
    assert client(fake_agent, mbus).drain("update", {"deployment": "zk"}, sleep=slept.append) == 7
    assert slept == [7]
    assert fake_agent.requests[0]["arguments"] == ["update", {"deployment": "zk"}]


def test_no_message_bus_is_a_clear_error():
    with pytest.raises(MbusUnavailable, match="OPSCONSOLE_NATS_URL is not set"):
        Mbus("", ca_file="ca", cert_file="c", key_file="k")


def test_a_bus_that_is_down_is_a_clear_error(nats_server):
    from opsconsole.localservices.process import free_port

    url = f"nats://127.0.0.1:{free_port()}"
    down = Mbus.for_director(url, nats_server.pki, connect_timeout=1)
    with pytest.raises(MbusUnavailable, match=f"cannot connect to the message bus {url}"):
        AgentClient("some-agent", mbus=down).ping()


@pytest.mark.parametrize(
    "watch_time, schedule",
    [
        ("30000", [30.0]),
        (30000, [30.0]),
        ("0-3000", [0.0, 1.0, 1.0, 1.0]),
        ("1000-10000", [1.0] + [1.0] * 9),
        ("5000-95000", [5.0] + [10.0] * 9),
        ("0-300000", [0.0] + [15.0] * 20),
    ],
)
def test_watch_schedule_is_bosh_s(watch_time, schedule):
    assert watch_schedule(*parse_watch_time(watch_time)) == schedule


@pytest.mark.parametrize("bad", ["soon", "5000-1000", "-1", "1000-x"])
def test_a_bad_watch_time_names_itself(bad):
    with pytest.raises(ValueError, match="watch time"):
        parse_watch_time(bad)
