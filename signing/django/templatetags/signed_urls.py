"""``{% load signed_urls %}{% signed_url image.file ttl=600 filename=image.original_name %}``

``{% signed_url "videos/42/" directory=True %}`` signs a folder: one token for every file below it.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models.fields.files import FieldFile

from ..links import sign_directory, sign_file

register = template.Library()


@register.simple_tag(takes_context=True)
def signed_url(context: dict[str, Any], file: FieldFile | str, ttl: int | None = None,
               filename: str | None = None, disposition: str | None = None, directory: bool = False) -> str:
    """A signed URL for a stored file, for the delivery target (absolute when the request or BASE_URL is known).

    ``filename`` and ``disposition`` are dropped for a CDN, which cannot carry them.

    With ``directory=True``, ``file`` names a folder and the URL (ending in ``/``) opens every file below it.
    """
    name = file if isinstance(file, str) else file.name
    if not name:
        return ""
    if directory:
        return sign_directory(name, ttl=ttl, request=context.get("request")).url
    return sign_file(name, ttl=ttl, filename=filename or None, disposition=disposition,
                     request=context.get("request"), name_if_possible=True).url
