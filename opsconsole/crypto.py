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

Rotation (``console.backup.keys``) re-encrypts every encrypted column and
then replaces the data-dir key file. Every process (web workers, the Celery
worker) notices that the file changed (its inode, size or mtime; one
``stat`` per call) and adopts the new key on its next encrypt or decrypt.
While a rotation is committing, the new key waits in ``encryption_key.new``
and ``decrypt`` falls back to it, so no process fails a read in between. A
key given by environment cannot change under a running process: rotating it
means stopping the console (see the README).
"""

from __future__ import annotations

import json
import os
import threading
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models

from .redaction import is_secret_key, register_secret


class DecryptionError(Exception):
    """A stored value could not be decrypted: wrong ``ENCRYPTION_KEY`` or a corrupt row."""


@lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode() if isinstance(key, str) else key)


def key_file() -> Path | None:
    """The data-dir file holding the key, or None when the key is given by environment."""
    value = getattr(settings, "ENCRYPTION_KEY_FILE", None)
    return Path(value) if value else None


def pending_key_file(path: Path) -> Path:
    """Where a rotation keeps the new key until its transaction has committed."""
    return path.with_name(path.name + ".new")


def _signature(path: Path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _read_key(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


#: The key file this process has seen and its signature then: (path, signature).
_seen: dict = {}
_seen_lock = threading.Lock()


def _note_key_file() -> None:
    """Record the key file as this process found it when it loaded the key."""
    try:
        path = key_file()
    except Exception:  # settings not configured: nothing to watch yet
        return
    if path is not None:
        _seen["file"] = (path, _signature(path))


_note_key_file()


def current_key() -> str:
    """The key to encrypt with: ``settings.ENCRYPTION_KEY``, re-read if the key file changed.

    A key file this process has not seen before (tests point the setting
    elsewhere) is taken as matching ``settings.ENCRYPTION_KEY``; only a later
    change of it (a rotation, in this process or another) is adopted.
    """
    path = key_file()
    if path is not None:
        signature = _signature(path)
        with _seen_lock:
            seen = _seen.get("file")
            if seen is None or seen[0] != path:
                _seen["file"] = (path, signature)
            elif seen[1] != signature:
                key = _read_key(path)
                if key is not None:
                    _seen["file"] = (path, signature)
                    settings.ENCRYPTION_KEY = key
    return settings.ENCRYPTION_KEY


def adopt_key(key: str) -> None:
    """Use ``key`` in this process now (the rotation that wrote it calls this)."""
    with _seen_lock:
        path = key_file()
        if path is not None:
            _seen["file"] = (path, _signature(path))
        settings.ENCRYPTION_KEY = key


def encrypt(text: str) -> str:
    """The Fernet token (ASCII text) for ``text``."""
    return _fernet(current_key()).encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    data = token.encode()
    try:
        return _fernet(current_key()).decrypt(data).decode()
    except InvalidToken:
        pass
    # A rotation may have committed rows under the key it has not yet moved into place.
    path = key_file()
    pending = _read_key(pending_key_file(path)) if path is not None else None
    if pending is not None:
        try:
            return _fernet(pending).decrypt(data).decode()
        except (InvalidToken, ValueError):
            pass
    raise DecryptionError(
        "cannot decrypt a stored secret: OPSCONSOLE_ENCRYPTION_KEY differs from the key "
        "it was written with"
    )


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
        # As Django's JSONField: serializers (dumpdata, installation export) carry the
        # value itself, and ``to_python`` takes it back unchanged.
        return self.value_from_object(obj)
