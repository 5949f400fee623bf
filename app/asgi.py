"""ASGI entry point. Refuses to start when a system check finds an error."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "app.settings")

application = get_asgi_application()

from app.downloads.checks import fail_on_check_errors  # noqa: E402

fail_on_check_errors()
