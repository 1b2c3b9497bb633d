"""Variable generation with the cryptography library."""

import base64
import datetime
import hashlib
import ipaddress
import string

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from director.manifest.errors import ManifestError
from director.manifest.interpolate import find_variables, interpolate
from director.manifest.parse import parse_manifest
from director.manifest.variables import generate_missing, generate_variable
from director.manifest.yaml import load_yaml
from tests.corpus import CORPUS, needs_corpus


def _cert(pem):
    return x509.load_pem_x509_certificate(pem.encode())


def _key(pem):
    return serialization.load_pem_private_key(pem.encode(), password=None)


def _public_numbers(obj):
    return obj.public_key().public_numbers()


@pytest.mark.parametrize("options, length", [({}, 20), ({"length": 40}, 40), ({"length": 1}, 1)])
def test_password(options, length):
    values = {
        generate_variable({"name": "p", "type": "password", "options": options}) for _ in range(3)
    }
    assert len(values) == 3 or length == 1
    for v in values:
        assert len(v) == length and set(v) <= set(string.ascii_lowercase + string.digits)


def test_user():
    v = generate_variable({"name": "u", "type": "user", "options": {"username": "admin"}})
    assert v["username"] == "admin" and len(v["password"]) == 20
    assert len(generate_variable({"name": "u", "type": "user"})["username"]) == 20


def test_rsa_public_key_matches_private_key():
    v = generate_variable({"name": "k", "type": "rsa"})
    assert v["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    public = serialization.load_pem_public_key(v["public_key"].encode())
    assert public.public_numbers() == _public_numbers(_key(v["private_key"]))
    assert public.key_size == 2048


def test_ssh_key_and_fingerprint():
    v = generate_variable({"name": "k", "type": "ssh"})
    assert v["public_key"].startswith("ssh-rsa ")
    public = serialization.load_ssh_public_key(v["public_key"].encode())
    assert public.public_numbers() == _public_numbers(_key(v["private_key"]))
    blob = base64.b64decode(v["public_key"].split()[1])
    assert v["public_key_fingerprint"] == base64.b64encode(
        hashlib.sha256(blob).digest()
    ).decode().rstrip("=")


def _store():
    data = {}
    return data, data.get, data.__setitem__


def test_certificate_chain_verifies_and_carries_the_options():
    data, get, put = _store()
    defs = [
        {
            "name": "leaf",
            "type": "certificate",
            "options": {
                "ca": "intermediate",
                "common_name": "node",
                "alternative_names": [
                    "*.cockroachdb.default.cockroachdb.bosh",
                    "10.0.0.5",
                    "fd00::5",
                ],
                "extended_key_usage": ["server_auth", "client_auth"],
                "duration": 30,
            },
        },
        {
            "name": "intermediate",
            "type": "certificate",
            "options": {"ca": "root", "is_ca": True, "common_name": "int"},
        },
        {
            "name": "root",
            "type": "certificate",
            "options": {"is_ca": True, "common_name": "root-ca"},
        },
    ]
    assert generate_missing(defs, get, put) == ["root", "intermediate", "leaf"]
    root, inter, leaf = (_cert(data[n]["certificate"]) for n in ("root", "intermediate", "leaf"))

    root.verify_directly_issued_by(root)
    inter.verify_directly_issued_by(root)
    leaf.verify_directly_issued_by(inter)
    with pytest.raises(ValueError):  # issued by the intermediate, not the root
        leaf.verify_directly_issued_by(root)
    assert data["leaf"]["ca"] == data["intermediate"]["certificate"]
    assert data["root"]["ca"] == data["root"]["certificate"]

    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert inter.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    assert root.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign is True

    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["*.cockroachdb.default.cockroachdb.bosh"]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.5"),
        ipaddress.ip_address("fd00::5"),
    ]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "node"
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert datetime.timedelta(days=30) <= lifetime <= datetime.timedelta(days=30, minutes=10)
    assert _public_numbers(leaf) == _public_numbers(_key(data["leaf"]["private_key"]))


@needs_corpus
def test_generate_missing_only_fills_gaps():
    frag = load_yaml(
        (CORPUS / "deployments/docs-bosh/manifest-v2-variables-fragment.yml").read_text()
    )
    data, get, put = _store()
    put("admin_password", "kept")
    assert generate_missing(frag["variables"], get, put) == ["default_ca", "director_ssl"]
    assert data["admin_password"] == "kept"
    before = dict(data)
    assert generate_missing(frag["variables"], get, put) == []
    assert data == before
    _cert(data["director_ssl"]["certificate"]).verify_directly_issued_by(
        _cert(data["default_ca"]["certificate"])
    )


