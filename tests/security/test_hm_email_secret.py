"""The health monitor's SMTP password is a secret like the others.

It lives in the director attribute's encrypted ``secret`` column: the raw
row never holds it in clear, a key rotation re-encrypts it and the mailer
still logs in with it (checked on an SMTP server on loopback that accepts
only that password), an installation export carries it to a console with
another key, and rows of an older console are migrated into the column.
"""

from __future__ import annotations

import importlib
import io
import json

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from console.backup import installation, keys
from director.health import alerts
from director.models import DirectorAttribute
from opsconsole import crypto
from tests.fixtures import smtp

pytestmark = pytest.mark.django_db

PASSWORD = "hm-smtp-pw-7c1e"
PASSPHRASE = "correct horse battery staple"
MIGRATION = "0007_directorattribute_secret"


@pytest.fixture
def key_file(settings, tmp_path):
    """The key in a data-dir file of the test's own; the data dirs the test's own too."""
    for name in installation.data_dirs():
        setattr(settings, name, tmp_path / "data" / name.lower())
    key = Fernet.generate_key().decode()
    path = tmp_path / "encryption_key"
    path.write_text(key + "\n")
    settings.ENCRYPTION_KEY = key
    settings.ENCRYPTION_KEY_FILE = path
    crypto.adopt_key(key)
    return path


@pytest.fixture
def sink(settings):
    """An SMTP server on loopback accepting only user ``hm`` with PASSWORD; the mailer uses it."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    server = smtp.SmtpSink(username="hm", password=PASSWORD)
    stop = smtp.serve(server)
    yield server
    stop()


def configure(port: int = 25) -> None:
    alerts.set_email_settings(
        {
            "enabled": True,
            "recipients": ["ops@example.com"],
            "from": "bosh-hm@example.com",
            "host": "127.0.0.1",
            "port": port,
            "tls": False,
            "username": "hm",
            "password": PASSWORD,
        }
    )


def raw_row() -> tuple[str, str]:
    """``(value, secret)`` of the hm_email row as the database holds them."""
    table = connection.ops.quote_name(DirectorAttribute._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT value, secret FROM {table} WHERE name = %s", [alerts.EMAIL_ATTRIBUTE]
        )
        return cursor.fetchone()


def alert(key: str) -> None:
    alerts.raise_alert(
        key, category="vm_health", severity=2, cause="missing_vm", title=f"VM of {key} is missing"
    )


def test_the_raw_row_never_holds_the_password_in_clear(key_file):
    configure()
    value, secret = raw_row()
    assert PASSWORD not in value and "password" not in json.loads(value)
    assert PASSWORD not in secret
    assert (
        Fernet(key_file.read_text().strip().encode()).decrypt(secret.encode()) == PASSWORD.encode()
    )
    assert "director.DirectorAttribute.secret" in {c.label for c in keys.encrypted_columns()}


def test_after_a_key_rotation_the_mailer_still_logs_in_with_the_password(key_file, sink):
    configure(sink.port)
    alert("missing_vm:web:0")
    assert alerts.send_new_alerts() == 1
    old_key = key_file.read_text().strip()
    _, old_token = raw_row()

    result = keys.rotate_encryption_key()

    assert result.columns["director.DirectorAttribute.secret"] == 1
    _, token = raw_row()
    assert token != old_token and PASSWORD not in token
    with pytest.raises(InvalidToken):
        Fernet(old_key.encode()).decrypt(token.encode())
    alert("missing_vm:web:1")
    assert alerts.send_new_alerts() == 1
    assert [m.login for m in sink.messages] == [("hm", PASSWORD)] * 2
    assert "VM of missing_vm:web:1 is missing" in sink.messages[1].data
    assert sink.refused == []


def test_a_wrong_password_is_refused_by_the_sink(key_file, sink):
    """The sink checks the password: the rotation test above could fail."""
    configure(sink.port)
    DirectorAttribute.set(
        alerts.EMAIL_ATTRIBUTE, DirectorAttribute.get(alerts.EMAIL_ATTRIBUTE), secret="other"
    )
    alert("missing_vm:web:0")
    assert alerts.send_new_alerts() == 0
    assert sink.messages == [] and sink.refused == [("hm", "other")]


def test_an_export_carries_it_to_a_console_with_another_key(key_file, settings, tmp_path, sink):
    configure(sink.port)
    old_key = key_file.read_text().strip()
    out = io.BytesIO()
    installation.export_installation(out, PASSPHRASE)
    assert PASSWORD.encode() not in out.getvalue()

    # a fresh console: no rows, another key
    if connection.vendor == "postgresql":
        # TRUNCATE refuses tables with deferred FK checks pending in the test's transaction.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    call_command("flush", interactive=False, verbosity=0)
    assert alerts.email_settings() is None
    new_key = Fernet.generate_key().decode()
    (tmp_path / "second_key").write_text(new_key + "\n")
    settings.ENCRYPTION_KEY = new_key
    settings.ENCRYPTION_KEY_FILE = tmp_path / "second_key"
    crypto.adopt_key(new_key)
    out.seek(0)
    installation.import_installation(out, PASSPHRASE)

    _, token = raw_row()
    assert Fernet(new_key.encode()).decrypt(token.encode()) == PASSWORD.encode()
    with pytest.raises(InvalidToken):
        Fernet(old_key.encode()).decrypt(token.encode())
    assert alerts.email_settings()["recipients"] == ["ops@example.com"]
    alert("missing_vm:web:0")
    assert alerts.send_new_alerts() == 1
    assert sink.messages[0].login == ("hm", PASSWORD)


@pytest.fixture
def migration():
    module = importlib.import_module(f"director.migrations.{MIGRATION}")
    state = MigrationExecutor(connection).loader.project_state(("director", MIGRATION))
    return module, state.apps


def older_consoles_row(password_token: str) -> None:
    """The hm_email row as a console before the migration wrote it: the token in the JSON."""
    settings = {"enabled": True, "recipients": ["ops@example.com"], "from": "hm@example.com"}
    settings.update(host="smtp.example.com", port=25, tls=False, username="hm")
    DirectorAttribute.set(
        alerts.EMAIL_ATTRIBUTE, json.dumps({**settings, "password": password_token})
    )


def test_the_migration_moves_a_stored_password_into_the_secret_and_back(key_file, migration):
    module, apps = migration
    older_consoles_row(crypto.encrypt(PASSWORD))

    module.password_to_secret(apps, None)

    value, secret = raw_row()
    assert "password" not in json.loads(value) and PASSWORD not in secret
    assert alerts.email_password() == PASSWORD
    assert alerts.email_settings()["host"] == "smtp.example.com"

    module.secret_to_password(apps, None)
    assert crypto.decrypt(json.loads(raw_row()[0])["password"]) == PASSWORD


def test_the_migration_drops_a_token_the_key_cannot_open(key_file, migration):
    module, apps = migration
    older_consoles_row(Fernet(Fernet.generate_key()).encrypt(PASSWORD.encode()).decode())

    module.password_to_secret(apps, None)

    value, secret = raw_row()
    assert "password" not in json.loads(value) and secret == ""
    assert not alerts.email_password_stored()
    assert alerts.email_settings()["username"] == "hm"
