"""Accessors of secrets and credentials, and secrets by reference.

``.identity``, ``.password``, ``.cert_pem``, ``.sha512_hashed_password``,
``.public_key_openssh`` ... of the credential types; with a
``credential_root`` each renders as the director variable holding it, and
``credential_values()`` lists what the variable store must hold.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import serialization

from tiles import properties as props
from tiles.accessors.scope import (
    Scope,
    credential_name,
    effective_values,
    manifest_value,
    record_id,
)
from tiles.accessors.syntax import AccessorError, Ref
from tiles.credentials import CredentialError, sha512_crypt
from tiles.template import ProductTemplate

#: Where Ops Manager keeps tile credentials in CredHub; ours is the director's variable store.
CREDENTIAL_ROOT = "/opsmgr"


def _placeholder(scope: Scope, pref: str, key: str) -> str:
    name = credential_name(scope.ctx.credential_root, scope.ctx.deployment_name, pref)
    return f"(({name}.{key}))"


def _is_secret_type(bp: Mapping) -> bool:
    return bp.get("type") in CREDENTIAL_KEYS or bp.get("type") == "secret"


def property_value(scope: Scope, pref: str, bp: Mapping, value: Any) -> Any:
    """``.value`` of a property: ``manifest_value``, with secrets as references when asked."""
    if not scope.ctx.credential_root or props.is_empty(value):
        return manifest_value(bp, value)
    t = bp.get("type")
    if t == "secret":
        return _placeholder(scope, pref, "value")
    if t in CREDENTIAL_KEYS and isinstance(value, Mapping):
        return {k: _placeholder(scope, pref, k) for k in value}
    if t == "collection" and isinstance(value, list):
        fields = {f.get("name"): f for f in props.CollectionType.fields(bp)}
        out = []
        for i, rec in enumerate(value):
            if not isinstance(rec, Mapping):
                continue
            rid = f"{pref}.{record_id(rec, i)}"
            out.append(
                {
                    k: (property_value(scope, f"{rid}.{k}", fields[k], v) if k in fields else v)
                    for k, v in rec.items()
                }
            )
        return out
    return manifest_value(bp, value)


def _credential_entry(pref: str, bp: Mapping, value: Any) -> dict[str, Any] | None:
    """What the variable of one secret property holds: every accessor it answers."""
    if props.is_empty(value):
        return None
    if bp.get("type") == "secret":
        secret = value.get("secret") if isinstance(value, Mapping) else value
        return None if props.is_empty(secret) else {"value": secret}
    if not isinstance(value, Mapping):
        return None
    t = bp.get("type")
    keys = set(CREDENTIAL_KEYS[t]) | set(value)
    if t == "salted_credentials":
        keys.add("sha512_hashed_password")
    elif t == "rsa_cert_credentials":
        keys |= {"public_key_pem", "cert_and_private_key_pems"}
    elif t == "rsa_pkey_credentials":
        keys |= {"public_key_openssh", "public_key_fingerprint"}
    out = {}
    for key in sorted(keys):
        try:
            v = _credential_value(Ref(pref, "dot", ()), pref, bp, value, key)
        except AccessorError:
            continue  # the render names a malformed credential; store what is good
        if isinstance(v, str) and v:
            out[key] = v
    return out or None


def credential_values(
    template: ProductTemplate, values: Mapping[str, Any], root: str, deployment: str
) -> dict[str, dict[str, Any]]:
    """Variable name -> value for every secret and credential the product has a value for.

    What the director's variable store must hold for the references a
    render with ``credential_root=root`` writes (see the module docstring):
    ``{"value": s}`` for a secret, the credential's keys and derived
    accessors (``sha512_hashed_password``, ``public_key_openssh`` ...) for
    the others, collection record fields under their record's guid.
    """
    out: dict[str, dict[str, Any]] = {}
    effective = effective_values(template, values)
    for pref in template.iter_property_references():
        bp, ref = pref.blueprint, pref.reference
        value = effective.get(ref)
        if bp.get("type") == "collection" and isinstance(value, list):
            fields = [f for f in props.CollectionType.fields(bp) if _is_secret_type(f)]
            for i, rec in enumerate(value):
                if not isinstance(rec, Mapping):
                    continue
                for f in fields:
                    fref = f"{ref}.{record_id(rec, i)}.{f.get('name')}"
                    entry = _credential_entry(fref, f, rec.get(f.get("name")))
                    if entry:
                        out[credential_name(root, deployment, fref)] = entry
        elif _is_secret_type(bp):
            entry = _credential_entry(ref, bp, value)
            if entry:
                out[credential_name(root, deployment, ref)] = entry
    return out


CREDENTIAL_KEYS = {
    "simple_credentials": ("identity", "password"),
    "salted_credentials": ("identity", "password", "salt"),
    "rsa_cert_credentials": ("cert_pem", "private_key_pem"),
    "rsa_pkey_credentials": ("private_key_pem", "public_key_pem"),
}


def credential_access(ref: Ref, scope: Scope, pref: str, bp: Mapping, value: Any, acc: str) -> Any:
    """One accessor of a credential: its value, or the variable holding it (see the docstring).

    The value is computed either way, so a malformed stored credential is a
    render error naming the property, not a deploy that cannot find a key.
    """
    in_record = pref.startswith("current_record.") or (
        scope.record_ref is not None and pref.startswith(f"{scope.record_ref}.")
    )
    result = _credential_value(ref, pref, bp, value, acc, in_record=in_record)
    if result is None or not scope.ctx.credential_root:
        return result
    return _placeholder(scope, pref, "value" if acc == "secret" else acc)


def _credential_value(
    ref: Ref, pref: str, bp: Mapping, value: Any, acc: str, *, in_record: bool = False
) -> Any:
    t = bp.get("type")
    allowed = set(CREDENTIAL_KEYS.get(t, ()))
    if t == "secret":
        allowed = {"secret"}
    elif t == "salted_credentials":
        allowed |= {"sha512_hashed_password"}
    elif t == "rsa_cert_credentials":
        allowed |= {"public_key_pem", "cert_and_private_key_pems"}
    elif t == "rsa_pkey_credentials":
        allowed |= {"public_key_openssh", "public_key_fingerprint"}
    if acc not in allowed:
        raise AccessorError(f"unknown accessor {ref.raw} ('{acc}' on a {t})")
    if not props.is_empty(value) and not isinstance(value, Mapping) and t != "secret":
        raise AccessorError(f"{pref} holds a value of the wrong shape for a {t}")
    if props.is_empty(value):
        if props.is_generated(bp, in_collection=in_record):
            raise AccessorError(
                f"{pref} has no generated value yet (generate credentials before rendering)"
            )
        return None
    if t == "secret":
        return value.get("secret") if isinstance(value, Mapping) else value

    def field(key: str) -> str:
        # Staged values were validated when they were stored, but a tile
        # upgrade or an old row can leave any shape behind: name the field.
        v = value.get(key)
        if not isinstance(v, str) or not v:
            raise AccessorError(f"{pref}: {key} is missing or not a string, needed by {ref.raw}")
        return v

    if acc in value:
        return field(acc)
    if acc == "sha512_hashed_password":
        try:
            return sha512_crypt(field("password"), field("salt"))
        except CredentialError as e:
            raise AccessorError(f"{pref}: {e}") from None
    if acc == "cert_and_private_key_pems":
        cert = field("cert_pem")
        return cert + ("" if cert.endswith("\n") else "\n") + field("private_key_pem")
    try:
        return _public_key(field("private_key_pem"), acc)
    except (ValueError, TypeError):
        raise AccessorError(
            f"{pref}: private_key_pem is not an unencrypted PEM private key, needed by {ref.raw}"
        ) from None


@lru_cache(maxsize=256)
def _public_key(private_key_pem: str, form: str) -> str:
    # The key was checked when it was stored; skip the slow RSA self-check.
    key = serialization.load_pem_private_key(
        private_key_pem.encode(), None, unsafe_skip_rsa_key_validation=True
    ).public_key()
    if form == "public_key_pem":
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    openssh = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    if form == "public_key_openssh":
        return openssh.decode()
    # The classic MD5 fingerprint of the SSH key blob (ssh-keygen -E md5).
    digest = hashlib.md5(base64.b64decode(openssh.split()[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
