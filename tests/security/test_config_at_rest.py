"""Config content is encrypted at rest: what the database column holds, and what still works.

Every config type is stored as a Fernet token (``director.models.Config.content``);
the director reads plain YAML back, compares decrypted text to detect an
unchanged config, and lists configs as before. The data migration encrypts
rows written before the column was encrypted, and decrypts them again when
migrated back.
"""

from __future__ import annotations

import pytest
from django.db import connection

from director import services
from director.models import Config
from opsconsole.crypto import decrypt, encrypt

from .conftest import cpi_config_text


def raw_rows() -> dict[int, str]:
    """``{id: content}`` exactly as the database column holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, content FROM director_config ORDER BY id")
        return dict(cursor.fetchall())


@pytest.mark.django_db
@pytest.mark.parametrize("type", ["cpi", "cloud", "runtime", "resurrection", "my-own-type"])
def test_every_config_type_is_ciphertext_in_the_database(type, vc_password):
    content = {
        "cpi": cpi_config_text(vc_password),
        "cloud": f"# {vc_password}\n" + _cloud_config(),  # a marker in a comment is stored too
        "runtime": f"addons: []\ntags: {{marker: {vc_password}}}\n",
        "resurrection": f"# {vc_password}\nrules: [{{enabled: true}}]\n",
        "my-own-type": f"anything: {vc_password}\n",
    }[type]
    config = services.update_config(type, "default", content, "admin").config

    raw = raw_rows()[config.id]
    assert vc_password not in raw and "cpis" not in raw and raw != content
    assert decrypt(raw) == content  # the token is the content, under the console's key
    assert Config.objects.get(id=config.id).content == content
    assert Config.latest(type).content == content


def _cloud_config() -> str:
    return (
        "azs: [{name: z1}]\n"
        "vm_types: [{name: small}]\n"
        "networks:\n"
        "- name: net\n"
        "  type: manual\n"
        "  subnets: [{range: 10.0.0.0/24, gateway: 10.0.0.1, azs: [z1],"
        " cloud_properties: {name: VM Network}}]\n"
        "compilation: {workers: 1, az: z1, vm_type: small, network: net}\n"
    )


@pytest.mark.django_db
def test_unchanged_detection_versions_and_listing_work_on_decrypted_text(vc_password):
    first = services.update_config("cpi", "default", cpi_config_text(vc_password), "admin")
    assert first.changed
    # each write gets a fresh token, so only a comparison of decrypted text finds "unchanged"
    again = services.update_config("cpi", "default", cpi_config_text(vc_password), "admin")
    assert again.changed is False and again.config.id == first.config.id
    assert Config.objects.filter(type="cpi").count() == 1

    second = services.update_config("cpi", "default", cpi_config_text("new-" + vc_password), "x")
    assert second.changed and second.config.id != first.config.id
    services.update_config("cpi", "other", cpi_config_text(vc_password), "admin")
    assert [c.name for c in Config.latest_set("cpi")] == ["default", "other"]
    assert Config.latest("cpi").content == cpi_config_text("new-" + vc_password)
    latest = list(services.list_configs("cpi"))
    assert {c.id for c in latest} == {second.config.id, Config.latest("cpi", "other").id}
    every = list(services.list_configs("cpi", latest=False))
    assert [c.id for c in every][-1] == first.config.id and len(every) == 3
    assert all(vc_password not in raw for raw in raw_rows().values())


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_rows_and_reverts(vc_password):
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    # Every app's leaf: going back to director 0001 also unapplies the tiles migrations
    # that depend on later director ones, and they must come back too.
    leaf = executor.loader.graph.leaf_nodes()
    executor.migrate([("director", "0001_initial")])
    plain = cpi_config_text(vc_password)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO director_config (type, name, content, created_at, deleted) "
            "VALUES (%s, %s, %s, CURRENT_TIMESTAMP, %s)",
            ["cpi", "default", plain, False],
        )
        cursor.execute(
            "INSERT INTO director_config (type, name, content, created_at, deleted) "
            "VALUES (%s, %s, %s, CURRENT_TIMESTAMP, %s)",
            ["runtime", "dns", "addons: []\n", False],
        )
    assert vc_password in "".join(raw_rows().values())
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(leaf)
        rows = raw_rows()
        assert all(vc_password not in raw and decrypt(raw) for raw in rows.values())
        assert Config.latest("cpi").content == plain
        assert Config.latest("runtime", "dns").content == "addons: []\n"

        executor = MigrationExecutor(connection)
        executor.migrate([("director", "0001_initial")])
        assert sorted(raw_rows().values()) == sorted([plain, "addons: []\n"])
    finally:
        MigrationExecutor(connection).migrate(leaf)


@pytest.mark.django_db
def test_the_migration_leaves_rows_already_encrypted_alone(vc_password):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("director.migrations.0002_config_content_encrypted")
    config = services.update_config("cpi", "default", cpi_config_text(vc_password), "a").config
    token = raw_rows()[config.id]
    with connection.schema_editor(atomic=False) as editor:
        migration.encrypt_rows(apps, editor)
    assert raw_rows()[config.id] == token  # not encrypted twice
    assert Config.objects.get(id=config.id).content == cpi_config_text(vc_password)


@pytest.mark.django_db
def test_a_row_written_with_another_key_says_which_setting_is_wrong(settings, vc_password):
    from cryptography.fernet import Fernet

    from opsconsole.crypto import DecryptionError

    settings.ENCRYPTION_KEY = Fernet.generate_key().decode()
    config = Config.objects.create(type="cpi", name="default", content=cpi_config_text("x1234"))
    settings.ENCRYPTION_KEY = Fernet.generate_key().decode()
    with pytest.raises(DecryptionError, match="OPSCONSOLE_ENCRYPTION_KEY"):
        Config.objects.get(id=config.id)
    assert encrypt("x")  # the current key still works for new values
