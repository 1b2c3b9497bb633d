"""The Director tile's names are checked against vCenter (vcsim) when a pane is saved.

A wrong password, a mistyped cluster (``DC0_C9_typo``), resource pool,
datastore or portgroup (``VM Netwrk``) is refused on its field, in the
pane and in the API, and nothing is saved. A vCenter that does not answer
refuses the save too, saying so, unless the operator asks to save anyway
(the pane's checkbox, ``?ignore_unreachable_vcenter=true``): then it is
saved with a warning.
"""

from __future__ import annotations

import socket
import uuid

import pytest
from django.urls import reverse
from pyVmomi import vim

from tiles import director_tile, services
from tiles.director_tile.checks import VCenterCheck

API = "/api/v0"
FLAG = "ignore_unreachable_vcenter"

pytestmark = pytest.mark.integration


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _iaas(vcsim, **over) -> dict:
    return {
        "vcenter_host": f"127.0.0.1:{vcsim.port}",
        "vcenter_username": vcsim.username,
        "vcenter_password": vcsim.password,
        "vcenter_ca_certificate": vcsim.ca_pem,
        "ssl_verification_enabled": True,
        "datacenter": "DC0",
        "ephemeral_datastores_string": "LocalDS_0",
        "persistent_datastores_string": "LocalDS_0",
        **over,
    }


#: The rest of the vCenter Config form.
FORM = {
    "name": "default",
    "disk_type": "thin",
    "bosh_vm_folder": "vms",
    "bosh_template_folder": "templates",
    "bosh_disk_path": "disks",
}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def on_vcsim(db, tiles_dirs, vcsim):
    """The vCenter pane saved with vcsim (checked: it logs in)."""
    services.set_iaas_configuration(_iaas(vcsim), check=VCenterCheck())
    return vcsim


def _field(page: str, field_id: str) -> str:
    """The markup of one field: from its label to the end of its errors."""
    start = page.index(f'<label for="{field_id}">')
    return page[start : start + 1500]


# --------------------------------------------------------------------------- vCenter Config


def test_wrong_password_is_refused_on_its_field(admin_client, db, tiles_dirs, vcsim):
    url = reverse("director-tile", args=["vcenter"])
    data = {
        **FORM,
        **_iaas(vcsim, vcenter_password="not-the-password"),
        "ssl_verification_enabled": "on",
    }
    response = admin_client.post(url, data)
    assert response.status_code == 422
    page = response.content.decode()
    field = page[page.index('id="field-vcenter_password"') :][:1200]
    assert "incorrect user name or password" in field
    assert 'name="ignore_unreachable_vcenter"' not in page  # vCenter answered: no override
    assert not director_tile.get_director().iaas_configuration  # nothing saved

    data["vcenter_password"] = vcsim.password
    assert admin_client.post(url, data).status_code == 302
    assert director_tile.get_director().vcenter_password == vcsim.password


def test_api_vcenter_password_and_datastore_typos(admin_api, db, tiles_dirs, vcsim):
    url = f"{API}/staged/director/properties"
    res = admin_api.put(
        url, {"iaas_configuration": _iaas(vcsim, vcenter_password="wrong")}, format="json"
    )
    assert res.status_code == 422
    [msg] = res.json()["errors"]["iaas_configuration/vcenter_password"]
    assert "incorrect user name or password" in msg

    res = admin_api.put(
        f"{url}?{FLAG}=true",  # the flag overrides only an unreachable vCenter
        {"iaas_configuration": _iaas(vcsim, ephemeral_datastores_string="LocalDS_0,LocalDS_9")},
        format="json",
    )
    assert res.status_code == 422
    assert res.json()["errors"] == {
        "iaas_configuration/ephemeral_datastores_string": [
            "Datacenter DC0 has no datastore “LocalDS_9” (it has: LocalDS_0, LocalDS_1)."
        ]
    }
    res = admin_api.put(url, {"iaas_configuration": _iaas(vcsim, datacenter="DC9")}, format="json")
    assert res.status_code == 422
    assert (
        "no datacenter 'DC9' (it has: DC0)"
        in (res.json()["errors"]["iaas_configuration/datacenter"][0])
    )
    assert not director_tile.get_director().iaas_configuration

    res = admin_api.put(url, {"iaas_configuration": _iaas(vcsim)}, format="json")
    assert res.status_code == 200 and "warnings" not in res.json()
    assert director_tile.get_director().iaas_configuration["datacenter"] == "DC0"


