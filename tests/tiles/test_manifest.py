"""Accessor evaluation and manifest rendering, on a small tile written for it."""


import pytest
import yaml

from tiles.accessors import AccessorError, find_expressions
from tiles.credentials import generate_missing_credentials, make_root_ca, sha512_crypt
from tiles.manifest import (
    ErrandConfig,
    NetworkAssignment,
    OtherProduct,
    RenderContext,
    RenderError,
    ResourceConfig,
    StemcellRef,
    VmType,
    deployment_name,
    errands_to_run,
    evaluator,
    render_manifest,
    render_runtime_configs,
)
from tiles.template import load_product_template

SHOP = """
name: shop
product_version: '1.0'
label: Shop
serial: false
stemcell_criteria: {os: ubuntu-jammy, version: '1.8'}
releases:
- {name: shop-release, version: '2.0', file: shop-release-2.0.tgz}
- {name: bpm, version: '1.2', file: bpm-1.2.tgz}
variables:
- {name: db-password, type: password}
- {name: /shared/ca, type: certificate, options: {is_ca: true, common_name: ca}}
update:
  canaries: 2
  canary_watch_time: 10000-(( .properties.watch ))
property_blueprints:
- {name: greeting, type: string, configurable: true, default: hello}
- {name: domain, type: domain, configurable: true}
- {name: watch, type: integer, configurable: true, default: 30000}
- {name: api_key, type: secret, configurable: true, optional: true}
- {name: admin, type: simple_credentials}
- {name: hosts, type: string_list, configurable: true, default: 'a, b'}
- {name: ranges, type: ip_ranges, configurable: true, default: '10.0.0.1-10.0.0.2,10.0.1.9'}
- {name: peers, type: network_address_list, configurable: true, default: 'x.example.com,10.1.1.1'}
- {name: tls, type: rsa_cert_credentials, default: {domains: ['shop.(( .properties.domain.value ))']}}
- {name: ssh, type: rsa_pkey_credentials}
- {name: vcap, type: salted_credentials, default: {identity: vcap}}
- {name: id, type: uuid}
- {name: colors, type: multi_select_options, configurable: true, default: [red], options: [{name: red}, {name: blue}]}
- name: db
  type: selector
  configurable: true
  default: internal
  option_templates:
  - name: internal
    select_value: internal
    named_manifests:
    - name: conn
      manifest: |
        host: db.internal
        port: 5432
    - name: link
      manifest: ''
  - name: external
    select_value: External DB
    property_blueprints:
    - {name: host, type: network_address, configurable: true}
    - {name: port, type: port, configurable: true, default: 5433}
    named_manifests:
    - name: conn
      manifest: |
        host: (( .properties.db.external.host.value ))
        port: (( .properties.db.external.port.value ))
    - name: link
      manifest: |
        db: {from: external_db}
- name: routes
  type: collection
  configurable: true
  optional: true
  property_blueprints:
  - {name: host, type: string}
  - {name: port, type: port}
  - {name: token, type: secret, optional: true}
  named_manifests:
  - name: pairs
    manifest: (( current_record.host.value )):(( current_record.port.value ))
  - name: items
    manifest: |
      - route: (( current_record.host.value ))
job_types:
- name: web
  resource_label: Web
  single_az_only: false
  max_in_flight: 25%
  serial: true
  instance_definition:
    name: instances
    configurable: true
    default: 2
    constraints: {min: 1, max: 5}
  resource_definitions:
  - {name: ram, default: 2048}
  - {name: cpu, default: 1}
  - {name: ephemeral_disk, default: 4096}
  - {name: persistent_disk, default: 10240, constraints: {min: 1024}}
  property_blueprints:
  - {name: static_ips, type: ip_ranges, configurable: true, optional: true}
  - {name: port, type: port, configurable: true, default: 8080}
  manifest: |
    shared:
      greeting: (( .properties.greeting.value ))
      from_job_type: kept
      winner: job-type
  templates:
  - name: web
    release: shop-release
    manifest: |
      shared:
        winner: template
      port: (( port.value ))
      instances: (( instances ))
      admin: (( .properties.admin.identity )):(( .properties.admin.password ))
      db: (( .properties.db.selected_option.parsed_manifest(conn) ))
      creds: ((( db-password )))
    consumes: |
      (( .properties.db.selected_option.parsed_manifest(link) ))
    provides: |
      web: {as: shop-web}
  - name: bpm
    release: bpm
- name: worker
  single_az_only: true
  instance_definition: {default: 1}
  resource_definitions:
  - {name: persistent_disk, default: 0}
  templates:
  - name: worker
    release: shop-release
    manifest: |
      web_ips: (( .web.ips ))
      first_web: (( .web.first_ip ))
      web_count: (( .web.instances ))
- name: idle
  instance_definition: {default: 0}
  templates: [{name: idle, release: shop-release}]
- name: smoke
  errand: true
  instance_definition: {default: 1, configurable: false}
  templates: [{name: smoke, release: shop-release}]
- name: cleanup
  errand: true
  templates: [{name: cleanup, release: shop-release}]
post_deploy_errands: [{name: smoke}]
pre_delete_errands: [{name: cleanup, run_pre_delete_errand_default: off}]
runtime_configs:
- name: banner
  runtime_config: |
    addons:
    - name: banner
      jobs: [{name: login_banner, release: os-conf, properties: {text: (( .properties.greeting.value ))}}]
      include: {deployments: [(( .deployment_name ))]}
- name: empty
  runtime_config: ''
"""

