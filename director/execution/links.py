"""Links between jobs of one deployment, as the apply spec carries them.

A job spec ``provides`` links (``{name, type, properties}``) and
``consumes`` them (``{name, type, optional}``). Within a deployment a
consumer is linked to the provider named by the manifest
(``consumes: {peers: {from: zk-peers}}``, matched against a provider's name
or its ``as`` alias), else to the only provider of the same type (BOSH's
implicit linking); more than one candidate is an error naming the consumer,
none is an error unless the link is optional (or ``consumes: {x: nil}``).

A link is ``{instances: [{name, id, index, az, address, bootstrap}],
properties: {...}}`` with the provider job's properties that the link
declares. Cross-deployment links are not resolved yet.
"""

from __future__ import annotations

from typing import Any

from director.planning import DeploymentPlan

from .prepare import PrepareError


def _lookup(props: dict, dotted: str) -> Any:
    node: Any = props
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _store(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        tree = tree.setdefault(part, {})
    tree[parts[-1]] = value


def resolve_links(prepared: Any, plan: DeploymentPlan) -> dict[str, dict[str, dict]]:
    """group -> job -> {link name: link}; raises ``PrepareError`` for a broken link."""
    instances_by_group: dict[str, list[dict]] = {}
    for group in plan.instance_groups:
        rows = []
        for p in group.instance_plans:
            ip = next((n.ip for n in p.desired.networks if n.ip), None) if p.desired else None
            rows.append(
                {
                    "name": group.name,
                    "id": p.uuid,
                    "index": p.index,
                    "az": p.az,
                    "address": ip,
                    "bootstrap": p.bootstrap,
                }
            )
        instances_by_group[group.name] = rows

    providers = []  # (alias, type, group, job, link properties)
    for ig in prepared.manifest["instance_groups"]:
        for job in ig.get("jobs") or []:
            spec = prepared.job_specs.get((job.get("release"), job["name"]))
            if spec is None:
                continue
            shared = job.get("provides") or {}
            for p in spec.spec.get("provides") or []:
                if not isinstance(p, dict) or not p.get("name"):
                    continue
                override = shared.get(p["name"]) if isinstance(shared, dict) else None
                if override == "nil" or (
                    isinstance(shared, dict) and p["name"] in shared and override is None
                ):
                    continue
                alias = (override or {}).get("as") or p["name"]
                props: dict = {}
                for name in p.get("properties") or []:
                    _store(props, name, _lookup(job.get("properties") or {}, name))
                providers.append((alias, p.get("type"), ig["name"], job["name"], props))

    out: dict[str, dict[str, dict]] = {}
    errors: list[tuple[str, str]] = []
    for ig in prepared.manifest["instance_groups"]:
        for job in ig.get("jobs") or []:
            spec = prepared.job_specs.get((job.get("release"), job["name"]))
            if spec is None:
                continue
            explicit = job.get("consumes") or {}
            links = {}
            for c in spec.spec.get("consumes") or []:
                if not isinstance(c, dict) or not c.get("name"):
                    continue
                path = f"instance_groups/{ig['name']}/jobs/{job['name']}/consumes/{c['name']}"
                wanted = explicit.get(c["name"]) if isinstance(explicit, dict) else None
                if isinstance(explicit, dict) and c["name"] in explicit and wanted in (None, "nil"):
                    continue
                if isinstance(wanted, dict) and wanted.get("from"):
                    found = [p for p in providers if p[0] == wanted["from"]]
                else:
                    found = [p for p in providers if p[1] == c.get("type")]
                if len(found) > 1:
                    names = ", ".join(f"{p[2]}/{p[3]}" for p in found)
                    errors.append(
                        (path, f"more than one provider of type '{c.get('type')}': {names}")
                    )
                    continue
                if not found:
                    if not c.get("optional"):
                        errors.append((path, f"no job provides a link of type '{c.get('type')}'"))
                    continue
                _, _, group, _, props = found[0]
                links[c["name"]] = {
                    "instances": instances_by_group.get(group, []),
                    "properties": props,
                }
            out.setdefault(ig["name"], {})[job["name"]] = links
    if errors:
        raise PrepareError(errors)
    return out
