"""The image API through DRF's APIClient: uploads, listing, permissions, links, shares."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from app.downloads.models import Image
from signing import BadSignature
from tests.app_fixtures import png_bytes, verify_url


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_upload_records_the_image_and_answers_with_a_signed_link(user, client_for, media_root):
    response = client_for(user).post(
        "/api/images/", {"title": "Cat", "file": SimpleUploadedFile("my cat 猫.png", png_bytes((8, 6)))}, format="multipart"
    )
    assert response.status_code == 201, response.data
    body = response.data
    assert (body["title"], body["original_name"], body["width"], body["height"]) == ("Cat", "my cat 猫.png", 8, 6)
    assert body["content_type"] == "image/png" and body["size"] == len(png_bytes((8, 6)))
    image = Image.objects.get(pk=body["id"])
    assert image.file.name.startswith("images/") and image.file.name.endswith(".png")
    assert "猫" not in image.file.name  # collision-safe stored name; the original is kept apart
    verified = verify_url(body["download_url"])
    assert verified.filename == "my cat 猫.png"
    assert verified.expires == int(parse_time(body["expires_at"]).timestamp())
    assert body["image_link"] == f"http://testserver/download/image/{image.pk}"


def test_stored_extension_follows_the_bytes_not_the_client_name(user, client_for):
    response = client_for(user).post(
        "/api/images/", {"file": SimpleUploadedFile("actually-a-jpeg.png", png_bytes(fmt="JPEG"))}, format="multipart"
    )
    assert response.status_code == 201
    image = Image.objects.get(pk=response.data["id"])
    assert (image.file.name.rsplit(".", 1)[1], image.content_type) == ("jpg", "image/jpeg")


def test_two_uploads_with_the_same_name_never_collide(user, make_image):
    first, second = make_image(user, "same.png"), make_image(user, "same.png")
    assert first.file.name != second.file.name
    assert first.file.read() and second.file.read()


@pytest.mark.parametrize(
    "upload, message",
    [
        (SimpleUploadedFile("notes.png", b"this is not an image"), "Upload a valid image"),
        (SimpleUploadedFile("empty.png", b""), "The submitted file is empty"),
        (None, "No file was submitted"),
    ],
)
def test_bad_uploads_get_a_400_that_names_the_problem(user, client_for, upload, message):
    data = {"title": "x"} if upload is None else {"title": "x", "file": upload}
    response = client_for(user).post("/api/images/", data, format="multipart")
    assert response.status_code == 400
    assert message in str(response.data["file"])
    assert Image.objects.count() == 0


def test_oversize_uploads_get_a_400_with_the_limit(user, client_for, settings):
    settings.IMAGE_MAX_UPLOAD_BYTES = 100
    response = client_for(user).post("/api/images/", {"file": SimpleUploadedFile("big.png", png_bytes((64, 64)))}, format="multipart")
    assert response.status_code == 400
    assert "the limit is 100 bytes" in str(response.data["file"])


def test_list_is_paginated_and_shows_only_the_callers_images(user, other_user, make_image, client_for):
    for index in range(3):
        make_image(user, f"{index}.png")
    make_image(other_user, "theirs.png")
    page = client_for(user).get("/api/images/?page_size=2").data
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert all(item["owner"] == "alice" for item in page["results"])
    for item in page["results"]:
        verify_url(item["download_url"])


def test_other_users_get_404_never_a_hint(user, other_user, make_image, client_for):
    image = make_image(user)
    client = client_for(other_user)
    for method, url in [("get", f"/api/images/{image.pk}/"), ("delete", f"/api/images/{image.pk}/"),
                        ("post", f"/api/images/{image.pk}/links/"), ("post", f"/api/images/{image.pk}/share/")]:
        assert getattr(client, method)(url).status_code == 404
    assert client.get("/api/images/999999/").status_code == 404


def test_staff_see_every_image(user, staff_user, make_image, client_for):
    image = make_image(user)
    assert client_for(staff_user).get(f"/api/images/{image.pk}/").status_code == 200


def test_anonymous_callers_get_401(make_image, user, client_for):
    image = make_image(user)
    response = client_for().get(f"/api/images/{image.pk}/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


def test_token_authentication_works_for_scripts(user, make_image):
    make_image(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.get("/api/images/").data["count"] == 1
    client.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert client.get("/api/images/").status_code == 401


def test_delete_removes_the_row_and_the_file(user, make_image, client_for, django_capture_on_commit_callbacks):
    image = make_image(user)
    path = image.file.path
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for(user).delete(f"/api/images/{image.pk}/").status_code == 204
    assert not Image.objects.filter(pk=image.pk).exists()
    import os

    assert not os.path.exists(path)


def test_mint_link_with_options(user, make_image, client_for):
    image = make_image(user, "orig.png")
    response = client_for(user).post(
        f"/api/images/{image.pk}/links/", {"ttl": 120, "filename": "renamed 文件.png", "disposition": "inline"}, format="json"
    )
    assert response.status_code == 201
    assert set(response.data) == {"id", "url", "expires_at", "kid", "not_before", "max_downloads"}
    verified = verify_url(response.data["url"])
    assert (verified.filename, verified.disposition, verified.kid) == ("renamed 文件.png", "inline", response.data["kid"])
    assert response.data["kid"] == "k2"  # the last key listed is active
    remaining = parse_time(response.data["expires_at"]) - datetime.now(timezone.utc)
    assert timedelta(seconds=100) < remaining <= timedelta(seconds=121)


def test_minted_link_defaults_to_the_original_name_as_attachment(user, make_image, client_for):
    image = make_image(user, "holiday.png")
    verified = verify_url(client_for(user).post(f"/api/images/{image.pk}/links/").data["url"])
    assert (verified.filename, verified.disposition) == ("holiday.png", "attachment")


@pytest.mark.parametrize(
    "options, field, message",
    [
        ({"ttl": 0}, "ttl", "greater than or equal to 1"),
        ({"ttl": 10**9}, "ttl", "less than or equal to"),
        ({"ttl": "soon"}, "ttl", "valid integer"),
        ({"disposition": "evil"}, "disposition", "not a valid choice"),
        ({"filename": "a\r\nb.png"}, "filename", "control characters"),
        ({"filename": "x" * 300}, "filename", "no more than 255"),
        ({"bind_ip": "maybe"}, "bind_ip", "true, false or a prefix length of 8 to 32"),
        ({"bind_ip": 7}, "bind_ip", "true, false or a prefix length of 8 to 32"),
        ({"bind_ip": 33}, "bind_ip", "true, false or a prefix length of 8 to 32"),
        ({"bind_ip": 24, "bind_ip6": 16}, "bind_ip6", "greater than or equal to 32"),
    ],
)
def test_bad_link_options_get_a_400_per_field(user, make_image, client_for, options, field, message):
    image = make_image(user)
    response = client_for(user).post(f"/api/images/{image.pk}/links/", options, format="json")
    assert response.status_code == 400
    assert message in str(response.data[field])


def test_bind_ip_binds_to_the_callers_address(user, make_image, client_for):
    image = make_image(user)
    url = client_for(user).post(f"/api/images/{image.pk}/links/", {"bind_ip": True}, format="json",
                                REMOTE_ADDR="192.0.2.9").data["url"]
    assert "&ip=1" in url
    verify_url(url, remote_addr="192.0.2.9")
    with pytest.raises(BadSignature):
        verify_url(url, remote_addr="192.0.2.10")


@pytest.mark.parametrize("caller, options, flag, inside, outside", [
    ("192.0.2.9", {"bind_ip": 24}, "&ip=24", "192.0.2.77", "192.0.3.9"),
    ("::ffff:192.0.2.9", {"bind_ip": 16}, "&ip=16", "192.0.200.1", "192.1.2.9"),  # IPv4-mapped: IPv4's length
    ("2001:db8:1:2::9", {"bind_ip": 24}, "&ip=64", "2001:db8:1:2:ffff::1", "2001:db8:1:3::9"),  # IPv6: /64
    ("2001:db8:1:2::9", {"bind_ip": 24, "bind_ip6": 48}, "&ip=48", "2001:db8:1:3::9", "2001:db8:2:2::9"),
    ("2001:db8:1:2::9", {"bind_ip": True, "bind_ip6": 56}, "&ip=56", "2001:db8:1:20::1", "2001:db8:1:100::1"),
])
def test_bind_ip_with_a_length_binds_to_the_callers_network(user, make_image, client_for, caller, options, flag,
                                                            inside, outside):
    image = make_image(user)
    url = client_for(user).post(f"/api/images/{image.pk}/links/", options, format="json", REMOTE_ADDR=caller).data["url"]
    assert flag in url
    verify_url(url, remote_addr=caller)
    verify_url(url, remote_addr=inside)
    with pytest.raises(BadSignature):
        verify_url(url, remote_addr=outside)


def test_folder_cookies_bound_to_the_callers_network(user, make_image, client_for):
    image = make_image(user)
    answer = client_for(user).post(f"/api/images/{image.pk}/cookies/", {"bind_ip": 24}, format="json",
                                   REMOTE_ADDR="192.0.2.9")
    assert answer.status_code == 200 and ":ip24:id=" in answer.data["cookies"]["secure_link_folder"]


def test_bind_ip_believes_x_real_ip_only_from_a_trusted_proxy(user, make_image, client_for):
    image = make_image(user)
    client = client_for(user)
    via_proxy = client.post(f"/api/images/{image.pk}/links/", {"bind_ip": True}, format="json",
                            REMOTE_ADDR="127.0.0.1", HTTP_X_REAL_IP="198.51.100.4").data["url"]
    verify_url(via_proxy, remote_addr="198.51.100.4")
    spoofed = client.post(f"/api/images/{image.pk}/links/", {"bind_ip": True}, format="json",
                          REMOTE_ADDR="203.0.113.5", HTTP_X_REAL_IP="198.51.100.4",
                          HTTP_X_FORWARDED_FOR="198.51.100.4").data["url"]
    verify_url(spoofed, remote_addr="203.0.113.5")


def test_share_link_points_at_the_compatibility_view(user, make_image, client_for):
    image = make_image(user)
    response = client_for(user).post(f"/api/images/{image.pk}/share/", {"ttl": 60}, format="json")
    assert response.status_code == 201
    assert response.data["url"].startswith(f"http://testserver/download/image/{image.pk}?token=")
    remaining = parse_time(response.data["expires_at"]) - datetime.now(timezone.utc)
    assert timedelta(seconds=50) < remaining <= timedelta(seconds=61)


def test_signed_links_use_base_url_when_configured(user, make_image, client_for, settings):
    settings.SECURE_LINK = {**settings.SECURE_LINK, "BASE_URL": "https://files.example.com"}
    image = make_image(user)
    assert client_for(user).get(f"/api/images/{image.pk}/").data["download_url"].startswith("https://files.example.com/media/images/")


def test_openapi_schema_documents_every_endpoint(client_for, user):
    schema = client_for(user).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert {"/api/images/", "/api/images/{id}/", "/api/images/{id}/links/", "/api/images/{id}/share/",
            "/download/image/{image_id}"} <= set(schema["paths"])
    image_schema = schema["components"]["schemas"]["Image"]["properties"]
    assert image_schema["download_url"]["format"] == "uri" and image_schema["expires_at"]["format"] == "date-time"
    operations = {(path, method): operation for path, item in schema["paths"].items() for method, operation in item.items()
                  if path.startswith("/api/images/")}
    descriptions = [operation.get("description") for operation in operations.values()]
    assert len(set(descriptions)) == len(descriptions)  # each operation says what it does
    assert set(operations["/api/images/", "post"]["requestBody"]["content"]) == {"multipart/form-data"}
    assert {"400", "401"} <= set(operations["/api/images/", "post"]["responses"])
    assert {"401", "404"} <= set(operations["/api/images/{id}/", "get"]["responses"])
    assert ("/api/images/{id}/", "put") not in operations
    assert set(operations["/api/images/{id}/", "patch"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
               .rsplit("/", 1)[1:]) == {"PatchedImageTitleRequest"}


def test_the_title_can_be_changed_and_nothing_else(user, other_user, make_image, client_for):
    image = make_image(user, title="Old")
    changed = client_for(user).patch(f"/api/images/{image.pk}/", {"title": "New", "size": 1}, format="json")
    assert changed.status_code == 200 and changed.data["title"] == "New" and changed.data["size"] == image.size
    assert client_for(other_user).patch(f"/api/images/{image.pk}/", {"title": "x"}, format="json").status_code == 404
    assert client_for(user).put(f"/api/images/{image.pk}/", {"title": "x"}, format="json").status_code == 405
    too_long = client_for(user).patch(f"/api/images/{image.pk}/", {"title": "x" * 201}, format="json")
    assert too_long.status_code == 400 and "title" in too_long.data


def test_an_upload_sent_as_json_is_refused_with_415(user, client_for):
    response = client_for(user).post("/api/images/", {"title": "x", "file": "not a file"}, format="json")
    assert response.status_code == 415

@pytest.mark.parametrize("page, asset", [("/api/docs/", "swagger-ui-dist/"), ("/api/redoc/", "redoc/bundles/")])
def test_interactive_docs_use_local_assets_only(client_for, user, page, asset):
    response = client_for(user).get(page)
    html = response.content.decode()
    assert response["Content-Security-Policy"].startswith("default-src 'self';")  # the browser refuses the rest
    assert f"/static/drf_spectacular_sidecar/{asset}" in html
    assert re.findall(r"(?:src|href)=[\"'](https?:)?//", html) == []  # nothing from another host


def test_a_listed_page_carries_the_links_sign_file_makes(user, client_for, make_image, monkeypatch):
    """The list binds signer, TTL and base URL once per page; its links are sign_file's, byte for byte."""
    from signing.django import conf
    from signing.django.links import sign_file

    images = [make_image(user, f"photo {index}.png") for index in range(3)]
    signer = conf.get_link_signer()
    monkeypatch.setattr(signer, "get_timestamp", lambda: 1_800_000_000)
    monkeypatch.setattr("signing.nginx.signer.new_link_id", lambda: "AbCdEfGh12345678")  # ids are random
    lookups = []
    real = conf.get_link_signer
    monkeypatch.setattr("signing.django.links.get_link_signer", lambda: lookups.append(1) or real())
    listed = client_for(user).get("/api/images/").data["results"]
    assert len(lookups) == 1, "one signer lookup per page, not one per link"
    by_id = {item["id"]: item for item in listed}
    for image in images:
        expected = sign_file(image.file.name, filename=image.original_name, request=None)
        assert by_id[image.pk]["download_url"] == "http://testserver" + expected.url
        assert parse_time(by_id[image.pk]["expires_at"]).timestamp() == expected.expires == 1_800_000_000 + 3600
