"""DRS groups and rules a VM joins when it is placed, and leaves when it is deleted.

* a host group (AZ ``host_group``): the VM goes into the cluster VM group
  ``<host group><MUST|SHOULD>_vm_group`` and a VM/Host rule ``<group>_rule``
  ties that group to the host group (hard for MUST, soft for SHOULD);
* ``drs_rules`` (``separate_vms``): the VM joins the anti-affinity rule of
  that name, made on first use;
* on delete the VM leaves them; groups and rules left empty are removed.

Each is a read-modify-write of the cluster's configuration, serialised per
cluster in this process (``DrsGroups.lock``): two VMs joining one group at
once must not overwrite each other's membership.
"""

from __future__ import annotations

import threading
from typing import Any

from pyVmomi import vim

from cpi.vsphere.config import ConfigError, DrsRule, HostGroup
from cpi.vsphere.placement import vm_group_name, vm_host_rule_name
from cpi.vsphere.tasks import run_task


class DrsGroups:
    """The DRS groups and rules of one cloud's VMs; safe to call from several threads."""

    def __init__(self) -> None:
        self._drs_locks: dict[str, threading.Lock] = {}
        self._drs_locks_guard = threading.Lock()

    def lock(self, cluster_name: str) -> threading.Lock:
        with self._drs_locks_guard:
            return self._drs_locks.setdefault(cluster_name, threading.Lock())

    def add_to_host_group(
        self,
        cluster: vim.ClusterComputeResource,
        cluster_name: str,
        host_group: HostGroup,
        vm: vim.VirtualMachine,
        vm_name: str,
    ) -> None:
        """VM into ``<hg><RULE>_vm_group``; VM/Host rule to the host group (hard for MUST)."""
        group_name = vm_group_name(host_group)
        rule_name = vm_host_rule_name(host_group)
        # Read-modify-write of the cluster's group list: serialised per cluster in this process.
        with self.lock(cluster_name):
            config = cluster.configurationEx  # read under the lock: the write depends on it
            group = next(
                (
                    g
                    for g in config.group or []
                    if isinstance(g, vim.cluster.VmGroup) and g.name == group_name
                ),
                None,
            )
            if group is None:
                group_spec = vim.cluster.GroupSpec(
                    operation="add", info=vim.cluster.VmGroup(name=group_name, vm=[vm])
                )
            else:
                members = [v for v in group.vm or [] if v._moId != vm._moId] + [vm]
                group_spec = vim.cluster.GroupSpec(
                    operation="edit", info=vim.cluster.VmGroup(name=group_name, vm=members)
                )
            spec = vim.cluster.ConfigSpecEx(groupSpec=[group_spec])
            if not any(r.name == rule_name for r in config.rule or []):
                spec.rulesSpec = [
                    vim.cluster.RuleSpec(
                        operation="add",
                        info=vim.cluster.VmHostRuleInfo(
                            name=rule_name,
                            enabled=True,
                            mandatory=host_group.drs_rule == "MUST",
                            vmGroupName=group_name,
                            affineHostGroupName=host_group.name,
                        ),
                    )
                ]
            run_task(
                f"Adding {vm_name} to DRS group {group_name} of {cluster_name}",
                cluster.ReconfigureComputeResource_Task,
                spec,
                True,
            )

    def add_to_drs_rule(
        self,
        cluster: vim.ClusterComputeResource,
        cluster_name: str,
        rule: DrsRule,
        vm: vim.VirtualMachine,
        vm_name: str,
    ) -> None:
        """VM into the anti-affinity rule ``rule.name`` (``separate_vms``), made on first use."""
        with self.lock(cluster_name):
            config = cluster.configurationEx  # read under the lock: the write depends on it
            current = next((r for r in config.rule or [] if r.name == rule.name), None)
            if current is not None and not isinstance(current, vim.cluster.AntiAffinityRuleSpec):
                raise ConfigError(
                    f"drs_rules: cluster {cluster_name} already has a rule named {rule.name!r} "
                    f"that is not an anti-affinity (separate_vms) rule"
                )
            if current is None:
                spec = vim.cluster.RuleSpec(
                    operation="add",
                    info=vim.cluster.AntiAffinityRuleSpec(
                        name=rule.name, enabled=True, mandatory=False, vm=[vm]
                    ),
                )
            else:
                members = [v for v in current.vm or [] if v._moId != vm._moId] + [vm]
                spec = vim.cluster.RuleSpec(
                    operation="edit",
                    info=vim.cluster.AntiAffinityRuleSpec(
                        key=current.key,
                        name=rule.name,
                        enabled=current.enabled,
                        mandatory=current.mandatory,
                        vm=members,
                    ),
                )
            run_task(
                f"Adding {vm_name} to DRS rule {rule.name} of {cluster_name}",
                cluster.ReconfigureComputeResource_Task,
                vim.cluster.ConfigSpecEx(rulesSpec=[spec]),
                True,
            )

    def remove_vm(
        self, cluster: vim.ClusterComputeResource, cluster_name: str, vm_moid: str
    ) -> None:
        """Drop a deleted VM from our VM groups and anti-affinity rules; remove groups (and
        their rules) and anti-affinity rules left empty."""
        with self.lock(cluster_name):
            config = cluster.configurationEx  # read again under the lock: the write depends on it
            group_specs, rule_specs = [], []
            for r in config.rule or []:
                if not isinstance(r, vim.cluster.AntiAffinityRuleSpec):
                    continue
                members = [v for v in r.vm or [] if v._moId != vm_moid]
                if len(members) == len(r.vm or []):
                    continue
                if members:
                    info = vim.cluster.AntiAffinityRuleSpec(
                        key=r.key, name=r.name, enabled=r.enabled, mandatory=r.mandatory, vm=members
                    )
                    rule_specs.append(vim.cluster.RuleSpec(operation="edit", info=info))
                else:
                    rule_specs.append(vim.cluster.RuleSpec(operation="remove", removeKey=r.key))
            for g in config.group or []:
                if not isinstance(g, vim.cluster.VmGroup) or not g.name.endswith("_vm_group"):
                    continue
                members = [v for v in g.vm or [] if v._moId != vm_moid]
                if len(members) == len(g.vm or []):
                    continue
                if members:
                    group_specs.append(
                        vim.cluster.GroupSpec(
                            operation="edit", info=vim.cluster.VmGroup(name=g.name, vm=members)
                        )
                    )
                    continue
                for r in config.rule or []:
                    if isinstance(r, vim.cluster.VmHostRuleInfo) and r.vmGroupName == g.name:
                        rule_specs.append(vim.cluster.RuleSpec(operation="remove", removeKey=r.key))
                group_specs.append(vim.cluster.GroupSpec(operation="remove", removeKey=g.name))
            if group_specs or rule_specs:
                spec = vim.cluster.ConfigSpecEx(
                    groupSpec=group_specs or None, rulesSpec=rule_specs or None
                )
                run_task(
                    f"Cleaning DRS groups of {cluster_name}",
                    cluster.ReconfigureComputeResource_Task,
                    spec,
                    True,
                )


def in_vm_groups(config_ex: Any, vm_moid: str) -> bool:
    """Whether the VM is a member of one of our DRS VM groups (``*_vm_group``) or of an
    anti-affinity rule (``drs_rules``) in ``config_ex``."""
    return any(
        isinstance(g, vim.cluster.VmGroup)
        and g.name.endswith("_vm_group")
        and any(v._moId == vm_moid for v in g.vm or [])
        for g in getattr(config_ex, "group", None) or []
    ) or any(
        isinstance(r, vim.cluster.AntiAffinityRuleSpec)
        and any(v._moId == vm_moid for v in r.vm or [])
        for r in getattr(config_ex, "rule", None) or []
    )
