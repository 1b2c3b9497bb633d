"""The director's health monitor and resurrector (BOSH's HM and its resurrector plugin).

* ``monitor``: every ``HM_SCAN_INTERVAL`` seconds (Celery beat), one vCenter
  round trip reads every managed VM; missing, powered-off and silent VMs
  become alerts; the resurrector decides per deployment.
* ``rules``: pure meltdown arithmetic and ``resurrection`` config rules.
* ``alerts``: alerts kept in the database, resolved on recovery, emailed.
* ``resurrector``: the ``scan and fix`` task that recreates VMs from their
  last applied state under the deployment lock.
* ``cck``: the cloud check (``cck_scan`` and ``cck_apply_resolutions`` tasks).

Importing this package registers nothing: the ``scan_and_fix`` and cloud
check handlers register when ``DirectorConfig.ready()`` imports
``resurrector`` and ``cck`` at app start.
"""
