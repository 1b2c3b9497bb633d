"""``director.cloud.CachedCloud``: the vCenter session the VMs page and the health monitor keep.

Built on first use, reused while the cloud properties are the same, logged
out and rebuilt when they change, dropped (logged out) when a read fails.
"""

from __future__ import annotations

import pytest

from director import cloud as cloud_module
from director.cloud import CachedCloud
from director.health import monitor
from director.services import vms


class FakeSession:
    def __init__(self, n: int):
        self.n = n
        self.closed = False

    def close(self):
        self.closed = True


@pytest.fixture
def built(monkeypatch):
    """Every session ``cloud_for_director`` built, and the properties it is built from."""
    sessions: list[FakeSession] = []
    properties = {"vcenters": [{"host": "vc-1", "password": "pw"}]}

    def build(task_ctx=None):
        sessions.append(FakeSession(len(sessions)))
        return sessions[-1]

    monkeypatch.setattr(cloud_module, "cloud_for_director", build)
    monkeypatch.setattr(cloud_module, "cloud_properties", lambda: ("vcsim", dict(properties)))
    return sessions, properties


def test_one_session_is_reused_while_the_config_stays(built):
    sessions, _ = built
    cached = CachedCloud()
    assert cached.call(lambda c: c.n) == 0
    assert cached.call(lambda c: c.n) == 0
    assert len(sessions) == 1 and not sessions[0].closed


def test_a_new_config_logs_the_old_session_out(built):
    sessions, properties = built
    cached = CachedCloud()
    cached.call(lambda c: c.n)
    properties["vcenters"] = [{"host": "vc-2", "password": "pw"}]
    assert cached.call(lambda c: c.n) == 1
    assert sessions[0].closed and not sessions[1].closed


def test_an_error_drops_the_session_and_the_next_read_logs_in_again(built):
    sessions, _ = built
    cached = CachedCloud()

    def fail(c):
        raise ConnectionError("vCenter went away")

    with pytest.raises(ConnectionError, match="went away"):
        cached.call(fail)
    assert sessions[0].closed
    assert cached.call(lambda c: c.n) == 1


def test_a_session_whose_logout_fails_is_dropped_all_the_same(built):
    sessions, _ = built
    cached = CachedCloud()
    cached.call(lambda c: c.n)

    def broken_close():
        raise OSError("connection reset")

    sessions[0].close = broken_close
    cached.close()
    assert cached.call(lambda c: c.n) == 1


def test_the_vms_page_and_the_monitor_each_keep_one():
    assert isinstance(vms._page_cloud, CachedCloud)
    assert isinstance(monitor._cloud, CachedCloud)
    assert vms._page_cloud is not monitor._cloud
