"""The BOSH Director tile (``p-bosh``): vCenter, director settings, AZs, networks, VM types.

One ``DirectorConfig`` row, created on first use and never deleted. Its panes
use Ops Manager's API field names (``iaas_configuration``,
``director_configuration``, ``availability_zones``, ``networks``,
``network_and_az``, ``vm_types``), so ``om configure-director`` style YAML
maps straight onto them. Each setter validates the whole pane and stores
nothing on error; errors name the field (``iaas_configuration/datacenter``,
``networks/infra/subnets/0/gateway``).

The tile renders two BOSH configs the director applies on the next Apply
Changes:

- the **cpi-config** (``render_cpi_config``): one ``vsphere`` CPI with the
  vCenter's ``host``, ``user``, ``password``, ``connection_options`` and one
  datacenter (folders, datastore patterns from the datastore name lists,
  the clusters of every AZ) - what ``director.cloud`` reads;
- the **cloud-config** (``render_cloud_config``): ``azs`` whose
  ``cloud_properties.datacenters`` pin cluster, resource pool and host group,
  ``vm_types`` from the catalog, ``disk_types`` from Ops Manager's disk size
  list, ``manual`` networks (portgroup in ``cloud_properties.name``) and
  ``compilation``.

The vCenter password is stored encrypted and read back as ``***``; a
``***`` sent back keeps the stored password. The cpi-config carries it in
clear to the director, which stores config content encrypted too and
redacts it from logs and from API output for restricted roles. Until a vCenter is saved, the
local vcsim that ``make run`` started pre-fills the vCenter pane.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from director.vcenter import local_vcsim
from opsconsole.errors import ServiceError
from opsconsole.redaction import register_secret

from .models import DIRECTOR_PRODUCT_NAME, DirectorConfig, new_guid
from .vcenter_checks import VCenterCheck

__all__ = [
    "DEFAULT_VM_TYPES",
    "DISK_TYPE_SIZES_MB",
    "MASK",
    "get_director",
    "director_properties",
    "set_director_properties",
    "set_iaas_configuration",
    "set_director_configuration",
    "list_availability_zones",
    "set_availability_zones",
    "add_availability_zone",
    "update_availability_zone",
    "get_networks",
    "set_networks",
    "get_network_and_az",
    "set_network_and_az",
    "vm_types",
    "set_vm_types",
    "disk_types",
    "render_cpi_config",
    "render_cloud_config",
    "compilation_vm_type",
    "director_completeness",
    "test_vcenter_connection",
    "director_state",
    "restore_director_state",
]

MASK = "***"

#: Ops Manager's built-in VM types on vSphere (name, CPU, RAM MB, ephemeral disk MB).
DEFAULT_VM_TYPES: tuple[dict, ...] = tuple(
    {"name": n, "cpu": c, "ram": r, "ephemeral_disk": d, "builtin": True}
    for n, c, r, d in (
        ("nano", 1, 512, 1024),
        ("micro", 1, 1024, 8192),
        ("micro.ram", 1, 2048, 8192),
        ("small", 1, 2048, 8192),
        ("small.disk", 1, 2048, 16384),
        ("medium", 2, 4096, 8192),
        ("medium.mem", 2, 6144, 8192),
        ("medium.disk", 2, 4096, 32768),
        ("large", 2, 8192, 16384),
        ("large.mem", 2, 12288, 16384),
        ("large.disk", 2, 8192, 65536),
        ("large.cpu", 4, 4096, 16384),
        ("xlarge", 4, 16384, 32768),
        ("xlarge.mem", 4, 32768, 32768),
        ("xlarge.disk", 4, 16384, 131072),
        ("xlarge.cpu", 8, 8192, 32768),
        ("2xlarge", 8, 32768, 65536),
        ("2xlarge.mem", 8, 65536, 65536),
        ("2xlarge.disk", 8, 32768, 262144),
        ("2xlarge.cpu", 16, 16384, 65536),
    )
)

#: The compilation workers' VM type on Automatic: the first of these the catalog has, else
#: its last type. Compiling wants disk more than memory, and its workers must power on
#: wherever the deployments do: small.disk (1 CPU, 2 GB RAM, 16 GB disk) fits a host of 2
#: cores and 4 GB (a small lab's, vcsim's), where a large type (8 GB) finds no placement
#: and every deploy that compiles would fail. The operator picks another in the
#: ``compilation`` job's Resource Config.
AUTOMATIC_COMPILATION_VM_TYPES = ("small.disk", "small", "medium")

#: Ops Manager's persistent disk catalog (MB); a disk type is named after its size.
DISK_TYPE_SIZES_MB: tuple[int, ...] = (
    1024, 2048, 5120, 10240, 20480, 30720, 51200, 76800, 102400, 153600,
    204800, 307200, 512000, 768000, 1048576, 2097152, 5242880, 10485760, 16777216,
)  # fmt: skip

#: Defaults follow BOSH's vSphere CPI, the same folders ``director.cloud`` uses
#: for the local vcsim, so stemcells imported before the tile was saved are found.
IAAS_DEFAULTS = {
    "name": "default",
    "vcenter_host": "",
    "vcenter_username": "",
    "vcenter_ca_certificate": "",
    "ssl_verification_enabled": True,
    "datacenter": "",
    "disk_type": "thin",
    "ephemeral_datastores_string": "",
    "persistent_datastores_string": "",
    "bosh_vm_folder": "BOSH_VMs",
    "bosh_template_folder": "BOSH_Templates",
    "bosh_disk_path": "BOSH_Disks",
}
IAAS_KEYS = (*IAAS_DEFAULTS, "vcenter_password")

#: Deliberately different from Ops Manager: the resurrector defaults to on,
#: as the director's own global switch does.
DIRECTOR_DEFAULTS = {
    "resurrector_enabled": True,
    "minimum_down_jobs": 5,
    "percent_threshold": 50,
    "time_threshold": 600,
    "max_threads": 32,
    "default_vm_strategy": "delete-create",
    "ntp_servers_string": "",
    "director_hostname": "",
    "post_deploy_enabled": True,
}
VM_STRATEGIES = ("delete-create", "create-swap-delete")
DRS_RULES = ("MUST", "SHOULD")
DISK_TYPES = ("thin", "preallocated", "eagerZeroedThick")


def _err(errors: dict[str, list[str]], key: str, message: str) -> None:
    errors.setdefault(key, []).append(message)


def _raise(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ServiceError(errors)


def _write(
    d: DirectorConfig,
    values: Mapping[str, Any],
    part: str,
    user: str = "",
    version: int | None = None,
) -> None:
    """Save columns of the tile under its row lock (``tiles.services.versions``).

    Refused (409, naming who changed what and when) when ``part`` (a pane)
    was changed after ``version``; a change is recorded as ``user``'s.
    """
    from tiles.services import versions  # tiles.services imports this module

    with transaction.atomic():
        fresh = DirectorConfig.objects.select_for_update().get(pk=d.pk)
        versions.check_fresh(fresh, version, [part])
        if any(getattr(fresh, k) != v for k, v in values.items()):
            versions.record_edits(fresh, [part], user)
        for k, v in values.items():
            setattr(fresh, k, v)
            setattr(d, k, v)
        fresh.save(update_fields=[*values, "revision", "edits", "updated_at"])
    d.revision, d.edits = fresh.revision, fresh.edits


def version_of(*parts: str) -> int:
    """The version of the tile's ``parts`` (a form's hidden field, an ``ETag``)."""
    from tiles.services import versions

    return versions.version(get_director(), parts)


def get_director() -> DirectorConfig:
    """The Director tile's row (created on first use)."""
    d = DirectorConfig.objects.order_by("id").first()
    if d is None:
        with transaction.atomic():
            d = DirectorConfig.objects.select_for_update().order_by("id").first()
            if d is None:
                d = DirectorConfig.objects.create(guid=new_guid(DIRECTOR_PRODUCT_NAME))
    return d


