"""Executing plans through the CPI: the ``update_deployment`` and ``delete_deployment`` tasks.

BOSH's ``jobs/update_deployment.rb`` and ``deployment_plan/stages``, in
Python: a deploy is prepared (``prepare``: manifest, variables, configs,
uploads, current state -> ``DeploymentPlan``), then executed as event-log
stages of small steps (``steps``: create/delete/orphan VMs, disks, IPs),
instance by instance (``deploy.InstanceUpdater``) in canary and
``max_in_flight`` batches. ``leftovers`` finds what an interrupted run left
in vCenter and the database; ``preview`` renders a plan as JSON.

Importing this package registers the task handlers with the runner.
"""

from . import delete, deploy  # noqa: F401  (register the task handlers)
from .prepare import Prepared, PrepareError, prepare
from .preview import plan_to_dict

__all__ = ["PrepareError", "Prepared", "plan_to_dict", "prepare"]
