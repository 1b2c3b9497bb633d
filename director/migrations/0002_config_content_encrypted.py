"""Config content encrypted at rest: the column becomes a Fernet token for every row.

Existing rows are rewritten with raw SQL (the model field would try to
decrypt the plain text it reads). A row that already decrypts with the
current key is left alone, so the migration can be re-run safely. Going
back decrypts every row to plain text again.
"""

from django.db import migrations

import director.models.config


def _rows(apps, schema_editor):
    connection = schema_editor.connection
    table = connection.ops.quote_name(apps.get_model("director", "Config")._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, content FROM {table}")  # noqa: S608 - the model's own table
        return table, list(cursor.fetchall())


def _is_token(text: str) -> bool:
    from opsconsole.crypto import DecryptionError, decrypt

    try:
        decrypt(text)
    except (DecryptionError, ValueError, TypeError):
        return False
    return True


def encrypt_rows(apps, schema_editor):
    from opsconsole.crypto import encrypt

    table, rows = _rows(apps, schema_editor)
    with schema_editor.connection.cursor() as cursor:
        for row_id, content in rows:
            if not content or _is_token(content):
                continue
            cursor.execute(
                f"UPDATE {table} SET content = %s WHERE id = %s",  # noqa: S608
                [encrypt(content), row_id],
            )


def decrypt_rows(apps, schema_editor):
    from opsconsole.crypto import decrypt

    table, rows = _rows(apps, schema_editor)
    with schema_editor.connection.cursor() as cursor:
        for row_id, content in rows:
            if not content or not _is_token(content):
                continue
            cursor.execute(
                f"UPDATE {table} SET content = %s WHERE id = %s",  # noqa: S608
                [decrypt(content), row_id],
            )


class Migration(migrations.Migration):
    dependencies = [
        ("director", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="config",
            name="content",
            field=director.models.config.ConfigContentField(),
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows),
    ]
