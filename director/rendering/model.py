"""What the renderer is given, and the two things BOSH derives from it in the
director before any ERB runs: a job's bound properties and the template spec.

**Bound properties** (BOSH's ``DeploymentPlan::Job#bind_properties``): the
source is the job's own manifest ``properties`` or, when the job has none,
the instance group's properties deep-merged over the deprecated global ones
(:func:`properties_source`). For every property the job spec *declares*
(dotted names, ``nofile.soft``) the value is the manifest's when it is not
nil, else the spec ``default`` (which may be nil); undeclared properties are
dropped and hashes are key-sorted. A dotted name that runs into a value that
is not a hash is BOSH's ``Property 'a.b' expects a hash, but received
'String'``.

**Template spec** (BOSH's ``InstanceSpec::TemplateSpec``): ``deployment``,
``job`` (``{name: <instance group>, templates: [...]}``), ``index``,
``bootstrap``, ``name`` (the instance group), ``id``, ``az``, ``networks``
(each with ``ip, netmask, gateway, dns, default, cloud_properties, type`` as
given plus ``dns_record_name`` = ``<index>.<group>.<network>.<deployment>.
<domain>``; a dynamic network without addresses yet reads ``127.0.0.1``),
``properties_need_filtering``, ``dns_domain_name``, ``persistent_disk``
(MB, 0 without one), ``address`` and ``ip`` (from the network whose
``default`` lists ``addressable``, else the first with ``gateway``, else the
only one). Per job the renderer adds ``release: {name, version}``,
``properties`` (bound) and ``links``.

Everything here is pure: dataclasses in, dicts out.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class PropertyTypeError(ValueError):
    """A dotted property name crosses a value that is not a hash."""


@dataclass(frozen=True)
class JobTemplates:
    """A release job as the renderer needs it: its spec and template sources.

    ``spec`` is the job's ``job.MF`` (``templates`` src -> dest, ``properties``,
    ``provides``, ``consumes``); ``sources`` maps each ``templates`` source
    path to its ERB text (the file ``templates/<src>`` of the job tarball);
    ``monit`` is the job's ``monit`` file (ERB as well).
    """

    name: str
    release: str
    release_version: str
    spec: Mapping[str, Any]
    monit: str = ""
    sources: Mapping[str, str] = field(default_factory=dict)
    version: str = ""

    @property
    def key(self) -> str:
        return f"{self.release}/{self.release_version}/{self.name}"


@dataclass(frozen=True)
class InstanceJob:
    """One job on one instance: the raw manifest properties for it (see
    :func:`properties_source`) and the links resolved for it
    (:func:`director.rendering.links.resolve_links`), ``links_provided``
    being the ``.bosh/links.json`` entries of the links this job provides."""

    job: JobTemplates
    properties: Mapping[str, Any] | None = None
    links: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    links_provided: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class InstanceToRender:
    """One instance of an instance group, with its jobs in manifest order.

    ``networks`` is the instance's network settings hash as the apply spec
    carries it (network name -> ``{type, ip, netmask, gateway, dns, default,
    cloud_properties}``); ``address`` overrides the address derived from it
    (a DNS name when BOSH DNS addresses are in use).
    """

    deployment: str
    group: str
    id: str
    index: int
    az: str | None
    bootstrap: bool
    networks: Mapping[str, Mapping[str, Any]]
    jobs: Sequence[InstanceJob]
    persistent_disk: int = 0
    address: str | None = None
    dns_domain_name: str = "bosh"

    @property
    def key(self) -> str:
        return f"{self.group}/{self.id}"


def _ruby_class(value: Any) -> str:
    if isinstance(value, bool):
        return "TrueClass" if value else "FalseClass"
    return {
        str: "String",
        int: "Integer",
        float: "Float",
        list: "Array",
        type(None): "NilClass",
    }.get(type(value), type(value).__name__)


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    return value


def lookup_property(properties: Mapping[str, Any] | None, name: str) -> Any:
    """The value at a dotted name, or None when any part is absent."""
    node: Any = properties
    for key in name.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
        if node is None:
            return None
    return node


def _copy_property(dst: dict, src: Mapping[str, Any], name: str, default: Any) -> None:
    keys = name.split(".")
    ref: Any = src
    for key in keys:
        if not isinstance(ref, Mapping):
            raise PropertyTypeError(
                f"Property '{name}' expects a hash, but received '{_ruby_class(ref)}'"
            )
        ref = ref.get(key)
        if ref is None:
            break
    for key in keys[:-1]:
        nxt = dst.get(key)
        if not isinstance(nxt, dict):
            nxt = dst[key] = {}
        dst = nxt
    dst[keys[-1]] = copy.deepcopy(default if ref is None else ref)


def bind_properties(
    spec_properties: Mapping[str, Any] | None, source: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The job's properties as its templates see them (see the module docstring)."""
    bound: dict[str, Any] = {}
    for name, definition in (spec_properties or {}).items():
        default = definition.get("default") if isinstance(definition, Mapping) else None
        _copy_property(bound, source or {}, str(name), default)
    return _sorted(bound)


