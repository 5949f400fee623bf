"""The image service: images owned by users, stored under collision-safe names in folders of their own.

Links to an image are issued and recorded by :mod:`signing.django` like any project's: its
:class:`~signing.django.models.IssuedLink` rows name the image as their ``subject``
(:attr:`Image.link_subject`) and go with it when it is deleted.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from signing.django.models import IssuedLink

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff"}


def image_upload_to(instance: Image, filename: str) -> str:
    """``images/<yyyy>/<mm>/<uuid>/<uuid>.<ext>``: never collides, never reuses the client's name.

    Each image has a folder of its own, which a folder cookie can open alone (its
    renditions would go there too). The extension comes from the image format Pillow
    detected (see the serializer), so nginx's Content-Type follows the bytes, not the name
    the client chose.
    """
    extension = filename.rsplit(".", 1)[-1].lower()
    if extension not in EXTENSIONS.values():
        extension = "img"
    name = uuid.uuid4().hex
    return f"images/{timezone.now():%Y/%m}/{name}/{name}.{extension}"


# A stored name in a folder of its own (image_upload_to); images stored before had none.
_OWN_FOLDER = re.compile(r"(images/[0-9]{4}/[0-9]{2}/(?P<name>[0-9a-f]{32})/)(?P=name)\.[a-z]+")


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

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save; a new row that fails to insert does not leave its just-stored file behind."""
        adding = self._state.adding
        try:
            super().save(*args, **kwargs)
        except BaseException:
            if adding and self.file.name and self.file._committed:
                self.file.storage.delete(self.file.name)
            raise

    @property
    def share_subject(self) -> str:
        """What a share token for this image grants: the image *as stored now*.

        The stored name is part of it, so :meth:`revoke_links` (a new stored name) makes
        every share token issued before it fail to verify (403).
        """
        return share_subject(self.pk, self.file.name or "")

    @property
    def link_subject(self) -> str:
        """What this image's issued links name as their subject: ``image:<id>``."""
        return f"image:{self.pk}"

    @property
    def issued_links(self) -> models.QuerySet[IssuedLink]:
        """The links issued for this image through the API, newest first."""
        return IssuedLink.objects.filter(subject=self.link_subject)

    @property
    def folder(self) -> str | None:
        """The folder that holds this image alone (``images/2026/12/<uuid>/``), or None for an
        image stored before images had folders (``revoke_links`` moves it into one)."""
        match = _OWN_FOLDER.fullmatch(self.file.name or "")
        return match.group(1) if match else None

    def revoke_links(self) -> None:
        """Make every link issued for this image stop working at once; new links work.

        The file moves to a new random stored name inside one transaction: signed nginx
        links name the old path, which no longer exists (404), and share tokens are bound
        to the old name (403). No key rotation, no nginx reload. The old file is removed
        once the transaction commits; if it rolls back, the new copy is removed instead.
        """
        new_name = ""
        try:
            with transaction.atomic():
                image = Image.objects.select_for_update().get(pk=self.pk)
                storage, old_name = image.file.storage, image.file.name
                new_name = image_upload_to(image, old_name)
                _copy_stored_file(storage, old_name, new_name)
                Image.objects.filter(pk=image.pk).update(file=new_name)
                transaction.on_commit(lambda: delete_stored_file(storage, old_name), robust=True)
        except BaseException:
            if new_name:
                self.file.storage.delete(new_name)
            raise
        self.file.name = new_name

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        """Delete the row, then the file once the transaction commits.

        The stored name is read under the row lock: a :meth:`revoke_links` that committed
        meanwhile has moved the file, and the file to remove is the one stored now.
        """
        storage = self.file.storage
        with transaction.atomic():
            name = Image.objects.select_for_update().filter(pk=self.pk).values_list("file", flat=True).first()
            result = super().delete(*args, **kwargs)
            if name:
                transaction.on_commit(lambda: delete_stored_file(storage, name), robust=True)
        return result


def share_subject(image_id: int, stored_name: str) -> str:
    """The subject of a share token: the image id and a digest of its stored file name."""
    digest = hashlib.blake2b(stored_name.encode(), digest_size=8).hexdigest()
    return f"image:{image_id}:{digest}"


def delete_stored_file(storage: Any, name: str) -> None:
    """Delete a stored file, and its image's own folder once it is empty (images/…/<uuid>/)."""
    storage.delete(name)
    folder = _OWN_FOLDER.fullmatch(name)
    if folder is not None:
        try:
            os.rmdir(storage.path(folder.group(1)))
        except (OSError, NotImplementedError):  # not empty, gone already, or a storage without paths
            pass


def _copy_stored_file(storage: Any, old_name: str, new_name: str) -> None:
    """Give ``old_name``'s bytes a second name: a hard link on disk, a server-side copy in a
    bucket (``SignedS3Storage.copy``: S3 has no rename), else a copy through the storage."""
    if hasattr(storage, "copy"):
        storage.copy(old_name, new_name)
        return
    try:
        old_path, new_path = storage.path(old_name), storage.path(new_name)
    except NotImplementedError:  # another remote storage: copy through its API
        with storage.open(old_name, "rb") as source:
            storage.save(new_name, source)
        return
    os.makedirs(os.path.dirname(new_path), exist_ok=True)
    os.link(old_path, new_path)


@receiver(post_delete, sender=Image)
def _forget_issued_links(sender: type[Image], instance: Image, **kwargs: Any) -> None:
    """An image's issued links go with it (bulk deletes too), as a foreign key's cascade would."""
    IssuedLink.objects.filter(subject=instance.link_subject).delete()
