"""What the director does, for pages, the API and ``manage.py`` commands alike: one module per noun.

* ``stemcells``: list, upload, delete
* ``releases``: list, upload
* ``configs``: validate, update, delete, list, get (cloud, cpi, runtime, resurrection...)
* ``deployments``: list, read, instances, deploy, delete, plan preview
* ``errands``: list a deployment's errands, run one
* ``vms``: the VMs page (``bosh vms`` with vCenter's power states)
* ``tasks``: list, get, cancel, output
* ``events``: the audit log with BOSH's filters
* ``resurrection``: the global resurrection switch

Every function is a verb on director nouns; views, API views and commands
stay thin and call these. Anything long (imports through the CPI, deploys,
deletes) creates a ``Task`` (``director.runner.create_task``) and returns it
at once; the work runs in a Celery worker after the transaction commits.

Errors are ``opsconsole.errors.ServiceError`` with ``errors`` = ``{field or
path: [message]}`` and an HTTP-like ``status`` (404 not found, 409 conflict,
422 unprocessable input, 501 not yet built) that the API passes through and
pages show.
"""

# Re-exports: API views, management commands, tiles and tests call
# ``from director import services; services.upload_stemcell(...)``. New code
# imports the submodule (``from director.services import stemcells``).
from .configs import (
    ConfigUpdate,
    delete_config,
    get_config,
    list_configs,
    update_config,
    validate_config,
)
from .deployments import (
    delete_deployment,
    deploy,
    deployment_instances,
    get_deployment,
    list_deployments,
    plan,
)
from .events import MAX_EVENTS, event_filter_values, get_event, list_events
from .releases import list_releases, upload_release
from .resurrection import resurrection_enabled, set_resurrection
from .stemcells import delete_stemcell, list_stemcells, upload_stemcell
from .tasks import cancel_task, get_task, list_tasks, task_output
from .vms import DeploymentVms, VmRow, VmsReport, deployment_vms, live_vm_states

__all__ = [
    "MAX_EVENTS",
    "ConfigUpdate",
    "DeploymentVms",
    "VmRow",
    "VmsReport",
    "cancel_task",
    "delete_config",
    "delete_deployment",
    "delete_stemcell",
    "deploy",
    "deployment_instances",
    "deployment_vms",
    "event_filter_values",
    "get_config",
    "get_deployment",
    "get_event",
    "get_task",
    "list_configs",
    "list_deployments",
    "list_events",
    "list_releases",
    "list_stemcells",
    "list_tasks",
    "live_vm_states",
    "plan",
    "resurrection_enabled",
    "set_resurrection",
    "task_output",
    "update_config",
    "upload_release",
    "upload_stemcell",
    "validate_config",
]
