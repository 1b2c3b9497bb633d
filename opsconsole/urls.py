"""URL routes: pages from each app, the API under /api/v0/, auth and health."""

from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import IsAuthenticated

from console.backup import api as backup_api
from console.users import api as users_api
from tiles.api import urls as tiles_api_urls

from . import api, views

api_v0 = [
    path("info", api.info, name="api-info"),
    path("auth/token", api.issue_token, name="api-token"),
    path("auth/tokens", api.tokens, name="api-tokens"),
    path("auth/tokens/<int:token_id>", api.token_detail, name="api-token-detail"),
    # For logged-in users only: the schema answers 401, the docs page sends to the login page.
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]),
        name="api-schema",
    ),
    path("docs/", views.api_docs, name="api-docs"),
    path("users", users_api.users, name="api-users"),
    # Any name Django's validator allows (letters, digits, @ . + - _) is one path segment.
    path("users/<str:username>", users_api.user, name="api-user"),
    tiles_api_urls.director_diff,  # before the director API, which shares the prefix
    path("director/", include("director.api.urls")),
    tiles_api_urls.stemcells_upload,  # the Stemcell Library, then the director upload
    path(
        "installation_asset_collection",
        backup_api.installation_asset_collection,
        name="api-installation-asset-collection",
    ),
    path(
        "encryption_key/rotate",
        backup_api.rotate_encryption_key,
        name="api-encryption-key-rotate",
    ),
    path("", include("tiles.api.urls")),
]

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("health", views.health, name="health"),
    path("api/v0/", include(api_v0)),
    path("director/", include("director.urls")),
    # The director's blobstore (DAV for agents): basic auth or signed URLs, no login.
    path("blobstore/", include("director.blobstore.urls")),
    path("settings/users/", include("console.users.urls")),
    path("", include("tiles.urls")),
]
handler404 = "opsconsole.views.not_found"
