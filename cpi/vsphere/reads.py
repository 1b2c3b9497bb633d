"""What the director reads from vCenter beyond the CPI contract, in few round trips.

``cpi.base.READS``: the power states the VMs page shows (``vm_states``), the
power state and metadata the health monitor and cloud check read every scan
(``vm_health``), and the VMs a director made that a killed task may have left
behind (``vms_of_director``). BOSH's director asks its agents for the first
two; we also ask vCenter. Nothing here creates, changes or caches a VM.

Round trips (``tests/cpi/test_round_trips.py`` and the tests of each read
bound them): ``vm_states`` 2 for any number of VMs, ``vm_health`` 1,
``vms_of_director`` 4 once vm_folder is known (the custom attribute names,
then a container view of vm_folder created, read and destroyed).
"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim, vmodl

from cpi.vsphere.agent_env import settings_in
from cpi.vsphere.client import VSphereClient, object_spec, traverse
from cpi.vsphere.config import CpiConfig
from cpi.vsphere.inventory import Inventory


def made_by(director: str, metadata_director: str | None, groups: list[str]) -> bool:
    """True when a VM's metadata or agent ``env.bosh.groups`` name ``director``."""
    if metadata_director == director:
        return True
    return any(g == director or str(g).startswith(f"{director}-") for g in groups)


class VmReads:
    """The ``READS`` of one ``VSphereCloud`` (sharing its client, inventory and config)."""

    def __init__(self, client: VSphereClient, inventory: Inventory, config: CpiConfig):
        self.client = client
        self.inventory = inventory
        self.config = config

    def vm_states(self, vm_cids: list[str]) -> dict[str, str]:
        """``{vm_cid: power state}`` ("poweredOn", "poweredOff", "suspended") as vCenter has it now.

        What the director's VMs page shows beside each instance, the way
        ``bosh vms`` shows what the agent reports. A cid missing from the
        answer has no VM in vm_folder (``has_vm`` would say False). Two round
        trips whatever the number of VMs: the folder by inventory path, then
        one ``RetrievePropertiesEx`` reading name and power state of the
        folder's VMs. Nothing is created: a missing folder means no VMs.
        """
        wanted = set(vm_cids)
        if not wanted:
            return {}
        folder = self._existing_vm_folder()
        if folder is None:
            return {}
        try:
            found = self.client.collect(
                [object_spec(folder, traverse(vim.Folder, "childEntity"), skip=True)],
                {vim.VirtualMachine: ["name", "runtime.powerState"]},
            )
        except vmodl.fault.ManagedObjectNotFound:
            return {}  # the folder went away between the two calls
        return {
            props["name"]: str(props.get("runtime.powerState", "unknown"))
            for _, props in found
            if props.get("name") in wanted
        }

    def vm_health(self, vm_cids: list[str] | None) -> dict[str, dict[str, Any]]:
        """``{vm_cid: {"power_state": ..., "metadata": {name: value}}}`` in ONE round trip.

        ``vm_cids=None`` answers for every VM found (cloud check looks for VMs
        tagged as the director's that it does not know).

        What the director's health monitor reads every interval for every VM
        it manages. A cid missing from the answer has no VM in vCenter. One
        ``RetrievePropertiesEx`` whatever the number of VMs and whatever was
        looked up before: it starts at vm_folder when this cloud already
        knows it (no other VMs are read), else at the root folder, following
        folders and datacenters down to every VM; the same call reads the
        custom attribute definitions, so ``customValue`` keys become the
        metadata names ``set_vm_metadata`` wrote. vCenter pages very large
        answers (``ContinueRetrievePropertiesEx``); vcsim and a vCenter's
        default page hold far more than a thousand VMs' few properties.
        Nothing is created.
        """
        wanted = None if vm_cids is None else set(vm_cids)
        if wanted is not None and not wanted:
            return {}
        content = self.client.content
        children = "healthFolderChildren"
        folder_children = traverse(
            vim.Folder,
            "childEntity",
            vmodl.query.PropertyCollector.SelectionSpec(name=children),
            traverse(
                vim.Datacenter,
                "vmFolder",
                vmodl.query.PropertyCollector.SelectionSpec(name=children),
            ),
            name=children,
        )
        start = self.inventory.cached_folder(self.config.datacenter.vm_folder)
        specs = [
            object_spec(start or content.rootFolder, folder_children, skip=True),
            object_spec(content.customFieldsManager),
        ]
        try:
            found = self.client.collect(
                specs,
                {
                    vim.VirtualMachine: ["name", "runtime.powerState", "customValue"],
                    vim.CustomFieldsManager: ["field"],
                },
            )
        except vmodl.fault.ManagedObjectNotFound:
            if start is None:
                raise
            self.inventory.invalidate()  # the folder went away: start at the root next time
            return self.vm_health(vm_cids)
        names: dict[int, str] = {}
        for obj, props in found:
            if isinstance(obj, vim.CustomFieldsManager):
                names = {f.key: f.name for f in props.get("field") or []}
        out: dict[str, dict[str, Any]] = {}
        for obj, props in found:
            name = props.get("name")
            if not isinstance(obj, vim.VirtualMachine) or (
                wanted is not None and name not in wanted
            ):
                continue
            out[name] = {
                "power_state": str(props.get("runtime.powerState", "unknown")),
                "metadata": {
                    names.get(cv.key, str(cv.key)): getattr(cv, "value", "")
                    for cv in props.get("customValue") or []
                },
            }
        return out

    def vms_of_director(self, director: str) -> dict[str, dict[str, Any]]:
        """The VMs in vm_folder that ``director`` made (``cpi.base.Cpi.vms_of_director``).

        Reads each VM's name, custom attributes and agent settings
        (``guestinfo.userdata``) in one ``RetrievePropertiesEx`` over a
        container view of vm_folder (created on first use, as every CPI
        method does), after the custom attribute names.
        """
        fields = {f.key: f.name for f in self.client.content.customFieldsManager.field or []}
        out: dict[str, dict[str, Any]] = {}
        for _vm, props in self.client.retrieve(
            self.inventory.vm_folder,
            vim.VirtualMachine,
            ["name", "customValue", "config.extraConfig"],
        ):
            name = props.get("name")
            if not name:
                continue
            tags = {fields.get(cv.key): cv.value for cv in props.get("customValue") or []}
            agent = settings_in(props.get("config.extraConfig")) or {}
            bosh = (agent.get("env") or {}).get("bosh") or {}
            groups = list(bosh.get("groups") or [])
            if not made_by(director, tags.get("director"), groups):
                continue
            out[name] = {
                "director": tags.get("director"),
                "deployment": tags.get("deployment"),
                "groups": groups,
                "agent_id": agent.get("agent_id"),
            }
        return out

    def _existing_vm_folder(self) -> vim.Folder | None:
        """vm_folder without creating it (one ``FindByInventoryPath``, more for a nested datacenter)."""
        dc = self.config.datacenter
        index = self.client.content.searchIndex
        folder = index.FindByInventoryPath(f"{dc.name}/vm/{dc.vm_folder}")
        if isinstance(folder, vim.Folder):
            return folder
        # The datacenter may sit in a folder of its own: find it as the CPI does, then walk.
        current = self.client.properties(self.inventory.datacenter, ["vmFolder"])["vmFolder"]
        for part in dc.vm_folder.split("/"):
            current = index.FindChild(current, part)
            if not isinstance(current, vim.Folder):
                return None
        return current
