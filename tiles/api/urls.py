"""Console API routes (Ops Manager paths) under /api/v0/.

``director/diff`` lives under the director API's prefix: ``opsconsole/urls.py``
mounts ``director_diff`` before ``director/`` so it is found first.
"""

from django.urls import path

from . import director_panes, logs, resources, views

#: Mounted at /api/v0/director/diff by opsconsole/urls.py, ahead of the director API.
director_diff = path("director/diff", views.director_diff, name="api-director-diff")
#: Mounted at /api/v0/stemcells by opsconsole/urls.py: Ops Manager's import into the
#: Stemcell Library (which also starts the director upload).
stemcells_upload = path("stemcells", views.stemcells_upload, name="stemcells_upload")

urlpatterns = [
    path("available_products", views.available_products, name="api-available-products"),
    path("staged/products", views.staged_products, name="api-staged-products"),
    path("staged/products/<str:guid>", views.staged_product, name="api-staged-product"),
    path("staged/products/<str:guid>/properties", views.properties, name="api-properties"),
    path(
        "staged/products/<str:guid>/networks_and_azs",
        views.networks_and_azs,
        name="api-networks-and-azs",
    ),
    path("staged/products/<str:guid>/jobs", views.jobs, name="api-jobs"),
    path("staged/products/<str:guid>/resources", resources.resources, name="api-resources"),
    path(
        "staged/products/<str:guid>/jobs/<str:job_guid>/resource_config",
        views.resource_config,
        name="api-resource-config",
    ),
    path("staged/products/<str:guid>/errands", views.errands, name="api-errands"),
    path("staged/products/<str:guid>/manifest", views.staged_manifest, name="api-staged-manifest"),
    path(
        "staged/director/properties",
        director_panes.director_properties,
        name="api-director-properties",
    ),
    path(
        "staged/director/test_connection",
        director_panes.director_test_connection,
        name="api-director-test-connection",
    ),
    path(
        "staged/director/availability_zones",
        director_panes.availability_zones,
        name="api-availability-zones",
    ),
    path(
        "staged/director/availability_zones/<str:az_guid>",
        director_panes.availability_zone,
        name="api-availability-zone",
    ),
    path(
        "staged/director/networks", director_panes.director_networks, name="api-director-networks"
    ),
    path(
        "staged/director/network_and_az",
        director_panes.director_network_and_az,
        name="api-director-network-and-az",
    ),
    path("staged/cloud_config", director_panes.cloud_config, name="api-cloud-config"),
    path("staged/pending_changes", views.pending_changes, name="api-pending-changes"),
    path("staged", views.staged, name="api-staged"),
    path("stemcell_assignments", views.stemcell_assignments, name="api-stemcell-assignments"),
    path("vm_types", director_panes.vm_types, name="api-vm-types"),
    path("disk_types", director_panes.disk_types, name="api-disk-types"),
    path("products/<str:guid>/diff", views.product_diff, name="api-product-diff"),
    path("installations", views.installations, name="api-installations"),
    path("installations/<int:installation_id>", views.installation, name="api-installation"),
    path(
        "installations/<int:installation_id>/logs",
        views.installation_logs,
        name="api-installation-logs",
    ),
    path("deployed/products", views.deployed_products, name="api-deployed-products"),
    path(
        "deployed/products/<str:guid>/manifest",
        views.deployed_manifest,
        name="api-deployed-manifest",
    ),
    path("deployed/products/<str:guid>/status", views.deployed_status, name="api-deployed-status"),
    path(
        "deployed/products/<str:guid>/jobs/<str:job_guid>/logs",
        logs.job_logs,
        name="api-deployed-job-logs",
    ),
    path(
        "deployed/products/<str:guid>/jobs/<str:job_guid>/logs/<str:task_guid>",
        logs.job_logs_bundle,
        name="api-deployed-job-logs-bundle",
    ),
    path(
        "deployed/products/<str:guid>/credentials",
        views.credentials,
        name="api-deployed-credentials",
    ),
    path(
        "deployed/products/<str:guid>/credentials/<str:ref>",
        views.credential,
        name="api-deployed-credential",
    ),
]
