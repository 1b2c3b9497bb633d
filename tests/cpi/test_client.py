"""The vCenter session: fast, precise failures; certificate checking; re-login."""

import copy
import socket
import time
import weakref

import pytest

from cpi.base import CloudError
from cpi.vsphere import VSphereCloud


def props_with(cpi_properties, **changes):
    props = copy.deepcopy(cpi_properties)
    props["vcenters"][0].update(changes)
    return props


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wrong_password_is_a_cloud_error_naming_the_host(cpi_properties, vcsim):
    cloud = VSphereCloud(props_with(cpi_properties, password="not-the-password"))
    started = time.monotonic()
    with pytest.raises(CloudError) as exc:
        cloud.has_vm("vm-anything")
    assert time.monotonic() - started < 5
    assert type(exc.value) is CloudError
    assert vcsim.host in exc.value.message
    assert "incorrect user name or password" in exc.value.message
    assert "not-the-password" not in exc.value.message


def test_unreachable_vcenter_is_a_cloud_error_naming_the_host(cpi_properties):
    address = f"127.0.0.1:{free_port()}"
    cloud = VSphereCloud(props_with(cpi_properties, host=address))
    started = time.monotonic()
    with pytest.raises(CloudError) as exc:
        cloud.create_disk(1024, {}, None)
    assert time.monotonic() - started < 5
    assert f"Cannot connect to vCenter {address}" in exc.value.message


def test_silent_vcenter_times_out_quickly(cpi_properties):
    """A port that accepts connections but never answers: the connect timeout bounds the wait."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        address = f"127.0.0.1:{server.getsockname()[1]}"
        props = props_with(
            cpi_properties,
            host=address,
            connection_options={"insecure": True, "connect_timeout": 1},
        )
        started = time.monotonic()
        with pytest.raises(CloudError) as exc:
            VSphereCloud(props).has_vm("vm-x")
        assert time.monotonic() - started < 5
    assert address in exc.value.message and "no answer within 1 s" in exc.value.message


def test_certificate_is_checked_even_on_loopback(cpi_properties, vcsim):
    """Without the vCenter CA the self-signed certificate is refused (pyvmomi alone would skip the check)."""
    cloud = VSphereCloud(props_with(cpi_properties, connection_options={}))
    with pytest.raises(CloudError) as exc:
        cloud.has_vm("vm-x")
    assert vcsim.host in exc.value.message
    assert "certificate is not trusted" in exc.value.message and "ca_cert" in exc.value.message


def test_insecure_is_an_explicit_choice(cpi_properties):
    with VSphereCloud(props_with(cpi_properties, connection_options={"insecure": True})) as cloud:
        assert cloud.has_vm("vm-does-not-exist") is False


def test_a_lost_session_is_replaced_transparently(cpi_properties):
    with VSphereCloud(cpi_properties) as cloud:
        assert cloud.has_vm("vm-x") is False
        first = cloud.client.content.sessionManager.currentSession.key
        cloud.client.content.sessionManager.Logout()  # what an expired session looks like
        assert cloud.has_vm("vm-x") is False
        assert cloud.client.content.sessionManager.currentSession.key != first


def test_keepalive_heartbeat_renews_a_lost_session(cpi_properties):
    with VSphereCloud(cpi_properties, keepalive_seconds=0.2) as cloud:
        cloud.has_vm("vm-x")
        stub = cloud.client._stub
        logins = []
        login = stub.loginMethod
        stub.loginMethod = lambda soap: (logins.append(time.monotonic()), login(soap))
        cloud.client.content.sessionManager.Logout()
        deadline = time.monotonic() + 5
        while not logins and time.monotonic() < deadline:
            time.sleep(0.05)  # no calls of ours: only the heartbeat can log in again
        assert logins, "the heartbeat logged in again by itself"


def test_one_session_is_shared_by_all_calls(cloud):
    cloud.has_vm("vm-a")
    stub = cloud.client._stub
    cloud.has_vm("vm-b")
    cloud.has_disk("disk-00000000-0000-0000-0000-000000000000")
    assert cloud.client._stub is stub


def test_vcenter_going_away_mid_session_is_a_retriable_cloud_error(cpi_properties, tmp_path):
    from opsconsole.localservices.vcsim import start_vcsim

    sim = start_vcsim(clusters=1, hosts=1, datastores=1, portgroups=1, vms=0, workdir=tmp_path)
    try:
        props = props_with(
            cpi_properties,
            host=sim.host,
            password=sim.password,
            connection_options={"ca_cert": sim.ca_pem},
        )
        props["vcenters"][0]["datacenters"][0]["clusters"] = sim.inventory["clusters"]
        cloud = VSphereCloud(props, keepalive_seconds=0)
        assert cloud.has_vm("vm-x") is False
    finally:
        sim.stop()
    with pytest.raises(CloudError) as exc:
        cloud.has_vm("vm-x")
    assert sim.host in exc.value.message and exc.value.ok_to_retry is True


def test_close_all_stops_every_keepalive_and_logs_out(cpi_properties, vsphere_si, monkeypatch):
    """What a test process does when it is done: no session left touching vCenter."""
    from cpi.vsphere import client as vsphere_client

    # Only this test's client is registered: close_all must not close the clouds other
    # tests of this process still use (their CA file would go with them).
    monkeypatch.setattr(vsphere_client, "_kept_alive", weakref.WeakSet())
    left_open = VSphereCloud(cpi_properties, keepalive_seconds=0.2)  # nobody calls close()
    left_open.has_vm("vm-x")
    key = left_open.client.content.sessionManager.currentSession.key
    heartbeat = left_open.client._keepalive

    def sessions() -> set[str]:
        return {s.key for s in vsphere_si.content.sessionManager.sessionList}

    assert key in sessions() and heartbeat.is_alive()
    assert vsphere_client.close_all() == 1
    heartbeat.join(5)
    assert not heartbeat.is_alive()
    assert key not in sessions()  # logged out in vCenter
