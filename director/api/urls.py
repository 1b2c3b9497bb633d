"""Director API routes under /api/v0/director/."""

from django.urls import path

from . import views

urlpatterns = [
    path("info", views.info, name="director-info"),
]
