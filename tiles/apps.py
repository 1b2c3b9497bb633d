from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TilesConfig(AppConfig):
    name = "tiles"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # app registry: these modules load models, so they load once the registry is ready.
        from tiles.services.installations import configs  # noqa: F401  (registers its task handler)
        from tiles.services.scrub import finish_pending_scrub

        # The secrets scrub of migration 0006, finished once every table is current.
        post_migrate.connect(finish_pending_scrub, sender=self)