@needs_corpus
def test_a_ca_already_in_the_store_signs_new_certificates():
    data, get, put = _store()
    generate_missing(
        [
            {
                "name": "/dns_api_tls_ca",
                "type": "certificate",
                "options": {"is_ca": True, "common_name": "old"},
            }
        ],
        get,
        put,
    )
    existing_ca = data["/dns_api_tls_ca"]
    dns = load_yaml((CORPUS / "runtime-configs/bosh-deployment/dns.yml").read_text())
    names = [v["name"] for v in dns["variables"]]
    assert "/dns_api_tls_ca" in names
    generated = generate_missing(dns["variables"], get, put)
    assert sorted(generated) == sorted(set(names) - {"/dns_api_tls_ca"})
    assert data["/dns_api_tls_ca"] is existing_ca
    server = _cert(data["/dns_api_server_tls"]["certificate"])
    server.verify_directly_issued_by(_cert(existing_ca["certificate"]))
    assert data["/dns_api_server_tls"]["ca"] == existing_ca["certificate"]


def test_options_may_reference_other_variables():
    data, get, put = _store()
    put("internal_ip", "10.0.0.7")
    defs = [
        {"name": "ca", "type": "certificate", "options": {"is_ca": True, "common_name": "ca"}},
        {
            "name": "c",
            "type": "certificate",
            "options": {
                "ca": "ca",
                "common_name": "((internal_ip))",
                "alternative_names": ["((internal_ip))"],
            },
        },
    ]
    generate_missing(defs, get, put)
    cert = _cert(data["c"]["certificate"])
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "10.0.0.7"
    assert cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7")]


@needs_corpus
def test_concourse_end_to_end():
    manifest = parse_manifest(
        (CORPUS / "deployments/concourse-bosh-deployment/cluster/concourse.yml").read_text()
    )
    data, get, put = _store()
    assert sorted(generate_missing(manifest["variables"], get, put)) == sorted(
        v["name"] for v in manifest["variables"]
    )
    declared = {v["name"] for v in manifest["variables"]}
    out = interpolate(manifest, lambda n: data[n] if n in declared else f"<{n}>")
    assert find_variables(out) == set()
    assert "ssh-rsa " in str(out)


BAD = [
    (
        {"name": "c", "type": "certificate", "options": {"ca": "nope"}},
        "variables/c/options/ca",
        "certificate authority 'nope' not found",
    ),
    (
        {"name": "c", "type": "certificate", "options": {"extended_key_usage": ["web"]}},
        "variables/c/options/extended_key_usage",
        "must be a list of",
    ),
    (
        {"name": "c", "type": "certificate", "options": {"duration": 0}},
        "variables/c/options/duration",
        "between 1 and",
    ),
    (
        {"name": "c", "type": "certificate", "options": {"is_ca": "yes"}},
        "variables/c/options/is_ca",
        "true or false",
    ),
    (
        {"name": "p", "type": "password", "options": {"length": "long"}},
        "variables/p/options/length",
        "integer",
    ),
    ({"name": "v", "type": "value"}, "variables/v/type", "cannot be generated"),
    ({"name": "x", "type": "secret"}, "variables/x/type", "unknown variable type 'secret'"),
]


@pytest.mark.parametrize("definition, path, text", BAD)
def test_bad_definitions(definition, path, text):
    with pytest.raises(ManifestError) as exc:
        generate_variable(definition)
    assert exc.value.errors[0][0] == path and text in exc.value.errors[0][1]


def test_generate_missing_reports_bad_references_and_cycles_before_storing():
    data, get, put = _store()
    defs = [
        {"name": "a", "type": "certificate", "options": {"ca": "b"}},
        {"name": "b", "type": "certificate", "options": {"ca": "a"}},
        {"name": "c", "type": "certificate", "options": {"ca": "missing"}},
        {"name": "p", "type": "password"},
        {"name": "t", "type": "token"},
    ]
    with pytest.raises(ManifestError) as exc:
        generate_missing(defs, get, put)
    assert exc.value.paths == [
        "variables/t/type",
        "variables/c/options/ca",
        "variables/a/options/ca",
    ]
    assert "a -> b -> a" in str(exc.value)
    assert data == {}
