"""The director's vCenter reads on vcsim: inventory, host capacity, refusals naming the argument."""

from __future__ import annotations

import socket

import pytest

from director.vcenter import VCenterUnreachable, host_capacity, vcenter_inventory
from opsconsole.errors import ServiceError


def _login(vcsim, **overrides):
    args = {
        "host": vcsim.host,
        "user": vcsim.username,
        "password": vcsim.password,
        "ca_cert": vcsim.ca_pem,
    }
    return vcenter_inventory(**{**args, **overrides})


def test_lists_the_names_of_the_first_datacenter(vcsim):
    found = _login(vcsim)
    assert found["datacenter"] == vcsim.inventory["datacenters"][0]
    assert found["datacenters"] == sorted(vcsim.inventory["datacenters"])
    assert found["clusters"] == sorted(vcsim.inventory["clusters"])
    assert found["datastores"] == sorted(vcsim.inventory["datastores"])
    assert set(vcsim.inventory["portgroups"]) <= set(found["portgroups"])


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"password": "wrong"}, "password", "user name or password"),
        ({"ca_cert": None}, "ca_cert", "certificate"),
        ({"datacenter": "NoSuchDC"}, "datacenter", "has no datacenter 'NoSuchDC'"),
        ({"host": "127.0.0.1:99999"}, "host", "bad port"),
    ],
)
def test_a_refusal_names_the_argument_at_fault(vcsim, overrides, field, words):
    with pytest.raises(ServiceError) as exc:
        _login(vcsim, **overrides)
    assert not isinstance(exc.value, VCenterUnreachable)
    assert list(exc.value.errors) == [field]
    assert words in exc.value.errors[field][0]


def test_a_vcenter_that_does_not_answer_is_unreachable():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(VCenterUnreachable) as exc:
        vcenter_inventory(host=f"127.0.0.1:{port}", user="u", password="p", insecure=True)
    assert list(exc.value.errors) == ["host"]
    assert exc.value.address.endswith(str(port))


def test_host_capacity_lists_every_connected_host_of_the_datacenter(vcsim):
    hosts = host_capacity(
        host=vcsim.host,
        user=vcsim.username,
        password=vcsim.password,
        ca_cert=vcsim.ca_pem,
        datacenter=vcsim.inventory["datacenters"][0],
    )
    assert sorted(name for name, _, _ in hosts) == sorted(vcsim.inventory["hosts"])
    assert all(cpus > 0 and memory_mb > 0 for _, cpus, memory_mb in hosts)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"datacenter": "NoSuchDC"}, "datacenter", "vCenter has no datacenter 'NoSuchDC'"),
        ({"host": "127.0.0.1:99999"}, "host", "host: bad port in '127.0.0.1:99999'"),
    ],
)
def test_host_capacity_names_a_bad_host_or_datacenter(vcsim, overrides, field, message):
    args = {
        "host": vcsim.host,
        "user": vcsim.username,
        "password": vcsim.password,
        "ca_cert": vcsim.ca_pem,
        "datacenter": vcsim.inventory["datacenters"][0],
    }
    with pytest.raises(ServiceError) as exc:
        host_capacity(**{**args, **overrides})
    assert exc.value.errors == {field: [message]}
