# Written by hand (makemigrations was blocked by another app's unfinished model change);
# checked with `manage.py makemigrations tiles --check`.

from django.db import migrations, models

import opsconsole.crypto


class Migration(migrations.Migration):
    dependencies = [
        ("tiles", "0002_library_stemcell"),
    ]

    operations = [
        migrations.AddField(
            model_name="installation",
            name="snapshot",
            field=opsconsole.crypto.EncryptedJSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="stagedproduct",
            name="revision",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="stagedproduct",
            name="edits",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="installationstep",
            name="kind",
            field=models.CharField(
                choices=[
                    ("vcenter", "vCenter"),
                    ("configs", "Configs"),
                    ("stemcells", "Stemcells"),
                    ("deploy", "Deploy"),
                    ("delete", "Delete"),
                    ("errand", "Errand"),
                ],
                max_length=16,
            ),
        ),
    ]
