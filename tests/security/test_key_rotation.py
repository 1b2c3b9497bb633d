"""Encryption key rotation: every secret re-encrypted, the old key useless, values unchanged.

What is checked is what an attacker holding the old key would find in the
database (nothing it opens) and what an operator sees (the same values,
through the ORM and the API), for the command, the API and another process.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings as django_settings
from django.db import connection

from console.backup import keys
from director.models import Config, Credential, Deployment, Task, Variable, VariableSet
from opsconsole import crypto
from tiles import services
from tiles.models import DirectorConfig, StagedProduct
from tiles.services.busy import WorkRunning

from .conftest import cpi_config_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def key_file(settings, tmp_path):
    """The key in a data-dir file of the test's own (the real one stays untouched)."""
    key = Fernet.generate_key().decode()
    path = tmp_path / "encryption_key"
    path.write_text(key + "\n")
    settings.ENCRYPTION_KEY = key
    settings.ENCRYPTION_KEY_FILE = path
    crypto.adopt_key(key)
    return path


@pytest.fixture
def secrets_everywhere(key_file, small, vc_password):
    """Secrets in the tiles, the director's configs and its variable store."""
    staged = services.set_properties(
        small, {".properties.api_key": {"value": "api-key-0123456789"}}
    )
    Config.objects.create(type="cpi", name="default", content=cpi_config_text(vc_password))
    deployment = Deployment.objects.create(name="small-deployment")
    cred = Credential.put("/opsconsole/small-deployment/admin_password", "password", "pw-abcdef")
    vs = VariableSet.objects.create(deployment=deployment)
    Variable.objects.create(
        variable_set=vs, name="admin_password", value="pw-abcdef", credential=cred
    )
    return staged


def raw_tokens() -> dict[tuple[str, object], str]:
    """Every encrypted value as the database holds it: {(column, pk): token}."""
    return {
        (column.label, pk): token
        for column in keys.encrypted_columns()
        for pk, token in keys._tokens(column, lock=False)
    }


def plain_values(guid: str) -> dict:
    return {
        "vcenter_password": DirectorConfig.objects.get().vcenter_password,
        "secrets": StagedProduct.objects.get(guid=guid).secrets,
        "cpi": Config.objects.get(type="cpi").content,
        "credential": Credential.objects.get().value,
        "variable": Variable.objects.get().value,
    }


def test_encrypted_columns_are_found_from_the_models():
    labels = {c.label for c in keys.encrypted_columns()}
    assert {
        "tiles.DirectorConfig.vcenter_password",
        "tiles.DirectorConfig.deployed_state",
        "tiles.StagedProduct.secrets",
        "tiles.StagedProduct.deployed_manifest",
        "tiles.ConsoleCertificateAuthority.private_key_pem",
        "director.Config.content",  # a subclass of EncryptedTextField
        "director.Credential.value",
        "director.Variable.value",
    } <= labels
    # every field of every model that encrypts is there, whoever added it
    from django.apps import apps

    for model in apps.get_models():
        for f in model._meta.local_concrete_fields:
            if isinstance(f, crypto.EncryptedTextField | crypto.EncryptedJSONField):
                assert f"{model._meta.label}.{f.name}" in labels


def test_rotation_reencrypts_every_secret_and_the_old_key_opens_nothing(
    secrets_everywhere, key_file
):
    old_key = key_file.read_text().strip()
    before = raw_tokens()
    values = plain_values(secrets_everywhere.guid)
    assert len({label for label, _ in before}) >= 5

    result = keys.rotate_encryption_key()

    new_key = key_file.read_text().strip()
    assert new_key != old_key and result.key_source == "data_dir"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert not crypto.pending_key_file(key_file).exists()
    after = raw_tokens()
    assert after.keys() == before.keys()
    assert result.values == len(before)
    old, new = Fernet(old_key.encode()), Fernet(new_key.encode())
    for where, token in after.items():
        assert token != before[where], where
        assert new.decrypt(token.encode()) == old.decrypt(before[where].encode()), where
        with pytest.raises(InvalidToken):
            old.decrypt(token.encode())
    assert plain_values(secrets_everywhere.guid) == values
    # the API shows the same (masked) properties as before
    staged = services.get_staged_product(secrets_everywhere.guid)
    shown = services.get_properties(staged, reveal_secrets=True)
    assert shown[".properties.api_key"]["value"] == {"secret": "api-key-0123456789"}


