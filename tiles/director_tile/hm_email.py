"""The Director tile's Email Alerts pane: the health monitor's email settings.

Ops Manager keeps them in Director Config as ``hm_emailer_options``
(``enabled``, ``host``, ``port``, ``from``, ``recipients``, ``smtp_user``,
``smtp_password``, ``tls``); the fields here carry those names. They are
the director's (``director.health.alerts.set_email_settings``: BOSH HM's
email plugin): a save takes effect at once, with no Apply Changes, as the
health monitor reads them at each scan; they are not part of the tile's
deployed snapshot or Revert.

The SMTP password is stored encrypted by the director (the attribute's
secret) and never read back: ``hm_email_settings`` says only whether one is
stored. A save with no
password (or ``***``) keeps the stored one; a save without ``smtp_user``
drops it (no login, no password). Email off with neither recipients nor a
sender clears the settings. Errors name the field (``from``, ``port``...);
a save based on a stale read is 409 naming who saved the pane since.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from director.health import alerts
from director.models import DirectorAttribute
from opsconsole.crypto import DecryptionError
from opsconsole.errors import ServiceError
from tiles.models import DirectorConfig

from .common import MASK, _bool, _err, _raise, get_director

__all__ = ["PART_HM_EMAIL", "HM_EMAIL_DEFAULTS", "hm_email_settings", "set_hm_email_settings"]

#: The pane's part (its version, ``tiles.services.versions``).
PART_HM_EMAIL = "hm_emailer_options"
HM_EMAIL_DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "host": "",
    "port": 25,
    "from": "",
    "recipients": [],
    "smtp_user": "",
    "tls": False,
}
#: The director's names for the fields whose names differ.
_DIRECTOR_NAMES = {"smtp_user": "username", "smtp_password": "password"}
_FIELDS = (*HM_EMAIL_DEFAULTS, "smtp_password")


def _stored() -> dict[str, Any]:
    raw = DirectorAttribute.get(alerts.EMAIL_ATTRIBUTE) or ""
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


def hm_email_settings() -> dict[str, Any]:
    """The saved settings in the pane's names, and ``password_stored`` (never the password)."""
    data = _stored()
    out = dict(HM_EMAIL_DEFAULTS)
    for name in HM_EMAIL_DEFAULTS:
        key = _DIRECTOR_NAMES.get(name, name)
        if key in data:
            out[name] = data[key]
    out["password_stored"] = alerts.email_password_stored()
    return out


def _recipients(value: Any, errors: dict) -> list[str]:
    if value is None:
        return []
    if isinstance(value, Mapping):  # Ops Manager's ``{"value": "a@x, b@y"}``
        value = value.get("value")
    if isinstance(value, str):
        return [r.strip() for r in value.replace("\n", ",").split(",") if r.strip()]
    if isinstance(value, list):
        return value
    _err(errors, "recipients", "must be a list of email addresses")
    return []


def _port(value: Any, errors: dict) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 25
        if not text.isdigit():
            _err(errors, "port", "must be a port number (1-65535)")
            return None
        return int(text)
    return 25 if value is None else value


def set_hm_email_settings(
    values: Mapping[str, Any], *, user: str = "", version: int | None = None
) -> dict[str, Any]:
    """Validate and save the pane (see the module docstring); returns ``hm_email_settings()``."""
    errors: dict[str, list[str]] = {}
    for key in sorted(set(values) - set(_FIELDS) - {"domain"}):
        _err(errors, key, "unknown field")
    if values.get("domain"):
        _err(
            errors,
            "domain",
            "cannot take effect: the SMTP greeting names this host; leave it empty",
        )
    enabled = _bool(values.get("enabled", False), "enabled", errors)
    tls = _bool(values.get("tls", False), "tls", errors)
    recipients = _recipients(values.get("recipients"), errors)
    port = _port(values.get("port"), errors)
    sender = str(values.get("from") or "").strip()
    host = values.get("host") or ""
    username = values.get("smtp_user") or ""
    password = values.get("smtp_password")
    if password is not None and not isinstance(password, str):
        _err(errors, "smtp_password", "must be a string")
    _raise(errors)
    if password in (None, "", MASK) and username and alerts.email_password_stored():
        try:
            password = alerts.email_password()
        except DecryptionError:
            # Written under a key this console no longer has (not a rotation: that re-encrypts it).
            raise ServiceError(
                {"smtp_password": ["the stored password cannot be read any more: enter it again"]}
            ) from None
    elif password in (None, MASK):
        password = ""
    if not username:
        password = ""
    # cycle: tiles.services (its package __init__) re-exports this package
    from tiles.services import versions

    before = hm_email_settings()
    with transaction.atomic():
        fresh = DirectorConfig.objects.select_for_update().get(pk=get_director().pk)
        versions.check_fresh(fresh, version, [PART_HM_EMAIL])
        if not enabled and not recipients and not sender:
            DirectorAttribute.set(alerts.EMAIL_ATTRIBUTE, "")
        else:
            try:
                alerts.set_email_settings(
                    {
                        "enabled": enabled,
                        "recipients": recipients,
                        "from": sender,
                        "host": host,
                        "port": port,
                        "tls": tls,
                        "username": username,
                        "password": password,
                    }
                )
            except alerts.EmailSettingsError as exc:
                names = {v: k for k, v in _DIRECTOR_NAMES.items()}
                raise ServiceError({names.get(k, k): v for k, v in exc.errors.items()}) from None
        after = hm_email_settings()
        new_password = values.get("smtp_password") not in (None, "", MASK)
        if after != before or new_password:
            versions.record_edits(fresh, [PART_HM_EMAIL], user)
            fresh.save(update_fields=["revision", "edits", "updated_at"])
    return after
