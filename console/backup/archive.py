"""The export file: a zip whose members are encrypted with the operator's passphrase.

Layout (every member but the header is ciphertext)::

    opsconsole-export.json   format, version, when, scrypt parameters and salt,
                             and a check value that tells a wrong passphrase
    payload/manifest         what the export holds (rows, files, migrations)
    payload/rows             the database rows (zlib-compressed JSON)
    payload/files/000001 ... one member per data-dir file

The passphrase gives a 256-bit key through scrypt (a fresh random salt per
export); each member gets its own key from it through HKDF (info: the member
name), and is AES-GCM encrypted in 1 MiB chunks, each with the chunk number
and a last-chunk flag in its nonce. So a member cannot be cut short,
reordered or swapped with another without the import noticing, and a file
of any size is encrypted and decrypted without holding it in memory, or
writing a clear copy of a secret to disk.

Errors are ``ArchiveError`` naming the request field at fault: ``passphrase``
(wrong, too short) or ``installation[file]`` (not an export, corrupt).
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import os
import zipfile
from collections.abc import Iterator
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from opsconsole.errors import ServiceError

FORMAT = "opsconsole-installation-export"
VERSION = 1
HEADER = "opsconsole-export.json"
CHUNK = 1 << 20
TAG = 16
#: scrypt cost: 32 MiB of memory and about 0.1 s per derivation (RFC 7914's interactive level x2).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
MIN_PASSPHRASE = 12
FILE_FIELD = "installation[file]"
PASSPHRASE_FIELD = "passphrase"
_CHECK_TEXT = b"opsconsole installation export"


class ArchiveError(ServiceError):
    """The export file or its passphrase is unusable; ``errors`` names which."""

    status = 422


def corrupt(reason: str) -> ArchiveError:
    return ArchiveError({FILE_FIELD: [f"not a usable installation export: {reason}"]})


def check_passphrase(passphrase) -> str:
    """The passphrase for a new export, or ArchiveError saying what is wrong with it."""
    if not isinstance(passphrase, str) or not passphrase:
        raise ArchiveError({PASSPHRASE_FIELD: ["This field is required."]}, status=400)
    if "\x00" in passphrase:
        raise ArchiveError({PASSPHRASE_FIELD: ["must not contain NUL characters"]}, status=400)
    if len(passphrase) < MIN_PASSPHRASE:
        raise ArchiveError(
            {PASSPHRASE_FIELD: [f"must be at least {MIN_PASSPHRASE} characters long"]}
        )
    return passphrase


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def _subkey(master: bytes, purpose: str) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=f"opsconsole-export/{purpose}".encode(),
    ).derive(master)
    return AESGCM(key)


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    parts, remaining = [], size
    while remaining:
        part = stream.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


class ArchiveWriter:
    """Writes an export to a binary file object (seekable or not)."""

    def __init__(self, fileobj: IO[bytes], passphrase: str, info: dict | None = None):
        check_passphrase(passphrase)
        salt = os.urandom(16)
        self._master = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        check = _subkey(self._master, "check").encrypt(b"\x00" * 12, _CHECK_TEXT, None)
        header = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "kdf": {
                "name": "scrypt",
                "salt": _b64(salt),
                "n": SCRYPT_N,
                "r": SCRYPT_R,
                "p": SCRYPT_P,
            },
            "cipher": "AES-256-GCM",
            "check": _b64(check),
            **(info or {}),
        }
        self._zip = zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self._zip.writestr(HEADER, json.dumps(header, indent=2, sort_keys=True))

    def write_stream(self, name: str, stream: IO[bytes]) -> int:
        """Encrypt ``stream`` into member ``name``; returns the clear size."""
        cipher = _subkey(self._master, name)
        aad = name.encode()
        size, index = 0, 0
        with self._zip.open(name, "w", force_zip64=True) as out:
            current = _read_exact(stream, CHUNK)
            while True:
                following = _read_exact(stream, CHUNK) if len(current) == CHUNK else b""
                last = not following
                sealed = cipher.encrypt(_nonce(index, last), current, aad)
                out.write(len(sealed).to_bytes(4, "big"))
                out.write(sealed)
                size += len(current)
                index += 1
                if last:
                    return size
                current = following

    def write_bytes(self, name: str, data: bytes) -> int:
        return self.write_stream(name, io.BytesIO(data))

    def close(self) -> None:
        self._zip.close()


class ArchiveReader:
    """Opens an export with a passphrase; a wrong one or a corrupt file is an ArchiveError."""

    def __init__(self, fileobj: IO[bytes], passphrase):
        if not isinstance(passphrase, str) or not passphrase:
            raise ArchiveError({PASSPHRASE_FIELD: ["This field is required."]}, status=400)
        try:
            self._zip = zipfile.ZipFile(fileobj)
            raw = self._zip.read(HEADER) if HEADER in self._zip.namelist() else None
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise corrupt(f"not a zip file ({exc})") from None
        if raw is None:
            raise corrupt(f"no {HEADER} in it (not an opsconsole installation export)")
        self.header = self._parse_header(raw)
        kdf = self.header["kdf"]
        self._master = _derive(passphrase, kdf["salt"], kdf["n"], kdf["r"], kdf["p"])
        try:
            _subkey(self._master, "check").decrypt(b"\x00" * 12, self.header["check"], None)
        except InvalidTag:
            raise ArchiveError(
                {PASSPHRASE_FIELD: ["wrong passphrase: it does not open this export"]}
            ) from None

    @staticmethod
    def _parse_header(raw: bytes) -> dict:
        try:
            header = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise corrupt(f"{HEADER} is not JSON") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise corrupt(f"{HEADER}: format is not {FORMAT}")
        if header.get("version") != VERSION:
            raise corrupt(
                f"{HEADER}: version {header.get('version')!r} (this console reads {VERSION})"
            )
        kdf = header.get("kdf")
        try:
            salt = base64.b64decode(kdf["salt"], validate=True)
            check = base64.b64decode(header["check"], validate=True)
            n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        except (KeyError, TypeError, ValueError):
            raise corrupt(f"{HEADER}: kdf or check missing or malformed") from None
        # Bounds keep a crafted header from asking for gigabytes of scrypt memory.
        if not (
            kdf.get("name") == "scrypt"
            and 1 << 14 <= n <= 1 << 20
            and n & (n - 1) == 0
            and 1 <= r <= 16
            and 1 <= p <= 4
            and 16 <= len(salt) <= 64
            and len(check) == len(_CHECK_TEXT) + TAG
        ):
            raise corrupt(f"{HEADER}: unsupported key derivation parameters")
        header["kdf"] = {"salt": salt, "n": n, "r": r, "p": p}
        header["check"] = check
        return header

    def names(self) -> list[str]:
        return self._zip.namelist()

    def chunks(self, name: str) -> Iterator[bytes]:
        """The clear content of member ``name``, chunk by chunk, each one authenticated."""
        if name not in self._zip.namelist():
            raise corrupt(f"member {name} is missing")
        cipher = _subkey(self._master, name)
        aad = name.encode()
        try:
            with self._zip.open(name) as stream:
                header = _read_exact(stream, 4)
                if len(header) != 4:
                    raise corrupt(f"member {name} is empty")
                index = 0
                while header:
                    length = int.from_bytes(header, "big")
                    if not TAG <= length <= CHUNK + TAG:
                        raise corrupt(f"member {name}: chunk {index} has a bad length")
                    sealed = _read_exact(stream, length)
                    if len(sealed) != length:
                        raise corrupt(f"member {name} is cut short")
                    following = _read_exact(stream, 4)
                    if following and len(following) != 4:
                        raise corrupt(f"member {name} is cut short")
                    try:
                        yield cipher.decrypt(_nonce(index, not following), sealed, aad)
                    except InvalidTag:
                        raise corrupt(
                            f"member {name}: chunk {index} fails authentication (altered or "
                            "truncated)"
                        ) from None
                    header = following
                    index += 1
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise corrupt(f"member {name}: {exc}") from None

    def read_bytes(self, name: str, limit: int) -> bytes:
        out, size = [], 0
        for chunk in self.chunks(name):
            size += len(chunk)
            if size > limit:
                raise corrupt(f"member {name} is larger than {limit} bytes")
            out.append(chunk)
        return b"".join(out)

    def copy_to(self, name: str, out: IO[bytes]) -> int:
        size = 0
        for chunk in self.chunks(name):
            out.write(chunk)
            size += len(chunk)
        return size

    def close(self) -> None:
        self._zip.close()
