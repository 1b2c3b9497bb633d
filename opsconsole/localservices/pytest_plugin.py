"""pytest plugin: the real services the test suite runs against.

Loaded with ``-p opsconsole.localservices.pytest_plugin`` (pyproject addopts).
Before pytest-django reads the settings, it starts a private PostgreSQL and
Redis on free loopback ports and points ``DATABASE_URL``, ``CELERY_BROKER_URL``
and ``OPSCONSOLE_DATA_DIR`` at them, so the whole suite runs on PostgreSQL as
CI does. ``OPSCONSOLE_TEST_DB=sqlite`` runs it on a SQLite file instead; a
``DATABASE_URL`` already set is used as is. Everything is stopped at the end.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from .postgres import start_postgres
from .redis import start_redis

_started: list = []
_tmp: Path | None = None


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    global _tmp
    if os.environ.get("OPSCONSOLE_TEST_SERVICES", "1") == "1" and not getattr(
        early_config.option, "help", False
    ):
        _tmp = Path(tempfile.mkdtemp(prefix="opsconsole-test-"))
        os.chmod(_tmp, 0o755)
        os.environ["OPSCONSOLE_DATA_DIR"] = str(_tmp / "data")
        redis_proc, broker = start_redis(_tmp / "redis")
        _started.append(redis_proc)
        os.environ["CELERY_BROKER_URL"] = broker
        os.environ["CELERY_RESULT_BACKEND"] = broker
        if not os.environ.get("DATABASE_URL"):
            if os.environ.get("OPSCONSOLE_TEST_DB", "postgres") == "sqlite":
                os.environ["DATABASE_URL"] = f"sqlite:///{_tmp / 'data' / 'db.sqlite3'}"
            else:
                pg_proc, url = start_postgres(_tmp / "pg")
                _started.append(pg_proc)
                os.environ["DATABASE_URL"] = url
    return (yield)


def pytest_unconfigure(config):
    for proc in reversed(_started):
        proc.stop()
    _started.clear()
    if _tmp is not None:
        shutil.rmtree(_tmp, ignore_errors=True)
