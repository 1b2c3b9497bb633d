"""Every real product template of the corpus: load, forms, manifest.

For each full template (the official example product, tile-generator's
rendered metadata, kiln fixtures, and the om fixtures of commercial tiles
when the corpus copy carries them) we load it, build every form, generate
its credentials, render a manifest with defaults plus a sample resource
config, and check what an operator would look at: which instance groups
exist and that a property set in a form shows up where the tile puts it.
The docs-tiledev examples (one per property type) render too.
"""

import time

import pytest
import yaml

from tests.corpus import TILES as CORPUS
from tests.corpus import needs_corpus
from tiles import properties as props
from tiles.credentials import generate_missing_credentials, make_root_ca
from tiles.formspec import build_form_specs
from tiles.manifest import (
    NetworkAssignment,
    OtherProduct,
    RenderContext,
    ResourceConfig,
    StemcellRef,
    VmType,
    evaluator,
    render_manifest,
)
from tiles.template import TemplateError, load_product_template

DOCS = CORPUS / "docs-tiledev/property-blueprints"
# Commercial tile metadata (PAS, p-redis, mysql_v2, nsx-t, apigee,
# healthwatch) that some corpus copies leave out; tested when present.
OM_METADATA = sorted((CORPUS / "om-fixtures/metadata").glob("*.yml"))

VM_TYPES = {
    v.name: v
    for v in [
        VmType("micro", 1, 1024, 8192),
        VmType("small", 1, 2048, 16384),
        VmType("medium", 2, 4096, 32768),
        VmType("large", 2, 8192, 65536),
        VmType("xlarge", 4, 16384, 131072),
        VmType("2xlarge", 8, 32768, 262144),
    ]
}


class CfValues(dict):
    """The values of a deployed ``cf`` tile, for ``(( ..cf.x.y ))``.

    Known keys answer with their values; any other ``.job.property``
    reference answers with a recognisable placeholder.
    """

    def __contains__(self, key):
        return dict.__contains__(self, key) or key.count(".") == 2

    def __getitem__(self, key):
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        return f"cf{key}"


CF = OtherProduct(
    "cf",
    "cf-0123456789abcdef",
    "pas",
    CfValues(
        {
            ".cloud_controller.system_domain": "sys.example.com",
            ".cloud_controller.apps_domain": "apps.example.com",
            ".ha_proxy.skip_cert_verify": True,
            ".uaa.system_services_credentials": {"identity": "svc", "password": "svc-pw"},
            ".uaa.admin_client_credentials": {"identity": "admin", "password": "admin-pw"},
        }
    ),
)


@pytest.fixture(scope="module")
def root_ca():
    return make_root_ca()


def context(template, **kw):
    os_ = (template.stemcell_criteria or {}).get("os", "ubuntu-jammy")
    version = str((template.stemcell_criteria or {}).get("version", "1.8"))
    args = dict(
        deployment_name=f"{template.name}-0a1b2c3d4e5f",
        network=NetworkAssignment(
            "deployment", "az1", ("az1", "az2", "az3"), service_network="services"
        ),
        stemcell=StemcellRef(os_, version),
        vm_types=VM_TYPES,
        disk_types={"1024": 1024, "10240": 10240, "102400": 102400},
        director={"hostname": "10.0.0.3", "ca_public_key": "ca"},
        ops_manager={"ca_certificate": "-----BEGIN CERTIFICATE-----\n..."},
        other_products={"cf": CF} if template.name != "cf" else {},
    )
    args.update(kw)
    return RenderContext(**args)


def staged(template, root_ca, ctx, values=None):
    """Operator values plus the credentials Ops Manager would generate."""
    values = dict(values or {})
    normalized, errors = props.validate_values(template, values)
    assert errors == {}
    normalized.update(
        generate_missing_credentials(
            template,
            normalized,
            root_ca=root_ca,
            domain_evaluator=evaluator(template, normalized, ctx),
        )
    )
    return normalized


def groups(manifest):
    return {g["name"]: g for g in manifest["instance_groups"]}


def dig(node, path):
    for key in path:
        node = node[key]
    return node


# --------------------------------------------------------------------------
# Full product templates, with what each must render to


