"""Password hashes for VMs: sha512-crypt, and BOSH's generated VM passwords.

``env.bosh.password`` in a VM's agent settings is a crypt(3) hash the agent
sets for ``vcap`` (and ``root``). With the director's ``generate_vm_passwords``
on, every VM gets the hash of its own random password, which nobody keeps
(BOSH's behaviour: operators reach VMs with ``bosh ssh``, never a password).
"""

from __future__ import annotations

import hashlib
import secrets
import string

__all__ = ["sha512_crypt", "generated_vm_password_hash", "MAX_PASSWORD_BYTES"]

MAX_PASSWORD_BYTES = 4096
_SALT_ALPHABET = string.ascii_letters + string.digits + "./"

_B64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PERM = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
    (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
    (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38),
    (18, 39, 60), (40, 61, 19), (62, 20, 41),
)  # fmt: skip


def _b64_from_24bit(b2: int, b1: int, b0: int, n: int) -> str:
    w = (b2 << 16) | (b1 << 8) | b0
    out = []
    for _ in range(n):
        out.append(_B64[w & 0x3F])
        w >>= 6
    return "".join(out)


def sha512_crypt(password: str, salt: str, rounds: int | None = None) -> str:
    """``$6$<salt>$<hash>`` as crypt(3) computes it (salt cut to 16 chars).

    The algorithm hashes the password once per byte of it (quadratic), so
    passwords longer than ``MAX_PASSWORD_BYTES`` are refused (ValueError), as
    passlib does, instead of exhausting memory. The caller checks the salt
    (printable ASCII without ``$`` or ``:``).
    """
    pw = password.encode()
    if len(pw) > MAX_PASSWORD_BYTES:
        raise ValueError(f"password is longer than {MAX_PASSWORD_BYTES} bytes")
    s = salt.encode()[:16]
    r = 5000 if rounds is None else max(1000, min(rounds, 999_999_999))
    b = hashlib.sha512(pw + s + pw).digest()
    a = hashlib.sha512()
    a.update(pw + s)
    n = len(pw)
    while n > 64:
        a.update(b)
        n -= 64
    a.update(b[:n])
    n = len(pw)
    while n:
        a.update(b if n & 1 else pw)
        n >>= 1
    da = a.digest()
    dp_src = hashlib.sha512(pw * len(pw)).digest()
    p = (dp_src * (len(pw) // 64 + 1))[: len(pw)]
    ds_src = hashlib.sha512(s * (16 + da[0])).digest()
    sb = (ds_src * (len(s) // 64 + 1))[: len(s)]
    c = da
    for i in range(r):
        h = hashlib.sha512()
        h.update(p if i & 1 else c)
        if i % 3:
            h.update(sb)
        if i % 7:
            h.update(p)
        h.update(c if i & 1 else p)
        c = h.digest()
    enc = "".join(_b64_from_24bit(c[x], c[y], c[z], 4) for x, y, z in _PERM)
    enc += _b64_from_24bit(0, 0, c[63], 2)
    prefix = "$6$" if rounds is None else f"$6$rounds={r}$"
    return f"{prefix}{s.decode()}${enc}"


def generated_vm_password_hash() -> str:
    """The sha512-crypt hash of a fresh random password (32 characters, 16-character salt)."""
    password = secrets.token_urlsafe(24)
    salt = "".join(secrets.choice(_SALT_ALPHABET) for _ in range(16))
    return sha512_crypt(password, salt)