# --------------------------------------------------------------------------- properties


def _vcsim_prefill() -> dict | None:
    facts = local_vcsim()
    if not facts:
        return None
    inv = facts.get("inventory") or {}
    ca = ""
    cert_file = facts.get("cert_file")
    if cert_file:
        try:
            with open(cert_file) as fh:
                ca = fh.read()
        except OSError:
            ca = ""
    datastores = ",".join(inv.get("datastores") or [])
    return {
        **IAAS_DEFAULTS,
        "vcenter_host": facts.get("host", ""),
        "vcenter_username": facts.get("username", ""),
        "vcenter_ca_certificate": ca,
        "datacenter": (inv.get("datacenters") or [""])[0],
        "ephemeral_datastores_string": datastores,
        "persistent_datastores_string": datastores,
        "_password": facts.get("password", ""),
    }


def _iaas(d: DirectorConfig) -> tuple[dict, str, bool]:
    """``(iaas without password, password, prefilled)``: stored, else the local vcsim's.

    The password is registered for log redaction here (the stored one also was
    when it was decrypted): every config rendered from it carries it.
    """
    if d.iaas_configuration.get("vcenter_host"):
        register_secret(d.vcenter_password)
        return {**IAAS_DEFAULTS, **d.iaas_configuration}, d.vcenter_password, False
    pre = _vcsim_prefill()
    if pre is not None:
        password = pre.pop("_password")
        register_secret(password)
        return pre, password, True
    return dict(IAAS_DEFAULTS), "", False


def director_properties(reveal_secrets: bool = False) -> dict:
    """Ops Manager's ``GET /staged/director/properties`` shape.

    ``{"iaas_configuration": {...}, "director_configuration": {...}}``; the
    password is ``***`` unless ``reveal_secrets``. When nothing is saved yet
    and a local vcsim runs, the vCenter pane is its connection, and
    ``iaas_configuration.prefilled`` says so.
    """
    d = get_director()
    iaas, password, prefilled = _iaas(d)
    iaas = dict(iaas)
    iaas["vcenter_password"] = password if reveal_secrets else (MASK if password else "")
    if prefilled:
        iaas["prefilled"] = True
    return {
        "iaas_configuration": iaas,
        "director_configuration": {**DIRECTOR_DEFAULTS, **d.director_configuration},
    }


def _bool(value: Any, key: str, errors: dict) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "on", "off"):
        return value.lower() in ("true", "1", "on")
    _err(errors, key, "must be true or false")
    return None


