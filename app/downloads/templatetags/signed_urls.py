"""``{% load signed_urls %}{% signed_url image.file ttl=600 filename=image.original_name %}``"""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models.fields.files import FieldFile

from ..links import sign_file

register = template.Library()


@register.simple_tag(takes_context=True)
def signed_url(context: dict[str, Any], file: FieldFile | str, ttl: int | None = None,
               filename: str | None = None, disposition: str | None = None) -> str:
    """A signed nginx URL for a stored file (absolute when the request or BASE_URL is known)."""
    name = file if isinstance(file, str) else file.name
    if not name:
        return ""
    return sign_file(name, ttl=ttl, filename=filename or None, disposition=disposition,
                     request=context.get("request")).url
