from __future__ import annotations

from django.apps import AppConfig


class LinkupConfig(AppConfig):
    name = "linkup"
    verbose_name = "Linkup messaging"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Deferred until the app registry is ready: the checks import the consumers, which
        # import the models.
        from linkup import checks  # noqa: F401  (registers the system checks)
        from linkup.actions import sessions

        sessions.connect()
