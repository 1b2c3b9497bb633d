"""Fixtures shared by the whole suite.

PostgreSQL and Redis are started before Django loads (see
``opsconsole.localservices.pytest_plugin``); vcsim comes from
``tests.fixtures.vcsim``, the message bus (nats-server) from
``tests.fixtures.nats``; here: a real Celery worker process against the
test database, users and API clients, and every vCenter session closed
when the process is done.
"""

import importlib.util
import os
import sys

import pytest
from django.conf import settings


def _present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


pytest_plugins = [
    m
    for m in (
        "tests.fixtures.vcsim",
        "tests.fixtures.nats",
        "tests.fixtures.vmruntime",
        "tests.fixtures.beat",
    )
    if _present(m)
]


def _test_database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory, nats_server, vm_runtime):
    """A real Celery worker process consuming from the test Redis, on the test database.

    Its director reaches the VMs' agents as a real one does: over the session's
    nats-server, with the VM runtime playing the agents of vcsim's VMs, and the
    agents fetch blobs from the director's blobstore served by a web process
    (gunicorn, as ``make run`` serves it) on the test data dir.
    """
    from opsconsole.celery import app
    from opsconsole.localservices.celery import start_worker, wait_for_worker
    from opsconsole.localservices.process import ManagedProcess, free_port, wait_for_port

    logdir = tmp_path_factory.mktemp("worker")
    port = free_port()
    env = {
        "DATABASE_URL": _test_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
        "OPSCONSOLE_DATA_DIR": str(settings.DATA_DIR),
        "OPSCONSOLE_ENCRYPTION_KEY": settings.ENCRYPTION_KEY,
        "SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_SETTINGS_MODULE": "opsconsole.settings",
        "OPSCONSOLE_NATS_URL": nats_server.url,
        "OPSCONSOLE_BLOBSTORE_ENDPOINT": f"http://127.0.0.1:{port}/blobstore",
    }
    web = ManagedProcess(
        "web",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "opsconsole.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "8",
            "--timeout",
            "120",
        ],
        logdir / "web.log",
        env=env,
        cwd=str(settings.BASE_DIR),
    )
    worker = start_worker(env, logdir / "worker.log", concurrency=2, cwd=str(settings.BASE_DIR))
    try:
        wait_for_port(port, 30, web.proc, "the blobstore web server (gunicorn)")
        wait_for_worker(app, timeout=60, proc=worker)
        worker.env = env  # for tests that start a worker of their own beside it
        yield worker
    finally:
        worker.stop()
        web.stop()
        if os.environ.get("OPSCONSOLE_SHOW_WORKER_LOG"):
            print(worker.tail(200))


@pytest.fixture(scope="session", autouse=True)
def vcenter_sessions_closed():
    """When this test process is done, every vCenter session it left open is closed,
    and the director's message-bus connection.

    A pytest-xdist process whose files are done waits for the others; a kept
    session (the VMs page's, the health monitor's) would meanwhile touch the
    stopped vcsim every minute and log the failure to pytest's closed capture
    stream ("--- Logging error ---" in CI's output); the bus client would try
    to reconnect to the stopped nats-server ("Connect call failed").
    """
    yield
    client = sys.modules.get("cpi.vsphere.client")
    if client is not None:  # not imported: no test of this process spoke to vCenter
        client.close_all()
    mbus = sys.modules.get("director.agents.mbus")
    if mbus is not None:  # not imported: no test of this process spoke to an agent
        mbus.close_default()


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", "", "admin-password-1")


@pytest.fixture
def user_with_role(django_user_model):
    from opsconsole.models import UserProfile

    def make(role: str, username: str | None = None):
        user = django_user_model.objects.create_user(username or role, "", f"{role}-password-1")
        UserProfile.objects.create(user=user, role=role)
        return user

    return make


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def admin_api(api_client, admin_user):
    from opsconsole.models import ApiToken

    _, raw = ApiToken.issue(admin_user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api_client


@pytest.fixture
def role_api(user_with_role):
    """An API client authenticated with a bearer token for a user of the given role."""
    from rest_framework.test import APIClient

    from opsconsole.models import ApiToken

    def make(role: str):
        client = APIClient()
        _, raw = ApiToken.issue(user_with_role(role))
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


def pytest_configure(config):
    """CI has the corpus beside its clone: there, a missing corpus fails the run at once
    instead of skipping every test that reads it (``.ci/run`` sets the variable)."""
    from tests.corpus import PRESENT, REASON

    if os.environ.get("OPSCONSOLE_REQUIRE_CORPUS") == "1" and not PRESENT:
        raise pytest.UsageError(f"OPSCONSOLE_REQUIRE_CORPUS=1 but the corpus is missing: {REASON}")
