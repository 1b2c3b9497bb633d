"""The Celery app: JSON only, late acks, tasks autodiscovered from the Django apps.

Celery beat runs periodic work (orphaned-VM cleanup, health scans) from
``CELERY_BEAT_SCHEDULE``; the database row of a Task is the source of truth,
never Celery's result state.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")

app = Celery("opsconsole")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="opsconsole.ping")
def ping(value):
    """Echo a value back: proves a round trip through the broker to a worker."""
    return {"pong": value, "worker_pid": os.getpid()}
