"""The BOSH Director tile (``p-bosh``): vCenter, director settings, AZs, networks, VM types.

One ``DirectorConfig`` row, created on first use and never deleted. Its panes
use Ops Manager's API field names (``iaas_configuration``,
``director_configuration``, ``availability_zones``, ``networks``,
``network_and_az``, ``vm_types``), so ``om configure-director`` style YAML
maps straight onto them. Each setter validates the whole pane and stores
nothing on error; errors name the field (``iaas_configuration/datacenter``,
``networks/infra/subnets/0/gateway``).

One module per pane, each importing only those below it:

- ``common``: the row (``get_director``), the versioned write, field helpers;
- ``iaas``: vCenter Config, its pre-fill from the local vcsim and "Test
  connection" (the director logs in: ``director.vcenter``);
- ``checks``: a save's names checked against vCenter (``VCenterCheck``);
- ``settings``: Director Config, and both panes as the tile's properties;
- ``azs``: Create Availability Zones;
- ``networks``: Create Networks, Assign AZ and Network;
- ``catalogs``: VM types and disk types, the compilation VM type;
- ``configs``: the cpi-config and cloud-config it renders, what it lacks;
- ``state``: the deployed snapshot and Revert.

The vCenter password is stored encrypted and read back as ``***``; a
``***`` sent back keeps the stored password. The cpi-config carries it in
clear to the director, which stores config content encrypted too and
redacts it from logs and from API output for restricted roles.

This package is the tile's service API: the public functions of its panes
are re-exported here, so callers write ``director_tile.set_networks(...)``.
"""

from __future__ import annotations

from .azs import (
    add_availability_zone,
    list_availability_zones,
    set_availability_zones,
    update_availability_zone,
)
from .catalogs import (
    AUTOMATIC_COMPILATION_VM_TYPES,
    DEFAULT_VM_TYPES,
    DISK_TYPE_SIZES_MB,
    compilation_vm_type,
    disk_types,
    set_vm_types,
    vm_types,
)
from .checks import IGNORE_UNREACHABLE, VCenterCheck

# _write and _csv are private, re-exported for callers outside the package that
# still use them: tiles.director_security writes its panes with ``_write``,
# tiles.services.rendering splits the NTP servers with ``_csv``.
from .common import MASK, _csv, _write, get_director, version_of  # noqa: F401
from .configs import director_completeness, render_cloud_config, render_cpi_config
from .iaas import PART_IAAS, test_vcenter_connection
from .networks import get_network_and_az, get_networks, set_network_and_az, set_networks
from .settings import (
    DIRECTOR_DEFAULTS,
    PART_DIRECTOR,
    director_properties,
    set_director_configuration,
    set_director_properties,
    set_iaas_configuration,
)
from .state import director_state, restore_director_state

__all__ = [
    "AUTOMATIC_COMPILATION_VM_TYPES",
    "DEFAULT_VM_TYPES",
    "DIRECTOR_DEFAULTS",
    "DISK_TYPE_SIZES_MB",
    "IGNORE_UNREACHABLE",
    "MASK",
    "PART_DIRECTOR",
    "PART_IAAS",
    "VCenterCheck",
    "add_availability_zone",
    "compilation_vm_type",
    "director_completeness",
    "director_properties",
    "director_state",
    "disk_types",
    "get_director",
    "get_network_and_az",
    "get_networks",
    "list_availability_zones",
    "render_cloud_config",
    "render_cpi_config",
    "restore_director_state",
    "set_availability_zones",
    "set_director_configuration",
    "set_director_properties",
    "set_iaas_configuration",
    "set_network_and_az",
    "set_networks",
    "set_vm_types",
    "test_vcenter_connection",
    "update_availability_zone",
    "version_of",
    "vm_types",
]
