"""The Director tile's Security pane and anti-affinity VM extensions, as vCenter holds them.

The director's ``vm_security`` settings (trusted certificates, generated VM
passwords) reach every new VM's agent settings (guestinfo.userdata, read
back from vCenter); a vm_extension with ``drs_rules`` puts the group's VMs in
one DRS anti-affinity rule of their cluster.
"""

import uuid

import pytest
import yaml

from director import services, vm_security
from director.models import Vm
from tests.cpi.conftest import cluster_by_name
from tiles.credentials import make_root_ca

from .conftest import CLOUD_CONFIG, wait_done, zookeeper_manifest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_trusted_certs_passwords_and_drs_rule_reach_vcenter(director_env, vsphere_si, vcsim):
    env = director_env
    ca_pem, _ = make_root_ca("operator CA")
    vm_security.set_vm_security(ca_pem, generate_vm_passwords=True)
    rule = f"separate-zk-{uuid.uuid4().hex[:6]}"
    cloud = yaml.safe_load(CLOUD_CONFIG)
    cloud["vm_extensions"] = [
        {
            "name": "spread",
            "cloud_properties": {
                "datacenters": [
                    {
                        "name": env.datacenter,
                        "clusters": [
                            {"DC0_C0": {"drs_rules": [{"name": rule, "type": "separate_vms"}]}}
                        ],
                    }
                ]
            },
        }
    ]
    services.update_config("cloud", "default", yaml.safe_dump(cloud), "admin")
    manifest = zookeeper_manifest("zksec", instances=2, azs=["z1"], vm_extensions=["spread"])
    del manifest["instance_groups"][0]["persistent_disk_type"]
    wait_done(env.deploy(manifest))

    vms = env.vms()
    assert len(vms) == 2
    hashes = set()
    for vm in vms.values():
        bosh = vm.settings["env"]["bosh"]
        assert bosh["trusted_certs"] == ca_pem
        assert bosh["password"].startswith("$6$")
        hashes.add(bosh["password"])
    assert len(hashes) == 2, "each VM gets its own password"

    cluster = cluster_by_name(vsphere_si, "DC0_C0")
    (drs,) = [r for r in cluster.configurationEx.rule or [] if r.name == rule]
    members = {v._moId for v in drs.vm}
    by_name = {v.name: v for v in env.vm_folder().childEntity}
    assert members == {by_name[name]._moId for name in vms}
    cids = set(Vm.objects.filter(instance__deployment__name="zksec").values_list("cid", flat=True))
    assert cids == set(vms)
