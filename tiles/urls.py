"""Console pages: the Installation Dashboard, product tiles, the Director tile,
Review Pending Changes, installations and the Change Log."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("products/import", views.product_import, name="product-import"),
    path("products/stage", views.product_stage, name="product-stage"),
    path("products/delete_unused", views.products_delete_unused, name="products-delete-unused"),
    path("products/<str:guid>/", views.product, name="product"),
    path("products/<str:guid>/unstage", views.product_unstage, name="product-unstage"),
    path("products/<str:guid>/networks/", views.product_networks, name="product-networks"),
    path("products/<str:guid>/resources/", views.product_resources, name="product-resources"),
    path("products/<str:guid>/errands/", views.product_errands, name="product-errands"),
    path("products/<str:guid>/forms/<str:form_name>/", views.product_form, name="product-form"),
    path("director_tile/", views.director_tile_home, name="director-tile-home"),
    path(
        "director_tile/test_connection",
        views.director_test_connection,
        name="director-test-connection",
    ),
    path("director_tile/<str:pane>/", views.director_tile_pane, name="director-tile"),
    path("revert", views.revert, name="revert"),
    path("pending_changes/", views.pending_changes, name="pending-changes"),
    path("installations/<int:installation_id>/", views.installation, name="installation"),
    path("changelog/", views.changelog, name="changelog"),
]