def _int(value: Any, key: str, errors: dict, lo: int | None = None, hi: int | None = None):
    if isinstance(value, bool):
        _err(errors, key, "must be an integer")
        return None
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        _err(errors, key, "must be an integer")
        return None
    if lo is not None and n < lo:
        _err(errors, key, f"must be at least {lo}")
        return None
    if hi is not None and n > hi:
        _err(errors, key, f"must be at most {hi}")
        return None
    return n


def _csv(text: Any) -> list[str]:
    if isinstance(text, list | tuple):
        return [str(x).strip() for x in text if str(x).strip()]
    return [p.strip() for p in str(text or "").split(",") if p.strip()]


def _validate_iaas(data: Mapping, current: dict, current_password: str) -> tuple[dict, str]:
    errors: dict[str, list[str]] = {}
    p = "iaas_configuration"
    unknown = set(data) - set(IAAS_KEYS) - {"prefilled", "guid", "nsx_networking_enabled"}
    for key in sorted(unknown):
        _err(errors, f"{p}/{key}", "unknown field")
    out = {**IAAS_DEFAULTS, **current}
    for key in IAAS_DEFAULTS:
        if key in data and data[key] is not None:
            out[key] = data[key]
    for key in (
        "name",
        "vcenter_host",
        "vcenter_username",
        "datacenter",
        "ephemeral_datastores_string",
        "persistent_datastores_string",
        "bosh_vm_folder",
        "bosh_template_folder",
        "bosh_disk_path",
        "disk_type",
        "vcenter_ca_certificate",
    ):
        v = out.get(key)
        if v is None:
            v = ""
        if not isinstance(v, str):
            _err(errors, f"{p}/{key}", "must be a string")
            continue
        out[key] = (
            v.strip()
            if key != "vcenter_ca_certificate"
            else v.strip() + ("\n" if v.strip() else "")
        )
    for key in (
        "vcenter_host",
        "vcenter_username",
        "datacenter",
        "ephemeral_datastores_string",
        "persistent_datastores_string",
        "bosh_vm_folder",
        "bosh_template_folder",
        "bosh_disk_path",
    ):
        if isinstance(out.get(key), str) and not out[key]:
            _err(errors, f"{p}/{key}", "is required")
    host = out.get("vcenter_host")
    if isinstance(host, str) and host and not re.fullmatch(r"[A-Za-z0-9.\-_\[\]:]+", host):
        _err(errors, f"{p}/vcenter_host", "must be a host name or address, optionally with :port")
    if isinstance(host, str) and ":" in host and not host.startswith("["):
        port = host.rsplit(":", 1)[1]
        if host.count(":") == 1 and not (port.isdigit() and 0 < int(port) < 65536):
            _err(errors, f"{p}/vcenter_host", f"'{port}' is not a valid port")
    ssl = _bool(out.get("ssl_verification_enabled", True), f"{p}/ssl_verification_enabled", errors)
    out["ssl_verification_enabled"] = ssl if ssl is not None else True
    ca = out.get("vcenter_ca_certificate") or ""
    if ca:
        from cryptography import x509

        try:
            x509.load_pem_x509_certificates(ca.encode())
        except ValueError:
            _err(errors, f"{p}/vcenter_ca_certificate", "must be one or more PEM certificates")
    if out.get("disk_type") not in DISK_TYPES:
        _err(errors, f"{p}/disk_type", f"must be one of {', '.join(DISK_TYPES)}")
    for key in ("ephemeral_datastores_string", "persistent_datastores_string"):
        if isinstance(out.get(key), str):
            out[key] = ",".join(_csv(out[key]))
    password = data.get("vcenter_password")
    if password is None or password == MASK:
        password = current_password
    elif not isinstance(password, str):
        _err(errors, f"{p}/vcenter_password", "must be a string")
        password = current_password
    if not password:
        _err(errors, f"{p}/vcenter_password", "is required")
    _raise(errors)
    return out, password


def _validate_director_configuration(data: Mapping, current: dict) -> dict:
    errors: dict[str, list[str]] = {}
    p = "director_configuration"
    out = {**DIRECTOR_DEFAULTS, **current}
    for key in sorted(set(data) - set(DIRECTOR_DEFAULTS)):
        _err(errors, f"{p}/{key}", "unknown field")
    for key, value in data.items():
        if key not in DIRECTOR_DEFAULTS:
            continue
        path = f"{p}/{key}"
        if key in ("resurrector_enabled", "post_deploy_enabled"):
            v = _bool(value, path, errors)
        elif key == "minimum_down_jobs":
            v = _int(value, path, errors, lo=1)
        elif key == "percent_threshold":
            v = _int(value, path, errors, lo=0, hi=100)
        elif key == "time_threshold":
            v = _int(value, path, errors, lo=1)
        elif key == "max_threads":
            v = _int(value, path, errors, lo=1, hi=256)
        elif key == "default_vm_strategy":
            v = value if value in VM_STRATEGIES else None
            if v is None:
                _err(errors, path, f"must be one of {', '.join(VM_STRATEGIES)}")
        elif key == "ntp_servers_string":
            servers = _csv(value)
            for s in servers:
                if not re.fullmatch(r"[A-Za-z0-9.\-:]+", s):
                    _err(errors, path, f"'{s}' is not a host name or IP address")
            v = ",".join(servers)
        else:  # director_hostname
            v = str(value or "").strip()
        if v is not None:
            out[key] = v
    _raise(errors)
    return out


