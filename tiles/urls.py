"""Console pages: the Installation Dashboard, product tiles, the Director tile,
Review Pending Changes, installations, the Change Log and the Stemcells page."""

from django.urls import path

from .views import (
    changes,
    credentials,
    dashboard,
    director,
    installations,
    product_tabs,
    products,
    stemcells,
)

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("products/import", dashboard.product_import, name="product-import"),
    path("products/stage", dashboard.product_stage, name="product-stage"),
    path("products/delete_unused", dashboard.products_delete_unused, name="products-delete-unused"),
    path("products/<str:guid>/", products.product, name="product"),
    path("products/<str:guid>/unstage", dashboard.product_unstage, name="product-unstage"),
    path("products/<str:guid>/networks/", products.product_networks, name="product-networks"),
    path("products/<str:guid>/resources/", products.product_resources, name="product-resources"),
    path("products/<str:guid>/errands/", products.product_errands, name="product-errands"),
    path("products/<str:guid>/forms/<str:form_name>/", products.product_form, name="product-form"),
    path(
        "products/<str:guid>/credentials/",
        credentials.product_credentials,
        name="product-credentials",
    ),
    path("products/<str:guid>/status/", product_tabs.product_status, name="product-status"),
    path("products/<str:guid>/logs/", product_tabs.product_logs, name="product-logs"),
    path(
        "products/<str:guid>/credentials/<str:ref>/reveal",
        credentials.product_credential_reveal,
        name="product-credential-reveal",
    ),
    path("director_tile/", director.director_tile_home, name="director-tile-home"),
    path(
        "director_tile/test_connection",
        director.director_test_connection,
        name="director-test-connection",
    ),
    path("director_tile/<str:pane>/", director.director_tile_pane, name="director-tile"),
    path("revert", dashboard.revert, name="revert"),
    path("pending_changes/", changes.pending_changes, name="pending-changes"),
    path("installations/<int:installation_id>/", installations.installation, name="installation"),
    path(
        "installations/<int:installation_id>/retry",
        installations.installation_retry,
        name="installation-retry",
    ),
    path("changelog/", installations.changelog, name="changelog"),
    # The Stemcell Library beside the director's stemcells; the address it always had.
    path("director/stemcells/", stemcells.stemcells, name="stemcells"),
]
