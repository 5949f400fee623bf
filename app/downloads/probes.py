"""The image service's own probes for ``manage.py check_secure_link`` (``SECURE_LINK['CHECK_PROBES']``).

The compatibility view is this project's: Django checks a share token and nginx sends the
bytes through ``X-Accel-Redirect``. The probe stores a throwaway image (a few random pixels,
beside the canary file), asks for it with a share token, and removes it, its row and its owner.
"""

from __future__ import annotations

import contextlib
import io
import secrets
from collections.abc import Iterator
from pathlib import PurePosixPath

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image as PillowImage

from signing.django.fleet import Answer
from signing.django.selfcheck import Canary, Probe

from .models import Image
from .sharing import share_signer

CANARY_USER = "secure-link-canary"


def diagnose_compatibility_view(answer: Answer) -> str:
    if answer.headers.get("X-Accel-Redirect"):
        return "X-Accel-Redirect reached the client: nginx is not in front of Django"
    if answer.status == 404:
        return "the X-Accel-Redirect target was not found: check the internal location's alias and MEDIA_ROOT"
    if answer.status in (502, 503, 504):
        return "nginx cannot reach Django: check the secure_link_app upstream"
    if answer.status in (403, 410):
        return "Django refused the share token: SECRET/keys differ between app servers?"
    return "the compatibility view did not send the canary bytes"


def random_png() -> bytes:
    """A 4x4 PNG of random pixels: unique bytes each run, and a real image for the model."""
    buffer = io.BytesIO()
    PillowImage.frombytes("RGB", (4, 4), secrets.token_bytes(48)).save(buffer, format="PNG")
    return buffer.getvalue()


@contextlib.contextmanager
def compatibility_view_probes(canary: Canary) -> Iterator[list[Probe]]:
    """A share link to a throwaway image beside the canary: 200 with its bytes, through X-Accel-Redirect."""
    data = random_png()
    name = default_storage.save(str(PurePosixPath(canary.name).with_suffix(".png")), ContentFile(data))
    owner, _ = get_user_model().objects.get_or_create(username=CANARY_USER, defaults={"is_active": False})
    image = Image.objects.create(owner=owner, file=name, original_name="canary.png", content_type="image/png",
                                 size=len(data))
    try:
        token, _ = share_signer().sign(image.share_subject, ttl=60)
        yield [Probe("compatibility view", f"{reverse('download-image', args=[image.pk])}?token={token}", 200,
                     diagnose_compatibility_view, data)]
    finally:
        Image.objects.filter(pk=image.pk).delete()  # the row alone (no file removal on commit) ...
        default_storage.delete(name)  # ... then its file
        get_user_model().objects.filter(username=CANARY_USER, images__isnull=True).delete()