def test_a_failure_midway_changes_nothing(secrets_everywhere, key_file):
    """A row the key cannot open (corrupt) in the last table aborts the whole rotation."""
    old_key = key_file.read_text()
    stranger = Fernet(Fernet.generate_key()).encrypt(b'"x"').decode()
    cred = Credential.objects.get()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE director_credential SET value = %s WHERE id = %s", [stranger, cred.id]
        )
    # put the bad row last: after every tiles column has been re-encrypted in the transaction
    columns = keys.encrypted_columns()
    columns.sort(key=lambda c: c.label == "director.Credential.value")
    before = raw_tokens()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(keys, "encrypted_columns", lambda: columns)
        with pytest.raises(keys.KeyRotationFailed) as exc:
            keys.rotate_encryption_key()

    assert exc.value.errors == {
        "director.Credential.value": [
            f"row {cred.id}: the current key cannot decrypt it (a corrupt value, or written "
            "with another key); nothing was re-encrypted"
        ]
    }
    assert raw_tokens() == before
    assert key_file.read_text() == old_key
    assert not crypto.pending_key_file(key_file).exists()
    assert DirectorConfig.objects.get().vcenter_password == "s3cret-vc-password"


def test_rotation_is_refused_while_a_task_runs(secrets_everywhere, key_file):
    from django.utils import timezone

    Task.objects.create(
        type="update_deployment",
        description="create deployment",
        state="processing",
        checkpoint_time=timezone.now(),
    )
    before = raw_tokens()
    with pytest.raises(WorkRunning, match="director task .* is processing"):
        keys.rotate_encryption_key()
    assert raw_tokens() == before
    assert not crypto.pending_key_file(key_file).exists()


def test_a_rotation_interrupted_after_its_commit_is_readable_and_finished_next_time(
    secrets_everywhere, key_file
):
    old_key = key_file.read_text().strip()
    values = plain_values(secrets_everywhere.guid)
    # the state a crash between the commit and the rename leaves behind
    interrupted = Fernet.generate_key().decode()
    keys.write_key_file(crypto.pending_key_file(key_file), interrupted)
    keys._reencrypt(Fernet(old_key.encode()), Fernet(interrupted.encode()), strict=True)
    # every process still reads the secrets (decrypt falls back to the pending key)
    assert plain_values(secrets_everywhere.guid) == values

    result = keys.rotate_encryption_key()

    assert result.finished_interrupted
    newest = Fernet(key_file.read_text().strip().encode())
    for token in raw_tokens().values():
        newest.decrypt(token.encode())
        for stale in (old_key, interrupted):
            with pytest.raises(InvalidToken):
                Fernet(stale.encode()).decrypt(token.encode())
    assert plain_values(secrets_everywhere.guid) == values


def test_a_process_that_loaded_the_old_key_adopts_the_rotated_file(secrets_everywhere, key_file):
    """What a gunicorn worker or the Celery worker sees when another process rotates."""
    values = plain_values(secrets_everywhere.guid)
    old_key = key_file.read_text().strip()
    new_key = Fernet.generate_key().decode()
    keys._reencrypt(Fernet(old_key.encode()), Fernet(new_key.encode()), strict=True)
    keys.write_key_file(key_file, new_key)  # another process's rotation
    assert django_settings.ENCRYPTION_KEY == old_key  # this process has not noticed yet

    assert plain_values(secrets_everywhere.guid) == values
    assert django_settings.ENCRYPTION_KEY == new_key
    new_token = crypto.encrypt("written after the rotation")
    assert Fernet(new_key.encode()).decrypt(new_token.encode())


# --------------------------------------------------------------------------- the API


URL = "/api/v0/encryption_key/rotate"


def test_api_rotates_for_admins_and_never_answers_the_key(secrets_everywhere, key_file, admin_api):
    before = raw_tokens()
    response = admin_api.post(URL)
    assert response.status_code == 200, response.content
    new_key = key_file.read_text().strip()
    assert new_key.encode() not in response.content
    body = response.json()["encryption_key"]
    assert body["source"] == "data_dir" and body["values_reencrypted"] == len(before)
    assert body["columns"]["director.Credential.value"] == 1
    assert all(raw_tokens()[k] != v for k, v in before.items())
    from director.models import Event

    assert Event.objects.filter(
        action="rotate", object_type="encryption_key", user="admin"
    ).exists()


