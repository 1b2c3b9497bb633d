"""Two operators editing the same staged configuration: a save based on a stale read is refused.

Alice and Bob open the same pane; Bob saves first. Alice's save carries the
version she read (the page's hidden field, the API's ``If-Match``) and is
refused with 409 naming Bob and when he saved; Bob's value stays. A write
without a version (Ops Manager's clients send no ``If-Match``) is accepted
as before.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from opsconsole.models import ApiToken
from tiles import demo, services

pytestmark = pytest.mark.django_db

API = "/api/v0"


@pytest.fixture
def staged(tmp_path, tiles_dirs):
    path = demo.build_pivotal(tmp_path)
    with open(path, "rb") as fh:
        product = services.import_product(fh, path.name, "admin")
    return services.stage_product(product.name, product.version)


@pytest.fixture
def browsers(user_with_role):
    """Logged-in page clients for alice and bob (both may change the configuration)."""
    out = {}
    for name in ("alice", "bob"):
        client = Client()
        client.force_login(user_with_role("full_control", name))
        out[name] = client
    return out


@pytest.fixture
def apis(user_with_role):
    out = {}
    for name in ("alice", "bob"):
        client = APIClient()
        _, raw = ApiToken.issue(user_with_role("full_control", name))
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        out[name] = client
    return out


def _version(page: str) -> str:
    return re.search(r'<input type="hidden" name="version" value="(\d+)">', page).group(1)


def test_a_stale_pane_save_is_refused_naming_who_saved_first(staged, browsers):
    url = reverse("product-form", args=[staged.guid, "app_config"])
    alice_read = _version(browsers["alice"].get(url).content.decode())
    bob_read = _version(browsers["bob"].get(url).content.decode())
    assert alice_read == bob_read

    bob = browsers["bob"].post(
        url, {"version": bob_read, "properties__greeting": "Hello from Bob", "web__port": "8080"}
    )
    assert bob.status_code == 302

    alice = browsers["alice"].post(
        url, {"version": alice_read, "properties__greeting": "Hello from Alice", "web__port": "9"}
    )
    assert alice.status_code == 409
    page = alice.content.decode()
    assert re.search(
        r"\.properties\.greeting: changed by bob at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+ after you "
        r"read it \(you read version \d+, it is now \d+\): nothing was saved",
        page,
    ), page
    assert "The form shows the saved values now." in page
    assert 'value="Hello from Bob"' in page  # the form shows what is saved
    assert _version(page) != alice_read  # and the version to save it again from
    staged.refresh_from_db()
    assert staged.values[".properties.greeting"] == "Hello from Bob"
    assert staged.values.get(".web.port") in (None, 8080)  # alice's port was not saved either

    again = browsers["alice"].post(
        url,
        {
            "version": _version(page),
            "properties__greeting": "Hello from Alice",
            "web__port": "8080",
        },
    )
    assert again.status_code == 302  # from a fresh read, her save goes through
    staged.refresh_from_db()
    assert staged.values[".properties.greeting"] == "Hello from Alice"


def test_saving_a_pane_nobody_else_changed_is_not_refused(staged, browsers):
    url = reverse("product-form", args=[staged.guid, "app_config"])
    read = _version(browsers["alice"].get(url).content.decode())
    services.set_resource_config(staged, "web", instances=3, user="bob")  # another pane
    response = browsers["alice"].post(
        url, {"version": read, "properties__greeting": "Hello", "web__port": "8080"}
    )
    assert response.status_code == 302


def test_a_stale_resource_config_page_saves_no_job(staged, browsers):
    url = reverse("product-resources", args=[staged.guid])
    alice_read = _version(browsers["alice"].get(url).content.decode())
    assert browsers["bob"].post(
        url, {"web__instances": "2", "version": alice_read}
    ).status_code == (302)
    response = browsers["alice"].post(
        url, {"web__instances": "4", "worker__instances": "3", "version": alice_read}
    )
    assert response.status_code == 409
    page = response.content.decode()
    assert "resource_config/web: changed by bob at" in page
    staged.refresh_from_db()
    assert staged.resource_config["web"]["instances"] == 2
    assert (staged.resource_config.get("worker") or {}).get("instances") is None


def test_api_etag_and_if_match_on_properties(staged, apis):
    url = f"{API}/staged/products/{staged.guid}/properties"
    read = apis["alice"].get(url)
    etag = read["ETag"]
    assert re.fullmatch(r'"\d+"', etag)

    bob = apis["bob"].put(
        url,
        {"properties": {".properties.greeting": {"value": "Hello from Bob"}}},
        format="json",
        HTTP_IF_MATCH=etag,
    )
    assert bob.status_code == 200, bob.content
    assert bob["ETag"] != etag

    alice = apis["alice"].put(
        url,
        {"properties": {".properties.greeting": {"value": "Hello from Alice"}}},
        format="json",
        HTTP_IF_MATCH=etag,
    )
    assert alice.status_code == 409
    [message] = alice.json()["errors"][".properties.greeting"]
    assert message.startswith("changed by bob at ")
    assert services.get_properties(services.get_staged_product(staged.guid))[
        ".properties.greeting"
    ]["value"] == ("Hello from Bob")

    fresh = apis["alice"].put(
        url,
        {"properties": {".properties.greeting": {"value": "Hello from Alice"}}},
        format="json",
        HTTP_IF_MATCH=bob["ETag"],
    )
    assert fresh.status_code == 200, fresh.content

    # Ops Manager's clients send no If-Match: accepted, the last write wins as before.
    om = apis["bob"].put(
        url, {"properties": {".properties.greeting": {"value": "From om"}}}, format="json"
    )
    assert om.status_code == 200

    junk = apis["bob"].put(
        url,
        {"properties": {".properties.greeting": {"value": "x"}}},
        format="json",
        HTTP_IF_MATCH='"not-a-version"',
    )
    assert junk.status_code == 400
    assert "If-Match" in junk.json()["errors"]


def test_api_if_match_on_resource_config_and_networks_and_azs(staged, apis):
    jobs = apis["alice"].get(f"{API}/staged/products/{staged.guid}/jobs").json()["jobs"]
    web = next(j for j in jobs if j["name"] == "web")
    url = f"{API}/staged/products/{staged.guid}/jobs/{web['guid']}/resource_config"
    etag = apis["alice"].get(url)["ETag"]
    bob = apis["bob"].put(url, {"instances": 2}, format="json", HTTP_IF_MATCH=etag)
    assert bob.status_code == 200, bob.content
    alice = apis["alice"].put(url, {"instances": 4}, format="json", HTTP_IF_MATCH=etag)
    assert alice.status_code == 409
    assert alice.json()["errors"]["resource_config/web"][0].startswith("changed by bob at ")
    assert apis["alice"].get(url).json()["instances"] == 2
    assert (
        apis["alice"].put(url, {"instances": 4}, format="json", HTTP_IF_MATCH=bob["ETag"])
    ).status_code == 200

    url = f"{API}/staged/products/{staged.guid}/networks_and_azs"
    etag = apis["alice"].get(url)["ETag"]
    _director_with_azs()
    body = {
        "networks_and_azs": {
            "singleton_availability_zone": {"name": "az1"},
            "other_availability_zones": [{"name": "az1"}],
            "network": {"name": "infra"},
        }
    }
    assert apis["bob"].put(url, body, format="json", HTTP_IF_MATCH=etag).status_code == 200
    body["networks_and_azs"]["other_availability_zones"] = [{"name": "az1"}, {"name": "az2"}]
    alice = apis["alice"].put(url, body, format="json", HTTP_IF_MATCH=etag)
    assert alice.status_code == 409
    assert alice.json()["errors"]["networks_and_azs"][0].startswith("changed by bob at ")
    saved = apis["alice"].get(url).json()["networks_and_azs"]
    assert saved["other_availability_zones"] == [{"name": "az1"}]


def _director_with_azs():
    services.set_availability_zones(
        [
            {"name": "az1", "clusters": [{"cluster": "C0"}]},
            {"name": "az2", "clusters": [{"cluster": "C1"}]},
        ]
    )
    services.set_networks(
        {
            "networks": [
                {
                    "name": "infra",
                    "subnets": [
                        {
                            "iaas_identifier": "VM Network",
                            "cidr": "10.0.0.0/24",
                            "gateway": "10.0.0.1",
                            "dns": "8.8.8.8",
                            "reserved_ip_ranges": "10.0.0.1-10.0.0.9",
                            "availability_zone_names": ["az1", "az2"],
                        }
                    ],
                }
            ]
        }
    )


# --------------------------------------------------------------------------- the Director tile


def _vm_row(name: str, cpu: int) -> dict:
    return {
        "vm-0-name": name,
        "vm-0-cpu": str(cpu),
        "vm-0-ram": "1024",
        "vm-0-ephemeral_disk": "2048",
    }


def test_a_stale_director_pane_save_is_refused(tiles_dirs, browsers):
    url = reverse("director-tile", args=["vm-types"])
    alice_read = _version(browsers["alice"].get(url).content.decode())
    bob = browsers["bob"].post(url, {"version": alice_read, **_vm_row("bobs", 2)})
    assert bob.status_code == 302

    alice = browsers["alice"].post(url, {"version": alice_read, **_vm_row("alices", 4)})
    assert alice.status_code == 409
    page = alice.content.decode()
    assert re.search(r"vm_types: changed by bob at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", page), page
    assert 'value="bobs"' in page  # the pane shows what is saved
    assert [t["name"] for t in services.vm_types()] == ["bobs"]

    fresh = browsers["alice"].post(url, {"version": _version(page), **_vm_row("alices", 4)})
    assert fresh.status_code == 302
    assert [t["name"] for t in services.vm_types()] == ["alices"]


def test_api_if_match_on_director_properties_and_networks(tiles_dirs, apis):
    url = f"{API}/staged/director/properties"
    etag = apis["alice"].get(url)["ETag"]
    body = {"director_configuration": {"max_threads": 8}}
    bob = apis["bob"].put(url, body, format="json", HTTP_IF_MATCH=etag)
    assert bob.status_code == 200, bob.content
    alice = apis["alice"].put(
        url, {"director_configuration": {"max_threads": 2}}, format="json", HTTP_IF_MATCH=etag
    )
    assert alice.status_code == 409
    assert alice.json()["errors"]["director_configuration"][0].startswith("changed by bob at ")
    assert apis["alice"].get(url).json()["director_configuration"]["max_threads"] == 8
    # without If-Match (Ops Manager's clients), accepted
    assert apis["alice"].put(url, body, format="json").status_code == 200

    _director_with_azs()
    url = f"{API}/staged/director/networks?ignore_unreachable_vcenter=true"
    read = apis["alice"].get(url)
    networks = read.json()
    networks["networks"][0]["subnets"][0]["dns"] = "1.1.1.1"
    assert (
        apis["bob"].put(url, networks, format="json", HTTP_IF_MATCH=read["ETag"]).status_code == 200
    )
    networks["networks"][0]["subnets"][0]["dns"] = "9.9.9.9"
    alice = apis["alice"].put(url, networks, format="json", HTTP_IF_MATCH=read["ETag"])
    assert alice.status_code == 409
    assert "changed by bob" in alice.json()["errors"]["networks"][0]
    assert services.get_networks()["networks"][0]["subnets"][0]["dns"] == "1.1.1.1"
