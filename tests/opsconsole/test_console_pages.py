"""The 404 page, upload redirects for the progress script, the events page's context."""

from __future__ import annotations

import pytest

from director.events import record_event


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_404_page_has_a_way_back_and_the_api_keeps_json(admin_client):
    response = admin_client.get("/no/such/page/", HTTP_REFERER="http://testserver/director/tasks/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "This page does not exist" in page
    assert 'href="/" id="dashboard-link"' in page
    assert 'href="http://testserver/director/tasks/" id="back-link"' in page
    # a referer from elsewhere is no way back
    page = admin_client.get("/no/such/page/", HTTP_REFERER="https://evil.example/x").content
    assert b"back-link" not in page and b"evil.example" not in page
    api = admin_client.get("/api/v0/no/such/route")
    assert api.status_code == 404 and api.json()["errors"]["base"] == [
        "No route /api/v0/no/such/route"
    ]


def test_upload_redirect_is_json_for_the_progress_script(admin_client, tmp_path, settings):
    settings.UPLOAD_DIR = tmp_path
    bad = tmp_path / "bad.yml"
    bad.write_text("name: [")
    with bad.open("rb") as fh:
        response = admin_client.post(
            "/products/import", {"product[file]": fh}, HTTP_X_UPLOAD_PROGRESS="1"
        )
    assert response.status_code == 200 and response.json() == {"redirect": "/"}
    # the message waits for the page the script goes to
    page = admin_client.get("/").content.decode()
    assert "bad.yml: " in page and "product[file]:" not in page
    with bad.open("rb") as fh:
        plain = admin_client.post("/products/import", {"product[file]": fh})
    assert plain.status_code == 302 and plain["Location"] == "/"


def test_events_context_reads_as_key_value_and_filters_are_choices(admin_client):
    record_event("deploy", "deployment", "zk", deployment="zk", context={"after": {"n": 3}})
    page = admin_client.get("/director/events/?action=deploy").content.decode()
    assert "<dt>after:</dt><dd>{&quot;n&quot;: 3}</dd>" in page
    assert "{&#x27;" not in page
    assert '<option value="deploy" selected>deploy</option>' in page
    assert 'hx-push-url="true"' in page
