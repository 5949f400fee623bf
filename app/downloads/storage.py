"""A file storage whose ``url()`` is a signed link nginx verifies by itself.

Configure it as Django's default storage and every ``FileField.url`` (templates, the admin,
DRF's ``FileField``/``ImageField``) becomes a link that expires::

    STORAGES = {
        "default": {"BACKEND": "app.downloads.storage.SignedURLStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

``url(name)`` signs for ``SECURE_LINK_DEFAULT_TTL`` seconds; :meth:`SignedURLStorage.signed_url`
takes the options (ttl, download name, disposition, client address). Links name files under
``MEDIA_URL`` (the prefix nginx protects) in the canonical form the signer uses, so names with
spaces, ``+``, ``%``, ``;``, ``#``, ``?`` or non-ASCII characters work.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.files.storage import FileSystemStorage

from signing import SignedLink

from .links import sign_file


class SignedURLStorage(FileSystemStorage):
    """``FileSystemStorage`` under ``MEDIA_ROOT`` whose URLs are signed nginx links."""

    def url(self, name: str | None) -> str:
        """A signed link to ``name`` for the default TTL; relative unless ``SITE_BASE_URL`` is set."""
        if not name:
            raise ValueError("a file without a name has no URL")
        return sign_file(name).url

    def signed_url(
        self,
        name: str,
        *,
        ttl: int | timedelta | None = None,
        filename: str | None = None,
        disposition: str | None = None,
        client_ip: str | None = None,
    ) -> SignedLink:
        """A signed link with options: ``link.url``, ``link.expires_at`` and ``link.kid``."""
        return sign_file(name, ttl=ttl, filename=filename, disposition=disposition, client_ip=client_ip)
