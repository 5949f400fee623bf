"""The app's configuration: label ``secure_links``, the system checks registered when ready."""

from django.apps import AppConfig


class SecureLinksConfig(AppConfig):
    name = "signing.django"
    label = "secure_links"
    verbose_name = "Signed downloads"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