VM_TYPES = {
    v.name: v
    for v in [
        VmType("micro", 1, 1024, 8192),
        VmType("medium", 2, 4096, 16384),
        VmType("small", 1, 2048, 8192),
        VmType("large", 4, 16384, 65536),
    ]
}


@pytest.fixture(scope="module")
def shop():
    return load_product_template(SHOP)


@pytest.fixture(scope="module")
def root_ca():
    return make_root_ca()


@pytest.fixture(scope="module")
def values(shop, root_ca):
    base = {".properties.domain": "shop.example.com"}
    ctx = make_ctx()
    base.update(
        generate_missing_credentials(
            shop, base, root_ca=root_ca, domain_evaluator=evaluator(shop, base, ctx)
        )
    )
    return base


def make_ctx(**kw):
    args = dict(
        deployment_name="shop-0a1b2c",
        network=NetworkAssignment(
            "services_net",
            "az1",
            ("az1", "az2"),
            service_network="svc",
            subnet_cidrs=("10.0.0.0/24",),
        ),
        stemcell=StemcellRef("ubuntu-jammy", "1.8"),
        vm_types=VM_TYPES,
        disk_types={"10240": 10240, "20480": 20480},
        director={"hostname": "bosh.example.com"},
        ops_manager={"ca_certificate": "CA-PEM"},
        other_products={
            "cf": OtherProduct(
                "cf",
                "cf-123",
                "pas",
                {
                    ".cloud_controller.system_domain": "sys.example.com",
                    ".uaa.admin": {"identity": "admin", "password": "pw"},
                },
            )
        },
    )
    args.update(kw)
    return RenderContext(**args)


# --------------------------------------------------------------------------
# Accessors


