"""The API documentation page renders in a browser with nothing but the console's own
files, under the console's Content-Security-Policy (no CDN, no inline script).
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_renders_offline(page, live_server, django_user_model):
    django_user_model.objects.create_superuser("admin", "", "admin-password-1")
    ours = urlparse(live_server.url).netloc
    elsewhere, errors = [], []

    def only_ours(route):
        if urlparse(route.request.url).netloc == ours:
            route.continue_()
        else:  # the machine is offline as far as this page knows
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_ours)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, "admin", "admin-password-1")
    page.goto("/api/v0/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("opsconsole API")
    expect(
        page.locator(".opblock-summary-path", has_text="/api/v0/auth/tokens").first
    ).to_be_visible()
    assert elsewhere == []
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
