"""The console app: at start it records login lockouts as audit events."""

from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"

    def ready(self):
        # Imported here, not at the top: director.events loads models, which
        # may load only once the app registry is ready.
        from director.events import record_event
        from opsconsole import throttle

        def record_lockout(sender, object_type, object_name, context, **kwargs):
            record_event("lock", object_type, object_name, context=context)

        throttle.locked_out.connect(record_lockout, weak=False, dispatch_uid="console.lockout")