ACCESSORS = [
    ("(( .properties.greeting.value ))", {}, "hello"),
    (
        "say (( .properties.greeting.value )), twice (( .properties.greeting.value ))",
        {},
        "say hello, twice hello",
    ),
    ("(( .properties.watch.value ))", {}, 30000),
    ("(( .properties.watch ))", {}, 30000),  # bare reference, as tile-generator writes it
    ("(( .properties.hosts.value ))", {}, "a,b"),
    ("(( .properties.hosts.parsed_strings ))", {}, ["a", "b"]),
    ("(( .properties.ranges.parsed_ip_ranges ))", {}, ["10.0.0.1-10.0.0.2", "10.0.1.9"]),
    ("(( .properties.peers.parsed_network_addresses ))", {}, ["x.example.com", "10.1.1.1"]),
    ("(( .properties.colors.value ))", {}, ["red"]),
    ("(( .properties.api_key.value ))", {".properties.api_key": {"secret": "k3y"}}, "k3y"),
    ("(( .properties.api_key.value ))", {}, None),
    ("(( .properties.api_key.value_present? ))", {}, False),
    ("(( .properties.api_key.value || 'fallback' ))", {}, "fallback"),
    ('(( .properties.api_key.value || "fallback" ))', {".properties.api_key": "k"}, "k"),
    ("(( .properties.greeting.value ? 'yes' : 'no' ))", {}, "yes"),
    ("(( .properties.api_key.value ? 'yes' : 'no' ))", {}, "no"),
    ("(( !.properties.api_key.value_present? && true ))", {}, True),
    ("(( .properties.routes.value || [] ))", {}, []),
    ("(( false || nil ))", {}, None),
    (
        "(( .properties.admin.identity ))",
        {".properties.admin": {"identity": "me", "password": "pw"}},
        "me",
    ),
    ("(( .properties.db.value ))", {}, "internal"),
    ("(( .properties.db.value ))", {".properties.db": "external"}, "External DB"),
    (
        "(( .properties.db.selected_option.parsed_manifest(conn) ))",
        {},
        {"host": "db.internal", "port": 5432},
    ),
    (
        "(( .properties.db.parsed_manifest(conn) ))",
        {".properties.db": "External DB", ".properties.db.external.host": "pg.example.com"},
        {"host": "pg.example.com", "port": 5433},
    ),
    ("(( .properties.db.external.port.value ))", {}, 5433),
    ("(( .properties.db.selected_option.name ))", {}, "internal"),
    (
        "(( .properties.routes.value ))",
        {".properties.routes": [{"host": "a", "port": 80, "token": {"secret": "t"}}]},
        [{"host": "a", "port": 80, "token": "t"}],
    ),
    (
        "(( .properties.routes.parsed_manifest(pairs) ))",
        {".properties.routes": [{"host": "a", "port": 80}, {"host": "b", "port": 81}]},
        ["a:80", "b:81"],
    ),
    (
        "(( .properties.routes.parsed_manifest(items) ))",
        {".properties.routes": [{"host": "a", "port": 80}, {"host": "b", "port": 81}]},
        [{"route": "a"}, {"route": "b"}],
    ),
    ("(( .web.port.value ))", {}, 8080),
    ("(( .web.instances ))", {}, 2),
    ("(( .worker.instances ))", {}, 1),
    (
        "(( .web.ips ))",
        {},
        ["0.web.services-net.shop-0a1b2c.bosh", "1.web.services-net.shop-0a1b2c.bosh"],
    ),
    ("(( .web.ips ))", {".web.static_ips": "10.0.0.10-10.0.0.20"}, ["10.0.0.10", "10.0.0.11"]),
    ("(( .web.first_ip ))", {}, "0.web.services-net.shop-0a1b2c.bosh"),
    ("(( .idle.any_instances ))", {}, False),
    ("(( $director.hostname ))", {}, "bosh.example.com"),
    ("(( $director.ntp_servers ))", {}, None),
    ("(( $ops_manager.ca_certificate ))", {}, "CA-PEM"),
    ("(( $self.service_network ))", {}, "svc"),
    ("(( $self.stemcell_version ))", {}, "1.8"),
    ("(( .deployment_name ))", {}, "shop-0a1b2c"),
    ("(( .network_name ))", {}, "services_net"),
    ("(( ..shop.deployment_name ))", {}, "shop-0a1b2c"),
    ("(( ..cf.deployment_name ))", {}, "cf-123"),
    ("(( ..cf.network_name ))", {}, "pas"),
    ("(( ..cf.present? ))", {}, True),
    ("(( ..p-mysql.present? ))", {}, False),
    (
        "https://uaa.(( ..cf.cloud_controller.system_domain.value ))",
        {},
        "https://uaa.sys.example.com",
    ),
    ("(( ..cf.uaa.admin.password ))", {}, "pw"),
    ("prefix-((( db-password )))-suffix", {}, "prefix-((db-password))-suffix"),
    ("((( /shared/ca.certificate )))", {}, "((/shared/ca.certificate))"),
    ("(( .properties.colors.value )) and (( .properties.api_key.value ))", {}, '["red"] and '),
    ("no expressions here", {}, "no expressions here"),
]


