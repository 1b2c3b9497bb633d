"""Routes of the blobstore's HTTP endpoint, mounted at ``/blobstore/`` (see ``views``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("signed/<path:object_id>", views.signed_blob, name="blobstore-signed"),
    path("<path:object_id>", views.blob, name="blobstore-blob"),
]
