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
# Routes that authenticate callers themselves instead of by the console's login: route -> why.
OWN_AUTH = {
    "/blobstore/x": "the director's blobstore (DAV for agents and the director): HTTP basic "
    "auth as the agent (read) or director (read/write) user; 401 without",
    "/blobstore/signed/x": "the director's blobstore by signed, expiring URL (what an agent is "
    "handed for one blob); 403 without a valid signature",
}


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


ROUTES = sorted(
    {_concrete(r) for r in _routes(get_resolver().url_patterns)} - PUBLIC - set(OWN_AUTH)
)


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


@pytest.mark.parametrize("url", sorted(OWN_AUTH))
def test_routes_with_their_own_auth_refuse_anonymous(client, url, settings, tmp_path):
    assert url in {_concrete(r) for r in _routes(get_resolver().url_patterns)}
    settings.BLOBSTORE_DIR = tmp_path / "blobstore"
    settings.BLOBSTORE_AUTH_DIR = tmp_path / "blobstore_auth"
    blob_url = url.replace("/x", "/3f2c1b9e-0000-4000-8000-000000000000")
    expected = 403 if "/signed/" in url else 401
    for method in ("get", "put", "head"):
        response = getattr(client, method)(blob_url)
        assert response.status_code == expected, (method, url, response.status_code)
    assert not any(p.is_file() for p in settings.BLOBSTORE_DIR.rglob("*"))
