"""The vCenter Config pane (``iaas_configuration``) and its "Test connection".

Host, user, password, CA certificate, datacenter, datastores and the BOSH
folders. The password is stored encrypted (``DirectorConfig.vcenter_password``)
and read back as ``***``; a ``***`` sent back keeps the stored one. Until a
vCenter is saved, the local vcsim that ``make run`` started pre-fills the
pane (``director.cloud.local_vcsim``).

"Test connection" logs in through the director (``director.vcenter``), which
names the argument at fault; here that becomes the pane's field
(``iaas_configuration/vcenter_password``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from cryptography import x509

from director import vcenter
from director.cloud import local_vcsim
from opsconsole.errors import ServiceError
from opsconsole.redaction import register_secret
from tiles.models import DirectorConfig

from .common import MASK, _bool, _csv, _err, _raise, get_director

PART_IAAS = "iaas_configuration"

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

DISK_TYPES = ("thin", "preallocated", "eagerZeroedThick")


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


#: The director's names for a login's arguments (``director.vcenter``) -> this pane's fields.
_PANE_FIELDS = {
    "host": "vcenter_host",
    "user": "vcenter_username",
    "password": "vcenter_password",
    "ca_cert": "vcenter_ca_certificate",
    "datacenter": "datacenter",
}


def test_vcenter_connection(iaas: Mapping | None = None) -> dict:
    """Log in to the vCenter of ``iaas`` (else the saved/pre-filled one) and list its inventory.

    Returns ``{"datacenters", "clusters", "datastores", "portgroups",
    "resource_pools"}`` of the configured datacenter (the first one when it
    is not set), each a sorted list of names (resource pools as
    ``cluster/pool``). A wrong password, an unreachable host, an untrusted
    certificate or an unknown datacenter raise ``ServiceError`` naming the
    field; a vCenter that does not answer raises its subclass
    ``director.vcenter.VCenterUnreachable``. The director logs in and reads
    the names (``director.vcenter.vcenter_inventory``).
    """
    d = get_director()
    current, current_pw, _ = _iaas(d)
    data = {**current, **{k: v for k, v in (iaas or {}).items() if v is not None}}
    password = data.get("vcenter_password")
    if password in (None, "", MASK):
        password = current_pw
    p = PART_IAAS
    errors: dict[str, list[str]] = {}
    if not data.get("vcenter_host"):
        _err(errors, f"{p}/vcenter_host", "is required")
    if not data.get("vcenter_username"):
        _err(errors, f"{p}/vcenter_username", "is required")
    if not password:
        _err(errors, f"{p}/vcenter_password", "is required")
    _raise(errors)
    insecure = data.get("ssl_verification_enabled", True) in (False, "false")
    try:
        return vcenter.vcenter_inventory(
            host=str(data["vcenter_host"]),
            user=str(data["vcenter_username"]),
            password=str(password),
            ca_cert=(data.get("vcenter_ca_certificate") or "").strip() or None,
            insecure=insecure,
            datacenter=data.get("datacenter") or None,
        )
    except ServiceError as exc:
        # The same error (an unreachable vCenter stays VCenterUnreachable), keyed by field.
        exc.errors = {f"{p}/{_PANE_FIELDS.get(k, k)}": v for k, v in exc.errors.items()}
        raise