def set_director_properties(
    iaas_configuration: Mapping | None = None,
    director_configuration: Mapping | None = None,
    *,
    user: str = "",
    version: int | None = None,
    check: VCenterCheck | None = None,
) -> dict:
    """``PUT /staged/director/properties``: either pane or both; all or nothing.

    ``version``/``user``: a write based on a stale read is 409 (``_write``).
    ``check``: the vCenter settings are checked against vCenter before writing.
    """
    d = get_director()
    errors: dict[str, list[str]] = {}
    iaas = password = dcfg = None
    if iaas_configuration is not None:
        if not isinstance(iaas_configuration, Mapping):
            _err(errors, "iaas_configuration", "must be a map")
        else:
            current, current_pw, _ = _iaas(d)
            try:
                iaas, password = _validate_iaas(iaas_configuration, current, current_pw)
            except ServiceError as exc:
                errors.update(exc.errors)
            else:
                if check is not None:
                    errors.update(check.iaas(iaas, password))
    if director_configuration is not None:
        if not isinstance(director_configuration, Mapping):
            _err(errors, "director_configuration", "must be a map")
        else:
            try:
                dcfg = _validate_director_configuration(
                    director_configuration, d.director_configuration
                )
            except ServiceError as exc:
                errors.update(exc.errors)
    _raise(errors)
    from tiles.services import versions

    with transaction.atomic():
        # Both panes or neither: check both versions before writing either.
        fresh = DirectorConfig.objects.select_for_update().get(pk=d.pk)
        parts = [
            p
            for p, v in (("iaas_configuration", iaas), ("director_configuration", dcfg))
            if v is not None
        ]
        versions.check_fresh(fresh, version, parts)
        if iaas is not None:
            _write(d, {"iaas_configuration": iaas, "vcenter_password": password}, PART_IAAS, user)
        if dcfg is not None:
            _write(d, {"director_configuration": dcfg}, PART_DIRECTOR, user)
    return director_properties()


PART_IAAS = "iaas_configuration"
PART_DIRECTOR = "director_configuration"


def set_iaas_configuration(
    data: Mapping, *, user: str = "", version: int | None = None, check: VCenterCheck | None = None
) -> dict:
    """The vCenter Config pane (see ``IAAS_DEFAULTS`` for the fields)."""
    return set_director_properties(iaas_configuration=data, user=user, version=version, check=check)


def set_director_configuration(
    data: Mapping, *, user: str = "", version: int | None = None
) -> dict:
    """The Director Config pane (see ``DIRECTOR_DEFAULTS`` for the fields)."""
    return set_director_properties(director_configuration=data, user=user, version=version)


# --------------------------------------------------------------------------- AZs


def list_availability_zones() -> list[dict]:
    """``[{"guid", "name", "clusters": [{"cluster", "res_pool", "host_group"}]}]``."""
    return [dict(az) for az in get_director().availability_zones]


def _normalize_az(az: Any, path: str, errors: dict, existing: Mapping[str, dict]) -> dict | None:
    if not isinstance(az, Mapping):
        _err(errors, path, "must be a map with name and clusters")
        return None
    name = az.get("name")
    if not isinstance(name, str) or not name.strip():
        _err(errors, f"{path}/name", "is required")
        return None
    name = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        _err(errors, f"{path}/name", "may only hold letters, digits, '_', '-' and '.'")
    path = f"availability_zones/{name}"
    clusters_in = az.get("clusters")
    if clusters_in is None and az.get("cluster"):  # om's flat vSphere form
        clusters_in = [
            {
                "cluster": az.get("cluster"),
                "res_pool": az.get("resource_pool") or az.get("res_pool"),
                "host_group": az.get("host_group"),
            }
        ]
    if not isinstance(clusters_in, list) or not clusters_in:
        _err(errors, f"{path}/clusters", "at least one cluster is required")
        clusters_in = []
    clusters = []
    for i, c in enumerate(clusters_in):
        cp = f"{path}/clusters/{i}"
        if not isinstance(c, Mapping):
            _err(errors, cp, "must be a map with cluster, res_pool and host_group")
            continue
        cname = c.get("cluster")
        if not isinstance(cname, str) or not cname.strip():
            _err(errors, f"{cp}/cluster", "is required")
            continue
        entry: dict[str, Any] = {
            "cluster": cname.strip(),
            "guid": c.get("guid") or f"cluster-{secrets.token_hex(10)}",
        }
        pool = c.get("res_pool", c.get("resource_pool"))
        if pool not in (None, ""):
            if not isinstance(pool, str):
                _err(errors, f"{cp}/res_pool", "must be a string")
            else:
                entry["res_pool"] = pool.strip()
        hg = c.get("host_group")
        if isinstance(hg, str) and hg.strip():
            hg = {"name": hg.strip(), "drs_rule": "MUST"}
        if isinstance(hg, Mapping) and hg.get("name"):
            rule = str(hg.get("drs_rule") or "SHOULD").upper()
            if rule not in DRS_RULES:
                _err(errors, f"{cp}/host_group/drs_rule", "must be MUST or SHOULD")
            entry["host_group"] = {"name": str(hg["name"]).strip(), "drs_rule": rule}
        elif hg not in (None, "", {}) and not isinstance(hg, Mapping | str):
            _err(errors, f"{cp}/host_group", "must be a map with name and drs_rule")
        clusters.append(entry)
    guid = az.get("guid") or (existing.get(name) or {}).get("guid") or f"az-{secrets.token_hex(10)}"
    return {"guid": guid, "name": name, "clusters": clusters}


