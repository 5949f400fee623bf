"""``SignedURLStorage``: every ``FileField.url`` is a link the real nginx accepts, whatever the name."""

from __future__ import annotations

from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core.files.storage import default_storage, storages
from django.core.management import call_command
from django.template import Context, Template
from rest_framework import serializers

from app.downloads.models import Image
from signing.django.links import sign_directory
from signing.django.storage import SignedURLStorage
from tests.app_fixtures import verify_url
from tests.client import fetch
from tests.conftest import TRICKY_NAMES

pytestmark = pytest.mark.nginx


@pytest.fixture
def nginx_settings(settings, nginx):
    """Django signing with the keys of the test nginx, over the media root it serves."""
    settings.MEDIA_ROOT = nginx.media_root
    settings.SECURE_LINK = {**settings.SECURE_LINK, "KEYS": nginx.key_set, "ACTIVE_KID": "k1", "KEYS_FILE": None}
    return nginx


def target(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def test_it_is_the_default_storage():
    assert isinstance(default_storage, SignedURLStorage) and isinstance(storages["default"], SignedURLStorage)


def test_each_storage_takes_its_own_options_like_django_storages_backends(settings, nginx_settings):
    settings.STORAGES = {**settings.STORAGES, "thumbnails": {
        "BACKEND": "signing.django.storage.SignedURLStorage", "OPTIONS": {"ttl": 300, "disposition": "inline"}}}
    thumbnails, default = storages["thumbnails"], storages["default"]
    short, usual = verify_url(thumbnails.url("files/blob.bin")), verify_url(default.url("files/blob.bin"))
    assert usual.expires - short.expires in (3300, 3301)  # the default TTL (3600) and the storage's (300), signed a moment apart
    assert (short.disposition, usual.disposition) == ("inline", "")
    assert fetch(nginx_settings.base_url, target(thumbnails.url("files/blob.bin"))).headers["Content-Disposition"] == "inline"
    assert short.expires - verify_url(thumbnails.signed_url("files/blob.bin", ttl=60).url).expires in (239, 240)
    with pytest.raises(ValueError, match="disposition must be one of"):
        SignedURLStorage(disposition="download")
    with pytest.raises(ValueError, match="ttl must be a positive number"):
        SignedURLStorage(ttl=0)


@pytest.mark.parametrize("name", TRICKY_NAMES)
def test_url_of_any_name_is_accepted_by_nginx(nginx_settings, name):
    url = default_storage.url(f"names/{name}")
    response = fetch(nginx_settings.base_url, target(url))
    assert (response.status, response.body) == (200, (nginx_settings.media_root / "names" / name).read_bytes())


def test_signed_url_takes_options(nginx_settings):
    link = default_storage.signed_url("names/a b.txt", ttl=30, filename="résumé.txt", disposition="inline")
    response = fetch(nginx_settings.base_url, target(link.url))
    assert response.status == 200 and link.kid == "k1"
    assert response.headers["Content-Disposition"] == "inline; filename=\"resume.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"
    assert fetch(nginx_settings.base_url, target(link.url).replace("inline", "attachment")).status == 403


def test_field_file_url_in_templates_and_drf_is_signed(nginx_settings, user):
    image = Image(owner=user, file="names/你好.txt")
    rendered = Template("{{ image.file.url }}").render(Context({"image": image}))
    assert fetch(nginx_settings.base_url, target(rendered.replace("&amp;", "&"))).status == 200

    class FileSerializer(serializers.Serializer):
        file = serializers.FileField()

    url = FileSerializer(image).data["file"]
    assert fetch(nginx_settings.base_url, target(url)).status == 200


def test_a_name_that_could_leave_the_media_root_has_no_url(nginx_settings):
    with pytest.raises(ValueError, match="has an empty, '.' or '..' segment"):
        default_storage.url("../outside.txt")


@pytest.mark.parametrize("kid", ["k1", "h1"])
def test_directory_helper_template_tag_and_command_sign_folders_nginx_accepts(nginx_settings, settings, kid, db):
    settings.SECURE_LINK = {**settings.SECURE_LINK, "ACTIVE_KID": kid}
    expected = (nginx_settings.media_root / "names" / "a b.txt").read_bytes()
    from_helper = sign_directory("names/", ttl=60).url
    from_tag = Template('{% load signed_urls %}{% signed_url "names" directory=True %}').render(Context({}))
    out = StringIO()
    call_command("sign_url", "names/", "--directory", "--base-url", nginx_settings.base_url, stdout=out)
    from_command = out.getvalue().strip()
    for url in (from_helper, from_tag, from_command):
        assert url.endswith("/") and f"/-/{kid}," in url
        response = fetch(nginx_settings.base_url, target(url + "a%20b.txt"))
        assert (response.status, response.body) == (200, expected)
