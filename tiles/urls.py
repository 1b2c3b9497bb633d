"""Console pages: the Installation Dashboard and the Change Log."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("changelog/", views.changelog, name="changelog"),
]