FULL = [
    pytest.param(
        "om-fixtures/example-product-metadata.yml",
        {".web_server.example_string": "Hello from opsconsole"},
        ["example-errand", "web_server"],
        ("web_server", "web_server", ("configured", "string")),
        "Hello from opsconsole",
        id="example-product",
    ),
    pytest.param(
        "tile-generator/test_metadata_expected_output.yml",
        {
            ".properties.city": "Springfield",
            ".properties.my_creds": {"identity": "me", "password": "pw"},
        },
        [
            "docker-bosh-tg_test_app4",
            "deploy-all",
            "delete-all",
            "redis",
            "sanity-tests",
            "node-yes",
            "node-no",
            "no-op",
        ],
        ("docker-bosh-tg_test_app4", "docker", ("city",)),
        "Springfield",
        id="tile-generator",
    ),
    pytest.param(
        "kiln/builder-output-metadata-hello-server.yml",
        {},
        ["hello-server"],
        ("hello-server", "hello-server", ("job-properties", "port")),
        8080,
        id="kiln-hello-server",
    ),
    pytest.param(
        "kiln/planitest-fake-tile-metadata.yml",
        {".properties.required": "given-by-operator"},
        ["some-instance-group"],
        ("some-instance-group", "some-job", ("required",)),
        "given-by-operator",
        id="kiln-planitest",
    ),
]


@pytest.mark.parametrize(("path", "values", "instance_groups", "where", "expected"), FULL)
@needs_corpus
def test_full_template_renders(root_ca, path, values, instance_groups, where, expected):
    template = load_product_template((CORPUS / path).read_bytes(), source=path)
    forms = build_form_specs(template)
    assert len(forms) == len(template.form_types)
    ctx = context(template)
    manifest = render_manifest(template, staged(template, root_ca, ctx, values), ctx)
    assert list(groups(manifest)) == instance_groups
    ig_name, job_name, key_path = where
    [job] = [j for j in groups(manifest)[ig_name]["jobs"] if j["name"] == job_name]
    assert dig(job["properties"], key_path) == expected
    # The manifest is plain YAML-able data.
    assert yaml.safe_load(yaml.safe_dump(manifest)) == manifest


@needs_corpus
def test_example_product_details(root_ca):
    template = load_product_template(
        (CORPUS / "om-fixtures/example-product-metadata.yml").read_bytes()
    )
    ctx = context(
        template,
        resources={
            "web_server": ResourceConfig(instances=1, vm_type="large", persistent_disk_mb=10240)
        },
    )
    values = staged(template, root_ca, ctx, {".web_server.configured_secret": "very-secret"})
    m = render_manifest(template, values, ctx)
    web = groups(m)["web_server"]
    assert (web["azs"], web["vm_type"], web["persistent_disk_type"]) == (["az1"], "large", "10240")
    errand = groups(m)["example-errand"]
    assert errand["lifecycle"] == "errand" and errand["azs"] == ["az1"]
    web_job = web["jobs"][0]
    # provides/consumes come from the selected option's named manifests.
    assert web_job["provides"] == {"web_server_info": {"as": "pizza_link_web_server_job"}}
    assert web_job["consumes"] == {"web_server_info": {"from": "pizza_link_web_server_job"}}
    p = web_job["properties"]
    assert p["configured"]["secret"] == "very-secret"
    assert p["configured"]["secret_or"] == "very-secret"
    assert p["configured"]["secret_ternary"] == ".web_server.configured_secret.value was true"
    assert p["configured"]["selector"] == {
        "pizza_toppings": {
            "pepperoni": False,
            "pineapple": True,
            "other": None,
            "cheesy_vm_type": None,
        }
    }
    assert p["configured"]["record_collection"] == [
        {"album": "Christmas Carols", "artist": "Ops Manatee", "explicit": True, "genre": "edm"}
    ]
    assert p["generated"]["uuid"] == values[".web_server.generated_uuid"]
    assert p["generated"]["ternary_with_property_example"] == "hello world"
    assert p["ops_manager_provided_accessors"] == {
        "name": "web_server",
        "ram": 8192,
        "cpu": 2,
        "ephemeral_disk": 65536,
        "persistent_disk": 10240,
        "instances": 1,
        "any_instances": True,
    }
    assert p["credhub"]["concatenated_password"] == "prefix-((credhub-password))-suffix"
    assert p["product"] == {
        "deployment_name": "example-product-0a1b2c3d4e5f",
        "network_name": "deployment",
    }
    assert p["director_provided_accessors"]["hostname"] == "10.0.0.3"
    # Choosing the Beverage option zeroes the web server (zero_if).
    m = render_manifest(template, {**values, ".properties.example_selector": "Beverage"}, ctx)
    assert list(groups(m)) == ["example-errand"]


