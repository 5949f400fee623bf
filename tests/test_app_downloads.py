"""The /download/image/<id> compatibility view and the no-nginx /media/ view (Django side)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.template import Context, Template
from django.test import override_settings

from app.downloads.sharing import SHARE_SALT
from signing.django.conf import get_link_signer
from signing import TimedTokenSigner
from tests.app_fixtures import verify_url


def share_token(client, image, ttl=60) -> str:
    return client.post(f"/api/images/{image.pk}/share/", {"ttl": ttl}, format="json").data["url"].split("token=")[1]


def test_owner_gets_an_x_accel_redirect_and_django_never_sends_bytes(user, make_image, client_for):
    image = make_image(user, "cat.png")
    response = client_for(user).get(f"/download/image/{image.pk}")
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == "/_protected/media/" + image.file.name
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == "attachment; filename=\"cat.png\"; filename*=UTF-8''cat.png"
    assert response.content == b""


@pytest.mark.parametrize(
    "name, header",
    [
        ('a"b.png', "attachment; filename=\"a_b.png\"; filename*=UTF-8''a%22b.png"),
        ("x; filename=evil.exe; .png", "attachment; filename=\"x_ filename_evil.exe_ .png\"; filename*=UTF-8''x%3B%20filename%3Devil.exe%3B%20.png"),
        ("line\r\nSet-Cookie: a=b.png", "attachment; filename=\"line__Set-Cookie_ a_b.png\"; filename*=UTF-8''line%0D%0ASet-Cookie%3A%20a%3Db.png"),
        ("照片 1.png", "attachment; filename=\"__ 1.png\"; filename*=UTF-8''%E7%85%A7%E7%89%87%201.png"),
    ],
)
def test_content_disposition_cannot_be_injected(user, make_image, client_for, name, header):
    image = make_image(user)
    image.original_name = name
    image.save()
    response = client_for(user).get(f"/download/image/{image.pk}")
    assert response["Content-Disposition"] == header
    assert "Set-Cookie" not in response


def test_x_accel_redirect_target_is_percent_encoded(user, make_image, client_for):
    image = make_image(user)
    image.file.name = "images/odd name %?#你.png"
    image.save()
    response = client_for(user).get(f"/download/image/{image.pk}")
    assert response["X-Accel-Redirect"] == "/_protected/media/images/odd%20name%20%25%3F%23%E4%BD%A0.png"


def test_a_stored_name_that_could_escape_media_is_404(user, make_image, client_for):
    image = make_image(user)
    image.file.name = "../outside.png"
    image.save()
    assert client_for(user).get(f"/download/image/{image.pk}").status_code == 404


def test_head_works(user, make_image, client_for):
    image = make_image(user)
    response = client_for(user).head(f"/download/image/{image.pk}")
    assert response.status_code == 200 and response["X-Accel-Redirect"]


def test_staff_may_download_others_may_not(user, other_user, staff_user, make_image, client_for):
    image = make_image(user)
    assert client_for(staff_user).get(f"/download/image/{image.pk}").status_code == 200
    assert client_for(other_user).get(f"/download/image/{image.pk}").status_code == 404
    assert client_for(user).get("/download/image/999999").status_code == 404


def test_no_credentials_gets_401(user, make_image, client_for):
    image = make_image(user)
    assert client_for().get(f"/download/image/{image.pk}").status_code == 401


def test_share_token_grants_that_image_to_anyone(user, make_image, client_for):
    image = make_image(user)
    token = share_token(client_for(user), image)
    response = client_for().get(f"/download/image/{image.pk}?token={token}")
    assert response.status_code == 200 and response["X-Accel-Redirect"]


def test_share_token_for_another_image_is_403(user, make_image, client_for):
    first, second = make_image(user), make_image(user)
    token = share_token(client_for(user), first)
    assert client_for().get(f"/download/image/{second.pk}?token={token}").status_code == 403


@pytest.mark.parametrize("token", ["garbage", "", "a.b.c", "x" * 500])
def test_malformed_share_token_is_403(user, make_image, client_for, token):
    image = make_image(user)
    assert client_for().get(f"/download/image/{image.pk}?token={token}").status_code == 403


def test_expired_share_token_is_410(user, make_image, client_for, settings):
    image = make_image(user)
    past = TimedTokenSigner(settings.SECURE_LINK["KEYS"], salt=SHARE_SALT, clock=lambda: 1_000_000)
    token, _ = past.sign(image.share_subject, ttl=60)
    response = client_for().get(f"/download/image/{image.pk}?token={token}")
    assert (response.status_code, response.data["detail"].code) == (410, "link_expired")


def test_share_token_of_a_deleted_image_is_404(user, make_image, client_for):
    image = make_image(user)
    token = share_token(client_for(user), image)
    image_id = image.pk
    image.delete()
    assert client_for().get(f"/download/image/{image_id}?token={token}").status_code == 404


def test_without_nginx_the_compatibility_view_streams_the_file(user, make_image, client_for, settings):
    settings.SECURE_LINK = {**settings.SECURE_LINK, "SERVE_WITH_DJANGO": True}
    image = make_image(user, "x.png")
    response = client_for(user).get(f"/download/image/{image.pk}")
    assert response.status_code == 200 and "X-Accel-Redirect" not in response
    assert b"".join(response.streaming_content) == image.file.open("rb").read()
    assert response["Content-Disposition"] == "attachment; filename=\"x.png\"; filename*=UTF-8''x.png"


class TestMediaWithoutNginx:
    """``/media/`` served by Django gives nginx's answers: 200, 403, 410, 400, 404."""

    @pytest.fixture(autouse=True)
    def serve_with_django(self, settings):
        settings.SECURE_LINK = {**settings.SECURE_LINK, "SERVE_WITH_DJANGO": True}

    def get(self, client, url, **extra):
        parts = urlsplit(url)
        return client.get(parts.path, data=None, QUERY_STRING=parts.query, **extra)

    def test_valid_link_streams_the_file_with_the_signed_disposition(self, user, make_image, client_for):
        image = make_image(user, "p.png")
        link = get_link_signer().sign("/media/" + image.file.name, ttl=60, filename="名前.png")
        response = self.get(client_for(), link.url)
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == image.file.open("rb").read()
        assert response["Content-Disposition"] == "attachment; filename=\"download.png\"; filename*=UTF-8''%E5%90%8D%E5%89%8D.png"

    def test_tampered_link_is_403(self, user, make_image, client_for):
        image = make_image(user)
        link = get_link_signer().sign("/media/" + image.file.name, ttl=60)
        assert self.get(client_for(), link.url.replace("kid=k2", "kid=k1")).status_code == 403

    def test_expired_link_is_410(self, user, make_image, client_for):
        image = make_image(user)
        signer = get_link_signer()
        signer_in_past = type(signer)(signer.key_set, clock=lambda: 1_000_000)
        assert self.get(client_for(), signer_in_past.sign("/media/" + image.file.name, ttl=60).url).status_code == 410

    def test_raw_uri_with_a_bad_escape_is_400_as_in_nginx(self, user, make_image, client_for):
        image = make_image(user)
        link = get_link_signer().sign("/media/" + image.file.name, ttl=60)
        raw = link.url.replace("/images/", "/images/%zz/../")
        assert self.get(client_for(), link.url, RAW_URI=raw).status_code == 400

    def test_valid_link_to_a_missing_file_is_404(self, client_for, db):
        link = get_link_signer().sign("/media/images/none.png", ttl=60)
        assert self.get(client_for(), link.url).status_code == 404

    def test_bound_link_checks_remote_addr(self, user, make_image, client_for):
        image = make_image(user)
        link = get_link_signer().sign("/media/" + image.file.name, ttl=60, client_ip="192.0.2.1")
        assert self.get(client_for(), link.url, REMOTE_ADDR="192.0.2.1").status_code == 200
        assert self.get(client_for(), link.url, REMOTE_ADDR="192.0.2.2").status_code == 403