@pytest.mark.parametrize(("text", "extra", "expected"), ACCESSORS)
def test_accessor(shop, values, text, extra, expected):
    assert evaluator(shop, {**values, **extra}, make_ctx())(text) == expected


def test_credential_accessors(shop, values):
    ev = evaluator(shop, values, make_ctx())
    tls = values[".properties.tls"]
    assert ev("(( .properties.tls.cert_pem ))") == tls["cert_pem"]
    assert ev("(( .properties.tls.private_key_pem ))") == tls["private_key_pem"]
    assert (
        ev("(( .properties.tls.cert_and_private_key_pems ))")
        == tls["cert_pem"] + tls["private_key_pem"]
    )
    assert ev("(( .properties.tls.public_key_pem ))").startswith("-----BEGIN PUBLIC KEY-----")
    ssh = values[".properties.ssh"]
    assert ev("(( .properties.ssh.public_key_pem ))") == ssh["public_key_pem"]
    assert ev("(( .properties.ssh.public_key_openssh ))").startswith("ssh-rsa AAAA")
    assert len(ev("(( .properties.ssh.public_key_fingerprint ))").split(":")) == 16
    vcap = values[".properties.vcap"]
    assert ev("(( .properties.vcap.identity ))") == "vcap"
    assert ev("(( .properties.vcap.sha512_hashed_password ))") == sha512_crypt(
        vcap["password"], vcap["salt"]
    )
    assert (
        ev("(( .properties.id.value ))")
        == ev("(( .properties.id.uuid ))")
        == values[".properties.id"]
    )


def test_generated_certificate_domains_were_evaluated(values):
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(values[".properties.tls"]["cert_pem"].encode())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["shop.shop.example.com"]


BAD_ACCESSORS = [
    ("(( .properties.nope.value ))", "unknown property .properties.nope in .properties.nope.value"),
    (
        "(( .properties.greeting.identity ))",
        "unknown accessor .properties.greeting.identity ('identity' on a string)",
    ),
    ("(( .web.nothing ))", "job type 'web' has no property or fact 'nothing'"),
    ("(( $director.favourite_color ))", "unknown accessor $director.favourite_color"),
    (
        "(( ..p-mysql.deployment_name ))",
        "product 'p-mysql' is not installed, needed by ..p-mysql.deployment_name",
    ),
    ("(( ..cf.nothing.value ))", "product 'cf' has no property for ..cf.nothing.value"),
    (
        "(( .properties.db.selected_option.parsed_manifest(nope) ))",
        "option 'internal' of .properties.db has no named manifest 'nope'",
    ),
    ("(( current_record.host.value ))", "only valid inside a collection's named manifest"),
    ("(( .properties.greeting.value ? 'a' ))", "cannot parse"),
    ("(( port.value ))", "unknown accessor port.value"),  # bare job property outside a job
]


@pytest.mark.parametrize(("text", "message"), BAD_ACCESSORS)
def test_bad_accessor(shop, values, text, message):
    with pytest.raises(AccessorError) as exc:
        evaluator(shop, values, make_ctx())(text)
    assert message in exc.value.message