def set_availability_zones(
    azs: list, *, user: str = "", version: int | None = None, check: VCenterCheck | None = None
) -> list[dict]:
    """Replace every AZ (``PUT``). An AZ still used by a network or a tile is refused.

    ``check``: clusters and resource pools are checked against vCenter first."""
    d = get_director()
    errors: dict[str, list[str]] = {}
    if not isinstance(azs, list):
        raise ServiceError({"availability_zones": ["must be a list"]})
    existing = {az["name"]: az for az in d.availability_zones}
    out, seen = [], set()
    for i, az in enumerate(azs):
        n = _normalize_az(az, f"availability_zones/{i}", errors, existing)
        if n is None:
            continue
        if n["name"] in seen:
            _err(errors, f"availability_zones/{n['name']}/name", "is defined twice")
        seen.add(n["name"])
        out.append(n)
    if check is not None:
        errors.update(check.availability_zones(out))
    removed = set(existing) - seen
    if removed:
        _check_azs_unused(removed, d, errors)
    _raise(errors)
    _write(d, {"availability_zones": out}, "availability_zones", user, version)
    return out


def _check_azs_unused(removed: set[str], d: DirectorConfig, errors: dict) -> None:
    from .models import StagedProduct

    for net in (d.networks or {}).get("networks", []):
        for i, sn in enumerate(net.get("subnets", [])):
            for az in set(sn.get("availability_zone_names") or []) & removed:
                _err(
                    errors,
                    f"availability_zones/{az}",
                    f"is used by network '{net['name']}' (subnet {i}); remove it there first",
                )
    for sp in StagedProduct.objects.only("guid", "network_and_azs"):
        na = sp.network_and_azs or {}
        used = {na.get("singleton_availability_zone"), *(na.get("other_availability_zones") or [])}
        for az in used & removed:
            _err(errors, f"availability_zones/{az}", f"is assigned to {sp.guid}")


def add_availability_zone(
    az: Mapping, *, user: str = "", version: int | None = None, check: VCenterCheck | None = None
) -> dict:
    """Add one AZ (``POST``); its name must be new."""
    d = get_director()
    errors: dict[str, list[str]] = {}
    existing = {a["name"]: a for a in d.availability_zones}
    n = _normalize_az(az, "availability_zone", errors, {})
    if n is not None and n["name"] in existing:
        _err(errors, "availability_zone/name", f"an availability zone '{n['name']}' exists")
    if n is not None and check is not None:
        errors.update(check.availability_zones([n]))
    _raise(errors)
    _write(
        d, {"availability_zones": [*d.availability_zones, n]}, "availability_zones", user, version
    )
    return n


def update_availability_zone(
    guid: str,
    az: Mapping,
    *,
    user: str = "",
    version: int | None = None,
    check: VCenterCheck | None = None,
) -> dict:
    """Change one AZ by guid (``PUT .../availability_zones/{guid}``); renames are refused."""
    d = get_director()
    current = next((a for a in d.availability_zones if a.get("guid") == guid), None)
    if current is None:
        from opsconsole.errors import NotFound

        raise NotFound({"guid": [f"no availability zone with guid '{guid}'"]})
    if not isinstance(az, Mapping):
        raise ServiceError({"availability_zone": ["must be an object with name and clusters"]})
    errors: dict[str, list[str]] = {}
    n = _normalize_az({**az, "guid": guid}, "availability_zone", errors, {})
    if n is not None and n["name"] != current["name"]:
        _err(errors, "availability_zone/name", "an availability zone cannot be renamed")
    if n is not None and check is not None:
        errors.update(check.availability_zones([n]))
    _raise(errors)
    azs = [n if a.get("guid") == guid else a for a in d.availability_zones]
    _write(d, {"availability_zones": azs}, "availability_zones", user, version)
    return n


# --------------------------------------------------------------------------- networks


def get_networks() -> dict:
    """``{"icmp_checks_enabled", "networks": [{"guid", "name", "service_network", "subnets"}]}``."""
    n = get_director().networks or {}
    return {
        "icmp_checks_enabled": bool(n.get("icmp_checks_enabled", False)),
        "networks": [dict(x) for x in n.get("networks", [])],
    }


def _ip_entries(text: Any, path: str, errors: dict) -> list[tuple[int, int, str]]:
    """Reserved ranges ``a-b,c`` as ``(first, last, text)`` intervals."""
    out = []
    for part in _csv(text):
        try:
            if "-" in part:
                a, b = (ipaddress.ip_address(x.strip()) for x in part.split("-", 1))
                if int(a) > int(b):
                    raise ValueError
                out.append((a, b, f"{a}-{b}"))
            else:
                ip = ipaddress.ip_address(part)
                out.append((ip, ip, str(ip)))
        except ValueError:
            _err(errors, path, f"'{part}' is not an IP address or an 'a-b' range")
    return out


