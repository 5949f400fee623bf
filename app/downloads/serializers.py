"""API representations of images, link options and issued links."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from PIL import Image as PillowImage
from rest_framework import serializers

from signing.disposition import DISPOSITIONS

from .conf import link_settings
from .fields import SignedFileURLField, SignedURLExpiresField
from .links import absolute_url
from .models import EXTENSIONS, Image, IssuedLink, LinkStatus
from signing.link_format import MAX_DOWNLOADS_LIMIT


class ImageSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    file = serializers.ImageField(write_only=True, help_text="The image to upload (multipart).")
    download_url = SignedFileURLField(file_field="file", filename="original_name")
    expires_at = SignedURLExpiresField(url_field="download_url")
    image_link = serializers.SerializerMethodField(help_text="The /download/image/<id> compatibility URL.")

    class Meta:
        model = Image
        fields = [
            "id", "title", "file", "original_name", "width", "height", "size", "content_type",
            "owner", "created_at", "download_url", "expires_at", "image_link",
        ]
        read_only_fields = ["original_name", "width", "height", "size", "content_type", "created_at"]

    @extend_schema_field(OpenApiTypes.URI)
    def get_image_link(self, image: Image) -> str:
        return absolute_url(reverse("download-image", args=[image.pk]), self.context.get("request"))

    def validate_file(self, upload: UploadedFile) -> UploadedFile:
        limit = settings.IMAGE_MAX_UPLOAD_BYTES
        if upload.size is not None and upload.size > limit:
            raise serializers.ValidationError(
                f"The file is {upload.size} bytes; the limit is {limit} bytes.", code="too_large"
            )
        upload.seek(0)
        with PillowImage.open(upload) as picture:  # reads the header only, not the pixels
            width, height = picture.size
        upload.seek(0)
        pixel_limit = settings.IMAGE_MAX_PIXELS
        if width * height > pixel_limit:
            raise serializers.ValidationError(
                f"The image is {width} x {height} pixels ({width * height}); the limit is {pixel_limit} pixels.",
                code="too_many_pixels",
            )
        return upload

    def create(self, validated_data: dict[str, Any]) -> Image:
        upload: UploadedFile = validated_data["file"]
        # DRF's ImageField already had Pillow verify the bytes; name the stored file after them.
        upload.seek(0)
        with PillowImage.open(upload) as picture:
            image_format = picture.format or ""
        upload.seek(0)
        validated_data["original_name"] = (upload.name or "image")[:255]
        validated_data["content_type"] = PillowImage.MIME.get(image_format, "application/octet-stream")
        validated_data["size"] = upload.size or 0
        upload.name = f"upload.{EXTENSIONS.get(image_format, 'img')}"
        return super().create(validated_data)


class ImageTitleSerializer(serializers.ModelSerializer):
    """What can change after the upload: the title."""

    class Meta:
        model = Image
        fields = ["title"]


def ttl_within_maximum(ttl: int) -> int:
    """Refuse a TTL above ``SECURE_LINK_MAX_TTL`` with DRF's own wording."""
    max_ttl = link_settings().max_ttl
    if ttl > max_ttl:
        raise serializers.ValidationError(f"Ensure this value is less than or equal to {max_ttl}.", code="max_value")
    return ttl


class LinkOptionsSerializer(serializers.Serializer):
    ttl = serializers.IntegerField(required=False, min_value=1, help_text="Seconds; at most SECURE_LINK_MAX_TTL.")
    filename = serializers.CharField(required=False, max_length=255, help_text="Download name; default: the original name.")
    disposition = serializers.ChoiceField(choices=DISPOSITIONS, default="attachment")
    bind_ip = serializers.BooleanField(default=False, help_text="Only the calling address may use the link.")
    max_downloads = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_DOWNLOADS_LIMIT,
        help_text="How many times the file may be downloaded (each 200 or 206 answer counts once).",
    )
    not_before = serializers.DateTimeField(
        required=False, help_text="ISO 8601 UTC, like expires_at: the link is refused (403) until then.",
    )

    def validate_ttl(self, ttl: int) -> int:
        return ttl_within_maximum(ttl)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        not_before = attrs.get("not_before")
        if not_before is not None:
            from django.utils import timezone

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

    def validate_filename(self, filename: str) -> str:
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in filename):
            raise serializers.ValidationError("The file name must not contain control characters.", code="invalid")
        return filename


class ShareOptionsSerializer(serializers.Serializer):
    ttl = serializers.IntegerField(required=False, min_value=1, help_text="Seconds; at most SECURE_LINK_MAX_TTL.")

    def validate_ttl(self, ttl: int) -> int:
        return ttl_within_maximum(ttl)


class CookieOptionsSerializer(ShareOptionsSerializer):
    bind_ip = serializers.BooleanField(default=False, help_text="Only the calling address may use the cookies.")


class FolderCookiesSerializer(serializers.Serializer):
    """Cookies that open every file of an image's folder; also sent as Set-Cookie headers."""

    cookies = serializers.DictField(child=serializers.CharField(),
                                    help_text="Cookie name -> value, as the delivery target checks them.")
    path = serializers.CharField(help_text="The folder the cookies open (their Path).")
    expires_at = serializers.DateTimeField()
    url = serializers.URLField(help_text="The image's own URL, without a token: the cookies open it.")


class IssuedLinkSerializer(serializers.Serializer):
    """A link just minted: the only answer that holds its URL (the token is never stored)."""

    id = serializers.CharField(allow_null=True, help_text="The link id: GET /api/links/<id>/, POST "
                               "/api/links/<id>/revoke/. null for a CDN's link, which is not recorded (docs/cdn.md).")
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()
    kid = serializers.CharField()
    not_before = serializers.DateTimeField(allow_null=True)
    max_downloads = serializers.IntegerField(allow_null=True)


class LinkSerializer(serializers.ModelSerializer):
    """A recorded link, by its id: what it opens, until when, how often, and what it answers now."""

    image = serializers.PrimaryKeyRelatedField(read_only=True)
    downloads = serializers.SerializerMethodField(help_text="Downloads taken so far (download-limited links).")
    status = serializers.SerializerMethodField()

    class Meta:
        model = IssuedLink
        fields = ["id", "image", "kid", "created_at", "expires_at", "not_before", "max_downloads", "downloads",
                  "status", "revoked_at"]
        read_only_fields = fields

    def _downloads(self, link: IssuedLink) -> int | None:
        cache = self.context.setdefault("_downloads", {})
        if link.pk not in cache:
            cache[link.pk] = link.downloads()
        return cache[link.pk]

    def get_downloads(self, link: IssuedLink) -> int | None:
        return self._downloads(link)

    @extend_schema_field(serializers.ChoiceField(choices=LinkStatus.choices))
    def get_status(self, link: IssuedLink) -> str:
        return str(link.status(downloads=self._downloads(link)).value)


class DownloadSerializer(serializers.Serializer):
    time = serializers.DateTimeField()
    verifier = serializers.CharField(help_text="The nginx that answered (a name of SECURE_LINK_DOWNLOAD_LOGS).")
    client = serializers.CharField()
    status = serializers.IntegerField()
    bytes = serializers.IntegerField()


class ShareLinkSerializer(serializers.Serializer):
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()