def test_typed_references_into_another_product(shop, values):
    other = load_product_template(
        """
name: p-mysql
product_version: '2'
property_blueprints:
- {name: admin, type: simple_credentials}
- {name: mode, type: selector, configurable: true, default: HA,
   option_templates: [{name: single, select_value: Single}, {name: ha, select_value: HA}]}
job_types:
- name: proxy
  instance_definition: {default: 3}
"""
    )
    ctx = make_ctx(
        other_products={
            "p-mysql": OtherProduct(
                "p-mysql",
                "p-mysql-77",
                "services",
                {".properties.admin": {"identity": "root", "password": "pw"}},
                other,
            )
        }
    )
    ev = evaluator(shop, values, ctx)
    assert ev("(( ..p-mysql.properties.admin.identity ))") == "root"
    assert ev("(( ..p-mysql.properties.mode.value ))") == "HA"
    assert ev("(( ..p-mysql.proxy.instances ))") == 3
    assert ev("(( ..p-mysql.proxy.first_ip ))") == "0.proxy.services.p-mysql-77.bosh"
    with pytest.raises(
        AccessorError, match=r"unknown property \.properties\.nope .* \(in product 'p-mysql'\)"
    ):
        ev("(( ..p-mysql.properties.nope.value ))")


def test_values_of_the_wrong_shape_are_render_errors_not_crashes(shop, values):
    with pytest.raises(RenderError) as exc:
        render_manifest(shop, {**values, ".properties.admin": "user:pass"}, make_ctx())
    assert exc.value.errors == [
        (
            "job_types/web/templates/web/manifest",
            ".properties.admin holds a value of the wrong shape for a simple_credentials (at admin)",
        )
    ]


def test_missing_generated_credential_is_reported_not_rendered_as_nil(shop):
    with pytest.raises(AccessorError, match=r"\.properties\.admin has no generated value yet"):
        evaluator(shop, {}, make_ctx())("(( .properties.admin.password ))")
    assert evaluator(shop, {}, make_ctx())("(( .properties.admin.value_present? ))") is False


def test_find_expressions_handles_nested_parentheses_and_quotes():
    assert find_expressions("a (( x.parsed_manifest(y) )) b") == (
        ("text", "a "),
        ("expr", "x.parsed_manifest(y)"),
        ("text", " b"),
    )
    assert find_expressions("((.p.x.parsed_manifest(y)))") == (("expr", ".p.x.parsed_manifest(y)"),)
    assert find_expressions("(( a ? ')) ' : b ))") == (("expr", "a ? ')) ' : b"),)
    assert find_expressions("((( var )))") == (("bosh", "var"),)


# --------------------------------------------------------------------------
# Manifests


@pytest.fixture(scope="module")
def manifest(shop, values):
    return render_manifest(
        shop,
        values,
        make_ctx(resources={"web": ResourceConfig(instances=3, vm_type="large")}),
    )


def group(manifest, name):
    [ig] = [g for g in manifest["instance_groups"] if g["name"] == name]
    return ig


def test_manifest_top_level(manifest):
    assert manifest["name"] == "shop-0a1b2c"
    assert manifest["releases"] == [
        {"name": "shop-release", "version": "2.0"},
        {"name": "bpm", "version": "1.2"},
    ]
    assert manifest["stemcells"] == [{"alias": "default", "os": "ubuntu-jammy", "version": "1.8"}]
    assert manifest["update"] == {
        "canaries": 2,
        "canary_watch_time": "10000-30000",
        "update_watch_time": "30000-300000",
        "max_in_flight": 1,
        "serial": False,
    }
    assert manifest["variables"] == [
        {"name": "db-password", "type": "password"},
        {
            "name": "/shared/ca",
            "type": "certificate",
            "options": {"is_ca": True, "common_name": "ca"},
        },
    ]
    # 0-instance jobs are left out, errands kept.
    assert [g["name"] for g in manifest["instance_groups"]] == ["web", "worker", "smoke", "cleanup"]
    # It is plain data that survives a YAML round trip.
    assert yaml.safe_load(yaml.safe_dump(manifest)) == manifest


