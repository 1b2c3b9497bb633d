"""The vSphere CPI's configuration: ``cloud.properties`` of BOSH's ``cpi.json``.

The shape is the real vSphere CPI's global config (bosh.io/docs/vsphere-cpi/)::

    {"vcenters": [{"host": "vc.example.com" | "127.0.0.1:8989",
                   "user": ..., "password": ...,
                   "connection_options": {"ca_cert": "<PEM>"} | {"insecure": true},
                   "default_disk_type": "preallocated" | "thin",
                   "datacenters": [{"name", "vm_folder", "template_folder",
                                    "disk_path", "datastore_pattern",
                                    "persistent_datastore_pattern",
                                    "clusters": ["C1" | {"C2": {"resource_pool": "RP",
                                                               "host_group": "HG" |
                                                               {"name", "drs_rule"}}}]}]}],
     "agent": {"ntp": [...], "mbus": "nats://...", "blobstore": {...}}}

``parse_config`` turns it into frozen dataclasses or raises ``ConfigError``
naming the offending key (``vcenters/0/datacenters/0/clusters/1``). Exactly one
vCenter and one datacenter, as in BOSH. Deliberate difference from BOSH: when
neither ``ca_cert`` nor ``insecure`` is given the certificate is checked
against the system trust store (never silently skipped).

``merge_context`` applies a CPI request's ``context`` (director cpi-config
properties) over ``vcenters[0]``, as the real CPI does.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from cpi.base import CloudError

DISK_TYPES = ("preallocated", "thin", "eagerZeroedThick")
DRS_RULES = ("MUST", "SHOULD")

# Context keys that are director bookkeeping, not vCenter settings.
_CONTEXT_BOOKKEEPING = {"director_uuid", "request_id", "vm", "api_version"}


class ConfigError(CloudError):
    """The CPI configuration (or a cloud_properties value) is malformed."""


@dataclass(frozen=True)
class HostGroup:
    name: str
    drs_rule: str  # MUST (hard VM/Host rule) or SHOULD (soft)


@dataclass(frozen=True)
class DrsRule:
    """BOSH's ``drs_rules`` entry: VMs placed with it are kept apart (``separate_vms``)."""

    name: str
    type: str = "separate_vms"


@dataclass(frozen=True)
class ClusterSpec:
    """A cluster the CPI may place VMs in, optionally narrowed to a pool or host group.

    ``drs_rules`` (from a vm_type's or vm_extension's ``cloud_properties``)
    put each VM created there into the named DRS anti-affinity rule.
    """

    name: str
    resource_pool: str | None = None
    host_group: HostGroup | None = None
    drs_rules: tuple[DrsRule, ...] = ()


@dataclass(frozen=True)
class DatacenterConfig:
    name: str
    vm_folder: str
    template_folder: str
    disk_path: str
    datastore_pattern: str
    persistent_datastore_pattern: str
    clusters: tuple[ClusterSpec, ...]


