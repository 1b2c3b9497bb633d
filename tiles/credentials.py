"""Generated credentials: what Ops Manager makes for non-configurable properties.

A blueprint of a credential type that the operator does not configure
(``configurable: false``) gets its value generated once, when the tile is
staged, and kept across applies: ``simple_credentials`` (identity +
password), ``salted_credentials`` (+ salt), ``secret``, ``uuid``,
``rsa_pkey_credentials`` and ``rsa_cert_credentials`` (a leaf certificate
signed by the console's root CA, for the blueprint's ``default.domains``).
``make_root_ca()`` creates that root CA.

Keys and certificates come from the director's variable generation
(``director.manifest.variables``), the one place that builds them; this
module keeps what is Ops Manager's: which types are generated, their value
shapes and the root CA's and leaf certificates' options.

Values come back in the normalised shapes of ``tiles.properties``. Nothing
here logs; callers store the values encrypted and never print them.
"""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from director import passwords
from director.manifest.variables import generate_variable
from tiles import properties as props

__all__ = [
    "CredentialError",
    "make_root_ca",
    "generate_credential",
    "generate_missing_credentials",
    "sha512_crypt",
    "GENERATED_TYPES",
]

GENERATED_TYPES = (
    "simple_credentials",
    "salted_credentials",
    "secret",
    "uuid",
    "rsa_pkey_credentials",
    "rsa_cert_credentials",
)
_ALPHABET = string.ascii_letters + string.digits
ROOT_CA_DAYS = 4 * 365
LEAF_DAYS = 2 * 365
MAX_CRYPT_PASSWORD_BYTES = props.MAX_SALTED_PASSWORD_BYTES


class CredentialError(ValueError):
    """A credential cannot be generated (bad blueprint, no root CA, ...)."""


