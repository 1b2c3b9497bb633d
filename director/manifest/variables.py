"""Generated credentials: the manifest's ``variables:`` section.

A variable definition is ``{name, type, options}``. Types we generate, with
the value shapes BOSH (CLI vars-store / CredHub) uses, so ``((name.key))``
works the same:

* ``password`` — 20 random lowercase letters and digits (``length`` option).
* ``user`` — ``{username, password}`` (``username`` option fixes the name).
* ``rsa`` — ``{private_key, public_key}`` PEM (PKCS#1 private, SubjectPublicKeyInfo public).
* ``ssh`` — ``{private_key, public_key, public_key_fingerprint}``; the public
  key in OpenSSH form, the fingerprint like CredHub's (unpadded base64 SHA-256).
* ``certificate`` — ``{ca, certificate, private_key}`` PEM. Options:
  ``common_name``, ``alternative_names`` (IPs become IP SANs, the rest DNS
  SANs), ``is_ca`` (basic constraints CA:TRUE, may sign certificates and
  CRLs), ``ca`` (the name of another certificate variable that signs this
  one; its certificate becomes ``ca``), ``extended_key_usage``
  (``server_auth``, ``client_auth``, ``code_signing``, ``email_protection``,
  ``timestamping``), ``key_usage``, ``duration`` (days, default 365),
  ``organization``, ``key_length`` (default 2048). Without ``ca`` the
  certificate is self-signed and is its own ``ca``.

``value`` and ``json`` variables are never generated: an operator sets them.

``generate_missing`` fills a variable store: it orders definitions so that a
CA is generated before the certificates it signs, and only generates what the
store does not hold yet (BOSH's ``no-overwrite`` mode). Private keys and
passwords are never put in errors or logs.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import secrets
import string
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import ErrorCollector, ManifestError, join_path
from .interpolate import PLACEHOLDER, interpolate

GENERATED_TYPES = ("password", "user", "rsa", "ssh", "certificate")
PROVIDED_TYPES = ("value", "json")
PASSWORD_CHARS = string.ascii_lowercase + string.digits
EXTENDED_KEY_USAGES = {
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
}
KEY_USAGES = (
    "digital_signature",
    "non_repudiation",  # x509 calls it content_commitment
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def _random(n: int, alphabet: str = PASSWORD_CHARS) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _rsa_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


class VariableError(ValueError):
    """A problem with one definition: ``path`` is relative to the variable."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path


def _int_option(options: dict, key: str, default: int, low: int, high: int) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise VariableError(f"options/{key}", f"must be an integer between {low} and {high}")
    return value


def _certificate(options: dict, lookup: Callable[[str], dict | None]) -> dict:
    bits = _int_option(options, "key_length", 2048, 1024, 8192)
    days = _int_option(options, "duration", 365, 1, 36500)
    is_ca = options.get("is_ca", False)
    if not isinstance(is_ca, bool):
        raise VariableError("options/is_ca", "must be true or false")
    common_name = options.get("common_name")
    if common_name is not None and not isinstance(common_name, str):
        raise VariableError("options/common_name", "must be a string")
    alt_names = options.get("alternative_names") or []
    if not isinstance(alt_names, list) or not all(isinstance(n, str) for n in alt_names):
        raise VariableError("options/alternative_names", "must be a list of names or IP addresses")
    ekus = options.get("extended_key_usage") or []
    if not isinstance(ekus, list) or any(u not in EXTENDED_KEY_USAGES for u in ekus):
        raise VariableError(
            "options/extended_key_usage", f"must be a list of: {', '.join(EXTENDED_KEY_USAGES)}"
        )
    usages = options.get("key_usage")
    if usages is not None and (
        not isinstance(usages, list) or any(u not in KEY_USAGES for u in usages)
    ):
        raise VariableError("options/key_usage", f"must be a list of: {', '.join(KEY_USAGES)}")
    organization = options.get("organization", "Cloud Foundry")

    key = _rsa_key(bits)
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, str(organization))]
    if common_name:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    subject = x509.Name(attrs)

    ca_name = options.get("ca")
    if ca_name:
        issuer_value = lookup(ca_name)
        if (
            not isinstance(issuer_value, dict)
            or not issuer_value.get("certificate")
            or not issuer_value.get("private_key")
        ):
            raise VariableError(
                "options/ca",
                f"certificate authority '{ca_name}' not found (or has no certificate and private key)",
            )
        issuer_cert = x509.load_pem_x509_certificate(issuer_value["certificate"].encode())
        issuer_key = serialization.load_pem_private_key(
            issuer_value["private_key"].encode(), password=None
        )
        issuer_name = issuer_cert.subject
        issuer_ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        ca_pem = issuer_value["certificate"]
    else:
        issuer_key, issuer_name, issuer_ski, ca_pem = key, subject, None, None

    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_ski is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
            critical=False,
        )
    if usages is None:
        usages = (
            ["key_cert_sign", "crl_sign"] if is_ca else ["digital_signature", "key_encipherment"]
        )
    flags = {u: u in usages for u in KEY_USAGES}
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=flags["digital_signature"],
            content_commitment=flags["non_repudiation"],
            key_encipherment=flags["key_encipherment"],
            data_encipherment=flags["data_encipherment"],
            key_agreement=flags["key_agreement"],
            key_cert_sign=flags["key_cert_sign"],
            crl_sign=flags["crl_sign"],
            encipher_only=flags["encipher_only"] and flags["key_agreement"],
            decipher_only=flags["decipher_only"] and flags["key_agreement"],
        ),
        critical=True,
    )
    if ekus:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([EXTENDED_KEY_USAGES[u] for u in ekus]), critical=False
        )
    if alt_names:
        sans: list[x509.GeneralName] = []
        for name in alt_names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return {"ca": ca_pem or cert_pem, "certificate": cert_pem, "private_key": _private_pem(key)}


