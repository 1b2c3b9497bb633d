from django.apps import AppConfig


class DirectorConfig(AppConfig):
    name = "director"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import cleanup, schedule  # noqa: F401  (cleanup task handlers, beat entries)