@needs_corpus
def test_tile_generator_cross_product_references(root_ca):
    template = load_product_template(
        (CORPUS / "tile-generator/test_metadata_expected_output.yml").read_bytes()
    )
    ctx = context(template)
    values = staged(template, root_ca, ctx, {".properties.canary_watch_timeout": 60000})
    m = render_manifest(template, values, ctx)
    docker = groups(m)["docker-bosh-tg_test_app4"]["jobs"][0]["properties"]
    assert docker["domain"] == "sys.example.com"
    assert docker["app_domains"] == ["apps.example.com"]
    assert docker["cf"]["admin_password"] == "svc-pw"
    route = [j for j in groups(m)["node-yes"]["jobs"] if j["name"] == "route_registrar"][0]
    assert route["consumes"] == {
        "nats-tls": {"deployment": "cf-0123456789abcdef", "from": "nats-tls"}
    }
    # The template-level update block holds accessors too.
    assert m["update"]["canary_watch_time"] == "10000-60000"
    assert m["update"]["update_watch_time"] == "10000-"  # required, not set yet


KILN_UPGRADES = sorted(
    p
    for p in (CORPUS / "kiln/upgrade-breaking-changes").glob("*/*.yml")
    if p.parts[-2:] != ("removed_errand", "initial.yml")
)


@pytest.mark.parametrize("path", KILN_UPGRADES, ids=lambda p: "/".join(p.parts[-2:]))
def test_kiln_upgrade_fixtures_render(root_ca, path):
    template = load_product_template(path.read_bytes())
    ctx = context(template)
    m = render_manifest(template, staged(template, root_ca, ctx), ctx)
    expected = [
        name
        for name, job in template.job_types.items()
        if (job.get("instance_definition") or {}).get("default")
        or ((job.get("instance_definition") or {}).get("constraints") or {}).get("min")
    ]
    assert list(groups(m)) == expected
    assert m["name"] == "example-0a1b2c3d4e5f"


if OM_METADATA:  # defined only when the corpus copy has these files

    @pytest.mark.parametrize("path", OM_METADATA, ids=lambda p: p.name)
    def test_om_fixture_metadata_loads_and_renders_fast(root_ca, path):
        start = time.perf_counter()
        template = load_product_template(path.read_bytes(), source=path.name)
        loaded = time.perf_counter() - start
        build_form_specs(template)
        ctx = context(template)
        values = staged(template, root_ca, ctx)
        start = time.perf_counter()
        m = render_manifest(template, values, ctx)
        rendered = time.perf_counter() - start
        with_instances = [
            name
            for name, job in template.job_types.items()
            if job.get("errand") or (job.get("instance_definition") or {}).get("default", 1)
        ]
        assert set(groups(m)) <= set(with_instances)
        assert loaded + rendered < 1.0, f"{path.name}: load {loaded:.2f}s, render {rendered:.2f}s"


# --------------------------------------------------------------------------
# docs-tiledev examples: every property type rendered in its login banner


def load_docs(name):
    text = (DOCS / name).read_text()
    return load_product_template(f"name: docs-example\nproduct_version: '1.0'\n{text}", source=name)


def banner(m):
    return m["instance_groups"][0]["jobs"][0]["properties"]


DOCS_RENDER = [
    (
        "domain.yml",
        {".properties.example_domain": "example.org"},
        "I see your favorite domain is example.org.",
    ),
    ("dropdown-select.yml", {}, "I see your favorite fruit is kiwi."),
    (
        "email.yml",
        {".properties.example_email": "ops@example.com"},
        "Your email is ops@example.com.",
    ),
    ("http-url.yml", {}, "please visit http://example.com."),
    ("ip-address.yml", {}, "IP Address is 192.168.0.1."),
    ("ip-ranges.yml", {}, "IP ranges are 1.1.1.1-1.1.1.4,2.2.2.1-2.2.2.4,3.3.3.3."),
    ("ldap-url.yml", {}, "LDAP URL is ldap://example.com."),
    ("port.yml", {}, "network port is 3000."),
    ("string-list.yml", {}, "Your array of strings is foo,bar,baz"),
    ("string.yml", {}, "Hello, Karl! Welcome."),
    ("text.yml", {}, "Check out all this text!\nExample\nText\n"),
    ("wildcard-domain.yml", {}, "Your wildcard domain is example.com."),
    ("smtp-authentication.yml", {}, "The SMTP auth type is plain"),
    (
        "disk-type-dropdown.yml",
        {".properties.example_disk_type_dropdown": "10240"},
        "greater than 2 Gb is: 10240.",
    ),
    (
        "vm-type-dropdown.yml",
        {".properties.example_vm_type_dropdown": "large"},
        "Your chosen VM Type is large.",
    ),
    ("secret-0.yml", {".properties.example_secret": "a" * 24}, f"today's secret is {'a' * 24}."),
    (
        "service-network-az-single-select.yml",
        {".properties.example_service_network_az_single_select": "az2"},
        "Here is a single AZ name: az2",
    ),
    (
        "service-network-az-multi-select.yml",
        {".properties.service_instance_azs": ["az1", "az2"]},
        'Here is an array of AZ names: ["az1","az2"]',
    ),
    (
        "selector.yml",
        {".properties.example_selector.pizza_option.other_toppings": "olives"},
        "Would you like some Pizza?",
    ),
    ("stemcell-selector.yml", {}, "Stemcell Assigned?: false"),
]


