"""Moved: the deployment services live in ``director.services.deployments``.

Kept for callers outside the director (``tiles.installations``,
``tiles.pending``, ``benchmarks/deploy.py``) that still import
``director.deployments``; new code imports ``director.services.deployments``.
"""

from .services.deployments import delete_deployment, deploy, plan

__all__ = ["delete_deployment", "deploy", "plan"]
