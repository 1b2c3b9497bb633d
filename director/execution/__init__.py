"""Executing plans through the CPI: the ``update_deployment``, ``delete_deployment`` and
``run_errand`` tasks.

BOSH's ``jobs/update_deployment.rb`` and ``deployment_plan/stages``, in
Python: a deploy is prepared (``prepare``: manifest, variables, configs,
uploads, current state -> ``DeploymentPlan``), then executed as event-log
stages of small steps (``steps``: create/delete/orphan VMs, disks, IPs),
instance by instance (``deploy.InstanceUpdater``) in canary and
``max_in_flight`` batches. ``leftovers`` finds what an interrupted run left
in vCenter and the database; ``preview`` renders a plan as JSON; ``errand``
runs an errand on a deployment's instances with the deploy's steps.

The task handlers (``deploy``, ``delete``, ``errand``) register with the
runner when the director app starts (``DirectorConfig.ready`` imports them).
"""

from . import delete, deploy  # noqa: F401  (the package's two tasks, as attributes)
from .prepare import Prepared, PrepareError, prepare
from .preview import plan_to_dict

__all__ = ["PrepareError", "Prepared", "plan_to_dict", "prepare"]