def test_media_view_is_off_when_nginx_serves_media(user, make_image, client_for):
    image = make_image(user)
    link = get_link_signer().sign("/media/" + image.file.name, ttl=60)
    parts = urlsplit(link.url)
    assert client_for().get(parts.path, QUERY_STRING=parts.query).status_code == 404


def test_template_tag_renders_a_signed_url(user, make_image):
    image = make_image(user, "t.png")
    rendered = Template("{% load signed_urls %}{% signed_url image.file ttl=600 filename=image.original_name %}").render(
        Context({"image": image})
    )
    assert rendered.startswith("/media/images/") and "&amp;expires=" in rendered
    assert verify_url("http://x" + rendered.replace("&amp;", "&")).filename == "t.png"


def test_admin_lists_images_with_a_working_signed_link(user, staff_user, make_image, client):
    staff_user.is_superuser = True
    staff_user.save()
    make_image(user, "admin.png")
    client.force_login(staff_user)
    page = client.get("/admin/downloads/image/").content.decode()
    href = page.split('<a href="/media/images/')[1].split('"')[0].replace("&amp;", "&")
    assert verify_url("http://x/media/images/" + href).filename == "admin.png"


@override_settings(DEBUG=False)
def test_api_errors_never_500_on_garbage_ids(user, client_for):
    client = client_for(user)
    assert client.get("/api/images/abc/").status_code == 404
    assert client.get("/download/image/abc").status_code == 404
