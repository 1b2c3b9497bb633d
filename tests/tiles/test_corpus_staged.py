"""Every full product template of the corpus, through the console as an operator uses it.

Import (the API), stage, open every form pane and the Resource Config page,
assign AZs and a network, then ask for the manifest: it renders (200), or
the answer is a 4xx naming what is missing, never a 500. tile-generator's
tile requires ``cf >= 1.9``: a bare ``cf`` is staged first, so its ``..cf``
references are named as missing properties of that tile.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.corpus import TILES, corpus_files, needs_corpus
from tiles import services

pytestmark = [pytest.mark.django_db, needs_corpus]

API = "/api/v0"

FULL = [
    "om-fixtures/example-product-metadata.yml",
    "tile-generator/test_metadata_expected_output.yml",
    "kiln/builder-output-metadata-hello-server.yml",
    "kiln/planitest-fake-tile-metadata.yml",
    *(
        str(p.relative_to(TILES))
        for p in corpus_files(TILES / "kiln/upgrade-breaking-changes")
        if p.parts[-2:] != ("removed_errand", "initial.yml")
    ),
    *(str(p.relative_to(TILES)) for p in corpus_files(TILES / "om-fixtures/metadata")),
]


@pytest.mark.parametrize("path", FULL)
def test_corpus_template_imports_stages_renders_pages_and_manifest(
    path, admin_api, admin_user, client, director_configured, stemcell
):
    text = (TILES / path).read_bytes()
    if b"name: cf\n" not in text[:200]:
        services.import_product(b"name: cf\nproduct_version: '2.0'\n", "cf.yml", "admin")
        services.stage_product("cf", "2.0")
    res = admin_api.post(
        f"{API}/available_products",
        {"product[file]": SimpleUploadedFile(path.rsplit("/", 1)[-1], text)},
        format="multipart",
    )
    assert res.status_code == 200, res.content
    body = res.json()
    res = admin_api.post(
        f"{API}/staged/products",
        {"name": body["name"], "product_version": body["product_version"]},
        format="json",
    )
    assert res.status_code == 201, res.content
    guid = res.json()["guid"]
    client.force_login(admin_user)
    template = services.get_staged_product(guid).product.template()
    for form in template.form_types:
        page = client.get(reverse("product-form", args=[guid, form["name"]]))
        assert page.status_code == 200, (form["name"], page.status_code)
    assert client.get(reverse("product-resources", args=[guid])).status_code == 200
    res = admin_api.put(
        f"{API}/staged/products/{guid}/networks_and_azs",
        {
            "networks_and_azs": {
                "singleton_availability_zone": {"name": "az1"},
                "other_availability_zones": [{"name": "az1"}],
                "network": {"name": "infra"},
                "service_network": {"name": "services"},
            }
        },
        format="json",
    )
    assert res.status_code == 200, res.content
    res = admin_api.get(f"{API}/staged/products/{guid}/manifest")
    assert res.status_code in (200, 422), res.content
    if res.status_code == 200:
        assert res.json()["manifest"]["name"] == guid
    else:
        # Named: the template path, and the property or accessor that is missing.
        errors = res.json()["errors"]
        messages = [m for ms in errors.values() for m in ms]
        assert errors and all(k.startswith(("job_types/", "update", ".")) for k in errors)
        assert messages and all(" ." in m or " .." in m for m in messages), messages
