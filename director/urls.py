"""Director pages: stemcells, tasks, VMs, events."""

from django.urls import path

from . import views

urlpatterns = [
    path("stemcells/", views.stemcells, name="stemcells"),
    path("tasks/", views.tasks, name="tasks"),
    path("vms/", views.vms, name="vms"),
    path("events/", views.events, name="events"),
]