def test_instance_group_from_resource_config_and_job_type(manifest, values):
    web = group(manifest, "web")
    assert web["azs"] == ["az1", "az2"]
    assert web["instances"] == 3
    assert web["vm_type"] == "large"
    assert web["persistent_disk_type"] == "10240"
    assert web["stemcell"] == "default"
    assert web["networks"] == [{"name": "services_net"}]
    assert web["update"] == {"max_in_flight": "25%", "serial": True}
    assert "lifecycle" not in web
    [job, bpm] = web["jobs"]
    assert (job["name"], job["release"]) == ("web", "shop-release")
    admin = values[".properties.admin"]
    assert job["properties"] == {
        "shared": {"greeting": "hello", "from_job_type": "kept", "winner": "template"},
        "port": 8080,
        "instances": 3,
        "admin": f"{admin['identity']}:{admin['password']}",
        "db": {"host": "db.internal", "port": 5432},
        "creds": "((db-password))",
    }
    assert "consumes" not in job  # the internal option's link snippet is empty
    assert job["provides"] == {"web": {"as": "shop-web"}}
    assert bpm["properties"] == {
        "shared": {"greeting": "hello", "from_job_type": "kept", "winner": "job-type"}
    }


def test_singleton_job_and_automatic_vm_type(manifest):
    worker = group(manifest, "worker")
    assert worker["azs"] == ["az1"]
    assert worker["vm_type"] == "micro"  # smallest catalog type; no resource needs given
    assert "persistent_disk" not in worker and "persistent_disk_type" not in worker
    props = worker["jobs"][0]["properties"]
    assert props["web_count"] == 3
    assert props["web_ips"] == [f"{i}.web.services-net.shop-0a1b2c.bosh" for i in range(3)]


def test_errand_instance_groups(manifest):
    smoke = group(manifest, "smoke")
    assert smoke["lifecycle"] == "errand" and smoke["instances"] == 1


def test_automatic_vm_type_meets_resource_definitions(shop, values):
    m = render_manifest(shop, values, make_ctx())
    web = group(m, "web")
    assert web["vm_type"] == "small"  # needs 2048 MB RAM: micro is too small
    assert web["instances"] == 2


def test_static_ips_and_selected_external_db(shop, values):
    m = render_manifest(
        shop,
        {
            **values,
            ".web.static_ips": "10.0.0.10-10.0.0.12,10.0.0.20",
            ".properties.db": "external",
            ".properties.db.external.host": "pg.example.com",
        },
        make_ctx(resources={"web": ResourceConfig(persistent_disk_mb=4096)}),
    )
    web = group(m, "web")
    assert web["networks"] == [
        {"name": "services_net", "static_ips": ["10.0.0.10 - 10.0.0.12", "10.0.0.20"]}
    ]
    assert web["persistent_disk"] == 4096  # no catalog disk type of that size
    job = web["jobs"][0]
    assert job["properties"]["db"] == {"host": "pg.example.com", "port": 5433}
    assert job["consumes"] == {"db": {"from": "external_db"}}
    assert group(m, "worker")["jobs"][0]["properties"]["first_web"] == "10.0.0.10"


def test_variable_prefix(shop, values):
    m = render_manifest(shop, values, make_ctx(variable_prefix="/opsconsole/shop-0a1b2c"))
    assert [v["name"] for v in m["variables"]] == [
        "/opsconsole/shop-0a1b2c/db-password",
        "/shared/ca",
    ]
    assert (
        group(m, "web")["jobs"][0]["properties"]["creds"]
        == "((/opsconsole/shop-0a1b2c/db-password))"
    )


def test_a_release_the_template_does_not_list_renders_as_latest():
    nolist = load_product_template(
        "name: n\nproduct_version: '1'\njob_types: [{name: a, templates: [{name: j, release: r}]}]\n"
    )
    m = render_manifest(nolist, {}, make_ctx())
    assert m["releases"] == [{"name": "r", "version": "latest"}]