def test_unreachable_vcenter_is_saved_only_when_asked(admin_client, admin_api, db, tiles_dirs):
    iaas = {
        "vcenter_host": f"127.0.0.1:{_closed_port()}",
        "vcenter_username": "admin",
        "vcenter_password": "pw",
        "datacenter": "DC0",
        "ephemeral_datastores_string": "ds",
        "persistent_datastores_string": "ds",
        "ssl_verification_enabled": False,
    }
    url = f"{API}/staged/director/properties"
    res = admin_api.put(url, {"iaas_configuration": iaas}, format="json")
    assert res.status_code == 422
    [msg] = res.json()["errors"]["iaas_configuration/vcenter_host"]
    assert "Cannot connect to vCenter" in msg and f"{FLAG}=true" in msg
    assert not director_tile.get_director().iaas_configuration
    assert admin_api.put(f"{url}?{FLAG}=maybe", {}, format="json").status_code == 400

    res = admin_api.put(f"{url}?{FLAG}=true", {"iaas_configuration": iaas}, format="json")
    assert res.status_code == 200
    [warning] = res.json()["warnings"]
    assert warning.startswith("Saved without checking vCenter settings against vCenter: Cannot")
    assert director_tile.get_director().iaas_configuration["vcenter_host"] == iaas["vcenter_host"]

    # the pane: refused with the checkbox offered; checked, saved with a warning
    page_url = reverse("director-tile", args=["vcenter"])
    form = {**FORM, **iaas, "vcenter_username": "someone"}
    form.pop("ssl_verification_enabled")
    response = admin_client.post(page_url, form)
    assert response.status_code == 422
    page = response.content.decode()
    assert 'name="ignore_unreachable_vcenter"' in page
    assert "Cannot connect to vCenter" in page[page.index('id="field-vcenter_host"') :][:1500]
    response = admin_client.post(page_url, {**form, FLAG: "true"}, follow=True)
    assert response.redirect_chain and "Saved without checking" in response.content.decode()
    assert director_tile.get_director().iaas_configuration["vcenter_username"] == "someone"


# --------------------------------------------------------------------------- AZs


def test_cluster_typo_is_refused_beside_the_cluster(admin_client, on_vcsim):
    url = reverse("director-tile", args=["azs"])
    data = {"az-0-name": "az1", "az-0-cluster-0-cluster": "DC0_C9_typo"}
    response = admin_client.post(url, data)
    assert response.status_code == 422
    field = _field(response.content.decode(), "az-0-cluster-0-cluster")
    assert 'aria-invalid="true"' in field
    assert "Datacenter DC0 has no cluster “DC0_C9_typo” (it has: DC0_C0, DC0_C1)." in field
    assert director_tile.list_availability_zones() == []

    data["az-0-cluster-0-cluster"] = "DC0_C0"
    assert admin_client.post(url, data).status_code == 302
    assert director_tile.list_availability_zones()[0]["clusters"][0]["cluster"] == "DC0_C0"


def test_api_clusters_and_resource_pools(admin_api, on_vcsim, vsphere_si):
    pool = f"rp-{uuid.uuid4().hex[:6]}"
    content = vsphere_si.RetrieveContent()
    view = content.viewManager.CreateContainerView(
        content.rootFolder, [vim.ClusterComputeResource], True
    )
    try:
        cluster = next(c for c in view.view if c.name == "DC0_C1")
    finally:
        view.Destroy()
    alloc = vim.ResourceAllocationInfo(
        reservation=0,
        limit=-1,
        expandableReservation=True,
        shares=vim.SharesInfo(level="normal", shares=0),
    )
    spec = vim.ResourceConfigSpec(cpuAllocation=alloc, memoryAllocation=alloc)
    cluster.resourcePool.CreateResourcePool(pool, spec)

    url = f"{API}/staged/director/availability_zones"
    azs = [
        {"name": "az1", "clusters": [{"cluster": "DC0_C9_typo"}]},
        {"name": "az2", "clusters": [{"cluster": "DC0_C0", "res_pool": pool}]},
    ]
    res = admin_api.put(url, {"availability_zones": azs}, format="json")
    assert res.status_code == 422
    errors = res.json()["errors"]
    assert set(errors) == {
        "availability_zones/az1/clusters/0/cluster",
        "availability_zones/az2/clusters/0/res_pool",
    }
    assert errors["availability_zones/az2/clusters/0/res_pool"] == [
        f"Cluster DC0_C0 has no resource pool “{pool}” (it has: none)."
    ]
    assert services.list_availability_zones() == []

    azs = [
        {"name": "az1", "clusters": [{"cluster": "DC0_C0"}]},
        {"name": "az2", "clusters": [{"cluster": "DC0_C1", "res_pool": pool}]},
    ]
    res = admin_api.put(url, {"availability_zones": azs}, format="json")
    assert res.status_code == 200, res.content
    res = admin_api.post(
        url,
        {"availability_zone": {"name": "az3", "clusters": [{"cluster": "DC0_C2"}]}},
        format="json",
    )
    assert res.status_code == 422
    assert "availability_zones/az3/clusters/0/cluster" in res.json()["errors"]
    guid = services.list_availability_zones()[0]["guid"]
    res = admin_api.put(
        f"{url}/{guid}",
        {"availability_zone": {"name": "az1", "clusters": [{"cluster": "DC0_C1_typo"}]}},
        format="json",
    )
    assert res.status_code == 422
    assert services.list_availability_zones()[0]["clusters"][0]["cluster"] == "DC0_C0"


