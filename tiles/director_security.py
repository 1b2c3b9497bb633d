"""The Director tile's Security and Syslog panes (Ops Manager's ``security_configuration``
and ``syslog_configuration`` of ``/api/v0/staged/director/properties``).

Security: ``trusted_certificates`` (a PEM bundle every VM trusts),
``generate_vm_passwords`` (each VM its own random password; Ops Manager's
default), ``opsmanager_root_ca_trusted_certs`` (add the console's root CA to
the bundle). Syslog: forward the director's logs to ``address``:``port``
over ``transport_protocol`` udp or tcp, debug records too with
``forward_debug_logs``. Both take effect at the next Apply Changes
(``director.vm_security``, ``director.syslog``).

Nothing is accepted and dropped: a setting this console cannot honour yet
is refused (422) naming the field and why (``clear_default_trusted_certificates_store``,
``tls_enabled`` and what only TLS uses, ``queue_size``,
``custom_rsyslog_configuration``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cryptography import x509

from opsconsole.errors import ServiceError
from tiles import director_tile
from tiles.models import DirectorConfig
from tiles.services.common import root_ca

__all__ = [
    "SECURITY",
    "SYSLOG",
    "SECURITY_DEFAULTS",
    "SYSLOG_DEFAULTS",
    "security_configuration",
    "syslog_configuration",
    "validate_security",
    "validate_syslog",
    "director_vm_security",
    "director_syslog",
]

SECURITY = "security_configuration"
SYSLOG = "syslog_configuration"

SECURITY_DEFAULTS: dict[str, Any] = {
    "trusted_certificates": "",
    "generate_vm_passwords": True,
    "opsmanager_root_ca_trusted_certs": False,
    "clear_default_trusted_certificates_store": False,
}
SYSLOG_DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "address": "",
    "port": None,
    "transport_protocol": "udp",
    "tls_enabled": False,
    "permitted_peer": "",
    "ssl_ca_certificate": "",
    "queue_size": None,
    "forward_debug_logs": False,
    "custom_rsyslog_configuration": "",
}
MAX_TRUSTED_BYTES = 1024 * 1024
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]+\]?")

#: Fields whose only honest answer today is no: why, per field.
_SECURITY_NOT_YET = {
    "clear_default_trusted_certificates_store": (
        "cannot take effect yet: this console's VM agents do not manage the stemcell's "
        "default trust store; leave it false"
    ),
}
_SYSLOG_NOT_YET = {
    "tls_enabled": (
        "cannot take effect yet: the director forwards its logs with Python's SysLogHandler, "
        "which has no TLS; use udp or tcp without TLS, or leave syslog off"
    ),
    "permitted_peer": "is only used with TLS, which cannot take effect yet",
    "ssl_ca_certificate": "is only used with TLS, which cannot take effect yet",
    "queue_size": (
        "cannot take effect: the director forwards each record as it is logged, with no "
        "rsyslog queue; leave it empty"
    ),
    "custom_rsyslog_configuration": (
        "cannot take effect: the director runs no rsyslog; leave it empty"
    ),
}


def _err(errors: dict[str, list[str]], key: str, message: str) -> None:
    errors.setdefault(key, []).append(message)


def _bool(value: Any, path: str, errors: dict) -> bool | None:
    if isinstance(value, bool):
        return value
    _err(errors, path, "must be true or false")
    return None


def security_configuration(d: DirectorConfig) -> dict[str, Any]:
    return {**SECURITY_DEFAULTS, **(d.security_configuration or {})}


def syslog_configuration(d: DirectorConfig) -> dict[str, Any]:
    return {**SYSLOG_DEFAULTS, **(d.syslog_configuration or {})}


def _certificates(text: str, path: str, errors: dict) -> str:
    text = text.strip()
    if not text:
        return ""
    if len(text.encode()) > MAX_TRUSTED_BYTES:
        _err(errors, path, f"is larger than {MAX_TRUSTED_BYTES} bytes")
        return ""
    blocks = _PEM.findall(text)
    rest = _PEM.sub("", text).strip()
    if not blocks or rest:
        _err(errors, path, "must be PEM certificates (-----BEGIN CERTIFICATE----- blocks) only")
        return ""
    for i, block in enumerate(blocks, 1):
        try:
            x509.load_pem_x509_certificate(block.encode())
        except ValueError as exc:
            _err(errors, path, f"certificate {i} of {len(blocks)} cannot be read: {exc}")
    return "\n".join(blocks) + "\n"


def validate_security(data: Any, current: Mapping[str, Any]) -> dict[str, Any]:
    """The Security pane after ``data`` (a partial update); ServiceError (422) naming fields."""
    errors: dict[str, list[str]] = {}
    if not isinstance(data, Mapping):
        raise ServiceError({SECURITY: ["must be a map"]})
    out = {**SECURITY_DEFAULTS, **current}
    for key in sorted(set(data) - set(SECURITY_DEFAULTS)):
        _err(errors, f"{SECURITY}/{key}", "unknown field")
    for key, value in data.items():
        path = f"{SECURITY}/{key}"
        if key == "trusted_certificates":
            if value is not None and not isinstance(value, str):
                _err(errors, path, "must be a string of PEM certificates")
                continue
            out[key] = _certificates(value or "", path, errors)
        elif key in SECURITY_DEFAULTS:
            v = _bool(value, path, errors)
            if v is None:
                continue
            if v and key in _SECURITY_NOT_YET:
                _err(errors, path, _SECURITY_NOT_YET[key])
                continue
            out[key] = v
    if errors:
        raise ServiceError(errors)
    return out


def validate_syslog(data: Any, current: Mapping[str, Any]) -> dict[str, Any]:
    """The Syslog pane after ``data`` (a partial update); ServiceError (422) naming fields."""
    errors: dict[str, list[str]] = {}
    if not isinstance(data, Mapping):
        raise ServiceError({SYSLOG: ["must be a map"]})
    out = {**SYSLOG_DEFAULTS, **current}
    for key in sorted(set(data) - set(SYSLOG_DEFAULTS)):
        _err(errors, f"{SYSLOG}/{key}", "unknown field")
    for key, value in data.items():
        path = f"{SYSLOG}/{key}"
        if key not in SYSLOG_DEFAULTS:
            continue
        if key in _SYSLOG_NOT_YET:
            if value in (None, "", False, SYSLOG_DEFAULTS[key]):
                out[key] = SYSLOG_DEFAULTS[key]
            else:
                _err(errors, path, _SYSLOG_NOT_YET[key])
            continue
        if key in ("enabled", "forward_debug_logs"):
            v = _bool(value, path, errors)
            if v is not None:
                out[key] = v
        elif key == "address":
            text = str(value or "").strip()
            if text and not _HOST.fullmatch(text):
                _err(errors, path, f"'{text}' is not a host name or IP address")
                continue
            out[key] = text
        elif key == "port":
            if value in (None, ""):
                out[key] = None
                continue
            try:
                port = int(value)
            except (TypeError, ValueError):
                port = 0
            if isinstance(value, bool) or not 0 < port < 65536:
                _err(errors, path, "must be a port number from 1 to 65535")
                continue
            out[key] = port
        elif key == "transport_protocol":
            if value not in ("udp", "tcp"):
                _err(errors, path, "must be udp or tcp")
                continue
            out[key] = value
    if not errors and out["enabled"]:
        if not out["address"]:
            _err(errors, f"{SYSLOG}/address", "is required when syslog is enabled")
        if not out["port"]:
            _err(errors, f"{SYSLOG}/port", "is required when syslog is enabled")
    if errors:
        raise ServiceError(errors)
    return out


def director_vm_security(d: DirectorConfig) -> dict[str, Any]:
    """What Apply Changes gives the director (``director.vm_security.set_vm_security``)."""
    sec = security_configuration(d)
    certs = sec["trusted_certificates"] or ""
    if sec["opsmanager_root_ca_trusted_certs"]:
        certs += root_ca()[0].strip() + "\n"
    return {"trusted_certs": certs, "generate_vm_passwords": bool(sec["generate_vm_passwords"])}


def director_syslog(d: DirectorConfig) -> dict[str, Any]:
    """What Apply Changes gives the director (``director.syslog.set_syslog``)."""
    cfg = syslog_configuration(d)
    return {
        "enabled": bool(cfg["enabled"]),
        "address": cfg["address"],
        "port": cfg["port"] or 514,
        "transport_protocol": cfg["transport_protocol"],
        "forward_debug_logs": bool(cfg["forward_debug_logs"]),
    }


def set_security_and_syslog(
    security: Any = None,
    syslog: Any = None,
    *,
    user: str = "",
    version: int | None = None,
) -> None:
    """Save either pane or both, validated first (all or nothing per request); a write based
    on a stale read is 409 (``director_tile._write``)."""
    d = director_tile.get_director()
    errors: dict[str, list[str]] = {}
    new_security = new_syslog = None
    if security is not None:
        try:
            new_security = validate_security(security, d.security_configuration or {})
        except ServiceError as exc:
            errors.update(exc.errors)
    if syslog is not None:
        try:
            new_syslog = validate_syslog(syslog, d.syslog_configuration or {})
        except ServiceError as exc:
            errors.update(exc.errors)
    if errors:
        raise ServiceError(errors)
    if new_security is not None:
        director_tile._write(d, {SECURITY: new_security}, SECURITY, user, version)
    if new_syslog is not None:
        director_tile._write(d, {SYSLOG: new_syslog}, SYSLOG, user, version)
