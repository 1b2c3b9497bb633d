"""A plan as JSON, for "Review Pending Changes", the API and ``deploy --dry-run``.

Shape::

    {"deployment": "zk", "initial_deploy": false,
     "summary": {"create": 0, "recreate": 3, "update": 0, "delete": 2, "none": 0},
     "instance_groups": [{"name": "zookeeper", "lifecycle": "service",
        "update": {...}, "instances": [{"name": "zookeeper/<uuid>", "index": 0,
        "az": "z1", "bootstrap": true, "change": "recreate",
        "reasons": ["vm_type changed small -> large"], "changes": ["cloud_properties"],
        "ips": ["10.0.0.10"], "vm_cid": "vm-...", "create_swap_delete": false}]}],
     "obsolete_instance_groups": [...],
     "ip_reservations_to_release": [{"network", "ip", "instance"}],
     "variables_to_generate": ["zk_password"], "warnings": [...]}
"""

from __future__ import annotations

from typing import Any

from director.planning import InstanceGroupPlan, InstancePlan


def _instance(p: InstancePlan) -> dict[str, Any]:
    ips = [n.ip for n in p.desired.networks if n.ip] if p.desired else []
    return {
        "name": p.name,
        "label": p.label,
        "index": p.index,
        "az": p.az,
        "bootstrap": p.bootstrap,
        "change": p.change,
        "reasons": list(p.reasons),
        "changes": sorted(p.changes),
        "ips": ips,
        "vm_cid": p.existing.vm_cid if p.existing else None,
        "create_swap_delete": p.needs_duplicate_vm,
        "ignored": p.ignored,
    }


def _group(g: InstanceGroupPlan) -> dict[str, Any]:
    return {
        "name": g.name,
        "lifecycle": g.lifecycle,
        "update": g.update.to_dict(),
        "instances": [_instance(p) for p in g.instance_plans],
        "obsolete": [_instance(p) for p in g.obsolete_plans],
    }


def plan_to_dict(prepared: Any) -> dict[str, Any]:
    plan = prepared.plan
    return {
        "deployment": plan.name,
        "initial_deploy": plan.initial_deploy,
        "changed": plan.changed,
        "summary": plan.summary(),
        "instance_groups": [_group(g) for g in plan.instance_groups],
        "obsolete_instance_groups": [_group(g) for g in plan.obsolete_groups],
        "ip_reservations_to_release": [
            {"network": r.network, "ip": r.ip, "instance": r.instance}
            for r in plan.ip_reservations_to_release
        ],
        "variables_to_generate": list(prepared.generated),
        "warnings": list(prepared.warnings),
    }
