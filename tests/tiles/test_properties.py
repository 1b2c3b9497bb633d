"""Property blueprint types, value sets, completeness, and generated credentials."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.corpus import TILES as CORPUS
from tests.corpus import needs_corpus
from tiles import properties as props
from tiles.credentials import (
    CredentialError,
    generate_credential,
    generate_missing_credentials,
    make_root_ca,
    sha512_crypt,
)
from tiles.template import load_product_template

DOCS = CORPUS / "docs-tiledev/property-blueprints"


def bp(type_, **kw):
    return {"name": "p", "type": type_, "configurable": True, **kw}


@pytest.fixture(scope="module")
def root_ca():
    return make_root_ca()


@pytest.fixture(scope="module")
def cert(root_ca):
    return generate_credential(
        {"name": "c", "type": "rsa_cert_credentials", "default": {"domains": ["a.example.com"]}},
        root_ca=root_ca,
    )


# --------------------------------------------------------------------------
# One value against one blueprint


VALID = [
    (bp("string"), "hello", "hello"),
    (bp("string"), 90310, "90310"),
    (bp("string"), True, "true"),
    (bp("text"), "two\nlines", "two\nlines"),
    (bp("integer"), "20480", 20480),
    (bp("integer"), 7, 7),
    (bp("boolean"), "true", True),
    (bp("boolean"), False, False),
    (bp("port"), 443, 443),
    (bp("email"), "ops@example.com", "ops@example.com"),
    (bp("domain"), "sys.example.com", "sys.example.com"),
    (bp("wildcard_domain"), "*.apps.example.com", "*.apps.example.com"),
    (bp("http_url"), "https://uaa.example.com:8443/path", "https://uaa.example.com:8443/path"),
    (
        bp("ldap_url"),
        "ldaps://a.example.com ldap://10.0.0.5:389",
        "ldaps://a.example.com ldap://10.0.0.5:389",
    ),
    (bp("ip_address"), "10.0.0.1", "10.0.0.1"),
    (bp("ip_address"), "fd00::1", "fd00::1"),
    (
        bp("ip_ranges"),
        "10.0.0.1 - 10.0.0.5, 10.0.1.0/24,10.0.2.9",
        "10.0.0.1-10.0.0.5,10.0.1.0/24,10.0.2.9",
    ),
    (bp("ip_ranges"), ["10.0.0.1", "10.0.0.3"], "10.0.0.1,10.0.0.3"),
    (bp("network_address"), "nats.service.cf.internal", "nats.service.cf.internal"),
    (bp("network_address_list"), "localhost, 8.8.8.8", "localhost,8.8.8.8"),
    (bp("string_list"), ["a", "b"], "a,b"),
    (bp("string_list"), "a, b ,c", "a,b,c"),
    (bp("secret"), "s3cret", {"secret": "s3cret"}),
    (bp("secret"), {"secret": "s3cret"}, {"secret": "s3cret"}),
    (
        bp("simple_credentials"),
        {"identity": "u", "password": "p"},
        {"identity": "u", "password": "p"},
    ),
    (
        bp("salted_credentials"),
        {"identity": "u", "password": "p", "salt": "ab"},
        {"identity": "u", "password": "p", "salt": "ab"},
    ),
    (bp("dropdown_select", options=[{"name": "kiwi"}, {"name": "lime"}]), "lime", "lime"),
    (
        bp("multi_select_options", options=[{"name": "a"}, {"name": "b"}]),
        ["b", "a", "b"],
        ["b", "a"],
    ),
    (bp("uuid"), "2D6B8A5C-1A4E-4B4F-9C1D-3E2F1A0B9C8D", "2d6b8a5c-1a4e-4b4f-9c1d-3e2f1a0b9c8d"),
    (bp("vm_type_dropdown"), "large", "large"),
    (bp("disk_type_dropdown"), 10240, "10240"),
    (bp("service_network_az_single_select"), "az1", "az1"),
    (bp("service_network_az_multi_select"), ["az1", "az2", "az1"], ["az1", "az2"]),
    (bp("az_multi_select"), "az1", ["az1"]),
    (bp("smtp_authentication"), "login", "login"),
]


@pytest.mark.parametrize(("blueprint", "value", "expected"), VALID)
def test_valid_values_normalise(blueprint, value, expected):
    assert props.validate(blueprint, value) == expected


SELECTOR = bp(
    "selector",
    option_templates=[
        {"name": "pizza_option", "select_value": "Pizza"},
        {"name": "filet_mignon_option", "select_value": "Filet Mignon"},
    ],
)
REGEX = bp(
    "string",
    constraints=[
        {
            "must_match_regex": r"\A[^!@#$%^&*()]*\z",
            "error_message": "This name cannot contain special characters.",
        },
        {"must_match_regex": r"\A[^0-9]*\z", "error_message": "This name cannot contain digits."},
    ],
)

INVALID = [
    (REGEX, "Hello!", "This name cannot contain special characters."),
    (REGEX, "Hello 2", "This name cannot contain digits."),
    (
        bp(
            "secret",
            constraints=[{"must_match_regex": "^[a-zA-Z]{20,}$", "error_message": "20 letters"}],
        ),
        "short",
        "20 letters",
    ),
    (
        bp("string", constraints=[{"must_be_cron_schedule": True, "error_message": "not cron"}]),
        "every day",
        "not cron",
    ),
    (
        bp("integer", constraints={"min": 8, "max": 21}),
        7,
        "Value must be greater than or equal to 8",
    ),
    (
        bp("integer", constraints={"min": 8, "max": 21}),
        22,
        "Value must be less than or equal to 21",
    ),
    (bp("integer", constraints={"can_only_be_odd_or_zero": True}), 4, "odd number or zero"),
    (bp("integer", constraints={"modulo": 3}), 10, "multiple of 3"),
    (bp("integer", constraints={"zero_or_min": 5}), 3, "zero or at least 5"),
    (bp("integer", constraints={"power_of_two": True}), 12, "power of two"),
    (bp("integer"), "12abc", "must be an integer"),
    (bp("integer"), True, "must be an integer"),
    (bp("boolean"), "yes", "must be true or false"),
    (bp("port"), 70000, "between 1 and 65535"),
    (bp("port"), 0, "between 1 and 65535"),
    (bp("ip_address"), "10.0.0.256", "'10.0.0.256' is not a valid IP address"),
    (bp("ip_ranges"), "10.0.0.9-10.0.0.1", "the first address is after the last"),
    (bp("ip_ranges"), "10.0.0.1-fd00::1", "mixes IPv4 and IPv6"),
    (bp("ip_ranges"), "10.0.0.1-10.0.0.x", "'10.0.0.1-10.0.0.x' is not a valid IP range"),
    (bp("ip_ranges"), "10.0.0.0/33", "not a valid CIDR"),
    (
        bp("network_address_list"),
        "good.example.com,bad host",
        "'bad host' is not a valid IP address or host name",
    ),
    (bp("email"), "ops.example.com", "not a valid email address"),
    (bp("domain"), "-bad.example.com", "not a valid domain name"),
    (bp("domain"), "a..b", "not a valid domain name"),
    (bp("wildcard_domain"), "*.*.example.com", "not a valid (wildcard) domain name"),
    (bp("http_url"), "ftp://example.com", "must start with http or https://"),
    (bp("http_url"), "https://", "has no valid host"),
    (
        bp("ldap_url"),
        "ldaps://ok.example.com http://nope.example.com",
        "must start with ldap or ldaps://",
    ),
    (
        bp("dropdown_select", options=[{"name": "kiwi"}, {"name": "lime"}]),
        "mango",
        "'mango' is not one of the options: kiwi, lime",
    ),
    (
        bp("multi_select_options", options=[{"name": "a"}]),
        ["a", "z"],
        "'z' is not one of the options: a",
    ),
    (SELECTOR, "Burger", "'Burger' is not one of the options: Pizza, Filet Mignon"),
    (bp("simple_credentials"), {"identity": "u"}, "password is required"),
    (bp("simple_credentials"), "u:p", "must be a mapping with identity and password"),
    (bp("uuid"), "not-a-uuid", "is not a UUID"),
    (
        bp("ca_certificate"),
        "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
        "PEM-encoded certificates",
    ),
    (bp("smtp_authentication"), "magic", "is not one of: plain, login, cram_md5, none"),
    (bp("string"), None, "value is required"),
    (bp("string"), "   ", "value is required"),
]


@pytest.mark.parametrize(("blueprint", "value", "message"), INVALID)
def test_invalid_values_are_refused_with_a_clear_message(blueprint, value, message):
    with pytest.raises(props.PropertyError) as exc:
        props.validate(blueprint, value)
    assert message in exc.value.message


def test_secret_values_never_appear_in_errors():
    secret_bp = bp(
        "secret", constraints=[{"must_match_regex": "^x", "error_message": "must start with x"}]
    )
    with pytest.raises(props.PropertyError) as exc:
        props.validate(secret_bp, "hunter2-very-secret")
    assert "hunter2" not in str(exc.value)


def test_selector_accepts_option_name_or_select_value():
    assert props.validate(SELECTOR, "filet_mignon_option") == "Filet Mignon"
    assert props.validate(SELECTOR, "Pizza") == "Pizza"


def test_optional_empty_value_is_none():
    assert props.validate(bp("string", optional=True), "") is None


def test_catalog_types_check_the_context():
    ctx = props.ValidationContext(vm_types={"small", "large"}, availability_zones={"az1"})
    assert props.validate(bp("vm_type_dropdown"), "large", ctx) == "large"
    with pytest.raises(props.PropertyError, match="'huge' is not a known VM type"):
        props.validate(bp("vm_type_dropdown"), "huge", ctx)
    with pytest.raises(props.PropertyError, match="'az9' is not a known availability zone"):
        props.validate(bp("service_network_az_multi_select"), ["az1", "az9"], ctx)


def test_rsa_cert_credentials_check_the_pair(cert, root_ca):
    assert props.validate(bp("rsa_cert_credentials"), cert) == cert
    other = generate_credential({"name": "o", "type": "rsa_cert_credentials"}, root_ca=root_ca)
    mixed = {"cert_pem": cert["cert_pem"], "private_key_pem": other["private_key_pem"]}
    with pytest.raises(props.PropertyError, match="does not match the certificate"):
        props.validate(bp("rsa_cert_credentials"), mixed)
    with pytest.raises(props.PropertyError, match="cert_pem is not a PEM certificate"):
        props.validate(bp("rsa_cert_credentials"), {"cert_pem": "x", "private_key_pem": "y"})


def test_ca_certificate_accepts_a_bundle(cert, root_ca):
    bundle = root_ca[0] + cert["cert_pem"]
    assert props.validate(bp("ca_certificate"), bundle) == bundle


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (r"\A[^0-9]*\z", "abc", True),
        (r"\A[^0-9]*\z", "ab1", False),
        (r"\A\h+\z", "deadBEEF", True),
        (r"\A\h+\z", "xyz", False),
        (r"^[[:alpha:]]+$", "abc", True),
        (r"(?<word>foo)bar", "foobar", True),
        (r"\Aabc\Z", "abc\n", True),
        (r"\Aabc\z", "abc\n", False),
        (r"^b$", "a\nb\nc", True),  # Ruby's ^ and $ are line anchors
    ],
)
def test_ruby_regex_translation(pattern, text, matches):
    assert bool(props.ruby_regex(pattern).search(text)) is matches


FLAGS = [
    ("string", False, False, False),
    ("secret", True, True, True),
    ("simple_credentials", True, True, True),
    ("rsa_cert_credentials", True, True, True),
    ("rsa_pkey_credentials", True, True, True),
    ("salted_credentials", True, True, True),
    ("uuid", False, False, True),
    ("ca_certificate", False, False, False),
]


@pytest.mark.parametrize(("type_", "secret", "credential", "generated"), FLAGS)
def test_secret_credential_and_generated_flags(type_, secret, credential, generated):
    blueprint = {"name": "p", "type": type_}  # configurable defaults to false
    assert props.is_secret(blueprint) is secret
    assert props.is_credential(blueprint) is credential
    assert props.is_generated(blueprint) is generated
    assert props.is_generated({**blueprint, "configurable": True}) is False


def test_collection_records_are_validated_field_by_field():
    coll = bp(
        "collection",
        property_blueprints=[
            {"name": "name", "type": "string", "unique": True},
            {"name": "port", "type": "port"},
            {"name": "tls", "type": "boolean"},
            {"name": "guid", "type": "uuid"},
        ],
    )
    records, errors = props.validate_collection(
        coll,
        [
            {"name": "a", "port": {"value": 80, "type": "port"}},
            {"name": "a", "port": 99999},
            {"port": 81, "extra": 1},
        ],
        props.ValidationContext(),
    )
    assert records[0] == {"name": "a", "port": 80, "tls": False}
    assert ("[1].port", "must be between 1 and 65535") in errors
    assert ("[1].name", 'must be unique: row 1 already uses "a"') in errors
    assert ("[2].extra", "unknown field") in errors
    assert ("[2].name", "value is required") in errors


def test_collection_default_records_may_leave_fields_to_the_operator():
    coll = bp(
        "collection",
        default=[{"name": "first"}],
        property_blueprints=[{"name": "name", "type": "string"}, {"name": "key", "type": "text"}],
    )
    t = load_product_template(
        "name: t\nproduct_version: '1'\nproperty_blueprints:\n- " + repr(coll).replace("'", '"')
    )
    assert props.default(coll) == [{"name": "first"}]
    assert props.completeness(t, {}) == [".properties.p[0].key"]


# --------------------------------------------------------------------------
# docs-tiledev examples: one per property type


def load_docs(name: str):
    """The docs pages are fragments: give them the identity a template needs."""
    text = (DOCS / name).read_text()
    return load_product_template(f"name: docs-example\nproduct_version: '1.0'\n{text}", source=name)


DOCS_DEFAULTS = [
    ("ca-certificate.yml", ".properties.ca_cert", None),
    ("collection-0.yml", ".properties.users_to_add", None),
    ("collection-2.yml", ".properties.sysctls", None),
    ("disk-type-dropdown.yml", ".properties.example_disk_type_dropdown", None),
    ("domain.yml", ".properties.example_domain", None),
    ("dropdown-select.yml", ".properties.example_dropdown_select", "kiwi"),
    ("email.yml", ".properties.example_email", None),
    ("http-url.yml", ".properties.example_http_url", "http://example.com"),
    ("integer.yml", ".properties.example_integer1", 9),
    ("integer.yml", ".properties.example_integer2", None),
    ("ip-address.yml", ".properties.example_ip_address", "192.168.0.1"),
    ("ip-ranges.yml", ".properties.example_ip_ranges", "1.1.1.1-1.1.1.4,2.2.2.1-2.2.2.4,3.3.3.3"),
    ("ldap-url.yml", ".properties.example_ldap_url", "ldap://example.com"),
    ("multi-select-options.yml", ".properties.example_multi_select_options", ["earth", "mercury"]),
    ("network-address-list.yml", ".properties.example_network_address_list", "localhost,8.8.8.8"),
    ("port.yml", ".properties.example_port", 3000),
    ("rsa-cert-credentials.yml", ".properties.example_non_configurable_rsa_cert_credentials", None),
    ("rsa-pkey-credentials.yml", ".properties.example_rsa_pkey_credentials", None),
    ("secret-0.yml", ".properties.example_secret", None),
    ("selector.yml", ".properties.example_selector", "Pizza"),
    ("selector.yml", ".properties.example_selector.filet_mignon_option.rarity_dropdown", "rare"),
    ("service-network-az-multi-select.yml", ".properties.service_instance_azs", None),
    (
        "service-network-az-single-select.yml",
        ".properties.example_service_network_az_single_select",
        None,
    ),
    ("simple-credentials.yml", ".properties.example_non_configurable_simple_credentials", None),
    ("smtp-authentication.yml", ".properties.example_smtp_authentication", "plain"),
    ("stemcell-selector.yml", ".properties.example_stemcell_selector", None),
    ("string-list.yml", ".properties.example_string_list", "foo,bar,baz"),
    ("string.yml", ".properties.example_string", "Karl"),
    ("text.yml", ".properties.example_text", "Example\nText\n"),
    ("uuid.yml", ".properties.example_uuid", None),
    ("vm-type-dropdown.yml", ".properties.example_vm_type_dropdown", None),
    ("wildcard-domain.yml", ".properties.example_wildcard_domain", "example.com"),
]


@needs_corpus
def test_every_docs_example_is_in_the_table():
    covered = {name for name, _, _ in DOCS_DEFAULTS} | {"secret-1.yml"}
    assert covered == {p.name for p in DOCS.glob("*.yml")}


@pytest.mark.parametrize(("name", "ref", "expected"), DOCS_DEFAULTS)
@needs_corpus
def test_docs_example_loads_with_its_default(name, ref, expected):
    template = load_docs(name)
    blueprint = template.blueprint(ref)
    assert blueprint is not None
    assert props.default(blueprint) == expected
    if expected is not None and name != "string.yml":
        # A default satisfies its own constraints too.
        assert props.validate(blueprint, expected) == expected


@needs_corpus
def test_docs_string_example_lost_its_regex_anchors():
    # The docs page renders '\A...\z' without backslashes (and '&' as
    # '&amp;'), so its own default no longer matches: we report the tile's
    # error message, as Ops Manager would.
    blueprint = load_docs("string.yml").blueprint(".properties.example_string")
    with pytest.raises(props.PropertyError, match="This name cannot contain special characters."):
        props.validate(blueprint, "Karl")
    # Each constraint applies in turn: this one passes both regexes, then
    # fails the cron schedule check the example also carries.
    with pytest.raises(props.PropertyError, match="must be a valid cron schedule expression"):
        props.validate(blueprint, "Alice z")


@needs_corpus
def test_docs_integer_example_allows_what_its_comments_say():
    t = load_docs("integer.yml")
    one = t.blueprint(".properties.example_integer1")
    two = t.blueprint(".properties.example_integer2")
    allowed_one = [n for n in range(0, 40) if _ok(one, n)]
    allowed_two = [n for n in range(1, 40) if _ok(two, n)]
    assert allowed_one == [9, 15, 21]
    assert allowed_two == [8, 16]


def _ok(blueprint, value):
    try:
        props.validate(blueprint, value)
    except props.PropertyError:
        return False
    return True


@needs_corpus
def test_docs_secret_display_type_fragment_joins_the_secret_example():
    # secret-1.yml is only a form fragment for the secret in secret-0.yml.
    text = (DOCS / "secret-0.yml").read_text() + (DOCS / "secret-1.yml").read_text().replace(
        "form_types:", "extra_forms:", 1
    )
    t = load_product_template(f"name: d\nproduct_version: '1'\n{text}")
    assert t.blueprint(".properties.example_secret")["type"] == "secret"


# --------------------------------------------------------------------------
# Values of a whole product


@pytest.fixture(scope="module")
def example():
    return load_product_template((CORPUS / "om-fixtures/example-product-metadata.yml").read_bytes())


@needs_corpus
def test_validate_values_of_the_example_product(example):
    normalized, errors = props.validate_values(
        example,
        {
            ".web_server.example_string": "Hello there",
            ".web_server.example_port": "8443",
            ".properties.example_selector": "filet_mignon_option",
            ".properties.example_selector.filet_mignon_option.rarity_dropdown": "medium",
            ".properties.example_selector.pizza_option.other_toppings": "olives!",
            ".web_server.example_ip_ranges": "10.0.0.5-10.0.0.1",
            ".properties.example_collection": [
                {"album": "Graceland", "artist": "Paul Simon", "genre": "polka"}
            ],
            ".properties.nope": 1,
            ".web_server.configured_secret": "shh",
        },
    )
    assert normalized[".web_server.example_string"] == "Hello there"
    assert normalized[".web_server.example_port"] == 8443
    assert normalized[".properties.example_selector"] == "Filet Mignon"
    assert (
        normalized[".properties.example_selector.filet_mignon_option.rarity_dropdown"] == "medium"
    )
    assert normalized[".web_server.configured_secret"] == {"secret": "shh"}
    assert errors == {
        ".properties.example_selector.pizza_option.other_toppings": "This name cannot contain special characters.",
        ".web_server.example_ip_ranges": "'10.0.0.5-10.0.0.1': the first address is after the last",
        ".properties.example_collection[0].genre": "'polka' is not one of the options: rock, country, edm",
        ".properties.nope": "unknown property",
    }


@needs_corpus
def test_can_only_increase_uses_the_deployed_value():
    t = load_docs("integer.yml")
    ctx = props.ValidationContext(previous_values={".properties.example_integer1": 15})
    _, errors = props.validate_values(t, {".properties.example_integer1": 9}, ctx)
    assert errors == {".properties.example_integer1": "Value can only increase (it was 15)"}
    normalized, errors = props.validate_values(t, {".properties.example_integer1": 21}, ctx)
    assert errors == {} and normalized[".properties.example_integer1"] == 21


@needs_corpus
def test_freeze_on_deploy_keeps_the_deployed_value(example):
    ctx = props.ValidationContext(
        previous_values={".web_server.example_network_address_list": "1.1.1.1"}
    )
    ref = ".web_server.example_network_address_list"
    _, errors = props.validate_values(example, {ref: "2.2.2.2"}, ctx)
    assert errors == {ref: "This value cannot be changed once it has been deployed"}
    normalized, errors = props.validate_values(example, {ref: " 1.1.1.1 "}, ctx)
    assert errors == {} and normalized[ref] == "1.1.1.1"
    _, errors = props.validate_values(example, {ref: "2.2.2.2"})  # never deployed
    assert errors == {}


@needs_corpus
def test_completeness_of_the_example_product(example):
    missing = props.completeness(example, {})
    assert missing == [
        ".properties.example_required_cert_collection",
        ".properties.required_secret_collection",
    ]
    missing = props.completeness(
        example,
        {
            ".properties.example_required_cert_collection": [{}],
            ".properties.required_secret_collection": [{}],
        },
    )
    assert missing == [".properties.example_required_cert_collection[0].required_collection_cert"]


def test_completeness_follows_the_selected_option():
    t = load_product_template(
        """
