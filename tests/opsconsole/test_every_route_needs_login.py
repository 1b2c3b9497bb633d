"""Every route of the console refuses anonymous callers: pages redirect to the
login page, API routes answer 401. The list is read from the URL resolver, so a
route added later is covered without touching this test.
"""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

PUBLIC = {
    "/login/",
    "/logout/",
    "/health",
    "/api/v0/info",
    "/api/v0/auth/token",
}
# Pages under /api/ send a browser to the login page rather than answer 401.
PAGES_UNDER_API = {"/api/v0/docs/"}


def _routes(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def _concrete(route: str) -> str:
    """A URL for the route, with a plausible value for each converter."""
    route = re.sub(r"<int:[^>]+>", "1", route)
    route = re.sub(r"<(?:str|slug|uuid|path):?[^>]*>", "x", route)
    return "/" + route.lstrip("^").rstrip("$")


ROUTES = sorted({_concrete(r) for r in _routes(get_resolver().url_patterns)} - PUBLIC)


def test_the_walk_sees_the_consoles_routes():
    assert "/" in ROUTES and "/director/tasks/" in ROUTES
    assert any(r.startswith("/api/v0/staged/") for r in ROUTES)
    assert len(ROUTES) > 40
    assert {"/api/v0/schema/", "/api/v0/docs/", "/api/v0/auth/tokens"} <= set(ROUTES)


@pytest.mark.django_db
@pytest.mark.parametrize("url", ROUTES)
def test_anonymous_is_refused(client, url):
    for method in ("get", "post"):
        response = getattr(client, method)(url)
        if url.startswith("/api/") and url not in PAGES_UNDER_API:
            assert response.status_code == 401, (method, url, response.status_code)
        else:
            assert response.status_code in (302, 405), (method, url, response.status_code)
            if response.status_code == 302:
                assert response["Location"].startswith("/login/"), (method, url)
