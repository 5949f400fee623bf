"""The Django app: signed links on any ``FileField``, the per-link API, the fleet's endpoints,
the system checks and the operator commands (``pip install 'signed-downloads[django]'``).

Add ``"signing.django"`` to ``INSTALLED_APPS`` (its label is ``secure_links``); the README's
"In your own Django project" shows the few settings. Its modules, by what a reader looks for:

- :mod:`~signing.django.conf`: the one reader of ``settings.SECURE_LINK`` and its defaults;
- :mod:`~signing.django.links`: signing stored files (``sign_file``, ``issue_link``, cookies);
- :mod:`~signing.django.storage`, :mod:`~signing.django.fields`, the ``signed_urls`` template
  tags: ``FileField.url``, DRF fields and templates give signed links;
- :mod:`~signing.django.models`, :mod:`~signing.django.views`, :mod:`~signing.django.urls`:
  issued links by id, the per-link API, the fleet's key and revocation endpoints;
- :mod:`~signing.django.responses`: ``X-Accel-Redirect`` and the no-nginx file response;
- :mod:`~signing.django.checks`, :mod:`~signing.django.selfcheck`: start-up checks and the
  probes of ``manage.py check_secure_link``.

Nothing here is imported by :mod:`signing` itself, which never imports Django.
"""
