"""Data migration: release blobs of an older console move into the blobstore's layout.

An older console kept each release job and package tarball at
``BLOBSTORE_DIR/<sha1[:2]>/<sha1>`` and wrote that path into the row's
``blob_path``; the blobstore refuses such ids, so those jobs and packages
could not be fetched after an upgrade. The column is renamed ``blobstore_id``
(BOSH's name, as ``CompiledPackage`` has it), then each old blob is checked
against the row's digest and moved under a new blob id
(``director.blobstore.legacy``; ``manage.py move_old_release_blobs`` runs the
same again). A missing or damaged file is printed and its row left as it was.
"""

from django.db import migrations


def move_old_blobs(apps, schema_editor):
    from director.blobstore.legacy import move_old_release_blobs

    move_old_release_blobs(
        apps.get_model("director", "ReleaseJob"),
        apps.get_model("director", "ReleasePackage"),
        using=schema_editor.connection.alias if schema_editor else "default",
        say=lambda line: print(f"  director 0006 release blobs: {line}"),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("director", "0005_compiledpackage"),
    ]

    operations = [
        migrations.RenameField("releasejob", "blob_path", "blobstore_id"),
        migrations.RenameField("releasepackage", "blob_path", "blobstore_id"),
        migrations.RunPython(move_old_blobs, migrations.RunPython.noop),
    ]
