"""API representations of images, share links and an image's issued links.

The options and answers of links and folder cookies are the package's own
(:mod:`signing.django.serializers`).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from PIL import Image as PillowImage
from rest_framework import serializers

from signing.django.fields import SignedFileURLField, SignedURLExpiresField
from signing.django.links import absolute_url
from signing.django.models import IssuedLink
from signing.django.serializers import IssuedLinkSerializer

from .models import EXTENSIONS, Image


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


class ShareLinkSerializer(serializers.Serializer):
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()


class ImageLinkSerializer(IssuedLinkSerializer):
    """A link issued for an image: the package's fields, and the image's id."""

    image = serializers.SerializerMethodField(help_text="The image the link opens.")

    class Meta(IssuedLinkSerializer.Meta):
        fields = ["id", "image", *IssuedLinkSerializer.Meta.fields[1:]]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.INT)
    def get_image(self, link: IssuedLink) -> int | None:
        kind, _, image_id = link.subject.partition(":")
        return int(image_id) if kind == "image" and image_id.isdigit() else None
