"""ASGI entry point. Refuses to start, with one line that says what to fix, when a setting cannot work."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "app.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

from signing.django.checks import application_or_exit  # noqa: E402

application = application_or_exit(get_asgi_application)
