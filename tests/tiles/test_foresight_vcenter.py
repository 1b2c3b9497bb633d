"""Review Pending Changes' host capacity, asked of vcsim through the director."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from tiles import services
from tiles.services import foresight

pytestmark = pytest.mark.django_db


@pytest.fixture
def vcsim_props(vcsim):
    return {
        "host": vcsim.host,
        "user": vcsim.username,
        "password": vcsim.password,
        "connection_options": {"ca_cert": vcsim.ca_pem},
    }


def test_host_capacity_lists_the_hosts_of_the_director_tiles_datacenter(vcsim):
    cache.clear()
    services.set_iaas_configuration(
        {
            "vcenter_host": vcsim.host,
            "vcenter_username": vcsim.username,
            "vcenter_password": vcsim.password,
            "vcenter_ca_certificate": vcsim.ca_pem,
            "datacenter": vcsim.inventory["datacenters"][0],
            "ephemeral_datastores_string": vcsim.inventory["datastores"][0],
            "persistent_datastores_string": vcsim.inventory["datastores"][0],
        }
    )
    services.set_availability_zones(
        [{"name": "az1", "clusters": [{"cluster": vcsim.inventory["clusters"][0]}]}]
    )
    capacity = foresight.host_capacity()
    assert capacity.error == ""
    assert sorted(h.name for h in capacity.hosts) == sorted(vcsim.inventory["hosts"])
    assert capacity.fits(1, 1)


def test_an_unknown_datacenter_is_the_reason_the_check_is_skipped(vcsim, vcsim_props):
    capacity = foresight._ask_vcenter(vcsim_props, "NoSuchDC")
    assert capacity.hosts == []
    assert capacity.error == "vCenter has no datacenter 'NoSuchDC'"


def test_a_refused_login_is_the_reason_and_never_shows_the_password(vcsim, vcsim_props):
    password = "Wr0ng-pa55word-for-vcsim"
    props = {**vcsim_props, "password": password}
    capacity = foresight._ask_vcenter(props, vcsim.inventory["datacenters"][0])
    assert capacity.hosts == []
    assert "user name or password" in capacity.error
    assert password not in capacity.error
