"""Apply Changes logs in to vCenter first: a wrong password stops it before anything changes.

Against vcsim (the vCenter the tests start): the installation fails at its
first step, "Check the vCenter connection", naming the cause and the field
to fix; no config is stored, no director task runs, nothing is deployed.
With the right password the same installation goes on. Run inline, as the
worker runs it.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from director.models import Config, Task
from tiles import services
from tiles.models import Installation
from tiles.services import installations

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def vcsim_tile(vcsim, tiles_dirs):
    """The Director tile filled in for vcsim (right password), nothing applied yet."""
    inv = vcsim.inventory
    iaas = {
        "vcenter_host": vcsim.host,
        "vcenter_username": vcsim.username,
        "vcenter_password": vcsim.password,
        "vcenter_ca_certificate": vcsim.ca_pem,
        "datacenter": inv["datacenters"][0],
        "ephemeral_datastores_string": ",".join(inv["datastores"]),
        "persistent_datastores_string": ",".join(inv["datastores"]),
    }
    services.set_iaas_configuration(iaas)
    services.set_availability_zones(
        [{"name": "az1", "clusters": [{"cluster": inv["clusters"][0]}]}]
    )
    services.set_networks(
        {
            "networks": [
                {
                    "name": "infra",
                    "subnets": [
                        {
                            "iaas_identifier": inv["portgroups"][0],
                            "cidr": "10.50.1.0/24",
                            "gateway": "10.50.1.1",
                            "dns": "10.50.0.2",
                            "reserved_ip_ranges": "10.50.1.2-10.50.1.9",
                            "availability_zone_names": ["az1"],
                        }
                    ],
                }
            ]
        }
    )
    services.set_network_and_az({"network": "infra", "singleton_availability_zone": "az1"})
    return iaas


def test_a_wrong_vcenter_password_fails_the_first_step_and_changes_nothing(
    vcsim, vcsim_tile, admin_client
):
    services.set_iaas_configuration({**vcsim_tile, "vcenter_password": "not-the-password"})
    inst = services.apply_changes("admin", deploy_products="none")
    assert installations.run_installation(inst.id) == "failed"

    inst = Installation.objects.get(id=inst.id)
    steps = list(inst.steps.order_by("seq"))
    assert [(s.kind, s.state) for s in steps] == [("vcenter", "failed"), ("configs", "skipped")]
    assert steps[0].label == "Check the vCenter connection"
    message = steps[0].message
    assert message.startswith(f"cannot log in to vCenter {vcsim.host} as {vcsim.username}: ")
    assert "iaas_configuration/vcenter_password" in message
    assert "incorrect user name or password" in message
    assert "nothing was changed or deployed" in message
    assert "not-the-password" not in message
    assert inst.status == "failed" and inst.message.startswith("Check the vCenter connection: ")
    logs = services.installation_logs(inst.id)
    assert "===== Check the vCenter connection: failed" in logs
    assert "incorrect user name or password" in logs and "not-the-password" not in logs
    row = admin_client.get(reverse("changelog")).content.decode()
    row = row[row.index(f'id="installation-{inst.id}"') :]
    assert "p-bosh" in row and "<strong>vcenter</strong>" in row
    # nothing reached the director
    assert not Config.objects.exists()
    assert not Task.objects.exists()
    assert services.get_director().deployed_at is None


def test_the_right_password_passes_the_check_and_the_configs_go(vcsim, vcsim_tile):
    inst = services.apply_changes("admin", deploy_products="none")
    assert installations.run_installation(inst.id) == "succeeded", services.installation_logs(
        inst.id
    )
    first = Installation.objects.get(id=inst.id).steps.order_by("seq").first()
    assert first.kind == "vcenter" and first.state == "succeeded"
    assert first.message == (
        f"logged in to vCenter {vcsim.host} as {vcsim.username}; "
        f"datacenter {vcsim.inventory['datacenters'][0]} found"
    )
    assert Config.latest("cloud") is not None and Config.latest("cpi") is not None
