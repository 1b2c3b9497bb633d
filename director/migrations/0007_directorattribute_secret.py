"""Director attributes get an encrypted ``secret`` column; the HM SMTP password moves into it.

The health monitor's email settings (attribute ``hm_email``) kept the SMTP
password as a Fernet token inside the attribute's JSON text, where key
rotation did not re-encrypt it and an installation export carried it as a
token the target's key cannot open. The token is decrypted with the current
key and written to ``secret`` (encrypted by the column); the JSON loses its
``password``. A token the current key cannot open (a key rotated since) is
unusable already: it is dropped, and the Email Alerts pane asks for the
password again (it shows none stored). Going back puts the token into the
JSON again.
"""

import json
import logging

from django.db import migrations

import opsconsole.crypto

log = logging.getLogger(__name__)

ATTRIBUTE = "hm_email"


def _settings(row) -> dict | None:
    try:
        data = json.loads(row.value) if row.value else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def password_to_secret(apps, schema_editor):
    from opsconsole.crypto import DecryptionError, decrypt

    attribute = apps.get_model("director", "DirectorAttribute")
    for row in attribute.objects.filter(name=ATTRIBUTE):
        data = _settings(row)
        if data is None or "password" not in data:
            continue
        token = data.pop("password")
        password = ""
        if isinstance(token, str) and token:
            try:
                password = decrypt(token)
            except DecryptionError:
                log.warning(
                    "the health monitor's SMTP password cannot be decrypted with the current "
                    "key; it is dropped: enter it again in the Director tile's Email Alerts pane"
                )
        row.value = json.dumps(data)
        row.secret = password
        row.save(update_fields=["value", "secret"])


def secret_to_password(apps, schema_editor):
    from opsconsole.crypto import encrypt

    attribute = apps.get_model("director", "DirectorAttribute")
    for row in attribute.objects.filter(name=ATTRIBUTE):
        data = _settings(row)
        if data is None:
            continue
        data["password"] = encrypt(row.secret) if row.secret else ""
        row.value = json.dumps(data)
        row.save(update_fields=["value"])


class Migration(migrations.Migration):
    dependencies = [
        ("director", "0006_release_blobstore_ids"),
    ]

    operations = [
        migrations.AddField(
            model_name="directorattribute",
            name="secret",
            field=opsconsole.crypto.EncryptedTextField(blank=True, default=""),
        ),
        migrations.RunPython(password_to_secret, secret_to_password),
    ]
