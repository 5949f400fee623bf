"""Serializer fields that put signed nginx links on any ``FileField``.

    class ImageSerializer(serializers.ModelSerializer):
        download_url = SignedFileURLField(file_field="file", filename="original_name")
        expires_at = SignedURLExpiresField(url_field="download_url")

Both fields of one object share a single signed link, so ``expires_at`` is always the
expiry of that very ``download_url``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models.fields.files import FieldFile
from rest_framework import serializers

from .. import LinkError, SignedLink
from .links import LinkIssuer
from .openapi import OpenApiTypes, extend_schema_field

FilenameOption = str | Callable[[Any], str] | None
_Page = tuple[LinkIssuer, dict[int, tuple[Any, SignedLink | None]]]  # one serialization's issuer and its links


@extend_schema_field(OpenApiTypes.URI)
class SignedFileURLField(serializers.Field):
    """A read-only absolute URL to the object's ``file_field`` that nginx verifies by itself.

    ``ttl`` defaults to ``SECURE_LINK['DEFAULT_TTL']``. ``filename`` is a download name,
    the name of an attribute of the object holding it, or a callable of the object.
    """

    default_error_messages = {"unsafe": "This file cannot be linked: {reason}"}

    def __init__(self, *, file_field: str = "file", ttl: int | None = None, filename: FilenameOption = None,
                 disposition: str | None = None, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        kwargs["source"] = "*"
        super().__init__(**kwargs)
        self.file_field = file_field
        self.ttl = ttl
        self.filename = filename
        self.disposition = disposition

    def to_representation(self, instance: Any) -> str | None:
        link = self.signed_link(instance)
        return link.url if link else None

    def signed_link(self, instance: Any) -> SignedLink | None:
        """The one link for ``instance`` in this serialization (signed on first use)."""
        page: _Page | None = self.__dict__.get("_page")
        if page is None:  # first object: fields are copied per serializer, so this is per request
            page = (LinkIssuer(self.context.get("request"), ttl=self.ttl), {})
            self.__dict__["_page"] = page
        issuer, links = page
        remembered = links.get(id(instance))
        if remembered is not None and remembered[0] is instance:  # holding it keeps its id unique
            return remembered[1]
        file: FieldFile | None = getattr(instance, self.file_field)
        name = file.name if file else None
        link = self._sign(issuer, instance, name) if name else None
        links[id(instance)] = (instance, link)
        return link

    def _sign(self, issuer: LinkIssuer, instance: Any, name: str) -> SignedLink:
        filename = self.filename(instance) if callable(self.filename) else (
            getattr(instance, self.filename) if self.filename else None
        )
        try:
            return issuer.sign(name, filename=filename or None, disposition=self.disposition, name_if_possible=True)
        except LinkError as error:
            self.fail("unsafe", reason=error.message)
            raise  # unreachable: fail() raises


@extend_schema_field(OpenApiTypes.DATETIME)
class SignedURLExpiresField(serializers.Field):
    """When the link of the sibling ``url_field`` expires (ISO 8601, UTC)."""

    def __init__(self, *, url_field: str, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        kwargs["source"] = "*"
        super().__init__(**kwargs)
        self.url_field = url_field

    def to_representation(self, instance: Any) -> str | None:
        url_field = self.parent.fields[self.url_field]
        assert isinstance(url_field, SignedFileURLField), f"{self.url_field} is not a SignedFileURLField"
        link = url_field.signed_link(instance)
        return link.expires_iso if link else None
