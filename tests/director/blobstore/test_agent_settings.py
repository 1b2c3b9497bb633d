"""The director hands its blobstore to the CPI's ``agent`` block, which goes into every VM's
agent settings (BOSH's director job sets its CPI's ``agent.blobstore``)."""

import pytest
import yaml

from director.cloud import cloud_properties
from director.models import Config

CPI = {
    "cpis": [
        {
            "name": "vc",
            "type": "vsphere",
            "properties": {
                "host": "vcenter.example.com",
                "user": "u",
                "password": "vc-password-1234",
                "datacenters": [{"name": "DC0", "clusters": ["C0"]}],
            },
        }
    ]
}

pytestmark = pytest.mark.django_db


def test_the_cpi_agent_block_carries_the_dav_blobstore(store, creds):
    Config.objects.create(type="cpi", name="default", content=yaml.safe_dump(CPI))
    name, properties = cloud_properties()
    assert name == "vc"
    assert properties["agent"]["blobstore"] == {
        "provider": "dav",
        "options": {
            "endpoint": "http://testserver/blobstore",
            "user": "agent",
            "password": creds.agent_password,
        },
    }


def test_a_blobstore_named_in_the_cpi_config_is_kept(store):
    own = {"provider": "s3", "options": {"bucket_name": "blobs"}}
    with_own = {"cpis": [{**CPI["cpis"][0]}]}
    with_own["cpis"][0]["properties"] = {
        **CPI["cpis"][0]["properties"],
        "agent": {"blobstore": own},
    }
    Config.objects.create(type="cpi", name="default", content=yaml.safe_dump(with_own))
    assert cloud_properties()[1]["agent"]["blobstore"] == own
