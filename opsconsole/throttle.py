"""Throttling failed logins, by user name and by client address.

The login page and ``POST /api/v0/auth/token`` both log in through
``authenticate`` here. A wrong password costs about a second of CPU (the
password hasher), so a locked user name or address is refused before any
password is checked. Each failure counts against the user name (whether
or not such a user exists, so a lockout tells nothing about which names
are real) and against the client address; ``LOGIN_FAILURES_PER_USER`` or
``LOGIN_FAILURES_PER_ADDRESS`` failures within ``LOGIN_FAILURE_WINDOW``
seconds lock that name or address for ``LOGIN_LOCKOUT_PERIOD`` seconds,
as UAA locks an account. Every lockout is an audit event: ``locked_out``
is sent with the event's ``object_type``, ``object_name`` and ``context``,
and the console app (``console.apps``) records it in the director's event
store; the throttle, at the bottom, knows no app.

The counts live in the database (``LoginThrottle``), not in a worker's
memory: the web server runs several processes, and each must see the same
count. A successful login clears its user name's count, never the
address's (else an attacker with one account could keep its address
unlocked).

The client address is ``REMOTE_ADDR``: the console is served directly, not
behind a proxy that would put every caller on one address.
"""

from __future__ import annotations

import datetime
import math

from django.conf import settings
from django.contrib.auth import authenticate as django_authenticate
from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from .models import LoginThrottle

#: Longest user name or address kept as a key; a longer user name cannot exist anyway.
KEY_LENGTH = 255

#: Sent once per lockout, inside the failing login's request, with ``object_type``
#: (``user`` or ``client-address``), ``object_name`` (the locked key) and ``context``
#: (why, who, from where, until when): what the audit event about it holds.
locked_out = Signal()


class LockedOut(Exception):
    """A login refused because its user name or client address is locked; says for how long."""

    def __init__(self, scope: str, until: datetime.datetime, now: datetime.datetime):
        self.scope = scope
        self.until = until
        #: whole seconds to wait (the ``Retry-After`` value)
        self.retry_after = max(1, math.ceil((until - now).total_seconds()))
        who = "this user name" if scope == LoginThrottle.USER else "your address"
        self.message = (
            f"Too many failed logins for {who}: locked for {_duration(self.retry_after)}. "
            f"Try again after {until.strftime('%H:%M:%S')} UTC."
        )
        super().__init__(self.message)


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


def client_address(request) -> str:
    return (request.META.get("REMOTE_ADDR") or "unknown")[:KEY_LENGTH]


def _user_key(username: str) -> str:
    # Case-folded: spelling a name differently must not buy more guesses.
    return username.casefold()[:KEY_LENGTH]


def check_not_locked(username: str, address: str, now: datetime.datetime | None = None) -> None:
    """Raise ``LockedOut`` if the user name or the address is locked now."""
    now = now or timezone.now()
    locks = LoginThrottle.objects.filter(
        Q(scope=LoginThrottle.USER, key=_user_key(username))
        | Q(scope=LoginThrottle.ADDRESS, key=address),
        locked_until__gt=now,
    ).order_by("-locked_until")
    lock = locks.first()
    if lock is not None:
        raise LockedOut(lock.scope, lock.locked_until, now)


def _count_failure(
    scope: str, key: str, limit: int, now: datetime.datetime
) -> datetime.datetime | None:
    """Count one failure for ``scope``/``key``; the end of the lockout it starts, if any."""
    window = datetime.timedelta(seconds=settings.LOGIN_FAILURE_WINDOW)
    with transaction.atomic():
        row, _ = LoginThrottle.objects.select_for_update().get_or_create(
            scope=scope, key=key, defaults={"window_started_at": now}
        )
        if row.window_started_at <= now - window:
            row.failures, row.window_started_at = 0, now
        row.failures += 1
        locked_until = None
        if row.failures >= limit:
            locked_until = now + datetime.timedelta(seconds=settings.LOGIN_LOCKOUT_PERIOD)
            row.failures, row.window_started_at, row.locked_until = 0, now, locked_until
        row.save()
    return locked_until


def _record_lockout(scope: str, key: str, username: str, address: str, until) -> None:
    locked_out.send(
        sender=LoginThrottle,
        object_type="user" if scope == LoginThrottle.USER else "client-address",
        object_name=key,
        context={
            "reason": "too many failed logins",
            "user_name": username[:KEY_LENGTH],
            "client_address": address,
            "locked_until": until.isoformat(),
            "limit": _limit(scope),
            "window_seconds": settings.LOGIN_FAILURE_WINDOW,
        },
    )


def _limit(scope: str) -> int:
    if scope == LoginThrottle.USER:
        return settings.LOGIN_FAILURES_PER_USER
    return settings.LOGIN_FAILURES_PER_ADDRESS


def record_failure(username: str, address: str) -> None:
    """Count a failed login; raise ``LockedOut`` if it locks the user name or the address."""
    now = timezone.now()
    window = datetime.timedelta(seconds=settings.LOGIN_FAILURE_WINDOW)
    # Forget counts nobody can be held to any more, so the table stays small.
    LoginThrottle.objects.filter(window_started_at__lt=now - window).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now)
    ).delete()
    lockouts = []
    for scope, key in ((LoginThrottle.USER, _user_key(username)), (LoginThrottle.ADDRESS, address)):
        until = _count_failure(scope, key, _limit(scope), now)
        if until is not None:
            _record_lockout(scope, key, username, address, until)
            lockouts.append((scope, until))
    if lockouts:
        scope, until = max(lockouts, key=lambda lock: lock[1])
        raise LockedOut(scope, until, now)


def authenticate(request, username: str, password: str):
    """Django's ``authenticate`` behind the throttle: the user, ``None``, or ``LockedOut``."""
    address = client_address(request)
    check_not_locked(username, address)
    user = django_authenticate(request, username=username, password=password)
    if user is None:
        record_failure(username, address)
        return None
    LoginThrottle.objects.filter(scope=LoginThrottle.USER, key=_user_key(username)).delete()
    return user