RENDER_ERRORS = [
    (
        {"resources": {"web": ResourceConfig(instances=9)}},
        {},
        ("resource_config/web/instances", "9 is above the maximum 5"),
    ),
    (
        {"resources": {"web": ResourceConfig(vm_type="huge")}},
        {},
        ("resource_config/web/vm_type", "'huge' is not in the VM type catalog"),
    ),
    (
        {"resources": {"web": ResourceConfig(persistent_disk_mb=512)}},
        {},
        ("resource_config/web/persistent_disk", "512 MB is below the minimum 1024 MB"),
    ),
    (
        {"vm_types": {}},
        {},
        (
            "resource_config/web/vm_type",
            "no VM type is set and none in the catalog has 1 CPU, 2048 MB RAM and 4096 MB ephemeral disk",
        ),
    ),
    (
        {"stemcell": StemcellRef("ubuntu-xenial", "621")},
        {},
        ("stemcells", "the tile needs a ubuntu-jammy stemcell, not ubuntu-xenial"),
    ),
    ({}, {".properties.ghost": 1}, (".properties.ghost", "unknown property")),
]


@pytest.mark.parametrize(("ctx_kw", "extra", "error"), RENDER_ERRORS)
def test_render_errors_name_the_path(shop, values, ctx_kw, extra, error):
    with pytest.raises(RenderError) as exc:
        render_manifest(shop, {**values, **extra}, make_ctx(**ctx_kw))
    assert error in exc.value.errors


def test_unknown_accessor_in_a_job_manifest_names_the_job_and_template(values):
    t = load_product_template(
        """
name: t
product_version: '1'
property_blueprints: [{name: pw, type: secret}]
job_types:
- name: web_server
  templates:
  - name: nginx
    release: r
    manifest: |
      login_banner:
        text: Hi (( .properties.nope.value ))
      pw: (( .properties.pw.value ))
"""
    )
    with pytest.raises(RenderError) as exc:
        render_manifest(t, {".properties.pw": {"secret": "super-secret-value"}}, make_ctx())
    assert exc.value.errors == [
        (
            "job_types/web_server/templates/nginx/manifest",
            "unknown property .properties.nope in .properties.nope.value (at login_banner.text)",
        )
    ]
    assert "super-secret-value" not in str(exc.value)


def test_runtime_configs(shop, values):
    assert render_runtime_configs(shop, values, make_ctx()) == [
        {
            "name": "banner",
            "runtime_config": {
                "addons": [
                    {
                        "name": "banner",
                        "jobs": [
                            {
                                "name": "login_banner",
                                "release": "os-conf",
                                "properties": {"text": "hello"},
                            }
                        ],
                        "include": {"deployments": ["shop-0a1b2c"]},
                    }
                ]
            },
        }
    ]


def test_errands_to_run(shop):
    assert errands_to_run(shop, make_ctx()) == [("smoke", True)]
    assert errands_to_run(shop, make_ctx(), "pre_delete") == []
    ctx = make_ctx(
        errands={
            "smoke": ErrandConfig(post_deploy=False),
            "cleanup": ErrandConfig(pre_delete="when-changed"),
        }
    )
    assert errands_to_run(shop, ctx) == []
    assert errands_to_run(shop, ctx, "pre_delete") == [("cleanup", "when-changed")]


def test_zero_if_drops_the_instances(values):
    t = load_product_template(
        """
name: z
product_version: '1'
property_blueprints:
- name: mode
  type: selector
  configurable: true
  default: Internal
  option_templates: [{name: internal, select_value: Internal}, {name: external, select_value: External}]
job_types:
- name: db
  instance_definition:
    default: 1
    zero_if: {property_reference: .properties.mode, property_values: [External]}
  templates: [{name: pg, release: r}]
"""
    )
    assert [g["name"] for g in render_manifest(t, {}, make_ctx())["instance_groups"]] == ["db"]
    assert render_manifest(t, {".properties.mode": "external"}, make_ctx())["instance_groups"] == []


