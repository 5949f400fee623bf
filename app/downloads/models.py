"""Images owned by users; files live under MEDIA_ROOT with collision-safe names."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff"}


def image_upload_to(instance: Image, filename: str) -> str:
    """``images/<yyyy>/<mm>/<uuid>.<ext>``: never collides, never reuses the client's name.

    The extension comes from the image format Pillow detected (see the serializer), so
    nginx's Content-Type follows the bytes, not the name the client chose.
    """
    extension = filename.rsplit(".", 1)[-1].lower()
    if extension not in EXTENSIONS.values():
        extension = "img"
    return f"images/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.{extension}"


class Image(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="images")
    title = models.CharField(max_length=200, blank=True)
    file = models.ImageField(upload_to=image_upload_to, width_field="width", height_field="height", max_length=255)
    original_name = models.CharField(max_length=255, help_text="The uploaded file's name, used for downloads.")
    width = models.PositiveIntegerField(default=0, editable=False)
    height = models.PositiveIntegerField(default=0, editable=False)
    size = models.PositiveBigIntegerField(default=0, editable=False, help_text="Bytes.")
    content_type = models.CharField(max_length=100, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title or self.original_name

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        """Delete the row, then the file once the transaction commits."""
        storage, name = self.file.storage, self.file.name
        result = super().delete(*args, **kwargs)
        if name:
            transaction.on_commit(lambda: storage.delete(name))
        return result