def _normalize_network(
    net: Any, i: int, az_names: set[str], existing: Mapping[str, dict], errors: dict
) -> dict | None:
    path = f"networks/{i}"
    if not isinstance(net, Mapping):
        _err(errors, path, "must be a map with name and subnets")
        return None
    name = net.get("name")
    if not isinstance(name, str) or not name.strip():
        _err(errors, f"{path}/name", "is required")
        return None
    name = name.strip()
    path = f"networks/{name}"
    subnets_in = net.get("subnets")
    if not isinstance(subnets_in, list) or not subnets_in:
        _err(errors, f"{path}/subnets", "at least one subnet is required")
        subnets_in = []
    subnets = []
    for j, sn in enumerate(subnets_in):
        sp = f"{path}/subnets/{j}"
        if not isinstance(sn, Mapping):
            _err(errors, sp, "must be a map")
            continue
        out: dict[str, Any] = {}
        ident = sn.get("iaas_identifier")
        if not isinstance(ident, str) or not ident.strip():
            _err(errors, f"{sp}/iaas_identifier", "is required (the vSphere portgroup name)")
        else:
            out["iaas_identifier"] = ident.strip()
        cidr = None
        try:
            cidr = ipaddress.ip_network(str(sn.get("cidr") or "").strip(), strict=True)
            out["cidr"] = str(cidr)
        except ValueError:
            _err(
                errors,
                f"{sp}/cidr",
                f"'{sn.get('cidr') or ''}' is not a network in CIDR form (e.g. 10.0.0.0/24)",
            )
        try:
            gw = ipaddress.ip_address(str(sn.get("gateway") or "").strip())
            out["gateway"] = str(gw)
            if cidr is not None:
                if gw not in cidr:
                    _err(errors, f"{sp}/gateway", f"{gw} is not inside {cidr}")
                elif cidr.num_addresses > 2 and gw in (
                    cidr.network_address,
                    cidr.broadcast_address,
                ):
                    _err(errors, f"{sp}/gateway", f"{gw} is the network or broadcast address")
        except ValueError:
            _err(errors, f"{sp}/gateway", f"'{sn.get('gateway') or ''}' is not an IP address")
        reserved = _ip_entries(sn.get("reserved_ip_ranges"), f"{sp}/reserved_ip_ranges", errors)
        if cidr is not None:
            for a, b, text in reserved:
                if a not in cidr or b not in cidr:
                    _err(errors, f"{sp}/reserved_ip_ranges", f"{text} is not inside {cidr}")
        out["reserved_ip_ranges"] = ",".join(t for _, _, t in reserved)
        dns = []
        for s in _csv(sn.get("dns")):
            try:
                dns.append(str(ipaddress.ip_address(s)))
            except ValueError:
                _err(errors, f"{sp}/dns", f"'{s}' is not an IP address")
        out["dns"] = ",".join(dns)
        azs = sn.get("availability_zone_names")
        if azs is None:
            azs = []
        if not isinstance(azs, list) or not all(isinstance(a, str) for a in azs):
            _err(errors, f"{sp}/availability_zone_names", "must be a list of AZ names")
            azs = []
        if not azs:
            _err(errors, f"{sp}/availability_zone_names", "at least one availability zone")
        for a in azs:
            if a not in az_names:
                _err(
                    errors,
                    f"{sp}/availability_zone_names",
                    f"'{a}' is not an availability zone of the director",
                )
        out["availability_zone_names"] = list(azs)
        if sn.get("guid"):
            out["guid"] = sn["guid"]
        subnets.append(out)
    guid = net.get("guid") or (existing.get(name) or {}).get("guid")
    return {
        "guid": guid or f"network-{secrets.token_hex(10)}",
        "name": name,
        "service_network": bool(net.get("service_network", False)),
        "subnets": subnets,
    }


def set_networks(
    data: Mapping, *, user: str = "", version: int | None = None, check: VCenterCheck | None = None
) -> dict:
    """``PUT /staged/director/networks``: all networks at once, validated together.

    Checks: names unique, CIDR valid, gateway inside its CIDR (not the network
    or broadcast address), reserved ranges inside, DNS are IPs, AZs exist, and
    no two subnets (of any networks) overlap; with ``check``, the portgroups
    exist in vCenter.
    """
    d = get_director()
    if not isinstance(data, Mapping) or not isinstance(data.get("networks"), list):
        raise ServiceError({"networks": ["must be a list of networks"]})
    errors: dict[str, list[str]] = {}
    az_names = {a["name"] for a in d.availability_zones}
    existing = {n["name"]: n for n in (d.networks or {}).get("networks", [])}
    nets, seen = [], set()
    for i, net in enumerate(data["networks"]):
        n = _normalize_network(net, i, az_names, existing, errors)
        if n is None:
            continue
        if n["name"] in seen:
            _err(errors, f"networks/{n['name']}/name", "is defined twice")
        seen.add(n["name"])
        nets.append(n)
    if check is not None:
        errors.update(check.networks(nets))
    cidrs: list[tuple[ipaddress._BaseNetwork, str]] = []
    for n in nets:
        for j, sn in enumerate(n["subnets"]):
            if "cidr" not in sn:
                continue
            net = ipaddress.ip_network(sn["cidr"])
            where = f"networks/{n['name']}/subnets/{j}"
            for other, other_where in cidrs:
                if net.version == other.version and net.overlaps(other):
                    _err(errors, f"{where}/cidr", f"{net} overlaps {other} ({other_where})")
            cidrs.append((net, where))
    removed = set(existing) - seen
    if removed:
        from .models import StagedProduct

        for sp in StagedProduct.objects.only("guid", "network_and_azs"):
            na = sp.network_and_azs or {}
            for nn in {na.get("network"), na.get("service_network")} & removed:
                _err(errors, f"networks/{nn}", f"is assigned to {sp.guid}")
    icmp = data.get("icmp_checks_enabled", False)
    if not isinstance(icmp, bool):
        _err(errors, "icmp_checks_enabled", "must be true or false")
    _raise(errors)
    value = {"icmp_checks_enabled": bool(icmp), "networks": nets}
    _write(d, {"networks": value}, "networks", user, version)
    return get_networks()