@dataclass(frozen=True)
class VCenterConfig:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    ca_cert: str | None = field(default=None, repr=False)
    insecure: bool = False
    default_disk_type: str = "preallocated"
    connect_timeout: float = 5.0
    http_timeout: float = 120.0
    datacenter: DatacenterConfig | None = None

    @property
    def address(self) -> str:
        """``host:port`` as a person would type it (used in error messages)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 443 else f"{host}:{self.port}"


@dataclass(frozen=True)
class CpiConfig:
    vcenter: VCenterConfig
    agent: dict[str, Any]

    @property
    def datacenter(self) -> DatacenterConfig:
        assert self.vcenter.datacenter is not None
        return self.vcenter.datacenter


def _require(d: dict[str, Any], key: str, path: str, kind: type | tuple[type, ...] = str) -> Any:
    if key not in d or d[key] is None or d[key] == "":
        raise ConfigError(f"{path}/{key}: is required")
    return _typed(d[key], f"{path}/{key}", kind)


def _optional(d: dict[str, Any], key: str, path: str, kind: type | tuple[type, ...], default: Any):
    if d.get(key) is None:
        return default
    return _typed(d[key], f"{path}/{key}", kind)


_KIND_NAMES = {str: "a string", dict: "a map", list: "a list", bool: "true or false"}


def _typed(value: Any, path: str, kind: type | tuple[type, ...]) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if bool not in kinds and isinstance(value, bool):
        ok = False
    else:
        ok = isinstance(value, kinds)
    if not ok:
        wanted = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
        raise ConfigError(f"{path}: must be {wanted}, got {type(value).__name__}")
    return value


def _pattern(d: dict[str, Any], key: str, path: str) -> str:
    value = _require(d, key, path)
    try:
        re.compile(value)
    except re.error as exc:
        raise ConfigError(f"{path}/{key}: not a valid regular expression: {exc}") from None
    return value


def split_host(value: str, path: str) -> tuple[str, int]:
    """``vc.example.com`` -> (host, 443); ``127.0.0.1:8989`` and ``[::1]:8989`` carry a port."""
    text = value.strip()
    if text.startswith("https://"):
        text = text[len("https://") :].split("/", 1)[0]
    host, port = text, 443
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ConfigError(f"{path}: unbalanced '[' in {value!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"{path}: expected ':port' after ']' in {value!r}")
            port = _port(rest[1:], value, path)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, value, path)
    if not host:
        raise ConfigError(f"{path}: no host name in {value!r}")
    return host, port


def _port(text: str, value: str, path: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"{path}: bad port in {value!r}")
    return int(text)


def parse_host_group(value: Any, path: str) -> HostGroup | None:
    """``"HG"`` means MUST (BOSH); ``{name, drs_rule}`` defaults to SHOULD."""
    if value is None:
        return None
    if isinstance(value, str) and value:
        return HostGroup(name=value, drs_rule="MUST")
    if isinstance(value, dict):
        name = _require(value, "name", path)
        rule = str(_optional(value, "drs_rule", path, str, "SHOULD")).upper()
        if rule not in DRS_RULES:
            raise ConfigError(f"{path}/drs_rule: must be MUST or SHOULD, got {value['drs_rule']!r}")
        return HostGroup(name=name, drs_rule=rule)
    raise ConfigError(f"{path}: must be a host group name or a map with name and drs_rule")


#: The only DRS rule type BOSH's vSphere CPI supports: an anti-affinity rule.
DRS_RULE_TYPES = ("separate_vms",)


def parse_drs_rules(value: Any, path: str) -> tuple[DrsRule, ...]:
    """``[{name, type: separate_vms}]``; an unknown type or a nameless rule names its path."""
    if value is None:
        return ()
    _typed(value, path, list)
    rules: list[DrsRule] = []
    for i, entry in enumerate(value):
        p = f"{path}/{i}"
        _typed(entry, p, dict)
        unknown = set(entry) - {"name", "type"}
        if unknown:
            raise ConfigError(f"{p}/{sorted(unknown)[0]}: unknown DRS rule setting")
        name = _require(entry, "name", p)
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{p}/name: must be a non-empty string")
        kind = _require(entry, "type", p)
        if kind not in DRS_RULE_TYPES:
            raise ConfigError(
                f"{p}/type: {kind!r} is not supported; the vSphere CPI supports "
                f"{', '.join(DRS_RULE_TYPES)}"
            )
        rules.append(DrsRule(name=name, type=kind))
    return tuple(rules)


def parse_clusters(value: Any, path: str) -> tuple[ClusterSpec, ...]:
    """BOSH's cluster list: names, or one-key maps ``{name: {resource_pool, host_group}}``."""
    _typed(value, path, list)
    clusters: list[ClusterSpec] = []
    for i, entry in enumerate(value):
        p = f"{path}/{i}"
        if isinstance(entry, str) and entry:
            clusters.append(ClusterSpec(name=entry))
            continue
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ConfigError(f"{p}: must be a cluster name or a map with exactly one cluster name")
        ((name, props),) = entry.items()
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{p}: the cluster name must be a non-empty string")
        props = {} if props is None else _typed(props, f"{p}/{name}", dict)
        unknown = set(props) - {"resource_pool", "host_group", "drs_rules"}
        if unknown:
            raise ConfigError(f"{p}/{name}/{sorted(unknown)[0]}: unknown cluster setting")
        clusters.append(
            ClusterSpec(
                name=name,
                resource_pool=_optional(props, "resource_pool", f"{p}/{name}", str, None),
                host_group=parse_host_group(props.get("host_group"), f"{p}/{name}/host_group"),
                drs_rules=parse_drs_rules(props.get("drs_rules"), f"{p}/{name}/drs_rules"),
            )
        )
    return tuple(clusters)


