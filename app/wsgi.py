"""WSGI entry point. Refuses to start when a system check finds an error."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "app.settings")

application = get_wsgi_application()

from app.downloads.checks import fail_on_check_errors  # noqa: E402

fail_on_check_errors()
