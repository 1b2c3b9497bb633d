"""Data migration: no secret in clear left by a console from before secrets by reference.

An older console wrote tile secret values into the manifests the director
keeps (``director_deployment``), into instances' ``spec_json``, task
``args`` and task logs. This rewrites them with the
``((/opsmgr/<guid>/<property>.<accessor>))`` references the console writes
now (``tiles.services.scrub``; ``manage.py scrub_secrets`` runs the same).
It lives in ``tiles``, not ``director``: the references and the values
behind them come from tile templates, which the director does not know.
"""

from django.db import migrations


def scrub(apps, schema_editor):
    from tiles.services.scrub import file_lines, mark_pending, scrub_secrets

    def files(changes):
        for line in file_lines(changes):
            print(f"  scrub_secrets: {line}")

    report = scrub_secrets(apps, on_files=files)
    for line in report.lines(files=False):
        print(f"  scrub_secrets: {line}")
    if report.unrendered:
        # Later migrations may change the tables the renderer reads: finish after migrate.
        mark_pending(apps)
        print(
            "  scrub_secrets: replaced by value in "
            + ", ".join(report.unrendered)
            + "; references are placed exactly after migrate (tiles.services.scrub)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("tiles", "0005_product_warnings"),
        ("director", "0004_health_alerts_resurrection_events"),
    ]

    operations = [migrations.RunPython(scrub, migrations.RunPython.noop, elidable=True)]
