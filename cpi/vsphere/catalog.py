"""The names an operator types into the Director tile, read from vCenter in two calls.

The vCenter Config, Create Availability Zones and Create Networks panes
name a datacenter, datastores, clusters, resource pools and portgroups.
``datacenter_names`` reads every one of those names in two
``RetrievePropertiesEx`` round trips (after the login): the datacenters
(with their folders) from the root folder, then, from the chosen
datacenter's host, network and datastore folders, its clusters with their
resource pools (nested pools too), its networks and its datastores. The
console compares what was typed against them when a pane is saved, and
"Test connection" shows them.

Names are what the CPI resolves later: a cluster by name in the
datacenter's host folder, a resource pool by name anywhere below its
cluster (``cluster/pool`` here), a network by name (an uplink portgroup of
a distributed switch is no place for a VM's NIC, so it is left out).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyVmomi import vim

from cpi.vsphere.client import VSphereClient, object_spec, traverse
from cpi.vsphere.inventory import vim_selection


@dataclass(frozen=True)
class DatacenterNames:
    """Sorted names in one datacenter; ``datacenters`` are all of the vCenter's."""

    datacenters: tuple[str, ...]
    datacenter: str | None  # None: the datacenter asked for does not exist
    clusters: tuple[str, ...] = ()
    resource_pools: tuple[str, ...] = ()  # "cluster/pool"
    datastores: tuple[str, ...] = ()
    portgroups: tuple[str, ...] = ()


def _folders(*then):
    """Follow ``Folder.childEntity`` down through sub-folders (and ``then``)."""
    return traverse(vim.Folder, "childEntity", vim_selection("folders"), *then, name="folders")


def datacenter_names(client: VSphereClient, datacenter: str | None) -> DatacenterNames:
    """Names in ``datacenter`` (the first datacenter by name when None or empty)."""
    found = client.collect(
        [object_spec(client.content.rootFolder, _folders())],
        {vim.Datacenter: ["name", "hostFolder", "networkFolder", "datastoreFolder"]},
    )
    dcs = {props["name"]: props for obj, props in found if isinstance(obj, vim.Datacenter)}
    names = tuple(sorted(dcs))
    want = datacenter or (names[0] if names else None)
    dc = dcs.get(want) if want else None
    if dc is None:
        return DatacenterNames(datacenters=names, datacenter=None)

    pools = traverse(vim.ResourcePool, "resourcePool", vim_selection("pools"), name="pools")
    cluster_pools = traverse(vim.ComputeResource, "resourcePool", pools)
    found = client.collect(
        [
            object_spec(dc["hostFolder"], _folders(cluster_pools)),
            object_spec(dc["networkFolder"], _folders()),
            object_spec(dc["datastoreFolder"], _folders()),
        ],
        {
            vim.ClusterComputeResource: ["name", "resourcePool"],
            vim.ResourcePool: ["name", "owner"],
            vim.Network: ["name"],
            vim.dvs.DistributedVirtualPortgroup: ["name", "config.uplink"],
            vim.Datastore: ["name"],
        },
    )
    clusters = {
        obj._moId: props
        for obj, props in found
        if isinstance(obj, vim.ClusterComputeResource) and "name" in props
    }
    root_pools = {props["resourcePool"]._moId for props in clusters.values()}
    pool_names = []
    for obj, props in found:
        if not isinstance(obj, vim.ResourcePool) or obj._moId in root_pools:
            continue
        owner = props.get("owner")
        if owner is not None and owner._moId in clusters:
            pool_names.append(f"{clusters[owner._moId]['name']}/{props.get('name', '')}")
    return DatacenterNames(
        datacenters=names,
        datacenter=want,
        clusters=tuple(sorted(p["name"] for p in clusters.values())),
        resource_pools=tuple(sorted(pool_names)),
        datastores=tuple(
            sorted(p["name"] for o, p in found if isinstance(o, vim.Datastore) and "name" in p)
        ),
        portgroups=tuple(
            sorted(
                p["name"]
                for o, p in found
                if isinstance(o, vim.Network) and "name" in p and not p.get("config.uplink")
            )
        ),
    )
