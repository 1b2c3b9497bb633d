"""Manifest and config diffs that never show a secret.

Review Pending Changes and the deployed manifest read through these: a
staged manifest holds no secret (secrets render as references to the
director's variable store), but a manifest deployed by an older console, a
runtime config or the Director tile's configs may hold values.
``secret_strings`` collects every credential value a product had (staged
and deployed, so a changed secret's old value is hidden as well as its new
one, and a salted password's hash), ``redact`` replaces each occurrence by
``((redacted))``; ``_cpi_secrets`` and ``_redact_config`` do the same for
the cpi-config and cloud-config (the vCenter password and every value under
a secret-looking key, ``opsconsole.redaction``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from opsconsole.redaction import redact as redact_secret_keys
from opsconsole.redaction import secret_values
from tiles.credentials import CredentialError, sha512_crypt
from tiles.models import StagedProduct

REDACTED = "((redacted))"

_PUBLIC_KEYS = {"identity", "cert_pem", "public_key_pem", "guid"}


def secret_strings(*secrets: Mapping[str, Any] | None) -> set[str]:
    """The secret strings inside stored credential values (not identities or certificates).

    Takes any number of ``{reference: value}`` maps (staged and deployed
    secrets) and hides the strings of all of them: a value one map changed
    is still hidden as the other had it. A salted credential's
    ``sha512_hashed_password`` counts as secret too.
    """
    out: set[str] = set()

    def walk(value: Any, key: str | None = None) -> None:
        if isinstance(value, str):
            if key not in _PUBLIC_KEYS and len(value) >= 4:
                out.add(value)
        elif isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, k)
            hashed = _hashed_password(value)
            if hashed:
                out.add(hashed)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)

    for values in secrets:
        for v in (values or {}).values():
            walk(v)
    return out


def _hashed_password(value: Mapping) -> str | None:
    password, salt = value.get("password"), value.get("salt")
    if not isinstance(password, str) or not isinstance(salt, str) or not password:
        return None
    try:
        return sha512_crypt(password, salt)
    except CredentialError:
        return None


def changed_secrets(staged: StagedProduct) -> list[str]:
    """References of the secrets whose staged value differs from the deployed one (names only)."""
    if not staged.is_deployed:
        return []
    deployed = (staged.deployed_state or {}).get("secrets") or {}
    current = staged.secrets or {}
    return sorted(r for r in set(deployed) | set(current) if deployed.get(r) != current.get(r))


def _secrets_note(refs: list[str]) -> str:
    return (
        f"# secret values changed: {', '.join(refs)} (the manifest references them; "
        "values are not shown)\n"
    )


def redact(tree: Any, secrets: Iterable[str]) -> Any:
    """A copy of ``tree`` with every occurrence of a secret string replaced by ``((redacted))``."""
    ordered = sorted(set(secrets), key=len, reverse=True)

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            for secret in ordered:
                if secret in node:
                    node = node.replace(secret, REDACTED)
            return node
        if isinstance(node, Mapping):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(tree) if ordered else tree


def _yaml(doc: Any, sort_keys: bool = False) -> str:
    if doc in (None, {}, ""):
        return ""
    return yaml.safe_dump(doc, default_flow_style=False, sort_keys=sort_keys)


def unified_diff(old: str, new: str, label: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(True), new.splitlines(True), f"deployed/{label}", f"staged/{label}"
        )
    )


def _status(old: Any, new: Any) -> str:
    if not old and new:
        return "to_be_installed"
    if old and not new:
        return "to_be_deleted"
    return "same" if old == new else "different"


def _cpi_secrets(*docs: dict | None) -> set[str]:
    """The vCenter passwords and every value under a secret-looking key of the configs.

    Their occurrences anywhere in either document are hidden, so a password
    also quoted elsewhere (a URL) does not leak through the diff.
    """
    out = set()
    for doc in docs:
        for cpi in (doc or {}).get("cpis", []) or []:
            pw = (cpi.get("properties") or {}).get("password")
            if isinstance(pw, str) and pw:
                out.add(pw)
        out.update(str(v) for v in secret_values(doc or {}) if len(str(v)) >= 4)
    return out


def _redact_config(doc: dict | None, hidden: set[str]) -> dict | None:
    """A config as the diff shows it: secret strings and secret-keyed values ``((redacted))``."""
    if doc is None:
        return None
    return redact_secret_keys(redact(doc, hidden))
