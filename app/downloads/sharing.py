"""What the image service hands out besides signed links: share tokens and an image's folder cookies."""

from __future__ import annotations

from datetime import timedelta

from signing import CookieGrant, TimedTokenSigner
from signing.django.conf import get_token_signer
from signing.django.links import sign_folder_cookie

from .models import Image

SHARE_SALT = "app.downloads.share-image"  # a share token verifies as nothing else


def share_signer() -> TimedTokenSigner:
    """The signer of share tokens for the compatibility view (the keys in force, its own salt)."""
    return get_token_signer(SHARE_SALT)


class NoFolderOfItsOwn(ValueError):
    """An image stored before images had folders of their own: no cookie can grant it alone."""


def image_folder_cookies(image: Image, *, ttl: int | timedelta | None = None,
                         client_ip: str | None = None) -> CookieGrant:
    """The folder cookies of ``image``'s own folder; NoFolderOfItsOwn for an image without one,
    ValueError (UnsafePath) for an option or a folder the delivery target cannot carry."""
    folder = image.folder
    if folder is None:
        raise NoFolderOfItsOwn(f"This image was stored before images had folders of their own: "
                               f"POST /api/images/{image.pk}/revoke/ moves it into one.")
    return sign_folder_cookie(folder, ttl=ttl, client_ip=client_ip)
