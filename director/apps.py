"""The director app: at start it registers its task handlers, its task queue and its checks."""

from django.apps import AppConfig


class DirectorConfig(AppConfig):
    name = "director"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Imported here, not at the top: a module that touches models may load
        # only once the app registry is ready.
        from opsconsole import doctor

        # Each of these registers its task handlers with the runner on import
        # (``@task_handler``); ``tasks`` installs Celery as the runner's queue,
        # ``schedule`` merges the beat entries.
        from . import (  # noqa: F401
            cleanup,
            instance_actions,
            logs,
            schedule,
            tasks,
            uploads,
        )
        from .execution import delete, deploy, errand  # noqa: F401
        from .health import cck, resurrector  # noqa: F401
        from .vcenter import vcenter_check

        doctor.register("vcenter", vcenter_check, quick=False, title="vCenter")
