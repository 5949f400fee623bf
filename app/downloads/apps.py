from django.apps import AppConfig


class DownloadsConfig(AppConfig):
    name = "app.downloads"
    verbose_name = "Signed downloads"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
