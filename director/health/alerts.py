"""Alerts: open, refresh, resolve, and email them (BOSH HM's alert events and email plugin).

``raise_alert(key, ...)`` opens the alert of a condition, or refreshes its
``last_seen_at`` while it holds (at most one open alert per key, enforced by
the database, so two scans at once make one alert). ``resolve(keys)``
closes them when the condition ends.

**Email** (BOSH HM's ``email`` plugin; Ops Manager's "Enable email alerts"
of the Director tile): when the director attribute ``hm_email`` holds
``{"enabled": true, "recipients": [...], "from": ..., "host": ..., "port":
..., "username": ..., "tls": bool}``, each scan sends one email listing the
alerts opened since the last email, through Django's email backend (SMTP
with these settings in production, ``locmem`` in tests).
``set_email_settings`` validates and stores them; the Director tile's Email
Alerts pane and its API (``tiles.director_tile.hm_email``) call it. The
SMTP password is the attribute's ``secret`` (an encrypted column: key
rotation re-encrypts it, an installation export carries it as every other
secret); only the mailer reads it (``email_password``), nothing shows it.
A failed send is logged and retried with the next scan's alerts.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.utils import timezone

from director.models import Alert, DirectorAttribute

log = logging.getLogger(__name__)

EMAIL_ATTRIBUTE = "hm_email"
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


def raise_alert(key: str, *, now: datetime | None = None, **fields: Any) -> tuple[Alert, bool]:
    """Open the alert ``key``, or refresh the open one; ``(alert, created)``."""
    now = now or timezone.now()
    open_alert = Alert.objects.filter(key=key, resolved_at__isnull=True).first()
    if open_alert is not None:
        updates = {"last_seen_at": now}
        for name in ("title", "summary", "cause", "vm_cid"):
            if name in fields and getattr(open_alert, name) != fields[name]:
                updates[name] = fields[name]
        Alert.objects.filter(id=open_alert.id).update(**updates)
        for name, value in updates.items():
            setattr(open_alert, name, value)
        return open_alert, False
    try:
        with transaction.atomic():
            alert = Alert.objects.create(key=key, created_at=now, last_seen_at=now, **fields)
        return alert, True
    except IntegrityError:  # another scan opened it a moment ago
        return Alert.objects.get(key=key, resolved_at__isnull=True), False


def resolve(keys: Iterable[str], now: datetime | None = None) -> int:
    keys = list(keys)
    if not keys:
        return 0
    return Alert.objects.filter(key__in=keys, resolved_at__isnull=True).update(
        resolved_at=now or timezone.now()
    )


def resolve_deployment(name: str, now: datetime) -> int:
    """Close every alert of a healthy deployment."""
    return Alert.objects.filter(deployment=name, resolved_at__isnull=True).update(resolved_at=now)


def resolve_resurrector_alerts(name: str, now: datetime) -> int:
    """Close the resurrector's alerts (meltdown, disabled) of a deployment it has nothing to do for."""
    return Alert.objects.filter(
        deployment=name,
        resolved_at__isnull=True,
        cause__in=("meltdown", "resurrection_disabled"),
    ).update(resolved_at=now)


def resolve_gone_deployments(existing: set[str], now: datetime) -> int:
    """Alerts of deployments that no longer exist are over."""
    return (
        Alert.objects.filter(resolved_at__isnull=True)
        .exclude(deployment="")
        .exclude(deployment__in=existing)
        .update(resolved_at=now)
    )


# --------------------------------------------------------------------------- email


class EmailSettingsError(ValueError):
    """Bad HM email settings; ``errors`` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def set_email_settings(values: Mapping[str, Any]) -> dict:
    """Validate and store the HM email settings (the password as the attribute's secret).

    Returns them without the password.
    """
    errors: dict[str, list[str]] = {}
    enabled = values.get("enabled", True)
    if not isinstance(enabled, bool):
        errors.setdefault("enabled", []).append("must be true or false")
    recipients = values.get("recipients")
    if isinstance(recipients, str):
        recipients = [r.strip() for r in recipients.split(",") if r.strip()]
    if not isinstance(recipients, list) or not recipients:
        errors.setdefault("recipients", []).append("must list at least one address")
        recipients = []
    for r in recipients:
        if not isinstance(r, str) or not _EMAIL_RE.match(r):
            errors.setdefault("recipients", []).append(f"'{r}' is not an email address")
    sender = values.get("from")
    if not isinstance(sender, str) or not _EMAIL_RE.match(sender):
        errors.setdefault("from", []).append("must be an email address")
    host = values.get("host", "")
    if not isinstance(host, str):
        errors.setdefault("host", []).append("must be a host name")
    port = values.get("port", 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        errors.setdefault("port", []).append("must be a port number (1-65535)")
    tls = values.get("tls", False)
    if not isinstance(tls, bool):
        errors.setdefault("tls", []).append("must be true or false")
    username = values.get("username", "")
    password = values.get("password", "")
    if not isinstance(username, str):
        errors.setdefault("username", []).append("must be a string")
    if not isinstance(password, str):
        errors.setdefault("password", []).append("must be a string")
    if errors:
        raise EmailSettingsError(errors)
    stored = {
        "enabled": enabled,
        "recipients": recipients,
        "from": sender,
        "host": host,
        "port": port,
        "tls": tls,
        "username": username,
    }
    DirectorAttribute.set(EMAIL_ATTRIBUTE, json.dumps(stored), secret=password)
    return stored


def email_password() -> str:
    """The SMTP password in clear, for the mailer ("" when none is stored).

    Raises ``opsconsole.crypto.DecryptionError`` when the key cannot open it.
    """
    return DirectorAttribute.get_secret(EMAIL_ATTRIBUTE)


def email_password_stored() -> bool:
    return DirectorAttribute.has_secret(EMAIL_ATTRIBUTE)


def email_settings() -> dict | None:
    """The stored settings (never the password), or None when email is off."""
    raw = DirectorAttribute.get(EMAIL_ATTRIBUTE)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or not data.get("enabled") or not data.get("recipients"):
        return None
    return data


def send_new_alerts() -> int:
    """Email the alerts opened since the last email (one message); how many were sent."""
    cfg = email_settings()
    if cfg is None:
        return 0
    pending = list(Alert.objects.filter(emailed_at__isnull=True).order_by("id")[:200])
    if not pending:
        return 0
    subject = (
        f"[opsconsole HM] {pending[0].title}"
        if len(pending) == 1
        else f"[opsconsole HM] {len(pending)} alerts"
    )
    body = "\n\n".join(
        f"{a.title}\n"
        f"  severity: {a.get_severity_display()} ({a.severity}), category: {a.category}\n"
        f"  deployment: {a.deployment or '-'}, instance: {a.instance or '-'}\n"
        f"  source: {a.source}, at: {a.created_at.isoformat()}\n"
        f"  {a.summary}"
        for a in pending
    )
    try:
        connection = get_connection(
            host=cfg.get("host") or None,
            port=cfg.get("port") or None,
            username=cfg.get("username") or None,
            password=email_password() or None,
            use_tls=bool(cfg.get("tls")),
            timeout=10,
        )
        EmailMessage(
            subject, body, cfg["from"], list(cfg["recipients"]), connection=connection
        ).send()
    except Exception as exc:
        log.warning("health monitor: could not email %d alert(s): %s", len(pending), exc)
        return 0
    Alert.objects.filter(id__in=[a.id for a in pending]).update(emailed_at=timezone.now())
    return len(pending)