def _ssh(options: dict) -> dict:
    key = _rsa_key(_int_option(options, "key_length", 2048, 1024, 8192))
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    blob = base64.b64decode(public.split()[1])
    fingerprint = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return {
        "private_key": _private_pem(key),
        "public_key": public.decode(),
        "public_key_fingerprint": fingerprint,
    }


def generate_variable(
    var_def: dict, lookup: Callable[[str], dict | None] = lambda name: None
) -> Any:
    """Generate a fresh value for one variable definition.

    ``lookup(name)`` returns another variable's stored value or None; it is
    used to find the signing CA of a certificate. Raises
    :class:`ManifestError` naming ``variables/<name>/...``.
    """
    name = var_def.get("name", "?")
    base = join_path("variables", name)
    kind = var_def.get("type")
    options = var_def.get("options") or {}
    try:
        if not isinstance(options, dict):
            raise VariableError("options", "must be a map")
        if kind == "password":
            return _random(_int_option(options, "length", 20, 1, 1024))
        if kind == "user":
            username = options.get("username") or _random(20, string.ascii_lowercase)
            return {
                "username": str(username),
                "password": _random(_int_option(options, "length", 20, 1, 1024)),
            }
        if kind == "rsa":
            key = _rsa_key(_int_option(options, "key_length", 2048, 1024, 8192))
            return {"private_key": _private_pem(key), "public_key": _public_pem(key)}
        if kind == "ssh":
            return _ssh(options)
        if kind == "certificate":
            return _certificate(options, lookup)
        if kind in PROVIDED_TYPES:
            raise VariableError(
                "type",
                f"a '{kind}' variable cannot be generated; set its value in the variable store",
            )
        raise VariableError(
            "type",
            f"unknown variable type '{kind}' (expected one of: {', '.join(GENERATED_TYPES + PROVIDED_TYPES)})",
        )
    except VariableError as exc:
        raise ManifestError([(join_path(base, exc.path), str(exc))], "variables") from None


def _order(defs: list[dict], e: ErrorCollector) -> list[dict]:
    """Definitions sorted so that each certificate's ``ca`` comes first; cycles are errors."""
    by_name = {d["name"]: d for d in defs}
    ordered: list[dict] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = chain[chain.index(name) :] + [name]
            e.add(
                join_path("variables", name, "options/ca"),
                "certificate authorities form a cycle: " + " -> ".join(cycle),
            )
            return
        state[name] = "visiting"
        ca = (
            (by_name[name].get("options") or {}).get("ca")
            if by_name[name].get("type") == "certificate"
            else None
        )
        if isinstance(ca, str) and ca in by_name:
            visit(ca, [*chain, name])
        state[name] = "done"
        ordered.append(by_name[name])

    for d in defs:
        visit(d["name"], [])
    return ordered


def generate_missing(
    variable_defs: list[dict],
    store_get: Callable[[str], Any],
    store_put: Callable[[str, Any], None],
) -> list[str]:
    """Generate and store every defined variable the store does not hold yet.

    ``store_get(name)`` returns the stored value or None; ``store_put(name,
    value)`` stores a new one. Option values may use ``((other_variable))``
    (resolved from the store). Returns the names generated, in order.
    Raises :class:`ManifestError` (nothing is stored if a definition is bad).
    """
    e = ErrorCollector()
    defs = []
    for i, d in enumerate(variable_defs or []):
        if not isinstance(d, dict) or not isinstance(d.get("name"), str):
            e.add(join_path("variables", i), "must be a map with a name")
            continue
        kind = d.get("type")
        if kind not in GENERATED_TYPES + PROVIDED_TYPES:
            e.add(join_path("variables", d["name"], "type"), f"unknown variable type '{kind}'")
            continue
        defs.append(d)
    names = {d["name"] for d in defs}
    for d in defs:
        ca = (d.get("options") or {}).get("ca") if d.get("type") == "certificate" else None
        if isinstance(ca, str) and ca not in names and store_get(ca) is None:
            e.add(
                join_path("variables", d["name"], "options/ca"),
                f"certificate authority '{ca}' is neither defined nor stored",
            )
    ordered = _order(defs, e)
    e.raise_if_any("variables")

    def lookup(name: str) -> Any:
        value = store_get(name)
        if value is None:
            raise KeyError(name)
        return value

    generated = []
    for d in ordered:
        if d.get("type") in PROVIDED_TYPES or store_get(d["name"]) is not None:
            continue
        if any(PLACEHOLDER.search(str(v)) for v in _scalars(d.get("options"))):
            d = {**d, "options": interpolate(d["options"], lookup)}
        store_put(d["name"], generate_variable(d, store_get))
        generated.append(d["name"])
    return generated


def _scalars(node: Any):
    if isinstance(node, dict):
        for v in node.values():
            yield from _scalars(v)
    elif isinstance(node, list):
        for v in node:
            yield from _scalars(v)
    elif node is not None:
        yield node
