"""Celery tasks of the tiles app: thin wrappers that hand an id to the services.

``run_installation`` runs one Apply Changes (``tiles.services.installations``);
the ``Installation`` row is the source of truth, claimed before it runs, so
a redelivered message (``acks_late``) never runs it twice.
"""

from celery import shared_task

from tiles.services.installations import run


@shared_task(name="tiles.run_installation", acks_late=True, ignore_result=True)
def run_installation(installation_id: int) -> None:
    run.run_installation(installation_id)
