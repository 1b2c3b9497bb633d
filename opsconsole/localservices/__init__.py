"""Launchers for the real local services: Redis, PostgreSQL, vcsim, Celery.

Used by ``make run`` (``manage.py runstack``) and by the test fixtures, so
the console and its tests start the very same processes, on loopback only.
No Django imports here: tests start services before Django is configured.
"""
