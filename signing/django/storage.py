"""A file storage whose ``url()`` is a signed link nginx verifies by itself.

Configure it as Django's default storage and every ``FileField.url`` (templates, the admin,
DRF's ``FileField``/``ImageField``) becomes a link that expires::

    STORAGES = {
        "default": {"BACKEND": "signing.django.storage.SignedURLStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

Like django-storages' backends, each instance takes its options from ``STORAGES[...]["OPTIONS"]``,
over the defaults of ``SECURE_LINK``: ``ttl`` (seconds, default ``DEFAULT_TTL``) and
``disposition`` (``"attachment"`` or ``"inline"`` for every URL it gives), beside
``FileSystemStorage``'s own (``location``, ``file_permissions_mode``...). So a second storage
with short-lived links sits beside the default one::

    "thumbnails": {"BACKEND": "signing.django.storage.SignedURLStorage", "OPTIONS": {"ttl": 300}},

``url(name)`` signs with the instance's options; :meth:`SignedURLStorage.signed_url` takes
per-call ones (ttl, download name, disposition, client address). Links name files under
``MEDIA_URL`` (the prefix nginx protects) in the canonical form the signer uses, so names with
spaces, ``+``, ``%``, ``;``, ``#``, ``?`` or non-ASCII characters work.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.files.storage import FileSystemStorage

from .. import SignedLink
from ..encoding import ttl_seconds
from ..nginx.disposition import DISPOSITIONS
from .links import sign_file


class SignedURLs:
    """What makes a storage's URLs signed links: ``url()`` and ``signed_url()`` with the
    instance's ``ttl`` and ``disposition`` (``OPTIONS``), whatever the storage holds the files in."""

    def __init__(self, *, ttl: int | timedelta | None = None, disposition: str | None = None, **options: Any) -> None:
        if ttl is not None:
            ttl_seconds(ttl)  # a bad TTL fails when the storage is made, not at the first URL
        if disposition is not None and disposition not in DISPOSITIONS:
            raise ValueError(f"{type(self).__name__}: disposition must be one of {DISPOSITIONS}, got {disposition!r}")
        super().__init__(**options)
        self.ttl = ttl
        self.disposition = disposition

    def url(self, name: str | None, *args: Any, **kwargs: Any) -> str:
        """A signed link to ``name`` with this storage's options; relative unless ``BASE_URL`` is set."""
        if not name:
            raise ValueError("a file without a name has no URL")
        return sign_file(name, ttl=self.ttl, disposition=self.disposition).url

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
        return sign_file(name, ttl=self.ttl if ttl is None else ttl, filename=filename,
                         disposition=self.disposition if disposition is None else disposition, client_ip=client_ip)


class SignedURLStorage(SignedURLs, FileSystemStorage):
    """``FileSystemStorage`` under ``MEDIA_ROOT`` whose URLs are signed nginx links."""
