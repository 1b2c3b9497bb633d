"""Secrets at rest: Fernet encryption with ``settings.ENCRYPTION_KEY``.

``encrypt``/``decrypt`` work on text; ``EncryptedTextField`` and
``EncryptedJSONField`` are model fields whose database column only ever holds
the Fernet token (so a database dump shows no vCenter password and no
generated credential). Every value read back is registered with
``opsconsole.redaction.register_secret``, so a decrypted secret that later
slips into a log line is scrubbed from it.

The key comes from the environment (``OPSCONSOLE_ENCRYPTION_KEY``) or the
data directory; losing it makes the stored secrets unreadable, which is the
point.
"""

from __future__ import annotations

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models

from .redaction import is_secret_key, register_secret


class DecryptionError(Exception):
    """A stored value could not be decrypted: wrong ``ENCRYPTION_KEY`` or a corrupt row."""


@lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode() if isinstance(key, str) else key)


def encrypt(text: str) -> str:
    """The Fernet token (ASCII text) for ``text``."""
    return _fernet(settings.ENCRYPTION_KEY).encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(settings.ENCRYPTION_KEY).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            "cannot decrypt a stored secret: OPSCONSOLE_ENCRYPTION_KEY differs from the key "
            "it was written with"
        ) from exc


def register_secrets_in(value) -> None:
    """Register the secret parts of a decrypted value for log redaction.

    A bare string is a secret as a whole (a password); in a mapping, values
    under secret-looking keys (``password``, ``private_key``...) are, and
    nested mappings are searched. Certificates and usernames stay readable.
    """
    if isinstance(value, str):
        register_secret(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and is_secret_key(key):
                register_secret(item)
            elif isinstance(item, dict | list):
                register_secrets_in(item)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                register_secrets_in(item)


class EncryptedTextField(models.TextField):
    """A text column holding the Fernet token of the value; Python sees plain text."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        plain = decrypt(value)
        register_secret(plain)
        return plain

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)


class EncryptedJSONField(models.TextField):
    """Any JSON value, stored as the Fernet token of its JSON text.

    Encrypted values cannot be queried by content; look rows up by their
    other columns (name, set) and read the value in Python.
    """

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        data = json.loads(decrypt(value))
        register_secrets_in(data)
        return data

    def to_python(self, value):
        return value

    def get_prep_value(self, value):
        if value is None:
            return None
        return encrypt(json.dumps(value, sort_keys=True))

    def value_to_string(self, obj):
        return json.dumps(self.value_from_object(obj))
