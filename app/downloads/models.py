"""Images owned by users; files live under MEDIA_ROOT with collision-safe names."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

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
    """Give ``old_name``'s bytes a second name: a hard link on disk, else a copy."""
    try:
        old_path, new_path = storage.path(old_name), storage.path(new_name)
    except NotImplementedError:  # a remote storage: copy through its API
        with storage.open(old_name, "rb") as source:
            storage.save(new_name, source)
        return
    os.makedirs(os.path.dirname(new_path), exist_ok=True)
    os.link(old_path, new_path)


class LinkStatus(models.TextChoices):
    """What a link issued through the API answers now (nginx decides the same way)."""

    ACTIVE = "active"
    REVOKED = "revoked"
    USED_UP = "used_up"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"


class IssuedLinkQuerySet(models.QuerySet["IssuedLink"]):
    def alive(self) -> IssuedLinkQuerySet:
        """Links not revoked and not expired (used-up links are told apart by their count)."""
        return self.filter(revoked_at__isnull=True, expires_at__gte=timezone.now().replace(microsecond=0))


class IssuedLink(models.Model):
    """One signed link handed out through the API, by its link id (signed into the URL).

    nginx needs none of this to serve it: the row is for the owner (status, downloads,
    revocation), and a revocation reaches nginx as a file (:class:`signing.LinkState`).
    """

    id = models.CharField(primary_key=True, max_length=64, editable=False)
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="issued_links")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    kid = models.CharField(max_length=64, editable=False)
    expires_at = models.DateTimeField(editable=False)
    not_before = models.DateTimeField(null=True, blank=True, editable=False)
    max_downloads = models.PositiveIntegerField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = IssuedLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["image", "expires_at"]), models.Index(fields=["revoked_at", "expires_at"])]

    def __str__(self) -> str:
        return f"link {self.id} to image {self.image_id}"

    def downloads(self) -> int | None:
        """Downloads taken so far, for a download-limited link (counted by the origin nginx)."""
        from .conf import link_settings

        return link_settings().link_state.downloads(self.id) if self.max_downloads else None

    def status(self, *, downloads: int | None = None) -> LinkStatus:
        """Revoked, then expired, then not yet valid, then used up, else active."""
        now = timezone.now()
        if self.revoked_at is not None:
            return LinkStatus.REVOKED
        if self.expires_at.timestamp() < int(now.timestamp()):  # nginx: expires < now is expired
            return LinkStatus.EXPIRED
        if self.not_before is not None and self.not_before > now:
            return LinkStatus.NOT_YET_VALID
        if self.max_downloads is not None:
            taken = self.downloads() if downloads is None else downloads
            if taken is not None and taken >= self.max_downloads:
                return LinkStatus.USED_UP
        return LinkStatus.ACTIVE

    def revoke(self) -> bool:
        """Refuse this link, and only it, from now on: at the origin at once, at the edges
        within the fleet bound (their agents pull the list). False if it was already revoked."""
        from .conf import link_settings

        updated = IssuedLink.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        link_settings().link_state.revoke(self.id, expires=int(self.expires_at.timestamp()))  # again is harmless
        self.refresh_from_db(fields=["revoked_at"])
        return bool(updated)
