from django.apps import AppConfig


class OpsconsoleConfig(AppConfig):
    name = "opsconsole"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Registers the OpenAPI extension for our bearer tokens (drf-spectacular
        # finds extensions by import).
        from . import schema  # noqa: F401
