"""Moved: the deployment services live in ``director.services.deployments``.

Kept for ``benchmarks/deploy.py``, which still imports ``director.deployments``;
new code imports ``director.services.deployments``.
"""

from .services.deployments import delete_deployment, deploy, plan

__all__ = ["delete_deployment", "deploy", "plan"]
