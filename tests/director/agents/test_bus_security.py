"""The message bus refuses whoever the director did not certify, and keeps agents apart."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import time
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from director.agents import nats_auth
from director.agents.certs import MbusPki
from director.agents.client import AgentClient
from tests.asyncutil import run_apart

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Attribute's length must be:UserWarning"),  # BOSH's C=USA
]

SERVER = "default.nats.bosh-internal"


def _connect(url: str, context: ssl.SSLContext):
    """Connect and disconnect as a nats-py client would; the exception if refused."""
    import nats

    async def attempt():
        nc = await nats.connect(
            url,
            tls=context,
            tls_hostname=SERVER,
            allow_reconnect=False,
            connect_timeout=3,
            max_reconnect_attempts=0,
        )
        await nc.flush(3)
        await nc.close()

    try:
        run_apart(attempt())
    except Exception as exc:  # what the client sees: the TLS alert or -ERR
        return exc
    return None


def _trusting(pki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca_file))


def test_the_director_cert_is_let_in(nats_server):
    context = _trusting(nats_server.pki)
    context.load_cert_chain(nats_server.pki.director.cert, nats_server.pki.director.key)
    assert _connect(nats_server.url, context) is None


def test_a_client_without_a_certificate_is_refused(nats_server):
    refused = _connect(nats_server.url, _trusting(nats_server.pki))
    assert refused is not None  # TLS 1.3: the client sees the server's alert or a reset
    # nats-server may log the refusal a moment after the client saw its connection end
    deadline = time.monotonic() + 10
    while "client didn't provide a certificate" not in nats_server.process.tail(200):
        assert time.monotonic() < deadline, nats_server.process.tail(50)
        time.sleep(0.1)


def test_a_certificate_from_another_ca_is_refused(nats_server, tmp_path):
    # the director's subject, signed by a CA of the attacker's own
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Cloud Foundry"),
            x509.NameAttribute(NameOID.COMMON_NAME, "default.director.bosh-internal"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = _trusting(nats_server.pki)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    assert _connect(nats_server.url, context) is not None


def test_an_agent_the_director_did_not_allow_is_refused(nats_server, agent_tls_for):
    stranger = str(uuid.uuid4())  # a valid certificate, but no VM of ours
    refused = _connect(nats_server.url, agent_tls_for(stranger))
    assert refused is not None and "authorization" in str(refused).lower()
    nats_server.allow_agents([stranger])
    assert _connect(nats_server.url, agent_tls_for(stranger)) is None


def test_an_agent_removed_by_the_sync_loses_access(nats_server, agent_tls_for):
    gone = str(uuid.uuid4())
    nats_server.allow_agents([gone])
    assert _connect(nats_server.url, agent_tls_for(gone)) is None
    kept = nats_auth.allowed_agents(nats_server.directory) - {gone}
    assert nats_auth.sync_agents(nats_server.directory, kept, grace=0)
    assert gone not in nats_auth.allowed_agents(nats_server.directory)
    assert _connect(nats_server.url, agent_tls_for(gone)) is not None


def test_an_agent_cannot_read_another_agents_requests(agent_factory, mbus):
    victim = agent_factory()
    thief = agent_factory()
    seen = []

    async def on_message(msg):
        seen.append(msg)

    async def snoop():
        await thief.nc.subscribe(f"agent.{victim.agent_id}", cb=on_message)
        await thief.nc.flush(3)

    asyncio.run_coroutine_threadsafe(snoop(), thief.loop).result(10)
    AgentClient(victim.agent_id, mbus=mbus, timeout=5).apply({"secret": "s3cr3t"})
    assert victim.methods()[0] == "apply"
    assert seen == []


def test_bootstrap_certificate_has_boshs_cn_and_is_short_lived(nats_server):
    agent_id = str(uuid.uuid4())
    creds = nats_server.pki.issue_agent(agent_id)
    cert = x509.load_pem_x509_certificate(creds.certificate.encode())
    assert creds.cn == f"{agent_id}.bootstrap.agent.bosh-internal"
    assert cert.subject.rfc4514_string() == (
        f"CN={agent_id}.bootstrap.agent.bosh-internal,O=Cloud Foundry,C=USA"
    )
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == (
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    )
    assert cert.public_key().key_size == 3072
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime <= dt.timedelta(days=1, minutes=5)
    ca = x509.load_pem_x509_certificate(nats_server.pki.ca_file.read_bytes())
    ca.public_key().verify(
        cert.signature,
        cert.tbs_certificate_bytes,
        padding.PKCS1v15(),
        cert.signature_hash_algorithm,
    )
    assert creds.mbus_cert() == {
        "ca": nats_server.pki.ca_file.read_text(),
        "certificate": creds.certificate,
        "private_key": creds.private_key,
    }
    permanent = nats_server.pki.issue_agent(agent_id, bootstrap=False)
    assert permanent.cn == f"{agent_id}.agent.bosh-internal"
    long = x509.load_pem_x509_certificate(permanent.certificate.encode())
    assert long.not_valid_after_utc - long.not_valid_before_utc > dt.timedelta(days=700)
    with pytest.raises(ValueError, match="agent id"):
        nats_server.pki.issue_agent("x.>")


def test_the_pki_is_made_once_and_keys_are_private(tmp_path):
    pki = MbusPki(tmp_path / "nats").ensure()
    files = sorted((tmp_path / "nats").glob("*.pem")) + sorted((tmp_path / "nats").glob("*.key"))
    before = {f.name: f.read_bytes() for f in files}
    assert set(before) == {
        "ca.pem",
        "ca.key",
        "server.pem",
        "server.key",
        "director.pem",
        "director.key",
        "hm.pem",
        "hm.key",
    }
    for key in (tmp_path / "nats").glob("*.key"):
        assert oct(key.stat().st_mode & 0o777) == "0o600", key.name
    MbusPki(tmp_path / "nats").ensure()
    assert {f.name: f.read_bytes() for f in files} == before
    server = x509.load_pem_x509_certificate(pki.server.cert.read_bytes())
    assert "CN=default.nats.bosh-internal" in server.subject.rfc4514_string()


def test_the_authorization_file_gives_boshs_rights():
    text = nats_auth.render(["a1"])
    users = {
        json.loads(line.split("user: ", 1)[1].split(", permissions")[0]): line
        for line in text.splitlines()
        if "user:" in line
    }
    assert set(users) == {
        "CN=default.director.bosh-internal,O=Cloud Foundry,C=USA",
        "CN=default.hm.bosh-internal,O=Cloud Foundry,C=USA",
        "CN=a1.bootstrap.agent.bosh-internal,O=Cloud Foundry,C=USA",
        "CN=a1.agent.bosh-internal,O=Cloud Foundry,C=USA",
    }
    agent = users["CN=a1.agent.bosh-internal,O=Cloud Foundry,C=USA"]
    assert 'subscribe: ["agent.a1"]' in agent
    assert '"director.*.a1.*"' in agent and '"hm.agent.heartbeat.a1"' in agent
    with pytest.raises(ValueError, match="agent id"):
        nats_auth.sync_agents("/nonexistent", ["a1 }"])