name: t
product_version: '1'
property_blueprints:
- name: db
  type: selector
  configurable: true
  default: internal
  option_templates:
  - name: internal
    select_value: internal
  - name: external
    select_value: external
    property_blueprints:
    - {name: host, type: string, configurable: true}
    - {name: port, type: port, configurable: true, default: 5432}
- {name: domain, type: domain, configurable: true}
- {name: note, type: string, configurable: true, optional: true}
- {name: generated, type: secret}
"""
    )
    assert props.completeness(t, {}) == [".properties.domain"]
    assert props.completeness(t, {".properties.db": "external", ".properties.domain": "x.io"}) == [
        ".properties.db.external.host"
    ]


REDACTION = [
    (bp("secret"), {"secret": "s"}, {"secret": "***"}),
    (
        bp("simple_credentials"),
        {"identity": "u", "password": "p"},
        {"identity": "u", "password": "***"},
    ),
    (
        bp("salted_credentials"),
        {"identity": "u", "password": "p", "salt": "x"},
        {"identity": "u", "password": "***", "salt": "***"},
    ),
    (
        bp("rsa_cert_credentials"),
        {"cert_pem": "C", "private_key_pem": "K"},
        {"cert_pem": "C", "private_key_pem": "***"},
    ),
    (bp("string"), "visible", "visible"),
    (
        bp(
            "collection",
            property_blueprints=[{"name": "n", "type": "string"}, {"name": "k", "type": "secret"}],
        ),
        [{"guid": "g1", "n": "a", "k": {"secret": "s1"}}],
        [{"guid": "g1", "n": "a", "k": {"secret": "***"}}],
    ),
]


@pytest.mark.parametrize(("blueprint", "value", "shown"), REDACTION)
def test_redact_and_unredact_round_trip(blueprint, value, shown):
    assert props.redact(blueprint, value) == shown
    # Sending the redacted value back keeps the stored secret.
    assert props.unredact(blueprint, shown, value) == value


def test_unredact_keeps_new_secrets_and_matches_records_by_guid():
    assert props.unredact(
        bp("simple_credentials"),
        {"identity": "v", "password": "new"},
        {"identity": "u", "password": "p"},
    ) == {
        "identity": "v",
        "password": "new",
    }
    coll = bp("collection", property_blueprints=[{"name": "k", "type": "secret"}])
    old = [{"guid": "a", "k": {"secret": "sa"}}, {"guid": "b", "k": {"secret": "sb"}}]
    new = [{"guid": "b", "k": {"secret": "***"}}, {"k": {"secret": "fresh"}}]
    assert props.unredact(coll, new, old) == [
        {"guid": "b", "k": {"secret": "sb"}},
        {"k": {"secret": "fresh"}},
    ]
    # Nothing stored to put back: the placeholder is passed on unchanged.
    assert props.unredact(bp("secret"), {"secret": "***"}, None) == {"secret": "***"}


# --------------------------------------------------------------------------
# Generated credentials


def test_root_ca_is_a_ca(root_ca):
    ca = x509.load_pem_x509_certificate(root_ca[0].encode())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert (
        ca.subject.rfc4514_string().endswith("CN=opsconsole root CA")
        or "opsconsole root CA" in ca.subject.rfc4514_string()
    )


def test_generated_certificate_is_signed_by_the_root_ca_for_its_domains(root_ca):
    value = generate_credential(
        {
            "name": "nats",
            "type": "rsa_cert_credentials",
            "default": {"domains": ["nats.service.cf.internal", "*.nats.internal"]},
        },
        root_ca=root_ca,
    )
    leaf = x509.load_pem_x509_certificate(value["cert_pem"].encode())
    ca = x509.load_pem_x509_certificate(root_ca[0].encode())
    ca.public_key().verify(
        leaf.signature,
        leaf.tbs_certificate_bytes,
        padding.PKCS1v15(),
        leaf.signature_hash_algorithm,
    )
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["nats.service.cf.internal", "*.nats.internal"]
    assert leaf.issuer == ca.subject
    # The pair passes our own validation.
    assert props.validate(bp("rsa_cert_credentials"), value) == value


def test_generated_certificate_is_a_tls_server_and_client_leaf(root_ca):
    # Built by the director's variable generation: a leaf for TLS both ways.
    value = generate_credential(
        {"name": "api", "type": "rsa_cert_credentials", "default": {"domains": ["10.0.0.5"]}},
        root_ca=root_ca,
    )
    leaf = x509.load_pem_x509_certificate(value["cert_pem"].encode())
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    ca = x509.load_pem_x509_certificate(root_ca[0].encode())
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest


def test_explicit_domains_win_and_accessor_domains_are_refused(root_ca):
    blueprint = {
        "name": "c",
        "type": "rsa_cert_credentials",
        "default": {"domains": ["*.(( ..cf.cloud_controller.system_domain.value ))"]},
    }
    with pytest.raises(CredentialError, match="evaluate them first"):
        generate_credential(blueprint, root_ca=root_ca)
    value = generate_credential(blueprint, root_ca=root_ca, domains=["*.sys.example.com"])
    leaf = x509.load_pem_x509_certificate(value["cert_pem"].encode())
    assert leaf.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName) == ["*.sys.example.com"]
    with pytest.raises(CredentialError, match="needs the root CA"):
        generate_credential(blueprint, domains=["a"])


@pytest.mark.parametrize(
    ("blueprint", "keys"),
    [
        ({"type": "simple_credentials", "default": {"identity": "vcap"}}, {"identity", "password"}),
        ({"type": "salted_credentials"}, {"identity", "password", "salt"}),
        ({"type": "secret"}, {"secret"}),
        ({"type": "rsa_pkey_credentials"}, {"private_key_pem", "public_key_pem"}),
    ],
)
def test_generated_values_have_the_normalised_shape(blueprint, keys):
    value = generate_credential({"name": "x", **blueprint})
    assert set(value) == keys
    assert props.validate({"name": "x", **blueprint}, value) == value
    if blueprint.get("default"):
        assert value["identity"] == "vcap"
    assert generate_credential({"name": "x", **blueprint}) != value  # random


def test_generated_uuid_and_unknown_type():
    assert props.validate(bp("uuid"), generate_credential({"type": "uuid"}))
    with pytest.raises(CredentialError, match="type 'string' cannot be generated"):
        generate_credential({"type": "string"})


@needs_corpus
def test_generate_missing_credentials_fills_only_missing_generated_values(example, root_ca):
    existing = {"secret": "keep-me"}
    generated = generate_missing_credentials(
        example, {".web_server.generated_secret": existing}, root_ca=root_ca
    )
    assert ".web_server.generated_secret" not in generated
    assert set(generated) == {
        ".web_server.generated_rsa_cert_credentials",
        ".web_server.generated_rsa_cert_credentials_to_migrate_to_credhub_1_0",
        ".web_server.generated_rsa_pkey_credentials",
        ".web_server.generated_rsa_pkey_credentials_to_migrate_to_credhub_1_0",
        ".web_server.generated_salted_credentials",
        ".web_server.generated_salted_credentials_to_migrate_to_credhub_1_0",
        ".web_server.generated_simple_credentials",
        ".web_server.generated_simple_credentials_to_migrate_to_credhub_1_0",
        ".web_server.generated_secret_to_migrate_to_credhub_1_0",
        ".web_server.generated_uuid",
    }
    normalized, errors = props.validate_values(example, generated)
    assert errors == {}


@needs_corpus
def test_generate_missing_credentials_fills_collection_record_uuids():
    t = load_product_template(
        (CORPUS / "tile-generator/test_metadata_expected_output.yml").read_bytes()
    )
    out = generate_missing_credentials(
        t, {".properties.custom_dynamic_service_plan_1": [{"name": "gold"}]}, root_ca=make_root_ca()
    )
    [record] = out[".properties.custom_dynamic_service_plan_1"]
    assert record["name"] == "gold" and props.validate(bp("uuid"), record["guid"])


def test_sha512_crypt_matches_the_published_test_vectors():
    assert sha512_crypt("Hello world!", "saltstring") == (
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
    )
    assert sha512_crypt("Hello world!", "saltstringsaltstring", rounds=10000) == (
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
    )
