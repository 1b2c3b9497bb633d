"""``drs_rules`` (BOSH vSphere CPI): VMs placed with a separate_vms rule share a DRS
anti-affinity rule in vCenter, kept in step as VMs come and go."""

import uuid

import pytest
from pyVmomi import vim

from cpi.vsphere.config import ConfigError, DrsRule, parse_clusters

from .conftest import cluster_by_name, find_vm


@pytest.fixture
def vms_path(vcsim):
    return f"{vcsim.inventory['datacenters'][0]}/vm/BOSH_VMs"


def rules_named(cluster, name):
    return [r for r in cluster.configurationEx.rule or [] if r.name == name]


def props_with_rule(vcsim, cluster_name, rule_name, rule_type="separate_vms"):
    return {
        "cpu": 1,
        "ram": 256,
        "disk": 512,
        "datacenters": [
            {
                "name": vcsim.inventory["datacenters"][0],
                "clusters": [
                    {cluster_name: {"drs_rules": [{"name": rule_name, "type": rule_type}]}}
                ],
            }
        ],
    }


def test_parse_drs_rules_names_the_bad_path():
    (spec,) = parse_clusters(
        [{"C1": {"drs_rules": [{"name": "apart", "type": "separate_vms"}]}}], "p"
    )
    assert spec.drs_rules == (DrsRule("apart", "separate_vms"),)
    with pytest.raises(ConfigError, match=r"p/0/C1/drs_rules/0/type: 'together' is not supported"):
        parse_clusters([{"C1": {"drs_rules": [{"name": "x", "type": "together"}]}}], "p")
    with pytest.raises(ConfigError, match=r"p/0/C1/drs_rules/0/name: is required"):
        parse_clusters([{"C1": {"drs_rules": [{"type": "separate_vms"}]}}], "p")
    with pytest.raises(ConfigError, match=r"p/0/C1/drs_rules: must be"):
        parse_clusters([{"C1": {"drs_rules": "apart"}}], "p")


def test_drs_rule_puts_the_vms_in_one_anti_affinity_rule(
    cloud, new_vm, vsphere_si, vms_path, vcsim
):
    cluster_name = vcsim.inventory["clusters"][0]
    cluster = cluster_by_name(vsphere_si, cluster_name)
    name = f"separate-{uuid.uuid4().hex[:8]}"
    props = props_with_rule(vcsim, cluster_name, name)
    a = find_vm(vsphere_si, vms_path, new_vm(props))
    b = find_vm(vsphere_si, vms_path, new_vm(props))

    (rule,) = rules_named(cluster, name)
    assert isinstance(rule, vim.cluster.AntiAffinityRuleSpec)
    assert rule.enabled
    assert sorted(v._moId for v in rule.vm) == sorted([a._moId, b._moId])

    cloud.delete_vm(a.name)
    (rule,) = rules_named(cluster, name)
    assert [v._moId for v in rule.vm] == [b._moId]
    cloud.delete_vm(b.name)
    assert rules_named(cluster, name) == [], "an emptied rule is removed"


def test_an_unsupported_rule_type_creates_nothing(cloud, stemcell_cid, networks, vsphere_si, vcsim):
    cluster_name = vcsim.inventory["clusters"][0]
    cluster = cluster_by_name(vsphere_si, cluster_name)
    name = f"together-{uuid.uuid4().hex[:8]}"
    before = len(cluster.resourcePool.vm or [])
    with pytest.raises(ConfigError, match="drs_rules/0/type: 'keep_together' is not supported"):
        cloud.create_vm(
            f"agent-{uuid.uuid4()}",
            stemcell_cid,
            props_with_rule(vcsim, cluster_name, name, "keep_together"),
            networks,
            [],
            {},
        )
    assert rules_named(cluster, name) == []
    assert len(cluster.resourcePool.vm or []) == before
