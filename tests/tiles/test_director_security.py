"""The Director tile's Security and Syslog panes: stored, refused when they cannot take effect,
applied to the director by Apply Changes; the director's own logs reach a syslog server."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from director import syslog as director_syslog
from director import vm_security
from opsconsole.redaction import register_secret
from tiles import director_tile, services
from tiles.credentials import make_root_ca
from tiles.services import installations

pytestmark = pytest.mark.django_db

API = "/api/v0/staged/director/properties"


@pytest.fixture(autouse=True)
def vcenter_logins(monkeypatch):
    """vcenter.example.com is no vCenter: the apply's login step is skipped (see test_apply)."""
    monkeypatch.setattr(director_tile, "test_vcenter_connection", lambda iaas=None: {})


@pytest.fixture
def ca_pem():
    return make_root_ca("operator CA")[0]


def test_security_pane_is_stored_and_read_back(director_configured, admin_api, ca_pem):
    r = admin_api.put(
        API,
        {
            "security_configuration": {
                "trusted_certificates": ca_pem,
                "generate_vm_passwords": False,
            }
        },
        format="json",
    )
    assert r.status_code == 200, r.content
    sec = admin_api.get(API).json()["security_configuration"]
    assert sec["trusted_certificates"].strip() == ca_pem.strip()
    assert sec["generate_vm_passwords"] is False


@pytest.mark.parametrize(
    "body, field, words",
    [
        (
            {"security_configuration": {"trusted_certificates": "not a certificate"}},
            "security_configuration/trusted_certificates",
            "must be PEM certificates",
        ),
        (
            {
                "security_configuration": {
                    "trusted_certificates": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
                }
            },
            "security_configuration/trusted_certificates",
            "certificate 1 of 1 cannot be read",
        ),
        (
            {"security_configuration": {"clear_default_trusted_certificates_store": True}},
            "security_configuration/clear_default_trusted_certificates_store",
            "cannot take effect yet",
        ),
        (
            {"security_configuration": {"generate_vm_passwords": "yes"}},
            "security_configuration/generate_vm_passwords",
            "must be true or false",
        ),
        (
            {"security_configuration": {"vm_password": "x"}},
            "security_configuration/vm_password",
            "unknown field",
        ),
        (
            {
                "syslog_configuration": {
                    "enabled": True,
                    "address": "logs.example.com",
                    "port": 514,
                    "tls_enabled": True,
                }
            },
            "syslog_configuration/tls_enabled",
            "cannot take effect yet",
        ),
        (
            {"syslog_configuration": {"custom_rsyslog_configuration": "if $x then stop"}},
            "syslog_configuration/custom_rsyslog_configuration",
            "runs no rsyslog",
        ),
        (
            {"syslog_configuration": {"queue_size": 100000}},
            "syslog_configuration/queue_size",
            "cannot take effect",
        ),
        (
            {"syslog_configuration": {"enabled": True, "port": 514}},
            "syslog_configuration/address",
            "is required when syslog is enabled",
        ),
        (
            {"syslog_configuration": {"enabled": True, "address": "logs", "port": 70000}},
            "syslog_configuration/port",
            "from 1 to 65535",
        ),
        (
            {"syslog_configuration": {"transport_protocol": "relp"}},
            "syslog_configuration/transport_protocol",
            "udp or tcp",
        ),
    ],
)
def test_what_cannot_take_effect_is_refused_naming_the_field(
    director_configured, admin_api, ca_pem, body, field, words
):
    before = admin_api.get(API).json()
    # a valid section beside the refused one is not written either
    body = {**body, "director_configuration": {"max_threads": 7}}
    if "security_configuration" not in body:
        body["security_configuration"] = {"trusted_certificates": ca_pem}
    r = admin_api.put(API, body, format="json")
    assert r.status_code == 422, r.content
    errors = r.json()["errors"]
    assert any(words in m for m in errors[field]), errors
    assert admin_api.get(API).json() == before


def test_apply_changes_gives_the_director_the_panes(director_configured, admin_api, ca_pem):
    r = admin_api.put(
        API,
        {
            "security_configuration": {
                "trusted_certificates": ca_pem,
                "opsmanager_root_ca_trusted_certs": True,
            },
            "syslog_configuration": {
                "enabled": True,
                "address": "127.0.0.1",
                "port": 5514,
                "transport_protocol": "tcp",
            },
        },
        format="json",
    )
    assert r.status_code == 200, r.content
    assert vm_security.vm_security()["trusted_certs"] == ""  # not before Apply Changes
    assert director_syslog.syslog_settings()["enabled"] is False
    pending = services.pending_changes(with_plan=False)["product_changes"][0]
    assert pending["action"] == "install"

    inst = services.apply_changes("admin", deploy_products="none")
    assert installations.run_installation(inst.id) == "succeeded"
    step = inst.steps.order_by("seq").last()
    assert "VM security" in step.task.result and "syslog" in step.task.result
    sec = vm_security.vm_security()
    assert sec["generate_vm_passwords"] is True  # Ops Manager's default
    assert ca_pem.strip() in sec["trusted_certs"]
    assert services.root_ca()[0].strip() in sec["trusted_certs"], "the console's root CA too"
    assert director_syslog.syslog_settings() == {
        "enabled": True,
        "address": "127.0.0.1",
        "port": 5514,
        "transport_protocol": "tcp",
        "forward_debug_logs": False,
    }
    assert services.pending_changes(with_plan=False)["product_changes"][0]["action"] == (
        "unchanged"
    )


class _UdpSink:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]

    def receive(self) -> str:
        return self.sock.recv(65536).decode()


def test_director_logs_are_forwarded_to_syslog_over_udp(db):
    register_secret("hunter2-secret")
    sink = _UdpSink()
    log = logging.getLogger("director.execution.test")
    director_syslog.set_syslog(
        {"enabled": True, "address": "127.0.0.1", "port": sink.port, "transport_protocol": "udp"}
    )
    try:
        log.warning("deploying zk: password=hunter2-secret")
        line = sink.receive()
        assert "opsconsole-director[" in line and "deploying zk" in line
        assert line.startswith("<12>")  # facility user, severity warning
        assert "hunter2-secret" not in line, "redacted as the console log is"
        log.debug("a debug line")
        logging.getLogger("tiles.views").warning("not the director's")
        director_syslog.set_syslog({"enabled": False})
        log.warning("after switching off")
        sink.sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            sink.receive()
    finally:
        director_syslog.set_syslog({"enabled": False})
        sink.sock.close()


def test_director_logs_are_forwarded_over_tcp(db):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    port = server.getsockname()[1]
    received: list[bytes] = []

    def accept():
        conn, _ = server.accept()
        conn.settimeout(5)
        with conn:
            while b"cpi says hello" not in b"".join(received):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                received.append(chunk)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    director_syslog.set_syslog(
        {"enabled": True, "address": "127.0.0.1", "port": port, "transport_protocol": "tcp"}
    )
    try:
        logging.getLogger("cpi.vsphere.vm").warning("cpi says hello")
        t.join(5)
        assert b"cpi says hello" in b"".join(received)
    finally:
        director_syslog.set_syslog({"enabled": False})
        server.close()


def test_an_unreachable_syslog_server_never_fails_the_director(db):
    director_syslog.set_syslog(
        {"enabled": True, "address": "127.0.0.1", "port": 1, "transport_protocol": "tcp"}
    )
    try:
        started = time.monotonic()
        logging.getLogger("director.runner").warning("still deploying")
        assert time.monotonic() - started < 5
    finally:
        director_syslog.set_syslog({"enabled": False})
