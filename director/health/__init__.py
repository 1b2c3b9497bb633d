"""The director's health monitor and resurrector (BOSH's HM and its resurrector plugin).

* ``monitor``: every ``HM_SCAN_INTERVAL`` seconds (Celery beat), one vCenter
  round trip reads every managed VM; missing, powered-off and silent VMs
  become alerts; the resurrector decides per deployment.
* ``rules``: pure meltdown arithmetic and ``resurrection`` config rules.
* ``alerts``: alerts kept in the database, resolved on recovery, emailed.
* ``resurrector``: the ``scan and fix`` task that recreates VMs from their
  last applied state under the deployment lock.

Importing this package registers the ``scan_and_fix`` task handler.
"""

from . import cck, resurrector  # noqa: F401  (register the cck and scan_and_fix handlers)
