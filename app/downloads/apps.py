from django.apps import AppConfig


class DownloadsConfig(AppConfig):
    """The demo's image service (its label, ``downloads``, names its tables since the first release)."""

    name = "app.downloads"
    verbose_name = "Images"