def get_network_and_az() -> dict:
    """``{"network_and_az": {"network": {"name"}, "singleton_availability_zone": {"name"}}}``."""
    na = get_director().network_and_az or {}
    return {
        "network_and_az": {
            "network": {"name": na.get("network")} if na.get("network") else None,
            "singleton_availability_zone": {"name": na.get("singleton_availability_zone")}
            if na.get("singleton_availability_zone")
            else None,
        }
    }


def _name_of(value: Any) -> Any:
    return value.get("name") if isinstance(value, Mapping) else value


def set_network_and_az(data: Mapping, *, user: str = "", version: int | None = None) -> dict:
    """The director's own network and singleton AZ (used for compilation VMs)."""
    d = get_director()
    data = data.get("network_and_az", data) if isinstance(data, Mapping) else data
    if not isinstance(data, Mapping):
        raise ServiceError({"network_and_az": ["must be a map"]})
    errors: dict[str, list[str]] = {}
    net = _name_of(data.get("network"))
    az = _name_of(data.get("singleton_availability_zone"))
    for field, value in (("network", net), ("singleton_availability_zone", az)):
        if value is not None and not isinstance(value, str):
            _err(errors, f"network_and_az/{field}/name", "must be a name (text)")
    _raise(errors)
    nets = {n["name"] for n in (d.networks or {}).get("networks", [])}
    azs = {a["name"] for a in d.availability_zones}
    if not net:
        _err(errors, "network_and_az/network/name", "is required")
    elif net not in nets:
        _err(errors, "network_and_az/network/name", f"'{net}' is not a network of the director")
    if not az:
        _err(errors, "network_and_az/singleton_availability_zone/name", "is required")
    elif az not in azs:
        _err(
            errors,
            "network_and_az/singleton_availability_zone/name",
            f"'{az}' is not an availability zone of the director",
        )
    _raise(errors)
    value = {"network": net, "singleton_availability_zone": az}
    _write(d, {"network_and_az": value}, "network_and_az", user, version)
    return get_network_and_az()


# --------------------------------------------------------------------------- catalogs


def vm_types() -> list[dict]:
    """The VM type catalog: custom types if any were set, else the built-in ones."""
    custom = get_director().vm_types
    if custom:
        return [{**v, "builtin": False} for v in custom]
    return [dict(v) for v in DEFAULT_VM_TYPES]


def set_vm_types(types: list | None, *, user: str = "", version: int | None = None) -> list[dict]:
    """Replace the catalog (``PUT /vm_types``); an empty list or None restores the built-ins."""
    d = get_director()
    if types in (None, []):
        _write(d, {"vm_types": []}, "vm_types", user, version)
        return vm_types()
    if not isinstance(types, list):
        raise ServiceError({"vm_types": ["must be a list"]})
    errors: dict[str, list[str]] = {}
    out, seen = [], set()
    for i, t in enumerate(types):
        p = f"vm_types/{i}"
        if not isinstance(t, Mapping):
            _err(errors, p, "must be a map with name, cpu, ram and ephemeral_disk")
            continue
        name = t.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name or ""):
            _err(errors, f"{p}/name", "is required (letters, digits, '_', '-', '.')")
            continue
        p = f"vm_types/{name}"
        if name in seen:
            _err(errors, f"{p}/name", "is defined twice")
        seen.add(name)
        cpu = _int(t.get("cpu"), f"{p}/cpu", errors, lo=1)
        ram = _int(t.get("ram"), f"{p}/ram", errors, lo=256)
        disk = _int(t.get("ephemeral_disk"), f"{p}/ephemeral_disk", errors, lo=1024)
        out.append({"name": name, "cpu": cpu, "ram": ram, "ephemeral_disk": disk})
    _raise(errors)
    _write(d, {"vm_types": out}, "vm_types", user, version)
    return vm_types()


def disk_types() -> list[dict]:
    """Persistent disk types: ``[{"name": "10240", "size_mb": 10240}]``."""
    return [{"name": str(s), "size_mb": s} for s in DISK_TYPE_SIZES_MB]


# --------------------------------------------------------------------------- rendering


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


