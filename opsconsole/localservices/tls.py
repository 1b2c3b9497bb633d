"""The web server's certificate when ``OPSCONSOLE_TLS=self-signed``.

Generated once into ``<data dir>/tls/`` (key mode 0600) and kept across
restarts, so a browser's exception for it stays valid; a new one is made only
when the old one is missing, unreadable or within a week of expiring. It names
``localhost`` and ``127.0.0.1`` (and the host names in
``OPSCONSOLE_ALLOWED_HOSTS``). Pure standard library + ``cryptography``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=7)


def self_signed_certificate(directory: Path, names: list[str]) -> tuple[Path, Path]:
    """``(cert.pem, key.pem)`` in ``directory``, generating them when needed."""
    directory = Path(directory)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if _still_good(cert_path) and key_path.exists():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "opsconsole")])
    alt_names: list[x509.GeneralName] = []
    for name in dict.fromkeys(["localhost", "127.0.0.1", *names]):
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        0o600,
    )
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path


def _still_good(cert_path: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary file so a crash never leaves half a key."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
