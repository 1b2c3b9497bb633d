"""The Director tile against the test vcsim: pre-fill from the local vcsim, test connection."""

from __future__ import annotations

import json

import pytest

from tiles import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def local_vcsim(vcsim, settings, tmp_path):
    """The session's vcsim as `make run`'s local vCenter (its connection file)."""
    path = tmp_path / "vcsim.json"
    path.write_text(
        json.dumps(
            {
                "host": vcsim.host,
                "username": vcsim.username,
                "password": vcsim.password,
                "cert_file": str(vcsim.cert_file),
                "inventory": vcsim.inventory,
            }
        )
    )
    settings.LOCAL_VCSIM_FILE = path
    return vcsim


def test_unsaved_vcenter_pane_is_prefilled_from_the_local_vcsim(local_vcsim):
    iaas = services.director_properties()["iaas_configuration"]
    assert iaas["prefilled"] is True
    assert iaas["vcenter_host"] == local_vcsim.host
    assert iaas["vcenter_password"] == "***"
    assert iaas["datacenter"] == local_vcsim.inventory["datacenters"][0]
    assert iaas["ephemeral_datastores_string"] == ",".join(local_vcsim.inventory["datastores"])
    assert "BEGIN CERTIFICATE" in iaas["vcenter_ca_certificate"]
    # Test connection works from the pre-filled values alone ...
    found = services.test_vcenter_connection()
    assert found["clusters"] == sorted(local_vcsim.inventory["clusters"])
    assert set(local_vcsim.inventory["portgroups"]) <= set(found["portgroups"])
    assert found["datacenters"] == sorted(local_vcsim.inventory["datacenters"])
    # ... and saving the pane as shown ("***" password) keeps vcsim's password.
    services.set_iaas_configuration({k: v for k, v in iaas.items() if k != "prefilled"})
    d = services.get_director()
    assert d.vcenter_password == local_vcsim.password
    assert "prefilled" not in services.director_properties()["iaas_configuration"]


def test_test_connection_names_the_wrong_field(local_vcsim):
    with pytest.raises(services.ServiceError) as exc:
        services.test_vcenter_connection({"datacenter": "NoSuchDC"})
    assert "has no datacenter 'NoSuchDC'" in exc.value.errors["iaas_configuration/datacenter"][0]
    with pytest.raises(services.ServiceError) as exc:
        services.test_vcenter_connection({"vcenter_ca_certificate": ""})
    # no CA given and certificate checks on: vcsim's self-signed certificate is refused
    assert (
        "certificate is not trusted"
        in exc.value.errors["iaas_configuration/vcenter_ca_certificate"][0]
    )
    found = services.test_vcenter_connection(
        {"vcenter_ca_certificate": "", "ssl_verification_enabled": False}
    )
    assert found["clusters"]


def test_test_connection_api(local_vcsim, admin_api, role_api):
    res = admin_api.post("/api/v0/staged/director/test_connection", {}, format="json")
    assert res.status_code == 200
    assert res.json()["datastores"] == sorted(local_vcsim.inventory["datastores"])
    res = admin_api.post(
        "/api/v0/staged/director/test_connection",
        {"iaas_configuration": {"vcenter_password": "nope"}},
        format="json",
    )
    assert res.status_code == 422
    assert (
        "incorrect user name or password"
        in res.json()["errors"]["iaas_configuration/vcenter_password"][0]
    )
    assert (
        role_api("full_view").post("/api/v0/staged/director/test_connection", {}).status_code == 403
    )
