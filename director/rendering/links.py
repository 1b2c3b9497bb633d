"""Links within one deployment, shaped as BOSH hands them to templates.

A job spec ``provides`` links (``{name, type, properties: [dotted names]}``)
and ``consumes`` them (``{name, type, optional}``). The manifest job may
rename or share a provided link (``provides: {conn: {as: zk, shared:
true}}``) or switch it off (``provides: {conn: nil}``); a consumer may pick
its provider (``consumes: {peers: {from: zk}}``, the provider's ``as`` or
name, of the consumer's type), be switched off (``consumes: {peers: nil}``),
or be a **manual link** (``consumes: {db: {instances: [...], properties:
{...}, address: ...}}``). Without ``from`` a consumer takes the only provider
of its type in the deployment (BOSH's implicit linking); two or more is an
error naming them, none is an error unless the link is ``optional``.
Cross-deployment links (``from`` with ``deployment``) are refused.

A link spec is ``{instances: [{name, id, index, az, address, bootstrap}],
properties, instance_group, default_network, deployment_name, domain,
use_short_dns_addresses, use_link_dns_names}``; ``properties`` are the
provider job's **bound** properties (spec defaults applied) picked by the
names its ``provides`` entry lists. A manual link also carries ``address``,
which ``link(...).address`` answers.

Each provided link also yields a ``.bosh/links.json`` entry ``{name, type,
group}`` for the providing job; ``group`` is the link group's id (``<as>-
<type>`` in the deployment) from ``link_group_ids``, else numbered here in
manifest order from 1 (BOSH numbers them in its local DNS tables, which this
director does not keep).

Pure: the manifest, the job specs and the instances in; the links out.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from director.manifest.errors import ManifestError

from .model import bind_properties, lookup_property, properties_source


@dataclass(frozen=True)
class ResolvedLinks:
    """``consumed[group][job]`` = {link name: link spec};
    ``provided[group][job]`` = the job's ``.bosh/links.json`` entries."""

    consumed: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    provided: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]] = field(default_factory=dict)

    def for_job(self, group: str, job: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return (
            dict((self.consumed.get(group) or {}).get(job) or {}),
            list((self.provided.get(group) or {}).get(job) or []),
        )


@dataclass(frozen=True)
class _Provider:
    alias: str
    type: str
    group: str
    job: str
    properties: dict


def _disabled(overrides: Any, name: str) -> bool:
    """``provides: {x: nil}`` / ``consumes: {x: nil}`` (or the string ``nil``)."""
    return isinstance(overrides, Mapping) and name in overrides and overrides[name] in (None, "nil")


def _store(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        nxt = tree.get(part)
        if not isinstance(nxt, dict):
            nxt = tree[part] = {}
        tree = nxt
    tree[parts[-1]] = copy.deepcopy(value)


def default_network(group: Mapping[str, Any]) -> str | None:
    """The network whose ``default`` lists ``gateway`` (else the first)."""
    networks = [n for n in group.get("networks") or [] if isinstance(n, Mapping)]
    for net in networks:
        if "gateway" in (net.get("default") or []):
            return net.get("name")
    return networks[0].get("name") if networks else None


def resolve_links(
    manifest: Mapping[str, Any],
    job_specs: Mapping[tuple[str, str], Mapping[str, Any]],
    instances: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    domain: str = "bosh",
    link_group_ids: Mapping[str, str] | None = None,
) -> ResolvedLinks:
    """Resolve every job's consumed links in ``manifest``.

    ``job_specs`` maps ``(release, job)`` to the job spec; ``instances`` maps
    an instance group to its instances as links list them (``name, id,
    index, az, address, bootstrap``). Raises ``ManifestError`` with every
    broken link, each at its manifest path.
    """
    deployment = manifest.get("name") or ""
    groups = [g for g in manifest.get("instance_groups") or [] if isinstance(g, Mapping)]
    global_props = manifest.get("properties") or {}

    errors: list[tuple[str, str]] = []
    providers: list[_Provider] = []
    provided: dict[str, dict[str, list[dict[str, Any]]]] = {}
    group_ids = dict(link_group_ids or {})
    for group in groups:
        for job in group.get("jobs") or []:
            spec = job_specs.get((job.get("release"), job.get("name")))
            if spec is None:
                continue
            overrides = job.get("provides") or {}
            path = f"instance_groups/{group['name']}/jobs/{job['name']}"
            try:
                bound = bind_properties(
                    spec.get("properties"),
                    properties_source(job.get("properties"), group.get("properties"), global_props),
                )
            except ValueError as exc:
                errors.append((f"{path}/properties", str(exc)))
                continue
            for entry in spec.get("provides") or []:
                if not isinstance(entry, Mapping) or not entry.get("name"):
                    continue
                name = entry["name"]
                if _disabled(overrides, name):
                    continue
                override = overrides.get(name) if isinstance(overrides, Mapping) else None
                alias = (override or {}).get("as") if isinstance(override, Mapping) else None
                alias = alias or name
                props: dict = {}
                for prop in entry.get("properties") or []:
                    _store(props, str(prop), lookup_property(bound, str(prop)))
                link_type = str(entry.get("type") or "")
                providers.append(_Provider(alias, link_type, group["name"], job["name"], props))
                group_name = f"{alias}-{link_type}"
                if group_name not in group_ids:
                    group_ids[group_name] = str(len(group_ids) + 1)
                provided.setdefault(group["name"], {}).setdefault(job["name"], []).append(
                    {"name": alias, "type": link_type, "group": group_ids[group_name]}
                )

    networks = {g["name"]: default_network(g) for g in groups}
    consumed: dict[str, dict[str, dict[str, Any]]] = {}
    for group in groups:
        for job in group.get("jobs") or []:
            spec = job_specs.get((job.get("release"), job.get("name")))
            if spec is None:
                continue
            overrides = job.get("consumes") or {}
            links: dict[str, Any] = {}
            for entry in spec.get("consumes") or []:
                if not isinstance(entry, Mapping) or not entry.get("name"):
                    continue
                name = entry["name"]
                path = f"instance_groups/{group['name']}/jobs/{job['name']}/consumes/{name}"
                if _disabled(overrides, name):
                    continue
                wanted = overrides.get(name) if isinstance(overrides, Mapping) else None
                if wanted is not None and not isinstance(wanted, Mapping):
                    errors.append((path, "must be a map (from, instances, properties) or nil"))
                    continue
                wanted = wanted or {}
                if "instances" in wanted:
                    links[name] = _manual_link(wanted, deployment, domain)
                    continue
                if wanted.get("deployment") and wanted.get("deployment") != deployment:
                    errors.append(
                        (
                            path,
                            f"links from another deployment ('{wanted['deployment']}') are not supported",
                        )
                    )
                    continue
                link_type = str(entry.get("type") or "")
                if wanted.get("from"):
                    found = [p for p in providers if p.alias == wanted["from"]]
                    if found and all(p.type != link_type for p in found):
                        errors.append(
                            (
                                path,
                                f"link '{wanted['from']}' is of type '{found[0].type}',"
                                f" not '{link_type}'",
                            )
                        )
                        continue
                    found = [p for p in found if p.type == link_type]
                    missing = (
                        f"no job provides a link named '{wanted['from']}' of type '{link_type}'"
                    )
                else:
                    found = [p for p in providers if p.type == link_type]
                    missing = f"no job provides a link of type '{link_type}'"
                if len(found) > 1:
                    names = ", ".join(f"{p.group}/{p.job} ({p.alias})" for p in found)
                    errors.append(
                        (path, f"more than one job provides a link of type '{link_type}': {names}")
                    )
                    continue
                if not found:
                    if not entry.get("optional"):
                        errors.append((path, missing))
                    continue
                provider = found[0]
                links[name] = {
                    "instances": [_link_instance(i) for i in instances.get(provider.group) or []],
                    "properties": copy.deepcopy(provider.properties),
                    "instance_group": provider.group,
                    "default_network": networks.get(provider.group),
                    "deployment_name": deployment,
                    "domain": domain,
                    "use_short_dns_addresses": False,
                    "use_link_dns_names": False,
                }
            consumed.setdefault(group["name"], {})[job["name"]] = links
    if errors:
        raise ManifestError(errors)
    return ResolvedLinks(consumed=consumed, provided=provided)


def _link_instance(instance: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": instance.get("name"),
        "id": instance.get("id"),
        "index": instance.get("index"),
        "az": instance.get("az"),
        "address": instance.get("address"),
        "bootstrap": bool(instance.get("bootstrap")),
    }


def _manual_link(wanted: Mapping[str, Any], deployment: str, domain: str) -> dict[str, Any]:
    instances = []
    for i, inst in enumerate(wanted.get("instances") or []):
        row = dict(inst) if isinstance(inst, Mapping) else {}
        instances.append(
            {
                "name": row.get("name"),
                "id": row.get("id"),
                "index": row.get("index", i),
                "az": row.get("az"),
                "address": row.get("address"),
                "bootstrap": bool(row.get("bootstrap", i == 0)),
            }
        )
    link = {
        "instances": instances,
        "properties": copy.deepcopy(dict(wanted.get("properties") or {})),
        "deployment_name": deployment,
        "domain": domain,
    }
    if wanted.get("address") is not None:
        link["address"] = wanted["address"]
    return link
