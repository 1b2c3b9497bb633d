"""The OpenAPI schema and the Swagger UI page are for logged-in users only, and the
page loads nothing but the console's own static files (Swagger UI vendored from
its npm package at a pinned version), with no inline script.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db

SCHEMA = "/api/v0/schema/"
DOCS = "/api/v0/docs/"


class Assets(HTMLParser):
    """Every URL the page loads (script src, link href, img src) and each inline script."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_script_without_src = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            if attrs.get("src"):
                self.urls.append(attrs["src"])
            else:
                self._in_script_without_src = True
                self.inline_scripts.append("")
        elif tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])
        elif tag in ("img", "iframe") and attrs.get("src"):
            self.urls.append(attrs["src"])
        if any(name.startswith("on") for name in attrs):
            self.inline_scripts.append(f"<{tag} {attrs}>")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script_without_src = False

    def handle_data(self, data):
        if self._in_script_without_src:
            self.inline_scripts[-1] += data


def test_schema_and_docs_are_for_logged_in_users(
    client, api_client, admin_user, user_with_role, role_api
):
    response = api_client.get(SCHEMA)
    assert response.status_code == 401
    assert b"openapi" not in response.content
    response = client.get(DOCS)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={DOCS}"
    # Any role, by session or by token.
    client.force_login(user_with_role("restricted_view"))
    response = client.get(SCHEMA)
    assert response.status_code == 200 and b"openapi:" in response.content
    assert role_api("full_view").get(SCHEMA).status_code == 200


def test_the_docs_page_loads_only_vendored_static_files(client, admin_user):
    client.force_login(admin_user)
    response = client.get(DOCS)
    assert response.status_code == 200
    page = Assets()
    page.feed(response.content.decode())
    assert page.inline_scripts == []
    assert page.urls, "the page loads Swagger UI"
    for url in page.urls:
        assert url.startswith("/static/"), url
        assert finders.find(url.removeprefix("/static/")), f"{url} is not shipped"
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.urls
    assert "/static/vendor/swagger-ui/swagger-ui.css" in page.urls
    # The page tells its script where the schema is.
    assert f'data-schema-url="{SCHEMA}"' in response.content.decode()


def test_swagger_ui_is_pinned_with_its_license():
    vendor = Path(settings.BASE_DIR) / "static" / "vendor" / "swagger-ui"
    makefile = (Path(settings.BASE_DIR) / "Makefile").read_text()
    pinned = re.search(r"^SWAGGER_UI_VERSION \?= (\S+)$", makefile, re.M).group(1)
    assert (vendor / "VERSION").read_text().startswith(f"swagger-ui-dist {pinned} ")
    assert "Apache License" in (vendor / "LICENSE").read_text()
    assert f'PACKAGE_VERSION:"{pinned}"' in (vendor / "swagger-ui-bundle.js").read_text()
