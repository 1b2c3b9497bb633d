"""Encryption key rotation: every secret re-encrypted under a new key, or none.

The encrypted columns are found from the models: every concrete field that
is an ``EncryptedTextField`` or ``EncryptedJSONField`` (subclasses such as
the director's ``ConfigContentField`` included), of every installed app, so
a model added later is covered without a line here.

Rotation reads each column's Fernet tokens with raw SQL (no ORM conversion,
so values come back byte for byte), decrypts them with the old key and
writes the new key's tokens, all in one transaction; any row that cannot be
decrypted aborts it and nothing changes.

Where the key lives decides the rest:

- **data dir** (``<data dir>/encryption_key``): the new key is first written
  to ``encryption_key.new`` (which ``decrypt`` also tries, so other
  processes keep reading while the transaction commits); after the commit
  it replaces ``encryption_key`` atomically, and every process adopts it on
  its next encrypt or decrypt (``opsconsole.crypto.current_key``). Rows
  another process wrote under the old key during the rotation are swept up
  afterwards. A rotation interrupted after its commit is finished by the
  next one.
- **environment** (``OPSCONSOLE_ENCRYPTION_KEY``): running processes cannot
  learn a new key, so the operator stops the console and gives the new key
  (``OPSCONSOLE_NEW_ENCRYPTION_KEY``); without it the rotation is refused and
  nothing changes.

Rotation is refused while a director task or an Apply Changes runs: either
may write a secret under the old key mid-way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.db import connection, transaction

from director.events import record_event
from opsconsole import crypto
from opsconsole.errors import Conflict, ServiceError
from tiles.services.busy import refuse_while_busy

#: The environment variable the operator gives a new key in, when the key comes from environment.
NEW_KEY_VARIABLE = "OPSCONSOLE_NEW_ENCRYPTION_KEY"


class KeyRotationRefused(Conflict):
    """The rotation cannot start (key from environment, work running); nothing changed."""


class KeyRotationFailed(ServiceError):
    """The rotation started and was rolled back; nothing changed."""

    status = 409


@dataclass(frozen=True)
class EncryptedColumn:
    """One database column holding Fernet tokens."""

    model: type
    field: object

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.field.name}"

    @property
    def table(self) -> str:
        return self.model._meta.db_table


@dataclass
class RotationResult:
    key_source: str  # "data_dir" or "environment"
    #: Values re-encrypted per column label.
    columns: dict[str, int] = field(default_factory=dict)
    #: True when a rotation interrupted after its commit was finished first.
    finished_interrupted: bool = False
    #: Values another process wrote under the old key during the rotation, swept up after it.
    swept: int = 0

    @property
    def values(self) -> int:
        return sum(self.columns.values())


def encrypted_columns() -> list[EncryptedColumn]:
    """Every encrypted column of every installed model."""
    encrypted = (crypto.EncryptedTextField, crypto.EncryptedJSONField)
    found = []
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        for f in meta.local_concrete_fields:
            if isinstance(f, encrypted):
                found.append(EncryptedColumn(model, f))
    return found


def key_source() -> str:
    return "environment" if crypto.key_file() is None else "data_dir"


def generate_key() -> str:
    return Fernet.generate_key().decode()


def _fernet(key: str, what: str) -> Fernet:
    try:
        return Fernet(key.encode() if isinstance(key, str) else key)
    except (ValueError, TypeError) as exc:
        raise KeyRotationRefused(
            {what: ["not a Fernet key (32 url-safe base64-encoded bytes)"]}
        ) from exc


def write_key_file(path: Path, key: str) -> None:
    """Write ``key`` to ``path`` atomically (mode 0600): readers see the old file or the new."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _tokens(column: EncryptedColumn, lock: bool):
    """``(pk, token)`` of every non-empty value of the column, straight from the database."""
    qn = connection.ops.quote_name
    pk = column.model._meta.pk.column
    sql = (
        f"SELECT {qn(pk)}, {qn(column.field.column)} FROM {qn(column.table)} "
        f"WHERE {qn(column.field.column)} IS NOT NULL AND {qn(column.field.column)} <> '' "
        f"ORDER BY {qn(pk)}"
    )
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def _reencrypt(old: Fernet, new: Fernet, *, strict: bool) -> dict[str, int]:
    """Re-encrypt every token the old key opens under the new key; count them per column.

    A token the new key already opens is left alone (so a second pass, or a
    pass after an interrupted rotation, is harmless). With ``strict``, a token
    neither key opens aborts with ``KeyRotationFailed`` naming its row.
    """
    counts: dict[str, int] = {}
    qn = connection.ops.quote_name
    for column in encrypted_columns():
        updates = []
        for pk, token in _tokens(column, lock=True):
            data = token.encode() if isinstance(token, str) else bytes(token)
            try:
                new.decrypt(data)
                continue
            except InvalidToken:
                pass
            try:
                plain = old.decrypt(data)
            except InvalidToken:
                if strict:
                    raise KeyRotationFailed(
                        {
                            column.label: [
                                f"row {pk}: the current key cannot decrypt it (a corrupt value, "
                                "or written with another key); nothing was re-encrypted"
                            ]
                        }
                    ) from None
                continue
            updates.append((new.encrypt(plain).decode(), pk))
        if updates:
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {qn(column.table)} SET {qn(column.field.column)} = %s "
                    f"WHERE {qn(column.model._meta.pk.column)} = %s",
                    updates,
                )
        counts[column.label] = len(updates)
    return counts