def test_azs_when_the_saved_vcenter_does_not_answer(admin_api, db, tiles_dirs):
    services.set_iaas_configuration(
        {
            "vcenter_host": f"127.0.0.1:{_closed_port()}",
            "vcenter_username": "admin",
            "vcenter_password": "pw",
            "datacenter": "DC0",
            "ephemeral_datastores_string": "ds",
            "persistent_datastores_string": "ds",
        }
    )
    url = f"{API}/staged/director/availability_zones"
    body = {"availability_zones": [{"name": "az1", "clusters": [{"cluster": "C1"}]}]}
    res = admin_api.put(url, body, format="json")
    assert res.status_code == 422
    [msg] = res.json()["errors"]["availability_zones"]
    assert "Cannot connect to vCenter" in msg and "could not be checked" in msg
    assert services.list_availability_zones() == []
    res = admin_api.put(f"{url}?{FLAG}=true", body, format="json")
    assert res.status_code == 200
    assert res.json()["warnings"][0].startswith("Saved without checking clusters against vCenter")
    assert services.list_availability_zones()[0]["clusters"][0]["cluster"] == "C1"


# --------------------------------------------------------------------------- networks


def _network(portgroup: str) -> dict:
    return {
        "networks": [
            {
                "name": "deploy-net",
                "subnets": [
                    {
                        "iaas_identifier": portgroup,
                        "cidr": "10.0.0.0/24",
                        "gateway": "10.0.0.1",
                        "availability_zone_names": ["az1"],
                    }
                ],
            }
        ]
    }


def test_portgroup_typo_is_refused_beside_the_network_name(admin_client, admin_api, on_vcsim):
    services.set_availability_zones([{"name": "az1", "clusters": [{"cluster": "DC0_C0"}]}])
    url = reverse("director-tile", args=["networks"])
    data = {
        "net-0-name": "deploy-net",
        "net-0-subnet-0-iaas_identifier": "VM Netwrk",
        "net-0-subnet-0-cidr": "10.0.0.0/33",
        "net-0-subnet-0-gateway": "10.0.0.1",
        "net-0-subnet-0-azs": ["az1"],
    }
    response = admin_client.post(url, data)
    assert response.status_code == 422
    page = response.content.decode()
    # the name error and the format error come back together, each on its field
    assert "has no network “VM Netwrk”" in _field(page, "net-0-subnet-0-iaas_identifier")
    assert "CIDR &#x27;10.0.0.0/33&#x27; is not a network" in _field(page, "net-0-subnet-0-cidr")
    assert "networks/deploy-net" not in page
    assert services.get_networks()["networks"] == []

    data["net-0-subnet-0-cidr"] = "10.0.0.0/24"
    data["net-0-subnet-0-iaas_identifier"] = "VM Network"
    assert admin_client.post(url, data).status_code == 302

    res = admin_api.put(f"{API}/staged/director/networks", _network("VM Netwrk"), format="json")
    assert res.status_code == 422
    assert list(res.json()["errors"]) == ["networks/deploy-net/subnets/0/iaas_identifier"]
    assert services.get_networks()["networks"][0]["subnets"][0]["iaas_identifier"] == "VM Network"
    res = admin_api.put(f"{API}/staged/director/networks", _network("DC0_DVPG1"), format="json")
    assert res.status_code == 200
    assert services.get_networks()["networks"][0]["subnets"][0]["iaas_identifier"] == "DC0_DVPG1"


def test_test_connection_lists_the_datacenters_names(db, tiles_dirs, vcsim):
    inventory = services.test_vcenter_connection(_iaas(vcsim))
    assert inventory["datacenter"] == "DC0"
    assert inventory["clusters"] == ["DC0_C0", "DC0_C1"]
    assert {"DC0_DVPG0", "DC0_DVPG1", "VM Network"} <= set(inventory["portgroups"])
    assert inventory["datastores"] == ["LocalDS_0", "LocalDS_1"]
