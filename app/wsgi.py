"""WSGI entry point. Refuses to start, with one line that says what to fix, when a setting cannot work."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "app.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

from signing.django.checks import application_or_exit  # noqa: E402


def make_application():  # type: ignore[no-untyped-def]
    """Django, with the origins' download counter answered before its middleware."""
    django_application = get_wsgi_application()  # sets Django up: the counter's models can load now
    from signing.django.counter_http import counter_fast_path

    return counter_fast_path(django_application)


application = application_or_exit(make_application)
