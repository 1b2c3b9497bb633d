"""BOSH v2 deployment manifests: validation and normalization.

``parse_manifest`` checks a deployment manifest the way the BOSH director
does before planning (``ManifestValidator``, ``DeploymentSpecParser``,
``InstanceGroupSpecParser``, ``UpdateConfig``) and returns a normalized copy
the planner and the executor can rely on:

* ``update`` has every key: ``serial`` (default true), ``vm_strategy`` (from
  the ``default_vm_strategy`` argument, i.e. the director setting, unless the
  manifest says otherwise), ``initial_deploy_az_update_strategy`` (``serial``);
  each instance group's ``update`` is the *effective* block (deployment
  ``update`` overridden key by key by the group's own).
* instance groups have ``azs`` (list, maybe empty), ``lifecycle``
  (``service``), ``vm_extensions``, ``env``, ``migrated_from``; each job has
  ``release`` and ``properties`` (``{}``, or, BOSH's legacy behaviour, the
  group's and global ``properties`` when the job has none of its own);
  networks have ``static_ips`` (ranges expanded to addresses) and ``default``
  (``[dns, gateway]`` when the group has one network).
* ``features`` has every known flag (false by default); ``variables``,
  ``addons`` and ``tags`` are present.

All problems are collected and raised as one :class:`ManifestError`, each
naming its path (``instance_groups/zookeeper/azs``). Values that are still
``((placeholders))`` pass type checks: a raw manifest is validated before
interpolation as well as after.

``validate_against_cloud_config`` checks the references a manifest makes into
a (parsed) cloud-config: azs, vm_types, vm_extensions, disk types, networks,
static IPs and the compilation section.

One module per section: ``manifest`` (the top level and the entry point),
``releases`` (releases, stemcells), ``update``, ``groups`` (an instance
group), ``jobs``, ``networks``, ``variables`` (variables, features) and
``cloud_refs`` (references into the cloud-config).
"""

from .cloud_refs import validate_against_cloud_config
from .groups import LIFECYCLES, MAX_INSTANCES
from .manifest import parse_manifest
from .update import AZ_UPDATE_STRATEGIES, VM_STRATEGIES, resolve_count, watch_time_range

__all__ = [
    "AZ_UPDATE_STRATEGIES",
    "LIFECYCLES",
    "MAX_INSTANCES",
    "VM_STRATEGIES",
    "parse_manifest",
    "resolve_count",
    "validate_against_cloud_config",
    "watch_time_range",
]