def _opens_any_row(key: Fernet, but_not: Fernet) -> bool:
    for column in encrypted_columns():
        for _, token in _tokens(column, lock=False):
            data = token.encode() if isinstance(token, str) else bytes(token)
            try:
                but_not.decrypt(data)
                continue
            except InvalidToken:
                pass
            try:
                key.decrypt(data)
                return True
            except InvalidToken:
                continue
    return False


def _finish_or_discard_interrupted(path: Path, old: Fernet) -> tuple[Fernet, str] | None:
    """Settle a ``encryption_key.new`` left by a rotation that did not finish.

    If rows are under that key, its transaction committed: move the key into
    place and return it as the current key. Otherwise discard it.
    """
    pending_path = crypto.pending_key_file(path)
    pending_key = crypto._read_key(pending_path)
    if pending_key is None:
        pending_path.unlink(missing_ok=True)
        return None
    try:
        pending = Fernet(pending_key.encode())
    except ValueError:
        pending_path.unlink(missing_ok=True)
        return None
    if _opens_any_row(pending, but_not=old):
        os.replace(pending_path, path)
        _fsync_dir(path.parent)
        crypto.adopt_key(pending_key)
        with transaction.atomic():
            _reencrypt(old, pending, strict=False)
        return pending, pending_key
    pending_path.unlink(missing_ok=True)
    return None


def rotate_encryption_key(new_key: str | None = None, user: str = "") -> RotationResult:
    """Re-encrypt every secret under a new key; the old key opens nothing afterwards.

    ``new_key`` is required when the key comes from environment (the
    operator must hold it before anything changes); in the data dir a fresh
    key is generated when none is given.
    """
    path = crypto.key_file()
    result = RotationResult(key_source=key_source())
    if path is None and not new_key:
        raise KeyRotationRefused(
            {
                "base": [
                    "the encryption key comes from OPSCONSOLE_ENCRYPTION_KEY, which running "
                    "processes cannot learn anew: stop the web server and the worker, run "
                    f"`manage.py rotate_encryption_key` with {NEW_KEY_VARIABLE} set to the new "
                    "key, then set OPSCONSOLE_ENCRYPTION_KEY to it and start the console; "
                    "nothing was changed"
                ]
            }
        )
    refuse_while_busy("rotate the encryption key")
    old_key = crypto.current_key()
    old = _fernet(old_key, "OPSCONSOLE_ENCRYPTION_KEY")
    if path is not None:
        settled = _finish_or_discard_interrupted(path, old)
        if settled is not None:
            old, old_key = settled
            result.finished_interrupted = True
    new_key = new_key or generate_key()
    new = _fernet(new_key, NEW_KEY_VARIABLE)
    if new_key.strip() == old_key.strip():
        raise KeyRotationRefused({NEW_KEY_VARIABLE: ["is the current key; give a new one"]})

    pending_path = crypto.pending_key_file(path) if path is not None else None
    if pending_path is not None:
        write_key_file(pending_path, new_key)
    try:
        with transaction.atomic():
            result.columns = _reencrypt(old, new, strict=True)
    except BaseException:
        if pending_path is not None:
            pending_path.unlink(missing_ok=True)
        raise
    if pending_path is not None:
        os.replace(pending_path, path)
        _fsync_dir(path.parent)
    crypto.adopt_key(new_key)
    if path is not None:
        # A process that had not yet seen the new key may have written under the old one.
        with transaction.atomic():
            result.swept = sum(_reencrypt(old, new, strict=False).values())
    record_event(
        "rotate",
        "encryption_key",
        user=user,
        context={"key_source": result.key_source, "values": result.values},
    )
    return result
