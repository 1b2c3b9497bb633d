"""Lenient import: the quirks shipped tiles carry, accepted as Ops Manager accepts them.

Each test builds a small template carrying one quirk, imports it through
the API, and checks what an operator sees: the product is imported (200)
with a warning naming the template path, shown in the API product JSON, at
import and on the tile; the tile stages, its form renders, and the manifest
renders. What makes a tile unusable is still refused.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tiles import services
from tiles.template import TemplateError, load_product_template

pytestmark = pytest.mark.django_db

API = "/api/v0"

HEAD = """
name: quirky
product_version: '1.0'
label: Quirky
stemcell_criteria: {os: ubuntu-jammy, version: '1.5'}
releases: [{name: quirk-release, version: '1', file: quirk-release-1.tgz}]
"""

WEB_JOB = """
- name: web
  resource_label: Web
  instance_definition: {name: instances, type: integer, configurable: true, default: 1}
  resource_definitions: [{name: ram, type: integer, default: 1024}]
  templates:
  - name: web
    release: quirk-release
    manifest: |
      value: (( .properties.%s.value ))
"""

DEFAULT_NOT_AN_OPTION = (
    HEAD
    + """
property_blueprints:
- name: size
  type: dropdown_select
  configurable: true
  default: huge
  options: [{name: small, label: Small}, {name: large, label: Large}]
form_types:
- name: sizing
  label: Sizing
  property_inputs: [{reference: .properties.size, label: Size}]
job_types:
"""
    + WEB_JOB % "size"
)

COLLECTION_DEFAULT_EXTRA_FIELD = (
    HEAD
    + """
property_blueprints:
- name: users
  type: collection
  configurable: true
  default: [{name: bob, shell: zsh}]
  property_blueprints:
  - {name: name, type: string, configurable: true}
form_types:
- name: users
  label: Users
  property_inputs: [{reference: .properties.users, label: Users}]
job_types:
"""
    + WEB_JOB % "users"
)

DOTTED_JOB_NAME = (
    HEAD
    + """
property_blueprints:
- {name: greeting, type: string, configurable: true, default: hi}
post_deploy_errands: [{name: migrate-v1.1-v1.2}]
job_types:
"""
    + WEB_JOB % "greeting"
    + """
- name: migrate-v1.1-v1.2
  errand: true
  resource_label: Migrate
  instance_definition: {name: instances, type: integer, configurable: true, default: 1}
  resource_definitions: [{name: ram, type: integer, default: 512}]
  property_blueprints:
  - {name: from, type: string, configurable: false, default: '1.1'}
  templates:
  - name: migrate
    release: quirk-release
    manifest: |
      from: (( .migrate-v1.1-v1.2.from.value ))
      own: (( from.value ))
      web_instances: (( .web.instances ))
"""
)

SELECTOR_INPUT_ELSEWHERE = (
    HEAD
    + """
property_blueprints:
- name: db
  type: selector
  configurable: true
  default: internal
  option_templates:
  - {name: internal, select_value: internal}
  - name: external
    select_value: external
    property_blueprints:
    - {name: host, type: string, configurable: true}
form_types:
- name: database
  label: Database
  property_inputs:
  - reference: .properties.db
    label: Database
    selector_property_inputs:
    - {reference: .properties.database.internal, label: Internal MySQL}
    - reference: .properties.database.external
      label: External database
      property_inputs: [{reference: .properties.db.external.host, label: Host}]
