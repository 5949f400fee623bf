"""Fixtures for the Django app tests: users, API clients and real images (made with Pillow)."""

from __future__ import annotations

import io
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PillowImage
from rest_framework.test import APIClient

from signing.django.conf import get_link_verifier
from app.downloads.models import Image
from app.downloads.serializers import ImageSerializer
from signing import VerifiedLink


def png_bytes(size: tuple[int, int] = (8, 6), color: tuple[int, int, int] = (200, 10, 10), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    PillowImage.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def verify_url(url: str, remote_addr: str = "127.0.0.1") -> VerifiedLink:
    """Check an absolute signed URL with the Python verifier (nginx's answers)."""
    parts = urlsplit(url)
    return get_link_verifier().verify(raw_path=parts.path.encode(), query=parts.query.encode(), remote_addr=remote_addr)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", password="pw")


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user("bob", password="pw")


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user("root", password="pw", is_staff=True)


@pytest.fixture
def client_for() -> Callable[..., APIClient]:
    def make(user=None) -> APIClient:
        client = APIClient(HTTP_HOST="testserver")  # as every HTTP/1.1 client sends
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def make_image(db) -> Callable[..., Image]:
    def make(owner, name: str = "photo.png", data: bytes | None = None, title: str = "") -> Image:
        serializer = ImageSerializer(data={"title": title, "file": SimpleUploadedFile(name, data or png_bytes())})
        serializer.is_valid(raise_exception=True)
        return serializer.save(owner=owner)

    return make
