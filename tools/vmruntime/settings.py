"""Agent settings as the vSphere CPI writes them, and the agent's precedence rules.

The CPI puts the settings JSON, base64-encoded, in the VM's ``extraConfig``
under ``guestinfo.userdata`` (``guestinfo.userdata.encoding = base64``), and
the same bytes in ``env.iso`` (``cpi.vsphere.agent_env``); the runtime reads
guestinfo (optionally gzipped, as the agent's VsphereGuestInfo source allows).

Precedence (bosh-agent.md §3.2): mbus URL ``update_settings.mbus.urls`` ▸
``env.bosh.mbus.urls`` ▸ ``mbus``; mbus certificate
``update_settings.mbus.cert`` (when it has a CA) ▸ ``env.bosh.mbus.cert``;
blobstore ``update_settings.blobstores[0]`` ▸ ``env.bosh.blobstores[0]`` ▸
``blobstore``.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
from collections.abc import Iterable, Mapping
from typing import Any

USERDATA_KEY = "guestinfo.userdata"


def decode_userdata(value: str | None) -> dict | None:
    if not value:
        return None
    try:
        raw = base64.b64decode(value, validate=False)
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        data = json.loads(raw)
    except (binascii.Error, ValueError, OSError):
        return None
    return data if isinstance(data, dict) and data.get("agent_id") else None


def settings_from_extra_config(options: Iterable[Any] | None) -> dict | None:
    for opt in options or []:
        if getattr(opt, "key", None) == USERDATA_KEY:
            return decode_userdata(getattr(opt, "value", None))
    return None


def _bosh_env(settings: Mapping) -> Mapping:
    env = settings.get("env") or {}
    return (env.get("bosh") or {}) if isinstance(env, Mapping) else {}


def mbus_url(settings: Mapping, update: Mapping | None = None) -> str:
    for source in ((update or {}).get("mbus") or {}, _bosh_env(settings).get("mbus") or {}):
        urls = source.get("urls") if isinstance(source, Mapping) else None
        if urls:
            return urls[0]
    return str(settings.get("mbus") or "")


def mbus_cert(settings: Mapping, update: Mapping | None = None) -> dict:
    cert = ((update or {}).get("mbus") or {}).get("cert") or {}
    if cert.get("ca"):
        return dict(cert)
    return dict((_bosh_env(settings).get("mbus") or {}).get("cert") or {})


def blobstore(settings: Mapping, update: Mapping | None = None) -> dict:
    for source in ((update or {}).get("blobstores"), _bosh_env(settings).get("blobstores")):
        if source:
            return dict(source[0])
    return dict(settings.get("blobstore") or {})