job_types:
"""
    + WEB_JOB % "db"
)


def _import(admin_api, text: str):
    upload = SimpleUploadedFile("quirky.yml", text.encode(), content_type="application/x-yaml")
    return admin_api.post(
        f"{API}/available_products", {"product[file]": upload}, format="multipart"
    )


def _stage_and_assign(admin_api):
    res = admin_api.post(
        f"{API}/staged/products", {"name": "quirky", "product_version": "1.0"}, format="json"
    )
    assert res.status_code == 201, res.content
    guid = res.json()["guid"]
    res = admin_api.put(
        f"{API}/staged/products/{guid}/networks_and_azs",
        {
            "networks_and_azs": {
                "singleton_availability_zone": {"name": "az1"},
                "other_availability_zones": [{"name": "az1"}],
                "network": {"name": "infra"},
            }
        },
        format="json",
    )
    assert res.status_code == 200, res.content
    return guid


QUIRKS = [
    pytest.param(
        DEFAULT_NOT_AN_OPTION,
        "property_blueprints/0/default: 'huge' is not one of the options (small, large)",
        id="default-not-an-option",
    ),
    pytest.param(
        COLLECTION_DEFAULT_EXTRA_FIELD,
        "property_blueprints/0/default/0: field shell not declared in its property_blueprints",
        id="collection-default-undeclared-field",
    ),
    pytest.param(
        DOTTED_JOB_NAME,
        "job_types/1/name: 'migrate-v1.1-v1.2' holds a '.'",
        id="job-name-with-a-dot",
    ),
    pytest.param(
        SELECTOR_INPUT_ELSEWHERE,
        "form_types/0/property_inputs/0/selector_property_inputs/1/reference: "
        ".properties.database.external is not under .properties.db; taken as its option "
        "'external'",
        id="selector-input-not-under-selector",
    ),
]


@pytest.mark.parametrize(("text", "warning"), QUIRKS)
def test_quirk_imports_with_a_warning_shown_everywhere(
    admin_api, admin_user, client, director_configured, stemcell, text, warning
):
    res = _import(admin_api, text)
    assert res.status_code == 200, res.content
    assert any(w.startswith(warning) for w in res.json()["warnings"]), res.json()
    listed = admin_api.get(f"{API}/available_products").json()
    assert any(w.startswith(warning) for w in listed[0]["warnings"])
    guid = _stage_and_assign(admin_api)
    staged = admin_api.get(f"{API}/staged/products").json()
    assert any(w.startswith(warning) for p in staged for w in p.get("warnings", []))
    # The tile on the dashboard and the product's pages show it.
    client.force_login(admin_user)
    page = client.get(reverse("dashboard")).content.decode()
    assert "import warning" in page
    product_page = client.get(reverse("product", args=[guid]), follow=True)
    assert product_page.status_code == 200
    assert "import warning" in product_page.content.decode()
    # Every pane renders, and so does the manifest.
    sp = services.get_staged_product(guid)
    for form in sp.product.template().form_types:
        assert client.get(reverse("product-form", args=[guid, form["name"]])).status_code == 200
    assert client.get(reverse("product-resources", args=[guid])).status_code == 200


def test_import_page_shows_the_warnings(admin_client_page):
    upload = SimpleUploadedFile("quirky.yml", DEFAULT_NOT_AN_OPTION.encode())
    res = admin_client_page.post(reverse("product-import"), {"product[file]": upload}, follow=True)
    text = res.content.decode()
    assert "Imported Quirky 1.0." in text
    assert "quirky.yml: property_blueprints/0/default: &#x27;huge&#x27; is not one of" in text


@pytest.fixture
def admin_client_page(client, admin_user):
    client.force_login(admin_user)
    return client


def _manifest(admin_api, text):
    assert _import(admin_api, text).status_code == 200
    guid = _stage_and_assign(admin_api)
    return guid, admin_api.get(f"{API}/staged/products/{guid}/manifest")


def test_default_not_an_option_leaves_the_choice_to_the_operator(
    admin_api, director_configured, stemcell
):
    guid, res = _manifest(admin_api, DEFAULT_NOT_AN_OPTION)
    # The default is ignored: the required dropdown is incomplete, named.
    pending = admin_api.get(f"{API}/staged/pending_changes").json()["product_changes"]
    [entry] = [c for c in pending if c["guid"] == guid]
    assert "Configuration is incomplete: .properties.size" in entry["warnings"]
    res = admin_api.put(
        f"{API}/staged/products/{guid}/properties",
        {"properties": {".properties.size": {"value": "large"}}},
        format="json",
    )
    assert res.status_code == 200, res.content
    manifest = admin_api.get(f"{API}/staged/products/{guid}/manifest").json()["manifest"]
    assert manifest["instance_groups"][0]["jobs"][0]["properties"] == {"value": "large"}


def test_collection_default_keeps_declared_fields(admin_api, director_configured, stemcell):
    guid, res = _manifest(admin_api, COLLECTION_DEFAULT_EXTRA_FIELD)
    assert res.status_code == 200, res.content
    props = res.json()["manifest"]["instance_groups"][0]["jobs"][0]["properties"]
    assert props == {"value": [{"name": "bob"}]}


def test_dotted_job_renders_and_its_properties_resolve(admin_api, director_configured, stemcell):
    guid, res = _manifest(admin_api, DOTTED_JOB_NAME)
    assert res.status_code == 200, res.content
    groups = {g["name"]: g for g in res.json()["manifest"]["instance_groups"]}
    migrate = groups["migrate-v1.1-v1.2"]
    assert migrate["lifecycle"] == "errand"
    assert migrate["jobs"][0]["properties"] == {"from": "1.1", "own": "1.1", "web_instances": 1}
    jobs = admin_api.get(f"{API}/staged/products/{guid}/jobs").json()["jobs"]
    [job] = [j for j in jobs if j["name"] == "migrate-v1.1-v1.2"]
    rc = admin_api.get(f"{API}/staged/products/{guid}/jobs/{job['guid']}/resource_config")
    assert rc.status_code == 200
    assert admin_api.get(f"{API}/staged/products/{guid}/errands").status_code == 200


def test_selector_input_elsewhere_feeds_the_option(
    admin_api, admin_client_page, director_configured
):
    assert _import(admin_api, SELECTOR_INPUT_ELSEWHERE).status_code == 200
    guid = _stage_and_assign(admin_api)
    url = reverse("product-form", args=[guid, "database"])
    page = admin_client_page.get(url).content.decode()
    # The inputs' labels name the options, as their option names say.
    assert "Internal MySQL" in page and "External database" in page
    res = admin_api.put(
        f"{API}/staged/products/{guid}/properties",
        {
            "properties": {
                ".properties.db": {"value": "external"},
                ".properties.db.external.host": {"value": "db.example.com"},
            }
        },
        format="json",
    )
    assert res.status_code == 200, res.content
    page = admin_client_page.get(url).content.decode()
    assert "Host" in page and "db.example.com" in page


# What makes a tile unusable is still refused.

REFUSED = [
    pytest.param(
        HEAD + "job_types:\n- {name: 'web server', templates: []}\n",
        ("job_types/0/name", "may only hold letters, digits, '_', '-' and '.'"),
        id="job-name-with-a-space",
    ),
    pytest.param(
        HEAD
        + "property_blueprints:\n- {name: n, type: integer, configurable: true, default: many}\n",
        ("property_blueprints/0/default", "must be an integer"),
        id="integer-default-not-a-number",
    ),
    pytest.param(
        HEAD
        + """
property_blueprints:
- name: db
  type: selector
  option_templates: [{name: internal}]
form_types:
- name: f
  property_inputs:
  - reference: .properties.db
    selector_property_inputs: [{reference: .properties.db.nope}]
""",
        (
            "form_types/0/property_inputs/0/selector_property_inputs/0/reference",
            ".properties.db.nope is not an option of .properties.db",
        ),
        id="selector-input-naming-no-option",
    ),
]


@pytest.mark.parametrize(("text", "error"), REFUSED)
def test_unusable_template_is_still_refused(text, error):
    with pytest.raises(TemplateError) as exc:
        load_product_template(text)
    assert error in exc.value.errors


def test_quirk_free_template_has_no_warnings():
    text = HEAD + "property_blueprints:\n- {name: a, type: string, default: x}\n"
    assert load_product_template(text).warnings == []
