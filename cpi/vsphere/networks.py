"""Networks by name: a standard portgroup, a distributed portgroup or an opaque (NSX) network.

What a NIC backing needs differs by kind (the network, a portgroup key and
switch uuid, or an opaque network id and type); ``resolve_network`` reads it
in a couple of calls and ``Inventory.network`` remembers it per name. A
name may be ``switch/portgroup`` when several distributed switches have a
portgroup of that name; an ambiguous or unknown name is an error that says
which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from cpi.base import CloudError, NetworkNotFound
from cpi.vsphere.client import VSphereClient, object_spec, traverse


@dataclass(frozen=True)
class NetworkRef:
    """A network and what a NIC needs to be plugged into it (read once per name)."""

    ref: vim.Network
    name: str
    key: str  # what a NIC backing names: portgroup key, opaque network id, or network name
    switch_uuid: str | None = None  # distributed portgroups
    opaque_type: str | None = None  # opaque (NSX) networks

    @property
    def distributed(self) -> bool:
        return self.switch_uuid is not None

    @property
    def opaque(self) -> bool:
        return self.opaque_type is not None


def resolve_network(
    client: VSphereClient, datacenter: vim.Datacenter, datacenter_name: str, name: str
) -> NetworkRef:
    """The network named ``name`` in ``datacenter``: a couple of calls (see ``Inventory.network``)."""
    switch = None
    pg_name = name
    if "/" in name:
        switch, pg_name = name.rsplit("/", 1)
    everything = client.collect(
        [object_spec(datacenter, traverse(vim.Datacenter, "network"), skip=True)],
        {
            vim.Network: ["name"],
            vim.dvs.DistributedVirtualPortgroup: [
                "name",
                "key",
                "config.distributedVirtualSwitch",
            ],
            vim.OpaqueNetwork: ["name", "summary"],
        },
    )
    matches = [(obj, props) for obj, props in everything if props.get("name") == pg_name]
    switches: dict[str, dict[str, Any]] = {}
    dvs_refs = [
        props["config.distributedVirtualSwitch"]
        for obj, props in matches
        if props.get("config.distributedVirtualSwitch") is not None
    ]
    if dvs_refs:
        for obj, props in client.properties_of(
            list({d._moId: d for d in dvs_refs}.values()),
            vim.DistributedVirtualSwitch,
            ["name", "uuid"],
        ):
            switches[obj._moId] = props
    if switch is not None:
        matches = [
            (obj, props)
            for obj, props in matches
            if isinstance(obj, vim.dvs.DistributedVirtualPortgroup)
            and props.get("config.distributedVirtualSwitch") is not None
            and switches.get(props["config.distributedVirtualSwitch"]._moId, {}).get("name")
            == switch
        ]
    if not matches:
        raise NetworkNotFound(
            f"Unable to find network '{name}' in datacenter '{datacenter_name}'. "
            "Verify that the portgroup exists."
        )
    if len(matches) > 1:
        raise CloudError(
            f"Network name '{name}' is ambiguous in datacenter '{datacenter_name}' "
            f"({len(matches)} networks); name it as '<switch>/{pg_name}'"
        )
    obj, props = matches[0]
    if isinstance(obj, vim.dvs.DistributedVirtualPortgroup):
        dvs = props["config.distributedVirtualSwitch"]
        return NetworkRef(
            ref=obj,
            name=pg_name,
            key=props["key"],
            switch_uuid=switches.get(dvs._moId, {}).get("uuid", ""),
        )
    if isinstance(obj, vim.OpaqueNetwork):
        summary = props["summary"]
        return NetworkRef(
            ref=obj,
            name=pg_name,
            key=summary.opaqueNetworkId,
            opaque_type=summary.opaqueNetworkType,
        )
    return NetworkRef(ref=obj, name=pg_name, key=pg_name)
