"""The message bus's certificates: the director's own CA and what it signs (BOSH's NATS PKI).

BOSH runs nats-server with TLS and ``verify_and_map``: every client presents a
certificate, and its subject is its user name. The director keeps a CA and
issues, as BOSH's ``NatsClientCertGenerator`` does (RSA 3072, subject
``C=USA, O=Cloud Foundry, CN=<cn>``, clientAuth):

=====================================  ======================================
``default.nats.bosh-internal``         the server (serverAuth; also names
                                       127.0.0.1 and localhost); agents check
                                       the ``*.nats.bosh-internal`` form
``default.director.bosh-internal``     the director (agent requests)
``default.hm.bosh-internal``           the health monitor (heartbeats, alerts)
``<agent_id>.bootstrap.agent.bosh-     an agent's first certificate, put into
internal``                             the VM's ``env.bosh.mbus.cert`` at
                                       ``create_vm``; short-lived
``<agent_id>.agent.bosh-internal``     the agent's permanent certificate,
                                       given by ``update_settings`` after the
                                       first ``ping``
=====================================  ======================================

The CA and the server, director and health monitor certificates are made once
into ``<NATS_DIR>`` (keys mode 0600, written through a temporary file so a
crash never leaves half a key) and reused by every process after that; an
expired or unreadable one is made again (a new CA re-issues all of them).
Agent certificates are issued on demand and never stored here: they travel
with the VM's settings.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_SIZE = 3072
CA_VALIDITY = dt.timedelta(days=4 * 365)
CERT_VALIDITY = dt.timedelta(days=2 * 365)  # BOSH's NATS client certificates
# Long enough for a VM to boot and be pinged (agent_wait_timeout is 600 s) with room
# for a slow IaaS; the permanent certificate replaces it right after the first ping.
BOOTSTRAP_VALIDITY = dt.timedelta(hours=24)
RENEW_BEFORE = dt.timedelta(days=7)

SERVER_CN = "default.nats.bosh-internal"
DIRECTOR_CN = "default.director.bosh-internal"
HEALTH_MONITOR_CN = "default.hm.bosh-internal"


def agent_cn(agent_id: str, *, bootstrap: bool) -> str:
    """BOSH's common name for an agent's certificate."""
    kind = "bootstrap.agent" if bootstrap else "agent"
    return f"{agent_id}.{kind}.bosh-internal"


def subject_dn(cn: str) -> str:
    """The user name nats-server maps a certificate with this CN to (RFC 2253 order)."""
    return f"CN={cn},O=Cloud Foundry,C=USA"


def _name(cn: str) -> x509.Name:
    with _country_usa():
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "USA", _validate=False),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Cloud Foundry"),
                x509.NameAttribute(NameOID.COMMON_NAME, cn, _validate=False),
            ]
        )


@contextmanager
def _country_usa():
    """BOSH's subjects say ``C=USA`` (three letters) and an agent's CN is 66 characters
    (a UUID and ``.bootstrap.agent.bosh-internal``): X.509's upper bounds say 2 and 64,
    OpenSSL and nats-server do not enforce them. The user names must be BOSH's, so
    cryptography's warning about them (on building and on reading such a name) is
    silenced here."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Attribute's length must be", category=UserWarning
        )
        yield


@dataclass(frozen=True)
class Credentials:
    """A certificate, its key and the CA that signed it, as PEM text."""

    cn: str
    certificate: str
    private_key: str
    ca: str

    def mbus_cert(self) -> dict[str, str]:
        """The ``env.bosh.mbus.cert`` block an agent reads (BOSH's field names)."""
        return {"ca": self.ca, "certificate": self.certificate, "private_key": self.private_key}


@dataclass(frozen=True)
class CertFiles:
    """Paths of a certificate and its key on disk."""

    cert: Path
    key: Path


class MbusPki:
    """The CA of ``directory`` and the certificates it signs (see the module docstring)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    # -- the kept certificates -----------------------------------------------------

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    def ensure(self) -> MbusPki:
        """Make whatever is missing or about to expire; cheap when everything is there."""
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        with self._locked():
            renewed_ca = self._ensure_ca()
            for stem, cn, server in (
                ("server", SERVER_CN, True),
                ("director", DIRECTOR_CN, False),
                ("hm", HEALTH_MONITOR_CN, False),
            ):
                files = self._files(stem)
                if renewed_ca or not _still_good(files.cert) or not files.key.exists():
                    cert, key = self._issue(cn, CERT_VALIDITY, server=server)
                    _write(files.key, key, 0o600)
                    _write(files.cert, cert, 0o644)
        return self

    @property
    def server(self) -> CertFiles:
        return self._files("server")

    @property
    def director(self) -> CertFiles:
        return self._files("director")

    @property
    def health_monitor(self) -> CertFiles:
        return self._files("hm")

    def _files(self, stem: str) -> CertFiles:
        return CertFiles(self.directory / f"{stem}.pem", self.directory / f"{stem}.key")

    # -- agents ------------------------------------------------------------------------

    def issue_agent(self, agent_id: str, *, bootstrap: bool = True) -> Credentials:
        """A new certificate for an agent: the bootstrap one (short-lived) or the permanent one."""
        if not agent_id or not all(c.isalnum() or c == "-" for c in agent_id):
            raise ValueError(f"agent id {agent_id!r}: only letters, digits and '-' are allowed")
        self.ensure()
        cn = agent_cn(agent_id, bootstrap=bootstrap)
        cert, key = self._issue(cn, BOOTSTRAP_VALIDITY if bootstrap else CERT_VALIDITY)
        return Credentials(
            cn=cn,
            certificate=cert.decode(),
            private_key=key.decode(),
            ca=self.ca_file.read_text(),
        )

    # -- internals -----------------------------------------------------------------------

    @contextmanager
    def _locked(self):
        """Two processes starting at once must not each make a CA."""
        fd = os.open(self.directory / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _ensure_ca(self) -> bool:
        key_path = self.directory / "ca.key"
        if _still_good(self.ca_file) and key_path.exists():
            return False
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
        now = dt.datetime.now(dt.UTC)
        name = _name("default.nats-ca.bosh-internal")
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        _write(key_path, _key_pem(key), 0o600)
        _write(self.ca_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return True

    def _issue(self, cn: str, validity: dt.timedelta, *, server: bool = False):
        with _country_usa():
            return self._issue_named(cn, validity, server=server)

    def _issue_named(self, cn: str, validity: dt.timedelta, *, server: bool):
        ca_cert = x509.load_pem_x509_certificate(self.ca_file.read_bytes())
        ca_key = serialization.load_pem_private_key(
            (self.directory / "ca.key").read_bytes(), password=None
        )
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
        now = dt.datetime.now(dt.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(min(now + validity, ca_cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), False
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName(cn),
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


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
    os.chmod(tmp, mode)
    os.replace(tmp, path)