def _random(n: int = 20, alphabet: str = _ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _variable(var_def: dict, issuer: tuple[str, str] | None = None) -> dict:
    """A value from the director's variable generation (one place for keys and
    certificates); ``issuer`` is the signing CA ``(cert_pem, key_pem)``."""
    ca = {"certificate": issuer[0], "private_key": issuer[1]} if issuer else None
    return generate_variable(var_def, lambda name: ca)


def make_root_ca(common_name: str = "opsconsole root CA") -> tuple[str, str]:
    """A self-signed RSA root CA: ``(cert_pem, key_pem)``, valid four years."""
    value = _variable(
        {
            "name": "root_ca",
            "type": "certificate",
            "options": {
                "common_name": common_name,
                "is_ca": True,
                "organization": "opsconsole",
                "duration": ROOT_CA_DAYS,
                "key_usage": ["digital_signature", "key_cert_sign", "crl_sign"],
            },
        }
    )
    return value["certificate"], value["private_key"]


def _leaf_cert(
    root_ca: tuple[str, str], domains: Sequence[str], common_name: str
) -> tuple[str, str]:
    """A server and client certificate signed by ``root_ca`` for ``domains``
    (IP addresses become IP SANs)."""
    value = _variable(
        {
            "name": "leaf",
            "type": "certificate",
            "options": {
                "common_name": common_name[:64],
                "alternative_names": list(domains),
                "ca": "root_ca",
                "extended_key_usage": ["server_auth", "client_auth"],
                "organization": "opsconsole",
                "duration": LEAF_DAYS,
            },
        },
        issuer=root_ca,
    )
    return value["certificate"], value["private_key"]


def generate_credential(
    blueprint: Mapping,
    *,
    root_ca: tuple[str, str] | None = None,
    domains: Sequence[str] | None = None,
) -> Any:
    """Generate a value for a generatable blueprint type.

    ``rsa_cert_credentials`` needs ``root_ca`` and uses ``domains`` if given,
    else the blueprint's ``default.domains``; domains that still hold
    ``(( ... ))`` accessors must be evaluated by the caller first
    (``tiles.accessors.evaluate_text``).
    """
    t = blueprint.get("type")
    hint = blueprint.get("default") if isinstance(blueprint.get("default"), Mapping) else {}
    if t == "secret":
        return {"secret": _random()}
    if t == "uuid":
        return str(uuid.uuid4())
    if t == "simple_credentials":
        return {"identity": str(hint.get("identity") or _random()), "password": _random()}
    if t == "salted_credentials":
        return {
            "identity": str(hint.get("identity") or _random()),
            "password": _random(),
            "salt": _random(16, "0123456789abcdef"),
        }
    if t == "rsa_pkey_credentials":
        key = _variable({"name": "key", "type": "rsa"})
        return {"private_key_pem": key["private_key"], "public_key_pem": key["public_key"]}
    if t == "rsa_cert_credentials":
        if root_ca is None:
            raise CredentialError("generating a certificate needs the root CA")
        if domains is None:
            domains = hint.get("domains") or []
        domains = [str(d) for d in domains]
        if any("((" in d for d in domains):
            raise CredentialError(
                f"{blueprint.get('name')}: domains hold accessors; evaluate them first"
            )
        cert_pem, key_pem = _leaf_cert(
            root_ca, domains, domains[0] if domains else str(blueprint.get("name", "opsconsole"))
        )
        return {"cert_pem": cert_pem, "private_key_pem": key_pem}
    raise CredentialError(f"type '{t}' cannot be generated")


def generate_missing_credentials(
    template,
    values: Mapping[str, Any],
    *,
    root_ca: tuple[str, str] | None = None,
    domain_evaluator: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """Values to add so every generated property of ``template`` has one.

    Covers top-level, job and selector-option properties that are not
    configurable, and ``uuid``/generated fields of existing collection
    records (the collection's whole new list is returned). Existing values
    are never replaced. ``domain_evaluator`` turns ``(( ))`` in certificate
    domains into text (see ``tiles.accessors.evaluate_text``).
    """
    out: dict[str, Any] = {}
    for pref in template.iter_property_references():
        bp = pref.blueprint
        ref = pref.reference
        if bp.get("type") == "collection":
            records = values.get(ref)
            if not isinstance(records, list) or not records:
                continue
            changed = False
            new_records = []
            for rec in records:
                rec = dict(rec)
                for fbp in props.CollectionType.fields(bp):
                    name = fbp.get("name")
                    if props.is_generated(fbp, in_collection=True) and props.is_empty(
                        rec.get(name)
                    ):
                        rec[name] = _generate(fbp, root_ca, domain_evaluator)
                        changed = True
                new_records.append(rec)
            if changed:
                out[ref] = new_records
            continue
        if props.is_generated(bp) and props.is_empty(values.get(ref)):
            out[ref] = _generate(bp, root_ca, domain_evaluator)
    return out


def _generate(bp, root_ca, domain_evaluator):
    domains = None
    if bp.get("type") == "rsa_cert_credentials" and isinstance(bp.get("default"), Mapping):
        raw = bp["default"].get("domains") or []
        if domain_evaluator is not None:
            domains = [domain_evaluator(str(d)) if "((" in str(d) else str(d) for d in raw]
    return generate_credential(bp, root_ca=root_ca, domains=domains)


# --------------------------------------------------------------------------
# SHA-512 crypt ($6$), for the salted_credentials accessor
# ``sha512_hashed_password``; the algorithm of glibc's crypt(3) (Drepper).


def sha512_crypt(password: str, salt: str, rounds: int | None = None) -> str:
    """``$6$<salt>$<hash>`` as crypt(3) computes it (salt cut to 16 chars).

    The algorithm hashes the password once per byte of it (quadratic), so
    passwords longer than ``MAX_CRYPT_PASSWORD_BYTES`` are refused with a
    CredentialError, as passlib does, instead of exhausting memory.
    """
    if not isinstance(password, str) or not isinstance(salt, str):
        raise CredentialError("password and salt must be strings")
    if not props.valid_crypt_salt(salt):
        raise CredentialError("salt must be printable ASCII without '$' or ':'")
    if len(password.encode()) > MAX_CRYPT_PASSWORD_BYTES:
        raise CredentialError(f"password is longer than {MAX_CRYPT_PASSWORD_BYTES} bytes")
    return passwords.sha512_crypt(password, salt, rounds)
