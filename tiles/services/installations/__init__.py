"""Apply Changes: an Installation and the one worker task that runs its steps.

``apply_changes`` checks everything that can be checked at once (no other
installation running, the Director tile complete, the chosen products
complete and renderable), records an ``Installation`` with its steps, and
queues one Celery task (``tiles.tasks.run_installation``) after the
transaction commits. That task runs the steps in order, in its own worker;
each step is a director ``Task`` run inline with ``director.runner.run_task``
(a worker never waits for another worker to pick a task up). Those tasks are
created with ``enqueue=False``: they never reach the queue, so no other
worker races for them.

What was reviewed is what deploys: at the click, ``apply_changes`` renders
the cpi-config, cloud-config and every chosen product's manifest and keeps
them, with the staged configuration they came from, in the encrypted
``Installation.snapshot``; the worker deploys that snapshot, so an edit
saved after the click waits for the next Apply Changes. The steps:

1. ``vcenter``: log in to the reviewed cpi-config's vCenter (the check
   "Test connection" runs); a wrong password or an unreachable host fails
   the installation here, naming the cause, before anything changes;
2. ``configs``: store the reviewed cpi-config and cloud-config
   (``director.services.update_config``; unchanged content stores
   nothing, and the versions written are remembered so Review Pending
   Changes can tell a config someone else uploaded), the chosen tiles'
   runtime configs (named ``<product guid>-<name>``, uploaded, or deleted
   when the tile no longer has them or is deleted;
   ``tiles.services.runtime_configs``) and the resurrector switch
   (``configs``);
3. ``stemcells`` (when products are deployed): upload, from the Stemcell
   Library, every stemcell a product needs that the director lacks
   (``tiles.services.stemcells.stemcells_to_upload``), one director
   ``update_stemcell`` task per stemcell; skipped, saying so, when the
   director has them all;
4. ``deploy`` per chosen product (``director.services.deployments.deploy``), or
   ``delete`` for a product marked for deletion
   (``director.services.deployments.delete_deployment``); a product whose manifest,
   version and stemcell did not change is recorded ``unchanged`` and not
   redeployed (deliberately quicker than Ops Manager, which redeploys every
   selected tile) unless runtime configs change it (its own, or addons whose
   include/exclude rules reach it); a runtime-config-only tile (no job
   types) deploys nothing;
5. ``errand`` per post-deploy errand that is on (or ``when-changed`` and the
   product changed), a director ``run_errand`` task
   (``director.services.errands``); an errand whose job has 0 instances is
   skipped, saying so.

The first failing step fails the installation; later steps are skipped.
Stemcells come from the Stemcell Library (``POST /api/v0/stemcells`` and
the Stemcells page keep every imported file): a product whose stemcell is
neither in the director nor in the library cannot be applied ("missing
stemcell").

The installation log is the event logs of its steps' tasks, formatted the way
the bosh CLI prints them, one section per step.

Modules, in the order an Apply Changes goes through them:

- ``apply``: the click (checks, the steps, the queued task) and Retry;
- ``snapshot``: what was reviewed, kept for the worker;
- ``run``: the worker's loop over the steps;
- ``steps``: a step's director task run inline, and the director's steps
  (vCenter, configs, stemcells); ``configs``: the configs task itself;
- ``product_steps``: deploy, delete and errands of each product;
- ``records``: the installation rows (running, list, one, last steps);
- ``progress``: the installation log.

Callers outside import the names below from here; the modules import one
another directly.
"""

from .apply import apply_changes, retry_installation
from .configs import CONFIG_TASK_TYPE, TILE_CONFIGS_ATTRIBUTE
from .progress import format_event, installation_events, installation_logs
from .records import get_installation, last_steps, list_installations, running_installation
from .run import run_installation

__all__ = [
    "apply_changes",
    "run_installation",
    "running_installation",
    "list_installations",
    "get_installation",
    "installation_logs",
    "installation_events",
    "format_event",
    "retry_installation",
    "last_steps",
    "CONFIG_TASK_TYPE",
    "TILE_CONFIGS_ATTRIBUTE",
]
