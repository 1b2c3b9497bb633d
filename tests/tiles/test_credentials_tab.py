"""A tile's Credentials tab and API: references listed, values only on request, each reveal audited."""

from __future__ import annotations

import pytest
from django.urls import reverse

from director.models import Event
from tiles import services

pytestmark = pytest.mark.django_db

API = "/api/v0"


@pytest.fixture
def deployed(small, stemcell, small_release):
    sp = services.get_staged_product(small.guid)
    services._mark_deployed(sp, services.manifest_yaml(services.render_manifest(sp)))
    return services.get_staged_product(sp.guid)


def _password(sp) -> str:
    return sp.deployed_state["secrets"][".properties.admin"]["password"]


def _login(client, user_with_role, role):
    client.force_login(user_with_role(role))
    return client


def test_the_tab_lists_references_and_no_value(deployed, client, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("product-credentials", args=[deployed.guid]))
    html = page.content.decode()
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    for ref in (".properties.admin", ".properties.tls", ".properties.api_key"):
        assert f"<code>{ref}</code>" in html
    assert _password(deployed) not in html
    assert "Link to Credential" in html
    # the settings pages link to the tab
    settings = client.get(reverse("product", args=[deployed.guid]), follow=True)
    assert reverse("product-credentials", args=[deployed.guid]) in settings.content.decode()


@pytest.mark.parametrize("role", ["admin", "full_control", "full_view"])
def test_a_reveal_shows_the_value_uncached_and_is_audited(deployed, client, user_with_role, role):
    _login(client, user_with_role, role)
    url = reverse("product-credential-reveal", args=[deployed.guid, ".properties.admin"])
    res = client.post(url, HTTP_HX_REQUEST="true")
    assert res.status_code == 200
    assert res["Cache-Control"] == "no-store"
    assert _password(deployed) in res.content.decode()
    (event,) = Event.objects.filter(action="reveal", object_type="credential")
    assert event.object_name == ".properties.admin"
    assert event.user == role and event.deployment == deployed.guid
    assert _password(deployed) not in repr(event.context)


@pytest.mark.parametrize("role", ["restricted_control", "restricted_view"])
def test_restricted_roles_see_references_but_cannot_reveal(deployed, client, user_with_role, role):
    _login(client, user_with_role, role)
    page = client.get(reverse("product-credentials", args=[deployed.guid]))
    html = page.content.decode()
    assert "<code>.properties.admin</code>" in html
    assert "Link to Credential" not in html and "may not see credential values" in html
    url = reverse("product-credential-reveal", args=[deployed.guid, ".properties.admin"])
    res = client.post(url)
    assert res.status_code == 403
    assert _password(deployed) not in res.content.decode()
    assert not Event.objects.filter(action="reveal").exists()


def test_a_reveal_is_a_post_and_an_unknown_reference_is_404(deployed, client, admin_user):
    client.force_login(admin_user)
    url = reverse("product-credential-reveal", args=[deployed.guid, ".properties.admin"])
    assert client.get(url).status_code == 405
    bad = reverse("product-credential-reveal", args=[deployed.guid, ".properties.greeting"])
    assert client.post(bad).status_code == 404
    assert not Event.objects.filter(action="reveal").exists()


def test_anonymous_is_sent_to_login(deployed, client):
    url = reverse("product-credential-reveal", args=[deployed.guid, ".properties.admin"])
    res = client.post(url)
    assert res.status_code == 302 and "login" in res["Location"]
    assert not Event.objects.filter(action="reveal").exists()


def test_the_api_reveal_is_audited_and_uncached(deployed, role_api):
    g = deployed.guid
    viewer = role_api("full_view")
    res = viewer.get(f"{API}/deployed/products/{g}/credentials/.properties.admin")
    assert res.status_code == 200
    assert res["Cache-Control"] == "no-store"
    assert res.json()["credential"]["value"]["password"] == _password(deployed)
    (event,) = Event.objects.filter(action="reveal", object_type="credential")
    assert (event.user, event.object_name) == ("full_view", ".properties.admin")
    refused = role_api("restricted_view").get(
        f"{API}/deployed/products/{g}/credentials/.properties.admin"
    )
    assert refused.status_code == 403
    assert Event.objects.filter(action="reveal").count() == 1
    events = viewer.get(f"{API}/director/events?object_type=credential").json()
    rows = events if isinstance(events, list) else events.get("events") or events.get("results")
    assert any(r.get("action") == "reveal" for r in rows)
