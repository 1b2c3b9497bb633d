"""Checks that the console's parts are reachable: database, broker, worker, vCenter.

Used by ``manage.py doctor`` and ``/health``. Each check says in plain words
what is wrong and what to do.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_database() -> Check:
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        vendor = connection.vendor
    except Exception as exc:  # any driver error is reported, not raised
        return Check("database", False, f"cannot query the database: {exc}. Is DATABASE_URL right?")
    return Check("database", True, f"{vendor} reachable")


def check_broker() -> Check:
    import redis
    from django.conf import settings

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
    from .celery import app

    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception as exc:
        return Check("worker", False, f"cannot ask the workers: {exc}")
    if not replies:
        return Check(
            "worker", False, "no Celery worker answered a ping; Apply Changes would stay queued"
        )
    return Check("worker", True, f"{len(replies)} worker(s) answered")


def check_vcenter() -> Check:
    from director.vcenter import vcenter_check

    return vcenter_check()


def run_checks(quick: bool = False) -> list[Check]:
    checks = [check_database(), check_broker()]
    if not quick:
        checks.append(check_worker())
        try:
            checks.append(check_vcenter())
        except Exception as exc:
            checks.append(Check("vcenter", False, f"cannot check vCenter: {exc}"))
    return checks


def _safe_url(url: str) -> str:
    from urllib.parse import urlparse

    p = urlparse(url)
    if p.password:
        return url.replace(f":{p.password}@", ":***@")
    return url