def parse_config(properties: Any) -> CpiConfig:
    """Validate ``cloud.properties`` and return the frozen config."""
    root = "cloud/properties"
    _typed(properties, root, dict)
    vcenters = _require(properties, "vcenters", root, list)
    if len(vcenters) != 1:
        raise ConfigError(f"{root}/vcenters: exactly one vCenter is supported, got {len(vcenters)}")
    vpath = f"{root}/vcenters/0"
    vc = _typed(vcenters[0], vpath, dict)
    host, port = split_host(_require(vc, "host", vpath), f"{vpath}/host")
    user = _require(vc, "user", vpath)
    password = _require(vc, "password", vpath)

    conn = _optional(vc, "connection_options", vpath, dict, {})
    cpath = f"{vpath}/connection_options"
    ca_cert = _optional(conn, "ca_cert", cpath, str, None) or None
    insecure = _optional(conn, "insecure", cpath, bool, False)
    if ca_cert and insecure:
        raise ConfigError(f"{cpath}: give either ca_cert or insecure: true, not both")
    if ca_cert and "BEGIN CERTIFICATE" not in ca_cert:
        raise ConfigError(
            f"{cpath}/ca_cert: must be a PEM certificate (-----BEGIN CERTIFICATE-----)"
        )
    connect_timeout = float(_optional(conn, "connect_timeout", cpath, (int, float), 5.0))
    http_timeout = float(_optional(conn, "http_timeout", cpath, (int, float), 120.0))
    if connect_timeout <= 0 or http_timeout <= 0:
        raise ConfigError(f"{cpath}: timeouts must be positive")

    disk_type = _optional(vc, "default_disk_type", vpath, str, "preallocated")
    if disk_type not in DISK_TYPES:
        raise ConfigError(f"{vpath}/default_disk_type: must be one of {', '.join(DISK_TYPES)}")

    dcs = _require(vc, "datacenters", vpath, list)
    if len(dcs) != 1:
        raise ConfigError(
            f"{vpath}/datacenters: exactly one datacenter is supported, got {len(dcs)}"
        )
    dpath = f"{vpath}/datacenters/0"
    dc = _typed(dcs[0], dpath, dict)
    datacenter = DatacenterConfig(
        name=_require(dc, "name", dpath),
        vm_folder=_folder(_optional(dc, "vm_folder", dpath, str, "BOSH_VMs"), f"{dpath}/vm_folder"),
        template_folder=_folder(
            _optional(dc, "template_folder", dpath, str, "BOSH_Templates"),
            f"{dpath}/template_folder",
        ),
        disk_path=_folder(
            _optional(dc, "disk_path", dpath, str, "BOSH_Disks"), f"{dpath}/disk_path"
        ),
        datastore_pattern=_pattern(dc, "datastore_pattern", dpath),
        persistent_datastore_pattern=_pattern(dc, "persistent_datastore_pattern", dpath),
        clusters=parse_clusters(_require(dc, "clusters", dpath, list), f"{dpath}/clusters"),
    )
    if not datacenter.clusters:
        raise ConfigError(f"{dpath}/clusters: at least one cluster is required")

    agent = _optional(properties, "agent", root, dict, {})
    apath = f"{root}/agent"
    _optional(agent, "ntp", apath, list, [])
    _optional(agent, "mbus", apath, str, "")
    _optional(agent, "blobstore", apath, dict, {})

    return CpiConfig(
        vcenter=VCenterConfig(
            host=host,
            port=port,
            user=user,
            password=password,
            ca_cert=ca_cert,
            insecure=insecure,
            default_disk_type=disk_type,
            connect_timeout=connect_timeout,
            http_timeout=http_timeout,
            datacenter=datacenter,
        ),
        agent=copy.deepcopy(agent),
    )


def _folder(value: str, path: str) -> str:
    """Folder paths are '/'-separated, relative to the datacenter's VM folder."""
    parts = [p for p in value.strip("/").split("/") if p]
    if not parts:
        raise ConfigError(f"{path}: must name a folder")
    return "/".join(parts)


def merge_context(properties: dict[str, Any], context: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of ``properties`` with the request ``context`` merged into ``vcenters[0]``.

    The director sends its cpi-config properties (host, user, password,
    datacenters, ...) in every request's context; they win over cpi.json.
    """
    merged = copy.deepcopy(properties)
    if not context:
        return merged
    if not isinstance(context, dict):
        raise ConfigError(f"context: must be a map, got {type(context).__name__}")
    overrides = {k: v for k, v in context.items() if k not in _CONTEXT_BOOKKEEPING}
    if not overrides:
        return merged
    vcenters = merged.get("vcenters")
    if isinstance(vcenters, list) and vcenters and isinstance(vcenters[0], dict):
        vcenters[0] = {**vcenters[0], **copy.deepcopy(overrides)}
    else:
        merged["vcenters"] = [copy.deepcopy(overrides)]
    return merged
