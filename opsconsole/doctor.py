"""Checks that the console's parts are reachable: database, broker, worker, and the apps' own.

Used by ``manage.py doctor`` and ``/health``. Each check says in plain words
what is wrong and what to do. The checks are a registry: this module
registers the project's own (database, broker, worker) and each app adds
its checks at start (``register`` in its ``AppConfig.ready``; the director
adds its vCenter login), so this bottom layer imports no app.
"""

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

import redis
from django.conf import settings
from django.db import connection

from .celery import app


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        vendor = connection.vendor
    except Exception as exc:  # any driver error is reported, not raised
        return Check("database", False, f"cannot query the database: {exc}. Is DATABASE_URL right?")
    return Check("database", True, f"{vendor} reachable")


def check_broker() -> Check:
    url = settings.CELERY_BROKER_URL
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except Exception as exc:
        return Check(
            "broker",
            False,
            f"Redis at {_safe_url(url)} does not answer ({exc}); start it with `make run`",
        )
    return Check("broker", True, f"Redis at {_safe_url(url)} answers")


def check_worker(timeout: float = 3.0) -> Check:
    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception as exc:
        return Check("worker", False, f"cannot ask the workers: {exc}")
    if not replies:
        return Check(
            "worker", False, "no Celery worker answered a ping; Apply Changes would stay queued"
        )
    return Check("worker", True, f"{len(replies)} worker(s) answered")


@dataclass(frozen=True)
class Registered:
    """A check in the registry: ``quick`` ones also run for ``/health``."""

    name: str
    fn: Callable[[], Check]
    quick: bool
    title: str


_CHECKS: dict[str, Registered] = {}


def register(
    name: str, fn: Callable[[], Check], *, quick: bool = False, title: str | None = None
) -> None:
    """Add ``fn() -> Check`` to the checks, run in the order registered.

    ``quick`` checks also run for ``/health`` (no round trip to a worker or
    vCenter there). A check that raises is reported failed as ``cannot
    check <title>: <error>``. Registering a name again replaces its check.
    """
    _CHECKS[name] = Registered(name, fn, quick, title or name)


def run_checks(quick: bool = False) -> list[Check]:
    checks = []
    for entry in list(_CHECKS.values()):
        if quick and not entry.quick:
            continue
        try:
            checks.append(entry.fn())
        except Exception as exc:
            checks.append(Check(entry.name, False, f"cannot check {entry.title}: {exc}"))
    return checks


register("database", check_database, quick=True)
register("broker", check_broker, quick=True)
register("worker", check_worker)


def _safe_url(url: str) -> str:
    p = urlparse(url)
    if p.password:
        return url.replace(f":{p.password}@", ":***@")
    return url
