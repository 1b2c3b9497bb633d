"""The process's bus connection closes for good when a test process is done.

``close_default`` is what tests/conftest.py's session fixture calls at the
end: left open, the connection tried to reconnect to the stopped nats-server
and logged "Connect call failed" after pytest's output had ended.
"""

from __future__ import annotations

import pytest

from director.agents import mbus as mbus_module

pytestmark = pytest.mark.django_db


def test_close_default_closes_the_connection_and_a_later_call_connects_again(settings, nats_server):
    settings.NATS_URL = nats_server.url
    bus = mbus_module.default_mbus()
    bus._ensure_connected()
    connection, loop_thread = bus._nc, bus._thread
    assert connection.is_connected and loop_thread.is_alive()

    mbus_module.close_default()

    assert connection.is_closed  # no reconnect attempts left to make
    assert not loop_thread.is_alive()
    # closing is not breaking: the next call connects again (here: no agent answers)
    with pytest.raises(TimeoutError):
        bus.request("agent-nobody", "ping", [], timeout=0.5)
    assert bus._nc.is_connected
    mbus_module.close_default()
    mbus_module.close_default()  # twice is harmless
