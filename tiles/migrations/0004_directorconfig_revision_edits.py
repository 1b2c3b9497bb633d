# Written by hand as 0003 was; checked with `manage.py makemigrations tiles --check`.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tiles", "0003_installation_snapshot_staged_revision"),
    ]

    operations = [
        migrations.AddField(
            model_name="directorconfig",
            name="revision",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="directorconfig",
            name="edits",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
