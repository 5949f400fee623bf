"""What the image service hands out besides signed links: share tokens and an image's folder cookies."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser

from signing import CookieGrant, TimedTokenSigner
from signing.django.conf import get_token_signer
from signing.django.links import issue_folder_cookie, sign_folder_cookie

from .models import Image

SHARE_SALT = "app.downloads.share-image"  # a share token verifies as nothing else


def share_signer() -> TimedTokenSigner:
    """The signer of share tokens for the compatibility view (the keys in force, its own salt)."""
    return get_token_signer(SHARE_SALT)


class NoFolderOfItsOwn(ValueError):
    """An image stored before images had folders of their own: no cookie can grant it alone."""


def image_folder_cookies(image: Image, *, ttl: int | timedelta | None = None,
                         client_ip: str | None = None) -> CookieGrant:
    """The folder cookies of ``image``'s own folder, not recorded (the owner's own page); NoFolderOfItsOwn
    for an image without one, ValueError (UnsafePath) for an option or a folder the delivery target cannot carry."""
    return sign_folder_cookie(own_folder(image), ttl=ttl, client_ip=client_ip)


def issue_image_folder_cookies(image: Image, *, created_by: AbstractBaseUser | None, ttl: int | timedelta | None = None,
                               client_ip: str | None = None, not_before: datetime | None = None) -> CookieGrant:
    """The folder cookies of ``image``'s own folder, recorded by the grant's id for the image's owner:
    revocable alone (``POST /api/links/<id>/revoke/``) while every other grant of the folder keeps working.
    Raises as :func:`image_folder_cookies`."""
    grant, _ = issue_folder_cookie(own_folder(image), owner=image.owner, subject=image.link_subject,
                                   created_by=created_by, ttl=ttl, client_ip=client_ip, not_before=not_before)
    return grant


def own_folder(image: Image) -> str:
    """The stored folder of ``image``'s own; NoFolderOfItsOwn for an image stored before images had one."""
    folder = image.folder
    if folder is None:
        raise NoFolderOfItsOwn(f"This image was stored before images had folders of their own: "
                               f"POST /api/images/{image.pk}/revoke/ moves it into one.")
    return folder
