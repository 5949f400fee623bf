"""The per-link API's representations: the options a link is minted with, a minted link (the only
answer that holds its URL), a recorded link and its download log, and folder cookies."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from ..addresses import IPV4_LENGTHS, IPV6_LENGTHS
from ..nginx.disposition import DISPOSITIONS
from ..nginx.signed_string import MAX_DOWNLOADS_LIMIT
from .conf import link_settings
from .models import IssuedLink, IssuedLinkStatus
from .openapi import extend_schema_field


def ttl_within_maximum(ttl: int) -> int:
    """Refuse a TTL above ``SECURE_LINK_MAX_TTL`` with DRF's own wording."""
    max_ttl = link_settings().max_ttl
    if ttl > max_ttl:
        raise serializers.ValidationError(f"Ensure this value is less than or equal to {max_ttl}.", code="max_value")
    return ttl


@extend_schema_field({"oneOf": [{"type": "boolean"}, {"type": "integer", "minimum": 8, "maximum": 32}]})
class BindIPField(serializers.Field):
    """``bind_ip``: false, true (the calling address alone) or a prefix length of 8 to 32 (its network)."""

    default_error_messages = {"invalid": "Give true, false or a prefix length of 8 to 32 bits (IPv4)."}

    def to_internal_value(self, data: Any) -> bool | int:
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and data.lower() in ("true", "false"):  # a form's value
            return data.lower() == "true"
        if isinstance(data, int) or (isinstance(data, str) and data.isdigit() and not data.startswith("0")):
            length = int(data)
            if length in IPV4_LENGTHS:
                return length
        self.fail("invalid")
        raise AssertionError  # fail() raises

    def to_representation(self, value: bool | int) -> bool | int:
        return value


class TTLOptionsSerializer(serializers.Serializer):
    """A lifetime, at most ``SECURE_LINK_MAX_TTL``."""

    ttl = serializers.IntegerField(required=False, min_value=1, help_text="Seconds; at most SECURE_LINK_MAX_TTL.")

    def validate_ttl(self, ttl: int) -> int:
        return ttl_within_maximum(ttl)


class GrantOptionsSerializer(TTLOptionsSerializer):
    """What every grant (a link, folder cookies) may be minted with: its lifetime, who may use it
    (``bind_ip``, ``bind_ip6``) and when it opens (``not_before``, before it expires)."""

    bind_ip = BindIPField(default=False, help_text=(
        "true: only the calling address may use it; a prefix length (8 to 32): every address of the calling "
        "client's network of that many bits (an IPv6 client's: bind_ip6, else /64)."))
    bind_ip6 = serializers.IntegerField(required=False, min_value=min(IPV6_LENGTHS), max_value=max(IPV6_LENGTHS),
                                        help_text="The prefix length (32 to 128) for an IPv6 client; needs bind_ip.")
    not_before = serializers.DateTimeField(
        required=False, help_text="ISO 8601 UTC, like expires_at: it is refused (403) until then.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        not_before = attrs.get("not_before")
        if not_before is not None:
            if not_before.timestamp() < 1:
                raise serializers.ValidationError({"not_before": "Give a moment after 1970-01-01T00:00:01Z."},
                                                  code="invalid")
            ttl = attrs.get("ttl") or link_settings().default_ttl
            if not_before.timestamp() >= timezone.now().timestamp() + ttl:
                raise serializers.ValidationError(
                    {"not_before": "The link would expire before it opens: give a later ttl or an earlier not_before."},
                    code="invalid",
                )
        return attrs


class LinkOptionsSerializer(GrantOptionsSerializer):
    """How to mint a link: its lifetime, download name, disposition, binding, limit and start."""

    filename = serializers.CharField(required=False, max_length=255, help_text="Download name; default: the original name.")
    disposition = serializers.ChoiceField(choices=DISPOSITIONS, default="attachment")
    max_downloads = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_DOWNLOADS_LIMIT,
        help_text="How many times the file may be downloaded (each 200 or 206 answer counts once).",
    )
    def validate_filename(self, filename: str) -> str:
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in filename):
            raise serializers.ValidationError("The file name must not contain control characters.", code="invalid")
        return filename


class CookieOptionsSerializer(GrantOptionsSerializer):
    """How to mint folder cookies: the options every grant takes (no download name or limit)."""


class FolderCookiesSerializer(serializers.Serializer):
    """Cookies that open every file of a folder; also sent as Set-Cookie headers."""

    id = serializers.CharField(allow_null=True, help_text="The grant's link id: GET /api/links/<id>/, POST "
                               "/api/links/<id>/revoke/ (these cookies alone). null for a CDN's cookies, not recorded.")
    not_before = serializers.DateTimeField(allow_null=True)
    cookies = serializers.DictField(child=serializers.CharField(),
                                    help_text="Cookie name -> value, as the delivery target checks them.")
    path = serializers.CharField(help_text="The folder the cookies open (their Path).")
    expires_at = serializers.DateTimeField()
    url = serializers.URLField(help_text="The file's own URL, without a token: the cookies open it.")


class NewLinkSerializer(serializers.Serializer):
    """A link just minted: the only answer that holds its URL (the token is never stored)."""

    id = serializers.CharField(allow_null=True, help_text="The link id: GET /api/links/<id>/, POST "
                               "/api/links/<id>/revoke/. null for a CDN's link, which is not recorded (docs/cdn.md).")
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()
    kid = serializers.CharField()
    not_before = serializers.DateTimeField(allow_null=True)
    max_downloads = serializers.IntegerField(allow_null=True)


class IssuedLinkSerializer(serializers.ModelSerializer):
    """A recorded link, by its id: what it opens, until when, how often, and what it answers now."""

    downloads = serializers.SerializerMethodField(help_text="Downloads taken so far (download-limited links).")
    status = serializers.SerializerMethodField()

    class Meta:
        model = IssuedLink
        fields = ["id", "kind", "subject", "path", "kid", "created_at", "expires_at", "not_before", "max_downloads",
                  "downloads", "status", "revoked_at"]
        read_only_fields = fields

    def _downloads(self, link: IssuedLink) -> int | None:
        cache = self.context.setdefault("_downloads", {})
        if link.pk not in cache:
            cache[link.pk] = link.downloads()
        return cache[link.pk]

    def get_downloads(self, link: IssuedLink) -> int | None:
        return self._downloads(link)

    @extend_schema_field(serializers.ChoiceField(choices=IssuedLinkStatus.choices))
    def get_status(self, link: IssuedLink) -> str:
        return str(link.status(downloads=self._downloads(link)).value)


class DownloadSerializer(serializers.Serializer):
    time = serializers.DateTimeField()
    verifier = serializers.CharField(help_text="The nginx that answered (a name of SECURE_LINK_DOWNLOAD_LOGS).")
    client = serializers.CharField()
    status = serializers.IntegerField()
    bytes = serializers.IntegerField()
