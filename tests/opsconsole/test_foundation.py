"""The foundation as a user meets it: login, the API base, a task through the real worker."""

import os
import subprocess
import sys

import pytest
from django.urls import reverse

PAGES = ["dashboard", "stemcells", "tasks", "vms", "events", "changelog"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES)
def test_every_page_redirects_anonymous_to_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_login_shows_empty_installation_dashboard(client, admin_user):
    response = client.post(
        reverse("login"), {"username": "admin", "password": "admin-password-1"}, follow=True
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Installation Dashboard" in body
    for label in ("Stemcells", "Tasks", "VMs", "Events", "Change Log"):
        assert label in body
    assert "htmx.min.js" in body


@pytest.mark.django_db
def test_wrong_password_stays_on_login(client, admin_user):
    response = client.post(reverse("login"), {"username": "admin", "password": "nope"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()


@pytest.mark.django_db
def test_api_info_is_public(api_client):
    response = api_client.get("/api/v0/info")
    assert response.status_code == 200
    assert response.json()["info"]["version"]


@pytest.mark.django_db
def test_api_anonymous_gets_401(api_client):
    response = api_client.get("/api/v0/director/info")
    assert response.status_code == 401
    assert "errors" in response.json()


@pytest.mark.django_db
def test_token_round_trip(api_client, admin_user):
    response = api_client.post(
        "/api/v0/auth/token", {"username": "admin", "password": "admin-password-1"}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["access_token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api_client.get("/api/v0/director/info").status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert api_client.get("/api/v0/director/info").status_code == 401


@pytest.mark.django_db
def test_token_errors_name_the_field(api_client, admin_user):
    response = api_client.post("/api/v0/auth/token", {"username": "admin"}, format="json")
    assert response.status_code == 400
    assert "password" in response.json()["errors"]
    response = api_client.post(
        "/api/v0/auth/token", {"username": "admin", "password": "wrong"}, format="json"
    )
    assert response.status_code == 401


@pytest.mark.django_db
def test_openapi_schema_served(admin_api):
    response = admin_api.get("/api/v0/schema/")
    assert response.status_code == 200
    assert b"openapi" in response.content


@pytest.mark.django_db
def test_health_reports_database_and_broker(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_task_round_trip_through_redis_and_real_worker(celery_worker):
    from opsconsole.celery import ping

    result = ping.delay("hello").get(timeout=30)
    assert result["pong"] == "hello"
    # It ran in the worker's process tree, not in this test process (no eager mode).
    assert result["worker_pid"] != os.getpid()


def test_migrations_run_on_sqlite(tmp_path):
    """The migrations apply to a fresh SQLite file (the suite itself runs on PostgreSQL)."""
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        "OPSCONSOLE_DATA_DIR": str(tmp_path / "data"),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    listing = subprocess.run(
        [sys.executable, "manage.py", "showmigrations", "--plan"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "[ ]" not in listing.stdout
    assert "[X]  director" in listing.stdout or "director" not in listing.stdout


@pytest.mark.django_db
def test_suite_runs_on_postgresql():
    """CI runs the database tests on PostgreSQL (migrations included)."""
    from django.db import connection

    assert connection.vendor == "postgresql"


def test_openapi_schema_is_valid_without_warnings(tmp_path):
    """Every route has a unique operation id and well-formed components."""
    from django.core.management import call_command

    out = tmp_path / "schema.yml"
    call_command("spectacular", validate=True, fail_on_warn=True, file=str(out))
    assert "/api/v0/staged/pending_changes" in out.read_text()


@pytest.mark.django_db
def test_an_unknown_api_route_answers_json(admin_api, client, admin_user):
    response = admin_api.get("/api/v0/nope")
    assert response.status_code == 404
    assert response.json() == {"errors": {"base": ["No route /api/v0/nope"]}}
    client.force_login(admin_user)
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and "errors" not in page.content.decode()