def test_deployment_name():
    assert deployment_name("p-redis", "p-redis-3a1b2c3d4e5f") == "p-redis-3a1b2c3d4e5f"
    assert (
        deployment_name("cf", "0a1b2c3d-4e5f-6789-abcd-ef0123456789") == "cf-0a1b2c3d4e5f6789abcd"
    )


# --------------------------------------------------------------------------
# Speed: a template the size of PAS (~400 KB) loads and renders well under a second


def big_template(jobs: int = 45, props_per_job: int = 30) -> str:
    lines = [
        "name: big",
        "product_version: '1.0'",
        "stemcell_criteria: {os: ubuntu-jammy, version: '1.8'}",
        "releases:",
        "- {name: rel, version: '1', file: rel-1.tgz}",
        "property_blueprints:",
    ]
    for i in range(props_per_job * 4):
        lines += [
            f"- name: p{i}",
            "  type: string",
            "  configurable: true",
            f"  default: value-{i}",
            "  constraints:",
            "  - must_match_regex: '\\A[a-z0-9-]*\\z'",
            "    error_message: lower case only",
        ]
    lines += [
        "- name: sel",
        "  type: selector",
        "  configurable: true",
        "  default: a",
        "  option_templates:",
    ]
    for o in "abc":
        lines += [
            f"  - name: {o}",
            f"    select_value: {o}",
            "    property_blueprints: [{name: x, type: integer, configurable: true, default: 1}]",
            "    named_manifests:",
            "    - name: snippet",
            "      manifest: |",
            f"        option: {o}",
            f"        x: (( .properties.sel.{o}.x.value ))",
            "        nested: {deep: [1, 2, 3], more: (( .properties.p1.value ))}",
        ]
    lines.append("job_types:")
    for j in range(jobs):
        lines += [
            f"- name: job{j}",
            f"  resource_label: Job {j}",
            "  instance_definition: {name: instances, configurable: true, default: 2, constraints: {min: 0, max: 10}}",
            "  resource_definitions:",
            "  - {name: ram, configurable: true, default: 1024, constraints: {min: 512}}",
            "  - {name: ephemeral_disk, configurable: true, default: 2048}",
            "  - {name: persistent_disk, configurable: true, default: 10240}",
            "  - {name: cpu, configurable: true, default: 1}",
            "  property_blueprints:",
        ]
        for k in range(props_per_job):
            lines.append(f"  - {{name: q{k}, type: integer, configurable: true, default: {k}}}")
        lines.append("  templates:")
        for t in range(3):
            lines += [f"  - name: t{t}", "    release: rel", "    manifest: |"]
            for k in range(props_per_job):
                lines.append(
                    f"      key{k}: (( .properties.p{(j + k) % (props_per_job * 4)}.value ))"
                )
                lines.append(f"      int{k}: (( q{k}.value ))")
            lines += [
                "      sel: (( .properties.sel.selected_option.parsed_manifest(snippet) ))",
                f"      peers: (( .job{(j + 1) % jobs}.ips ))",
                "      url: https://api.(( .properties.p2.value )):(( .properties.p3.value || 443 ))/v2",
            ]
    return "\n".join(lines) + "\n"


def test_a_pas_sized_template_loads_and_renders():
    """How fast is measured by `python -m benchmarks --suite render`, not here."""
    text = big_template()
    assert len(text) > 370_000
    t = load_product_template(text)
    m = render_manifest(t, {}, make_ctx(stemcell=StemcellRef("ubuntu-jammy", "1.8")))
    assert len(m["instance_groups"]) == 45
    props = m["instance_groups"][7]["jobs"][2]["properties"]
    assert props["key0"] == "value-7" and props["int29"] == 29
    assert props["sel"] == {"option": "a", "x": 1, "nested": {"deep": [1, 2, 3], "more": "value-1"}}
    assert props["url"] == "https://api.value-2:value-3/v2"
