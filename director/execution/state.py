"""The database as the planner sees it, and the applied state as the executor records it.

``existing_instances`` turns a deployment's ``Instance`` rows (with their
active VM, IP reservations and persistent disk) into the planner's
``ExistingInstance`` inputs; ``ips_in_use`` lists every reserved address of
the director. What was applied to an instance is kept in
``Instance.spec_json["applied"]`` as JSON (``applied_to_json`` /
``applied_from_json``): the next plan compares the manifest against it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch

from director.models import Deployment, Instance, IpAddress, PersistentDisk, Vm
from director.planning import (
    AppliedNetwork,
    AppliedState,
    ExistingInstance,
    Reservation,
    StemcellVersion,
)


def applied_to_json(applied: AppliedState) -> dict[str, Any]:
    return {
        "stemcell": list(applied.stemcell),
        "cloud_properties": dict(applied.cloud_properties),
        "vm_type": applied.vm_type,
        "env": dict(applied.env),
        "networks": [
            {
                "name": n.name,
                "ip": n.ip,
                "range": n.range,
                "gateway": n.gateway,
                "dns": list(n.dns) if n.dns is not None else None,
                "cloud_properties": dict(n.cloud_properties)
                if n.cloud_properties is not None
                else None,
                "default": list(n.default) if n.default is not None else None,
            }
            for n in applied.networks
        ],
        "persistent_disk_size": applied.persistent_disk_size,
        "persistent_disk_cloud_properties": dict(applied.persistent_disk_cloud_properties),
        "jobs_fingerprint": applied.jobs_fingerprint,
    }


def applied_from_json(data: Any) -> AppliedState | None:
    if not isinstance(data, dict) or "stemcell" not in data:
        return None
    return AppliedState(
        stemcell=StemcellVersion(*data["stemcell"]),
        cloud_properties=data.get("cloud_properties") or {},
        vm_type=data.get("vm_type"),
        env=data.get("env") or {},
        networks=tuple(
            AppliedNetwork(
                name=n["name"],
                ip=n.get("ip"),
                range=n.get("range"),
                gateway=n.get("gateway"),
                dns=tuple(n["dns"]) if n.get("dns") is not None else None,
                cloud_properties=n.get("cloud_properties"),
                default=tuple(n["default"]) if n.get("default") is not None else None,
            )
            for n in data.get("networks") or []
        ),
        persistent_disk_size=int(data.get("persistent_disk_size") or 0),
        persistent_disk_cloud_properties=data.get("persistent_disk_cloud_properties") or {},
        jobs_fingerprint=data.get("jobs_fingerprint") or "",
    )


def instances_of(deployment: Deployment) -> list[Instance]:
    """The deployment's instances with VMs, IPs and disks prefetched."""
    return list(
        Instance.objects.filter(deployment=deployment, compilation=False)
        .order_by("group", "index")
        .prefetch_related(
            Prefetch("vms", Vm.objects.order_by("id")),
            Prefetch("ip_addresses", IpAddress.objects.order_by("id")),
            Prefetch("persistent_disks", PersistentDisk.objects.order_by("id")),
        )
    )


def to_existing(instance: Instance) -> ExistingInstance:
    vm = instance.active_vm
    return ExistingInstance(
        uuid=instance.uuid,
        group=instance.group,
        index=instance.index,
        az=instance.az or None,
        bootstrap=instance.bootstrap,
        state=instance.state,
        vm_cid=vm.cid if vm else None,
        vm_created_at=vm.created_at if vm else None,
        reservations=tuple(
            Reservation(ip.network_name, ip.address, ip.static)
            for ip in instance.ip_addresses.all()
            if ip.orphaned_vm_id is None
        ),
        applied=applied_from_json((instance.spec_json or {}).get("applied")),
        has_persistent_disk=any(d.active for d in instance.persistent_disks.all()),
        ignore=instance.ignore,
    )


def existing_instances(deployment: Deployment) -> list[ExistingInstance]:
    return [to_existing(i) for i in instances_of(deployment)]


def ips_in_use(exclude_deployment: Deployment | None = None) -> dict[str, str]:
    """Every reserved address of the director -> who holds it (for error messages)."""
    out = {}
    rows = IpAddress.objects.select_related("instance__deployment", "orphaned_vm").all()
    for ip in rows:
        if ip.instance is not None:
            out[ip.address] = (
                f"instance {ip.instance} from deployment {ip.instance.deployment.name}"
            )
        elif ip.orphaned_vm is not None:
            out[ip.address] = f"orphaned VM {ip.orphaned_vm.cid}"
        else:
            out[ip.address] = "a VM being created"
    return out