def compilation_vm_type(d: DirectorConfig | None = None, types: list[dict] | None = None) -> str:
    """The compilation workers' VM type: the ``compilation`` job's Resource Config when it
    names one, else Automatic (``AUTOMATIC_COMPILATION_VM_TYPES``)."""
    d = d or get_director()
    names = [t["name"] for t in (vm_types() if types is None else types)]
    chosen = ((d.resource_config or {}).get("compilation") or {}).get("instance_type")
    if chosen and chosen != "automatic":
        return chosen
    return next((n for n in AUTOMATIC_COMPILATION_VM_TYPES if n in names), names[-1])


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


# --------------------------------------------------------------------------- test connection


def test_vcenter_connection(iaas: Mapping | None = None) -> dict:
    """Log in to the vCenter of ``iaas`` (else the saved/pre-filled one) and list its inventory.

    Returns ``{"datacenters", "clusters", "datastores", "portgroups",
    "resource_pools"}`` of the configured datacenter (the first one when it
    is not set), each a sorted list of names (resource pools as
    ``cluster/pool``). A wrong password, an unreachable host, an untrusted
    certificate or an unknown datacenter raise ``ServiceError`` naming the
    field; a vCenter that does not answer raises its subclass
    ``vcenter_checks.VCenterUnreachable``. The names are read in two round
    trips (``cpi.vsphere.catalog``).
    """
    from pyVmomi import vmodl

    from cpi.base import CloudError
    from cpi.vsphere.catalog import datacenter_names
    from cpi.vsphere.client import VCenterUnreachable, VSphereClient
    from cpi.vsphere.config import ConfigError, VCenterConfig, split_host
    from tiles import vcenter_checks

    d = get_director()
    current, current_pw, _ = _iaas(d)
    data = {**current, **{k: v for k, v in (iaas or {}).items() if v is not None}}
    password = data.get("vcenter_password")
    if password in (None, "", MASK):
        password = current_pw
    p = "iaas_configuration"
    errors: dict[str, list[str]] = {}
    if not data.get("vcenter_host"):
        _err(errors, f"{p}/vcenter_host", "is required")
    if not data.get("vcenter_username"):
        _err(errors, f"{p}/vcenter_username", "is required")
    if not password:
        _err(errors, f"{p}/vcenter_password", "is required")
    _raise(errors)
    try:
        host, port = split_host(str(data["vcenter_host"]).strip(), f"{p}/vcenter_host")
    except ConfigError as exc:
        raise ServiceError({f"{p}/vcenter_host": [str(exc).split(": ", 1)[-1]]}) from None
    insecure = data.get("ssl_verification_enabled", True) in (False, "false")
    ca = (data.get("vcenter_ca_certificate") or "").strip() or None
    config = VCenterConfig(
        host=host,
        port=port,
        user=str(data["vcenter_username"]),
        password=str(password),
        ca_cert=None if insecure else ca,
        insecure=insecure,
        connect_timeout=5.0,
        http_timeout=30.0,
    )
    client = VSphereClient(config, keepalive_seconds=0)
    try:
        try:
            names = datacenter_names(client, data.get("datacenter") or None)
        except VCenterUnreachable as exc:
            raise vcenter_checks.VCenterUnreachable(
                {f"{p}/vcenter_host": [str(exc)]}, address=config.address
            ) from None
        except CloudError as exc:
            msg = str(exc)
            field = "vcenter_password" if "user name or password" in msg else "vcenter_host"
            if "certificate" in msg:
                field = "vcenter_ca_certificate"
            raise ServiceError({f"{p}/{field}": [msg]}) from None
        except vmodl.MethodFault as exc:
            raise ServiceError({f"{p}/vcenter_host": [exc.msg or type(exc).__name__]}) from None
        except OSError as exc:  # the connection broke after the login
            raise vcenter_checks.VCenterUnreachable(
                {f"{p}/vcenter_host": [f"vCenter {config.address} stopped answering: {exc}"]},
                address=config.address,
            ) from None
        if names.datacenter is None:
            raise ServiceError(
                {
                    f"{p}/datacenter": [
                        f"vCenter {config.address} has no datacenter '{data.get('datacenter') or ''}' "
                        f"(it has: {', '.join(names.datacenters) or 'none'})"
                    ]
                }
            )
        return {
            "datacenters": list(names.datacenters),
            "datacenter": names.datacenter,
            "clusters": list(names.clusters),
            "datastores": list(names.datastores),
            "portgroups": list(names.portgroups),
            "resource_pools": list(names.resource_pools),
        }
    finally:
        client.close()


# --------------------------------------------------------------------------- snapshots


def director_state(d: DirectorConfig | None = None) -> dict:
    """Everything the tile holds (with the password), for the deployed snapshot."""
    d = d or get_director()
    return {
        "iaas_configuration": d.iaas_configuration,
        "vcenter_password": d.vcenter_password,
        "director_configuration": d.director_configuration,
        "availability_zones": d.availability_zones,
        "networks": d.networks,
        "network_and_az": d.network_and_az,
        "vm_types": d.vm_types,
        "resource_config": d.resource_config,
        "security_configuration": d.security_configuration,
        "syslog_configuration": d.syslog_configuration,
    }


def restore_director_state(state: Mapping) -> None:
    """Put a snapshot taken by ``director_state`` back (Revert)."""
    d = get_director()
    for key, value in state.items():
        setattr(d, key, json.loads(json.dumps(value)))
    d.save()
