"""Director pages: tasks (and one task's logs), VMs, events, health alerts.

The Stemcells page, with the console's Stemcell Library, is routed by ``tiles.urls``.
"""

from django.urls import path

from . import views

urlpatterns = [
    path("tasks/", views.tasks, name="tasks"),
    path("tasks/<int:task_id>/", views.task, name="task"),
    path("tasks/<int:task_id>/cancel", views.task_cancel, name="task-cancel"),
    path("vms/", views.vms, name="vms"),
    path(
        "vms/<str:deployment>/<str:group>/<str:ident>/<str:action>",
        views.instance_action,
        name="instance-action",
    ),
    path("vms/<str:deployment>/cloud-check", views.cloud_check, name="cloud-check"),
    path("events/", views.events, name="events"),
    path("health/", views.health, name="health"),
]