@pytest.mark.parametrize(("name", "values", "text"), DOCS_RENDER)
@needs_corpus
def test_docs_example_renders_its_banner(root_ca, name, values, text):
    template = load_docs(name)
    ctx = context(template)
    m = render_manifest(template, staged(template, root_ca, ctx, values), ctx)
    assert list(groups(m)) == ["example-job"]
    assert text in banner(m)["login_banner"]["text"]


@needs_corpus
def test_docs_examples_with_structured_values(root_ca):
    def render(name, values=None):
        t = load_docs(name)
        ctx = context(t)
        vals = staged(t, root_ca, ctx, values)
        return banner(render_manifest(t, vals, ctx)), vals

    props_, _ = render(
        "collection-0.yml",
        {".properties.users_to_add": [{"name": "bob", "public_key": "ssh-rsa AAAA", "sudo": True}]},
    )
    assert props_ == {"users": [{"name": "bob", "public_key": "ssh-rsa AAAA", "sudo": True}]}
    props_, _ = render(
        "collection-2.yml",
        {".properties.sysctls": [{"setting_name": "net.core.somaxconn", "setting_value": "1024"}]},
    )
    assert props_ == {"sysctl": ["net.core.somaxconn=1024"]}
    props_, _ = render("integer.yml", {".properties.example_integer2": 16})
    assert props_ == {"tcp_keepalive": {"time": 9, "interval": 16}}
    props_, _ = render("multi-select-options.yml")
    assert props_ == {"modules": ["earth", "mercury"]}
    props_, _ = render("network-address-list.yml")
    assert props_["login_banner"]["an_ignored_array_of_network_addresses"] == [
        "localhost",
        "8.8.8.8",
    ]
    props_, vals = render("rsa-pkey-credentials.yml")
    assert (
        props_["users"][0]["public_key"]
        == vals[".properties.example_rsa_pkey_credentials"]["public_key_pem"]
    )
    props_, vals = render("rsa-cert-credentials.yml")
    cert = vals[".properties.example_non_configurable_rsa_cert_credentials"]["cert_pem"]
    assert cert in props_["login_banner"]["text"]
    props_, vals = render("simple-credentials.yml")
    creds = vals[".properties.example_non_configurable_simple_credentials"]
    assert creds["identity"] == "vcap"
    assert f"today's secret password is {creds['password']}" in props_["login_banner"]["text"]
    props_, vals = render("uuid.yml")
    assert (
        props_["login_banner"]["text"] == f"Hello. Your UUID is {vals['.properties.example_uuid']}"
    )
    pem = make_root_ca("docs CA")[0]
    props_, _ = render("ca-certificate.yml", {".properties.ca_cert": pem})
    assert props_ == {"certs": pem}
    props_, _ = render("selector.yml", {".properties.example_selector": "Filet Mignon"})
    assert props_["login_banner"]["more_manifest_ignored_by_os_conf"] == {
        "rarity": "rare",
        "review": "A+ power seller of mail order steak",
    }


@needs_corpus
def test_docs_secret_fragment_alone_is_refused():
    # secret-1.yml is a form fragment for the secret defined on the same docs
    # page; on its own it references a property that does not exist.
    with pytest.raises(TemplateError) as exc:
        load_docs("secret-1.yml")
    assert exc.value.errors == [
        ("form_types/0/property_inputs/0/reference", ".properties.example_secret does not exist")
    ]
