"""Director API routes under /api/v0/director/ (and the Ops Manager stemcell upload)."""

from django.urls import path

from . import errands, health, instances, views

urlpatterns = [
    path("info", views.info, name="director-info"),
    path("stemcells", views.stemcells, name="director-stemcells"),
    path("stemcells/<str:name>/<str:version>", views.stemcell, name="director-stemcell"),
    path("releases", views.releases, name="director-releases"),
    path("configs", views.configs, name="director-configs"),
    path("configs/<int:config_id>", views.config, name="director-config"),
    path("deployments", views.deployments, name="director-deployments"),
    path("deployments/<str:name>", views.deployment, name="director-deployment"),
    path(
        "deployments/<str:name>/instances",
        instances.deployment_instances,
        name="director-deployment-instances",
    ),
    path("deployments/<str:name>/vms", instances.deployment_vms, name="director-deployment-vms"),
    path("deployments/<str:name>/plan", views.deployment_plan, name="director-deployment-plan"),
    path(
        "deployments/<str:name>/errands",
        errands.deployment_errands,
        name="director-deployment-errands",
    ),
    path(
        "deployments/<str:name>/errands/<str:errand>/runs",
        errands.errand_runs,
        name="director-errand-runs",
    ),
    path("deployments/<str:name>/logs", instances.deployment_logs, name="director-logs"),
    path(
        "deployments/<str:name>/instances/<str:group>/actions",
        instances.group_action,
        name="director-group-actions",
    ),
    path(
        "deployments/<str:name>/instances/<str:group>/<str:ident>/actions",
        instances.instance_action,
        name="director-instance-actions",
    ),
    path("deployments/<str:name>/scans", instances.deployment_scans, name="director-scans"),
    path(
        "deployments/<str:name>/problems", instances.deployment_problems, name="director-problems"
    ),
    path("resources/<str:blob>", instances.resource, name="director-resource"),
    path("resurrection", views.resurrection, name="director-resurrection"),
    path("tasks", views.tasks, name="director-tasks"),
    path("tasks/<int:task_id>", views.task, name="director-task"),
    path("tasks/<int:task_id>/output", views.task_output, name="director-task-output"),
    path("tasks/<int:task_id>/cancel", views.task_cancel, name="director-task-cancel"),
    path("health/alerts", health.alerts, name="director-health-alerts"),
    path("health/resurrections", health.resurrections, name="director-health-resurrections"),
    path("events", views.events, name="director-events"),
    path("events/<int:event_id>", views.event, name="director-event"),
]
