"""Credential types and reading secrets back as Ops Manager's ``***``.

``secret``: ``{"secret": str}``; ``simple_credentials``: ``{"identity",
"password"}``; ``salted_credentials``: ``{"identity", "password", "salt"}``;
``rsa_cert_credentials``: ``{"cert_pem", "private_key_pem"}``;
``rsa_pkey_credentials``: ``{"private_key_pem", "public_key_pem"}``;
``ca_certificate``: PEM text (not a secret). ``redact()``/``unredact()``
mask and restore the secret parts of these shapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tiles.properties.base import PropertyError, PropertyType
from tiles.properties.collection import CollectionType
from tiles.properties.constraints import check_string_constraints
from tiles.properties.scalar import StringType

MAX_SALTED_PASSWORD_BYTES = 4096


_CRYPT_SALT = re.compile(r"[!-#%-9;-~]+")  # printable ASCII but '$' and ':', crypt's separators


def valid_crypt_salt(salt: Any) -> bool:
    """A salt sha512-crypt can embed in ``$6$<salt>$<hash>``."""
    return isinstance(salt, str) and bool(_CRYPT_SALT.fullmatch(salt))


def _cred_dict(value: Any, keys: Iterable[str], what: str) -> dict:
    if not isinstance(value, Mapping):
        raise PropertyError(f"must be a mapping with {what}")
    out = {}
    for k in keys:
        v = value.get(k)
        if not isinstance(v, str) or not v.strip():
            raise PropertyError(f"{k} is required")
        out[k] = v
    return out


class SecretType(PropertyType):
    name = "secret"
    secret = credential = generatable = True

    def coerce(self, bp, value, ctx):
        if isinstance(value, Mapping):
            value = value.get("secret")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise PropertyError("must be a string")
        return {"secret": str(value)}

    def constraints(self, bp, value, ctx):
        check_string_constraints(bp, value["secret"])

    def default(self, bp):
        return None  # never a literal default for a secret


class SimpleCredentialsType(PropertyType):
    name = "simple_credentials"
    secret = credential = generatable = True

    def coerce(self, bp, value, ctx):
        return _cred_dict(value, ("identity", "password"), "identity and password")

    def default(self, bp):
        return None  # ``default: {identity: vcap}`` is a generation hint


class SaltedCredentialsType(PropertyType):
    name = "salted_credentials"
    secret = credential = generatable = True

    def coerce(self, bp, value, ctx):
        creds = _cred_dict(value, ("identity", "password", "salt"), "identity, password and salt")
        if not valid_crypt_salt(creds["salt"]):
            raise PropertyError("salt must be printable ASCII without '$' or ':'")
        if len(creds["password"].encode()) > MAX_SALTED_PASSWORD_BYTES:
            # sha512-crypt is quadratic in the password length.
            raise PropertyError(f"password is longer than {MAX_SALTED_PASSWORD_BYTES} bytes")
        return creds

    def default(self, bp):
        return None


class RsaCertCredentialsType(PropertyType):
    name = "rsa_cert_credentials"
    secret = credential = generatable = True

    def coerce(self, bp, value, ctx):
        creds = _cred_dict(value, ("cert_pem", "private_key_pem"), "cert_pem and private_key_pem")
        try:
            cert = x509.load_pem_x509_certificate(creds["cert_pem"].encode())
        except ValueError:
            raise PropertyError("cert_pem is not a PEM certificate") from None
        try:
            key = serialization.load_pem_private_key(creds["private_key_pem"].encode(), None)
        except (ValueError, TypeError):
            raise PropertyError("private_key_pem is not an unencrypted PEM private key") from None
        fmt = serialization.PublicFormat.SubjectPublicKeyInfo
        enc = serialization.Encoding.DER
        if cert.public_key().public_bytes(enc, fmt) != key.public_key().public_bytes(enc, fmt):
            raise PropertyError("the private key does not match the certificate")
        return creds

    def default(self, bp):
        return None  # ``default: {domains: [...]}`` is a generation hint


class RsaPkeyCredentialsType(PropertyType):
    name = "rsa_pkey_credentials"
    secret = credential = generatable = True

    def coerce(self, bp, value, ctx):
        if not isinstance(value, Mapping) or not isinstance(value.get("private_key_pem"), str):
            raise PropertyError("private_key_pem is required")
        try:
            key = serialization.load_pem_private_key(value["private_key_pem"].encode(), None)
        except (ValueError, TypeError):
            raise PropertyError("private_key_pem is not an unencrypted PEM private key") from None
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"private_key_pem": value["private_key_pem"], "public_key_pem": public.decode()}

    def default(self, bp):
        return None


class CaCertificateType(StringType):
    name = "ca_certificate"

    def coerce(self, bp, value, ctx):
        text = super().coerce(bp, value, ctx)
        try:
            x509.load_pem_x509_certificates(text.encode())
        except ValueError:
            raise PropertyError("must be one or more PEM-encoded certificates") from None
        return text


# --------------------------------------------------------------------------
# Reading secrets back: Ops Manager's "***"

REDACTED = "***"
_SECRET_KEYS = {
    "secret": ("secret",),
    "simple_credentials": ("password",),
    "salted_credentials": ("password", "salt"),
    "rsa_cert_credentials": ("private_key_pem",),
    "rsa_pkey_credentials": ("private_key_pem",),
}


def redact(blueprint: Mapping, value: Any) -> Any:
    """The value as the API and forms show it: secret parts as ``***``.

    Identities, certificates and public keys stay readable, as in Ops
    Manager; collection records are redacted field by field.
    """
    t = blueprint.get("type")
    if value is None:
        return None
    if t == "collection" and isinstance(value, list):
        fields = {f.get("name"): f for f in CollectionType.fields(blueprint)}
        return [
            {k: redact(fields[k], v) if k in fields else v for k, v in rec.items()}
            if isinstance(rec, Mapping)
            else rec
            for rec in value
        ]
    keys = _SECRET_KEYS.get(t)
    if not keys:
        return value
    if t == "secret" and not isinstance(value, Mapping):
        return {"secret": REDACTED}
    if not isinstance(value, Mapping):
        return REDACTED
    return {k: (REDACTED if k in keys else v) for k, v in value.items()}


def unredact(blueprint: Mapping, new: Any, old: Any) -> Any:
    """Put back stored secret parts that come back from a form as ``***``.

    A form or API client that read a redacted value and sends it back
    unchanged must not overwrite the secret with the placeholder.
    """
    t = blueprint.get("type")
    if new == REDACTED:
        return old
    if t == "collection" and isinstance(new, list):
        fields = {f.get("name"): f for f in CollectionType.fields(blueprint)}
        olds = old if isinstance(old, list) else []
        by_guid = {
            r["guid"]: r for r in olds if isinstance(r, Mapping) and isinstance(r.get("guid"), str)
        }
        out = []
        for i, rec in enumerate(new):
            if not isinstance(rec, Mapping):
                out.append(rec)
                continue
            guid = rec.get("guid")
            prev = by_guid.get(guid) if isinstance(guid, str) and guid else None
            if prev is None and i < len(olds) and isinstance(olds[i], Mapping) and not by_guid:
                prev = olds[i]
            prev = prev or {}
            out.append(
                {
                    k: unredact(fields[k], v, prev.get(k)) if k in fields else v
                    for k, v in rec.items()
                }
            )
        return out
    keys = _SECRET_KEYS.get(t)
    if not keys or not isinstance(new, Mapping):
        return new
    old_map = old if isinstance(old, Mapping) else {}
    merged = dict(new)
    for k in keys:
        if merged.get(k) == REDACTED:
            if k not in old_map:
                return new  # nothing stored to put back; validation will refuse "***"
            merged[k] = old_map[k]
    return merged