def _deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = dict(base)
        for k, v in override.items():
            out[k] = _deep_merge(base.get(k), v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(override)


def properties_source(
    job_properties: Mapping[str, Any] | None,
    group_properties: Mapping[str, Any] | None = None,
    global_properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Where a job's properties come from: its own ``properties`` when the
    manifest gives them (even ``{}``), else the instance group's over the
    deployment's global ``properties``."""
    if job_properties is not None:
        return copy.deepcopy(dict(job_properties))
    return _deep_merge(dict(global_properties or {}), dict(group_properties or {}))


_NOT_DNS = re.compile(r"[^a-z0-9-]")


def canonical(name: str) -> str:
    """BOSH's ``Canonicalizer``: a name as a DNS label (``zk_peers`` -> ``zk-peers``)."""
    label = _NOT_DNS.sub("", str(name).lower().replace("_", "-"))
    return label.strip("-")


def _template_networks(instance: InstanceToRender) -> tuple[dict[str, Any], str | None]:
    networks: dict[str, Any] = {}
    ip = None
    for net_name, settings in instance.networks.items():
        net = copy.deepcopy(dict(settings))
        net["dns_record_name"] = ".".join(
            [
                str(instance.index),
                canonical(instance.group),
                canonical(net_name),
                canonical(instance.deployment),
                instance.dns_domain_name,
            ]
        )
        defaults = net.get("default") or []
        if "addressable" in defaults or (ip is None and "gateway" in defaults):
            ip = net.get("ip")
        if net.get("type") == "dynamic":
            for key in ("ip", "netmask", "gateway"):
                if not net.get(key):
                    net[key] = "127.0.0.1"
        networks[net_name] = net
    if ip is None and len(networks) == 1:
        # One network is the default for everything (BOSH fills default: [dns, gateway]).
        ip = next(iter(networks.values())).get("ip")
    return networks, ip


def template_spec(instance: InstanceToRender) -> dict[str, Any]:
    """The ``spec`` of BOSH's ERB context for an instance (jobs add release,
    properties and links)."""
    networks, ip = _template_networks(instance)
    return {
        "deployment": instance.deployment,
        "job": {
            "name": instance.group,
            "templates": [
                {"name": j.job.name, "version": j.job.version, "release": j.job.release}
                for j in instance.jobs
            ],
        },
        "index": instance.index,
        "bootstrap": bool(instance.bootstrap),
        "name": instance.group,
        "id": instance.id,
        "az": instance.az,
        "networks": networks,
        "properties_need_filtering": True,
        "dns_domain_name": instance.dns_domain_name,
        "persistent_disk": int(instance.persistent_disk or 0),
        "address": instance.address or ip,
        "ip": ip,
    }
