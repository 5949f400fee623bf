"""``{% load signed_urls %}{% signed_url image.file ttl=600 filename=image.original_name %}``

``{% signed_url "videos/42/" directory=True %}`` signs a folder: one token for every file below it.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models.fields.files import FieldFile

from ..links import bound_client, client_address, sign_directory, sign_file

register = template.Library()


@register.simple_tag(takes_context=True)
def signed_url(context: dict[str, Any], file: FieldFile | str, ttl: int | None = None,
               filename: str | None = None, disposition: str | None = None, directory: bool = False,
               bind_ip: bool | int = False, bind_ip6: int | None = None) -> str:
    """A signed URL for a stored file, for the delivery target (absolute when the request or BASE_URL is known).

    ``filename`` and ``disposition`` are dropped for a CDN, which cannot carry them.

    With ``directory=True``, ``file`` names a folder and the URL (ending in ``/``) opens every file below it.
    ``bind_ip=True`` binds it to the requesting client's address, ``bind_ip=24`` to its network
    (``bind_ip6`` for an IPv6 client, 64 by default): :func:`~signing.django.links.bound_client`.
    """
    name = file if isinstance(file, str) else file.name
    if not name:
        return ""
    request = context.get("request")
    client_ip = None
    if bind_ip is not False:
        if request is None:
            raise ValueError("signed_url bind_ip=... needs the request in the template context")
        client_ip = bound_client(client_address(request), bind_ip, bind_ip6)
    if directory:
        return sign_directory(name, ttl=ttl, client_ip=client_ip, request=request).url
    return sign_file(name, ttl=ttl, filename=filename or None, disposition=disposition, client_ip=client_ip,
                     request=request, name_if_possible=True).url
