"""The BOSH-style director: stemcells, releases, configs, deployments, tasks.

``manifest/`` and ``planning/`` are pure; ``execution/`` runs a plan through
the CPI; ``services.py`` is what views, the API and commands call.
"""
