"""What the console does with tiles, for pages and the API alike.

Every function is a verb on the console's nouns (available products, staged
products, their panes, the Director tile, installations). Views and API
views stay thin and call these; both get the same validation and errors.

Errors are ``opsconsole.errors.ServiceError`` (and its ``NotFound`` /
``Conflict``): ``errors`` maps a field, a property reference
(``.properties.port``, ``.properties.hosts[1].name``) or a path
(``networks/infra/subnets/0/gateway``) to messages, ``status`` is the HTTP
status the API answers with. A refused change stores nothing.

Layout, one module per noun:

- ``products``: import, list and delete available products;
- ``staging``: stage, upgrade and unstage;
- ``properties``: a staged product's properties (masked reads, validated
  writes, generated credentials);
- ``panes``: Assign AZs and Networks, Resource Config, Errands;
- ``rendering``: the render context, the manifest, the completeness checks;
- ``stemcells``: the Stemcell Library (kept stemcell files, matching them
  to products, what Apply Changes uploads, stemcell assignments);
- ``deployed``: deployed products, their manifests, status and credentials;
- ``pending`` (with ``director_changes`` and ``diffs``): Review Pending
  Changes; ``revert``: Revert;
- ``installations``: Apply Changes (a package: the click, the snapshot, the
  worker's steps, the log).

The Director tile is ``tiles.director_tile``. All public functions are
re-exported here for views and API views; the modules above never import
this facade, only one another.

Secrets: property values of secret and credential types live only in the
encrypted ``StagedProduct.secrets``; reads mask them as ``***`` unless the
caller asks to reveal them (the API only does so for roles that may see
credentials), and a ``***`` sent back keeps the stored value.
"""

from __future__ import annotations

from opsconsole.errors import Conflict, NotFound, ServiceError
from tiles.director_tile import (
    MASK,
    get_director,  # noqa: F401 (API views)
)
from tiles.models import StagedProduct  # noqa: F401 (API views)

from .common import product_template, root_ca
from .deployed import (
    _mark_deployed,  # noqa: F401 (tests)
    deployed_manifest,
    deployed_status,
    get_credential,
    list_credentials,
    list_deployed_products,
    reveal_credential,
)
from .panes import (
    AUTOMATIC,
    get_errands,
    get_networks_and_azs,
    get_resource_config,
    job_guid,
    job_name_for_guid,
    list_jobs,
    set_errands,
    set_networks_and_azs,
    set_resource_config,
)
from .products import (
    delete_available_product,
    delete_unused_products,
    get_available_product,
    import_product,
    list_available_products,
)
from .properties import get_properties, set_properties
from .rendering import (
    find_stemcell,
    manifest_credentials,
    manifest_yaml,
    product_checks,
    render_context,
    render_manifest,
)
from .staging import get_staged_product, list_staged_products, stage_product, unstage_product
from .stemcells import (
    StemcellImport,
    import_stemcell,
    match_stemcell,
    resolve_stemcell,
    stemcell_assignments,
    stemcell_library,
    stemcell_notes,
    stemcells_to_upload,
)

__all__ = [
    "ServiceError",
    "NotFound",
    "Conflict",
    "MASK",
    "AUTOMATIC",
    # products
    "import_product",
    "list_available_products",
    "get_available_product",
    "delete_available_product",
    "delete_unused_products",
    # staging
    "list_staged_products",
    "get_staged_product",
    "stage_product",
    "unstage_product",
    "product_template",
    # panes
    "get_properties",
    "set_properties",
    "get_networks_and_azs",
    "set_networks_and_azs",
    "list_jobs",
    "job_name_for_guid",
    "job_guid",
    "get_resource_config",
    "set_resource_config",
    "get_errands",
    "set_errands",
    # manifest
    "render_context",
    "render_manifest",
    "manifest_credentials",
    "manifest_yaml",
    "product_checks",
    "find_stemcell",
    "root_ca",
    # stemcell library
    "StemcellImport",
    "import_stemcell",
    "match_stemcell",
    "resolve_stemcell",
    "stemcell_assignments",
    "stemcell_library",
    "stemcell_notes",
    "stemcells_to_upload",
    # deployed
    "list_deployed_products",
    "deployed_manifest",
    "deployed_status",
    "list_credentials",
    "get_credential",
    "reveal_credential",
]

# Re-exports: the Director tile, pending changes and installations.
from tiles.director_tile import (  # noqa: E402
    add_availability_zone,
    director_completeness,
    director_properties,
    disk_types,
    get_network_and_az,
    get_networks,
    list_availability_zones,
    render_cloud_config,
    render_cpi_config,
    set_availability_zones,
    set_director_configuration,
    set_director_properties,
    set_iaas_configuration,
    set_network_and_az,
    set_networks,
    set_vm_types,
    test_vcenter_connection,
    update_availability_zone,
    vm_types,
)

from .director_changes import director_diff  # noqa: E402
from .installations import (  # noqa: E402
    apply_changes,
    get_installation,
    installation_logs,
    list_installations,
    running_installation,
)
from .pending import pending_changes, product_diff  # noqa: E402
from .revert import revert_staged  # noqa: E402

__all__ += [
    "add_availability_zone",
    "director_completeness",
    "director_properties",
    "disk_types",
    "get_network_and_az",
    "get_networks",
    "list_availability_zones",
    "render_cloud_config",
    "render_cpi_config",
    "set_availability_zones",
    "set_director_configuration",
    "set_director_properties",
    "set_iaas_configuration",
    "set_network_and_az",
    "set_networks",
    "set_vm_types",
    "test_vcenter_connection",
    "update_availability_zone",
    "vm_types",
    "apply_changes",
    "get_installation",
    "installation_logs",
    "list_installations",
    "running_installation",
    "director_diff",
    "pending_changes",
    "product_diff",
    "revert_staged",
]
