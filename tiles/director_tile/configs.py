"""The BOSH configs the Director tile renders, and what it lacks to render them.

The director applies both on the next Apply Changes:

- the **cpi-config** (``render_cpi_config``): one ``vsphere`` CPI with the
  vCenter's ``host``, ``user``, ``password``, ``connection_options`` and one
  datacenter (folders, datastore patterns from the datastore name lists,
  the clusters of every AZ) - what ``director.cloud`` reads;
- the **cloud-config** (``render_cloud_config``): ``azs`` whose
  ``cloud_properties.datacenters`` pin cluster, resource pool and host group,
  ``vm_types`` from the catalog, ``disk_types`` from Ops Manager's disk size
  list, ``manual`` networks (portgroup in ``cloud_properties.name``) and
  ``compilation``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from opsconsole.errors import ServiceError
from tiles.models import DirectorConfig

from .catalogs import compilation_vm_type, disk_types, vm_types
from .common import _csv, get_director
from .iaas import _iaas


def _datastore_pattern(names: str) -> str:
    items = _csv(names)
    return "^(" + "|".join(re.escape(n) for n in items) + ")$" if items else ".*"


def _cluster_entry(c: Mapping) -> Any:
    props: dict[str, Any] = {}
    if c.get("res_pool"):
        props["resource_pool"] = c["res_pool"]
    if c.get("host_group"):
        props["host_group"] = dict(c["host_group"])
    return {c["cluster"]: props} if props else c["cluster"]


def director_completeness(d: DirectorConfig | None = None) -> dict[str, list[str]]:
    """What the Director tile still lacks, by pane (empty when complete)."""
    d = d or get_director()
    missing: dict[str, list[str]] = {}
    iaas, password, _ = _iaas(d)
    for key in ("vcenter_host", "vcenter_username", "datacenter", "ephemeral_datastores_string"):
        if not iaas.get(key):
            missing.setdefault("iaas_configuration", []).append(f"{key} is required")
    if not password:
        missing.setdefault("iaas_configuration", []).append("vcenter_password is required")
    if not d.availability_zones:
        missing.setdefault("availability_zones", []).append("create at least one AZ")
    if not (d.networks or {}).get("networks"):
        missing.setdefault("networks", []).append("create at least one network")
    return missing


def render_cpi_config(d: DirectorConfig | None = None) -> dict:
    """The BOSH cpi-config: one vSphere CPI for the configured vCenter.

    It holds the real ``password`` (the director logs in with it): the
    director stores configs encrypted at rest (``director.models.Config``),
    shows them ``((redacted))`` to roles that may not see credentials, and
    the pending-changes diff never shows it.
    """
    d = d or get_director()
    missing = director_completeness(d)
    if "iaas_configuration" in missing or "availability_zones" in missing:
        raise ServiceError(
            {k: v for k, v in missing.items() if k in ("iaas_configuration", "availability_zones")}
        )
    iaas, password, _ = _iaas(d)
    clusters: list[str] = []
    for az in d.availability_zones:
        for c in az["clusters"]:
            if c["cluster"] not in clusters:
                clusters.append(c["cluster"])
    if iaas.get("ssl_verification_enabled", True) is False:
        connection: dict[str, Any] = {"insecure": True}
    elif iaas.get("vcenter_ca_certificate"):
        connection = {"ca_cert": iaas["vcenter_ca_certificate"]}
    else:
        connection = {}
    properties: dict[str, Any] = {
        "host": iaas["vcenter_host"],
        "user": iaas["vcenter_username"],
        "password": password,
        "default_disk_type": iaas.get("disk_type") or "thin",
        "datacenters": [
            {
                "name": iaas["datacenter"],
                "vm_folder": iaas["bosh_vm_folder"],
                "template_folder": iaas["bosh_template_folder"],
                "disk_path": iaas["bosh_disk_path"],
                "datastore_pattern": _datastore_pattern(iaas["ephemeral_datastores_string"]),
                "persistent_datastore_pattern": _datastore_pattern(
                    iaas["persistent_datastores_string"] or iaas["ephemeral_datastores_string"]
                ),
                "clusters": clusters,
            }
        ],
    }
    if connection:
        properties["connection_options"] = connection
    return {
        "cpis": [
            {"name": iaas.get("name") or "default", "type": "vsphere", "properties": properties}
        ]
    }


def render_cloud_config(d: DirectorConfig | None = None) -> dict:
    """The BOSH cloud-config the tile renders to (azs, vm_types, disk_types, networks, compilation)."""
    d = d or get_director()
    missing = director_completeness(d)
    refused = {k: v for k, v in missing.items() if k in ("availability_zones", "networks")}
    if refused:
        raise ServiceError(refused)
    iaas, _, _ = _iaas(d)
    cpi_name = iaas.get("name") or "default"
    azs = [
        {
            "name": az["name"],
            "cpi": cpi_name,
            "cloud_properties": {
                "datacenters": [
                    {
                        "name": iaas.get("datacenter") or "",
                        "clusters": [_cluster_entry(c) for c in az["clusters"]],
                    }
                ]
            },
        }
        for az in d.availability_zones
    ]
    types = vm_types()
    cloud_vm_types = [
        {
            "name": t["name"],
            "cloud_properties": {"cpu": t["cpu"], "ram": t["ram"], "disk": t["ephemeral_disk"]},
        }
        for t in types
    ]
    networks = []
    for n in (d.networks or {}).get("networks", []):
        subnets = []
        for sn in n["subnets"]:
            subnet: dict[str, Any] = {
                "range": sn["cidr"],
                "gateway": sn["gateway"],
                "azs": list(sn["availability_zone_names"]),
                "dns": _csv(sn.get("dns")),
                "cloud_properties": {"name": sn["iaas_identifier"]},
            }
            reserved = [r.replace("-", " - ") for r in _csv(sn.get("reserved_ip_ranges"))]
            if reserved:
                subnet["reserved"] = reserved
            subnets.append(subnet)
        networks.append({"name": n["name"], "type": "manual", "subnets": subnets})
    na = d.network_and_az or {}
    comp = (d.resource_config or {}).get("compilation") or {}
    compilation = {
        "workers": int(comp.get("instances") or 4),
        "reuse_compilation_vms": True,
        "az": na.get("singleton_availability_zone") or azs[0]["name"],
        "vm_type": compilation_vm_type(d, types),
        "network": na.get("network") or networks[0]["name"],
    }
    return {
        "azs": azs,
        "vm_types": cloud_vm_types,
        "disk_types": [{"name": t["name"], "disk_size": t["size_mb"]} for t in disk_types()],
        "networks": networks,
        "compilation": compilation,
    }
