"""The blobstore's two users and its URL-signing secret, generated once into the data dir.

BOSH's DAV blobstore has a read user and a write user (``read_users``,
``write_users``). Here ``agent`` may only read (agents upload through signed
PUT URLs the director hands them) and ``director`` may read, write and
delete. ``signing_secret`` is the HMAC key of signed URLs (davcli's
``secret``). All three live in ``<BLOBSTORE_AUTH_DIR>/credentials.json``,
mode 0600 in a 0700 directory, like the data dir's other keys; the file is
created atomically, so web workers and the Celery worker starting together
agree on one set. Every value read is registered for log redaction.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from opsconsole.redaction import register_secret

AGENT_USER = "agent"
DIRECTOR_USER = "director"
_KEYS = ("agent_password", "director_password", "signing_secret")


@dataclass(frozen=True)
class BlobstoreCredentials:
    agent_password: str
    director_password: str
    signing_secret: str

    def password_of(self, user: str) -> str | None:
        return {AGENT_USER: self.agent_password, DIRECTOR_USER: self.director_password}.get(user)


def credentials_file() -> Path:
    return Path(settings.BLOBSTORE_AUTH_DIR) / "credentials.json"


def _create(path: Path) -> None:
    """Write a new set unless one is there already (link(2) never replaces a file)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    values = {key: secrets.token_urlsafe(32) for key in _KEYS}
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(values, fh)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made them first: use theirs
    finally:
        tmp.unlink(missing_ok=True)


def _keep_private(path: Path) -> None:
    """Mode 0600 (0700 for the directory) again if something widened it (a restore
    writes files with the default mode)."""
    for target, mode in ((path.parent, 0o700), (path, 0o600)):
        try:
            if target.stat().st_mode & 0o077:
                os.chmod(target, mode)
        except OSError:
            pass  # not ours to change; reading it still works


def blobstore_credentials() -> BlobstoreCredentials:
    """The blobstore's credentials, generated on first use."""
    path = credentials_file()
    if not path.exists():
        _create(path)
    _keep_private(path)
    try:
        data = json.loads(path.read_text())
        values = [data[key] for key in _KEYS]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # Regenerating would lock out every agent that holds the old password: say so instead.
        raise ImproperlyConfigured(
            f"{path}: unreadable blobstore credentials ({type(exc).__name__}); "
            "restore the file from a backup, or remove it to generate new ones"
        ) from None
    if not all(isinstance(v, str) and len(v) >= 16 for v in values):
        raise ImproperlyConfigured(f"{path}: blobstore credentials must be strings of 16+ chars")
    for value in values:
        register_secret(value)
    return BlobstoreCredentials(*values)