@pytest.mark.parametrize("role", ["full_control", "full_view", "restricted_view"])
def test_api_rotation_is_for_admins_only(secrets_everywhere, key_file, role_api, api_client, role):
    before = raw_tokens()
    assert role_api(role).post(URL).status_code == 403
    assert api_client.post(URL).status_code == 401
    assert raw_tokens() == before


def test_api_refuses_a_key_given_by_environment(secrets_everywhere, settings, admin_api):
    settings.ENCRYPTION_KEY_FILE = None  # as when OPSCONSOLE_ENCRYPTION_KEY is set
    before = raw_tokens()
    response = admin_api.post(URL)
    assert response.status_code == 409
    assert "OPSCONSOLE_ENCRYPTION_KEY" in response.json()["errors"]["base"][0]
    assert "nothing was changed" in response.json()["errors"]["base"][0]
    assert raw_tokens() == before


# --------------------------------------------------------------------------- the command


def _manage(args, env_extra, db_url):
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("another process cannot open an in-memory SQLite test database")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPSCONSOLE_ENCRYPTION_KEY", keys.NEW_KEY_VARIABLE)
    }
    env.update({"DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "opsconsole.settings"})
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_the_command_rotates_a_data_dir_key_under_a_running_process(settings, tmp_path):
    """The command runs in its own process; this one (a web worker) keeps reading."""
    from tests.conftest import _test_database_url

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    key = Fernet.generate_key().decode()
    (data_dir / "encryption_key").write_text(key + "\n")
    settings.ENCRYPTION_KEY = key
    settings.ENCRYPTION_KEY_FILE = data_dir / "encryption_key"
    crypto.adopt_key(key)
    cred = Credential.put("/opsconsole/d/pw", "password", "pw-from-before")

    done = _manage(
        ["rotate_encryption_key"], {"OPSCONSOLE_DATA_DIR": str(data_dir)}, _test_database_url()
    )

    assert done.returncode == 0, done.stderr
    assert "Re-encrypted" in done.stdout and "Back it up now" in done.stdout
    new_key = (data_dir / "encryption_key").read_text().strip()
    assert new_key != key and new_key not in done.stdout
    assert Credential.objects.get(id=cred.id).value == "pw-from-before"  # adopted the new file
    token = keys._tokens(
        next(c for c in keys.encrypted_columns() if c.label == "director.Credential.value"),
        lock=False,
    )[0][1]
    with pytest.raises(InvalidToken):
        Fernet(key.encode()).decrypt(token.encode())


@pytest.mark.django_db(transaction=True)
def test_the_command_with_an_environment_key_refuses_without_the_new_key(settings, tmp_path):
    from tests.conftest import _test_database_url

    key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEY = key
    settings.ENCRYPTION_KEY_FILE = None
    Credential.put("/opsconsole/d/pw", "password", "pw-from-before")
    column = next(c for c in keys.encrypted_columns() if c.label == "director.Credential.value")
    before = keys._tokens(column, lock=False)
    env = {"OPSCONSOLE_DATA_DIR": str(tmp_path), "OPSCONSOLE_ENCRYPTION_KEY": key}

    refused = _manage(["rotate_encryption_key"], env, _test_database_url())

    assert refused.returncode == 1
    assert "Nothing was changed" in refused.stderr
    assert "OPSCONSOLE_NEW_ENCRYPTION_KEY" in refused.stderr
    assert keys._tokens(column, lock=False) == before
    assert not (tmp_path / "encryption_key").exists()

    new_key = Fernet.generate_key().decode()
    done = _manage(
        ["rotate_encryption_key"],
        {**env, keys.NEW_KEY_VARIABLE: new_key},
        _test_database_url(),
    )
    assert done.returncode == 0, done.stderr
    assert "set OPSCONSOLE_ENCRYPTION_KEY to the value of" in done.stdout
    assert new_key not in done.stdout
    settings.ENCRYPTION_KEY = new_key  # the operator restarts with the new key
    assert Credential.objects.get().value == "pw-from-before"
    with pytest.raises(InvalidToken):
        Fernet(key.encode()).decrypt(keys._tokens(column, lock=False)[0][1].encode())
