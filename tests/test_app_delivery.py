"""The delivery target in the app: one setting turns every link and cookie into the target's,
and folder cookies for an image's own folder (API, page, command, checks).

nginx's own answers to folder cookies: tests/test_nginx_folder_cookies.py and
tests/test_folder_cookies_live.py; a real browser: tests/test_browser.py.
"""

from __future__ import annotations

import base64
import html
import json
from io import StringIO
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import rsa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.template import Context, Template

from signing.django.checks import check_secure_link_settings
from signing.django.conf import get_link_verifier, link_settings
from app.downloads.models import Image
from signing.django.models import IssuedLink
from signing import BadSignature, KeySet
from tests.app_fixtures import verify_url
from signing.cdn.cloudfront import cloudfront_secret
from signing.nginx.folder_cookie import COOKIE_NAME

CDN = "https://d111111abcdef8.cloudfront.net"
NGINX_KEYS = "k1=" + "1" * 43 + ",k2=" + "2" * 43  # tests/settings.py's


@pytest.fixture(scope="module")
def rsa_pem() -> bytes:
    key = rsa_keys.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


@pytest.fixture
def cloudfront(settings, rsa_pem):
    """The app delivering through CloudFront: its key signs, the nginx keys stay for the origin."""
    keys = KeySet.parse(f"{NGINX_KEYS}\ncf1=cloudfront:{cloudfront_secret('K2JCJMDEHXQW5F', rsa_pem)}\nactive: cf1")
    settings.SECURE_LINK = {**settings.SECURE_LINK, "KEYS": keys, "DELIVERY": f"cloudfront {CDN}"}
    return rsa.PrivateKey.load_pkcs1(rsa_pem)


def verifies_on_cloudfront(url: str, private: rsa.PrivateKey) -> bool:
    """CloudFront's check of a canned-policy URL, with the public key."""
    base, _, query = url.partition("?")
    arguments = parse_qs(query)
    policy = json.dumps({"Statement": [{"Resource": base, "Condition": {"DateLessThan": {
        "AWS:EpochTime": int(arguments["Expires"][0])}}}]}, separators=(",", ":"))
    signature = base64.b64decode(arguments["Signature"][0].translate(str.maketrans("-_~", "+=/")))
    try:
        return rsa.verify(policy.encode(), signature, rsa.PublicKey(private.n, private.e)) == "SHA-1"
    except rsa.VerificationError:
        return False


def test_with_cloudfront_every_way_of_linking_gives_cloudfront_links(cloudfront, user, make_image, client_for):
    image = make_image(user)
    api = client_for(user).get(f"/api/images/{image.pk}/").data["download_url"]
    storage = image.file.storage.url(image.file.name)
    tag = html.unescape(Template("{% load signed_urls %}{% signed_url image.file filename='a.png' %}").render(
        Context({"image": image})))  # as the browser reads the attribute
    for url in (api, storage, tag):
        assert url.startswith(f"{CDN}/media/{image.file.name}?Expires=") and "Key-Pair-Id=K2JCJMDEHXQW5F" in url
        assert verifies_on_cloudfront(url, cloudfront)
    assert not verifies_on_cloudfront(api.replace("Expires=", "Expires=9"), cloudfront)


def test_with_cloudfront_the_links_api_mints_unrecorded_links_and_refuses_what_cloudfront_cannot_check(
        cloudfront, user, make_image, client_for):
    image = make_image(user)
    client = client_for(user)
    minted = client.post(f"/api/images/{image.pk}/links/", {"ttl": 60}, format="json")
    assert minted.status_code == 201 and minted.data["id"] is None and verifies_on_cloudfront(minted.data["url"], cloudfront)
    assert not IssuedLink.objects.exists()
    for options, words in (({"filename": "a.png"}, "a download name"), ({"max_downloads": 2}, "a download limit")):
        refused = client.post(f"/api/images/{image.pk}/links/", options, format="json")
        assert refused.status_code == 400 and words in refused.data["detail"]


def test_with_cloudfront_an_images_cookies_are_cloudfronts(cloudfront, settings, user, make_image, client_for):
    settings.SECURE_LINK = {**settings.SECURE_LINK, "COOKIE_DOMAIN": "example.com"}
    image = make_image(user)
    answer = client_for(user).post(f"/api/images/{image.pk}/cookies/", {"ttl": 120}, format="json")
    assert answer.status_code == 200
    folder = "/media/" + image.folder
    assert answer.data["path"] == folder and answer.data["url"] == f"{CDN}/media/{image.file.name}"
    assert set(answer.data["cookies"]) == {"CloudFront-Policy", "CloudFront-Signature", "CloudFront-Key-Pair-Id"}
    policy = json.loads(base64.b64decode(answer.data["cookies"]["CloudFront-Policy"].translate(str.maketrans("-_~", "+=/"))))
    assert policy["Statement"][0]["Resource"] == f"{CDN}{folder}*"
    for name, morsel in answer.cookies.items():
        assert (morsel.coded_value, morsel["path"], morsel["domain"]) == (answer.data["cookies"][name], folder, "example.com")
        assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Lax"


def test_an_images_folder_cookie_opens_its_file_and_nothing_else(user, make_image, client_for):
    image, other = make_image(user), make_image(user)
    answer = client_for(user).post(f"/api/images/{image.pk}/cookies/", {}, format="json")
    assert answer.status_code == 200 and list(answer.data["cookies"]) == [COOKIE_NAME]
    value = answer.data["cookies"][COOKIE_NAME]
    assert answer.cookies[COOKIE_NAME].coded_value == value  # sent as is: Django's jar would have quoted it
    assert answer.data["url"] == f"http://testserver/media/{image.file.name}"
    cookie = f"{COOKIE_NAME}={value}".encode()
    verifier = get_link_verifier()
    assert verifier.verify(raw_path=f"/media/{image.file.name}".encode(), query=b"", remote_addr="127.0.0.1",
                           cookies=[cookie]).kid == "k2"  # the last key signs
    assert verifier.status(uri=f"/media/{other.file.name}".encode(), query=b"", remote_addr="127.0.0.1",
                           cookies=[cookie]).value == ""


def test_an_image_stored_before_folders_gets_a_409_that_says_how_to_move_it(user, make_image, client_for):
    image = make_image(user)
    old_name = image.file.name.rsplit("/", 2)[0] + "/" + image.file.name.rsplit("/", 1)[1]
    image.file.storage.save(old_name, image.file)
    Image.objects.filter(pk=image.pk).update(file=old_name)
    answer = client_for(user).post(f"/api/images/{image.pk}/cookies/", {}, format="json")
    assert answer.status_code == 409 and f"/api/images/{image.pk}/revoke/" in answer.data["detail"]
    assert client_for(user).post(f"/api/images/{image.pk}/revoke/").status_code == 200
    assert Image.objects.get(pk=image.pk).folder is not None


def test_folder_cookies_are_the_owners_and_staffs_only(user, other_user, staff_user, make_image, client_for):
    image = make_image(user)
    assert client_for(other_user).post(f"/api/images/{image.pk}/cookies/").status_code == 404
    assert client_for().post(f"/api/images/{image.pk}/cookies/").status_code == 401
    assert client_for(staff_user).post(f"/api/images/{image.pk}/cookies/").status_code == 200


def test_an_owner_who_is_not_staff_logs_in_and_sees_the_image_page(user, make_image, client):
    image = make_image(user)
    login = client.get(f"/images/{image.pk}/")
    assert login.status_code == 302 and login["Location"] == f"/accounts/login/?next=/images/{image.pk}/"
    page = client.post("/accounts/login/", {"username": "alice", "password": "pw", "next": f"/images/{image.pk}/"},
                       follow=True)
    assert page.status_code == 200 and COOKIE_NAME in page.cookies
    assert client.post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code == 200


def test_the_image_page_sets_the_cookies_and_shows_the_file_by_its_plain_url(user, other_user, make_image, client):
    image = make_image(user)
    assert client.get(f"/images/{image.pk}/").status_code == 302  # to the login page
    client.force_login(other_user)
    assert client.get(f"/images/{image.pk}/").status_code == 404
    client.force_login(user)
    page = client.get(f"/images/{image.pk}/")
    assert page.status_code == 200 and page["Cache-Control"] == "private, no-store"
    assert f'src="/media/{image.file.name}"' in page.content.decode()  # no Host header: the path alone
    morsel = page.cookies[COOKIE_NAME]
    assert morsel["path"] == "/media/" + image.folder and morsel["httponly"] and morsel["samesite"] == "Lax"
    assert "md5=" not in page.content.decode()


def test_sign_url_prints_a_folders_cookies_and_records_the_grant(settings, db):
    (Path(settings.MEDIA_ROOT) / "videos" / "42").mkdir(parents=True)
    out = StringIO()
    call_command("sign_url", "videos/42/", "--directory", "--cookie", "--json", "--ttl", "60", stdout=out)
    printed = json.loads(out.getvalue())
    assert set(printed) == {"id", "cookies", "path", "expires_at", "not_before"} and printed["path"] == "/media/videos/42/"
    assert printed["cookies"][COOKIE_NAME].startswith("/media/videos/42/:k2:") and printed["not_before"] is None
    assert f":id={printed['id']}:" in printed["cookies"][COOKIE_NAME]
    record = IssuedLink.objects.get(pk=printed["id"])
    assert (record.kind, record.path, record.owner) == ("cookie", "/media/videos/42/", None)
    out = StringIO()
    call_command("sign_url", "videos/42/", "--directory", "--cookie", stdout=out)
    assert out.getvalue().startswith(f"{COOKIE_NAME}=/media/videos/42/:k2:")
    with pytest.raises(CommandError, match="pass --directory"):
        call_command("sign_url", "videos/42/", "--cookie")
    with pytest.raises(CommandError, match="cannot be granted by a cookie"):
        call_command("sign_url", "vidéos/", "--directory", "--cookie", "--allow-missing")


def test_an_active_key_for_another_target_fails_the_checks_in_one_line(settings, rsa_pem):
    cloudfront_key = f"cf1=cloudfront:{cloudfront_secret('K2JCJMDEHXQW5F', rsa_pem)}"
    settings.SECURE_LINK = {**settings.SECURE_LINK, "DELIVERY": f"cloudfront {CDN}"}  # k2 (md5) signs
    (error,) = [e for e in check_secure_link_settings() if e.id == "secure_links.E010"]
    assert "cloudfront but the active key 'k2' is a md5 key" in error.msg and "\n" not in error.msg
    settings.SECURE_LINK = {**settings.SECURE_LINK, "DELIVERY": "nginx",
                            "KEYS": KeySet.parse(f"{NGINX_KEYS}\n{cloudfront_key}\nactive: cf1")}
    (error,) = [e for e in check_secure_link_settings() if e.id == "secure_links.E010"]
    assert "nginx but the active key 'cf1' is a cloudfront key" in error.msg


def test_keys_that_cannot_sign_for_the_target_never_replace_working_signers(cloudfront, caplog, rsa_pem):
    import signing.django.conf as conf

    working = conf.get_link_signer()  # CloudFront's, with cf1
    # The keys change under the running server (as a hand edit of the keys file would): an md5 key signs.
    broken = KeySet.parse(f"{NGINX_KEYS}\ncf1=cloudfront:{cloudfront_secret('K2JCJMDEHXQW5F', rsa_pem)}\nactive: k1")
    conf.key_source().__init__(broken)  # type: ignore[misc]
    with caplog.at_level("ERROR", logger="signing.keys"):
        assert conf.get_link_signer() is working and conf.get_link_signer() is working
    assert [record.getMessage().count("still signing with cf1") for record in caplog.records] == [1]


def test_a_delivery_setting_that_cannot_work_stops_start_up_in_one_line(settings):
    settings.SECURE_LINK = {**settings.SECURE_LINK, "DELIVERY": "cloudfront"}
    with pytest.raises(ImproperlyConfigured, match="^SECURE_LINK_DELIVERY: the cloudfront target needs its base URL"):
        link_settings()


def test_rotate_key_adds_cdn_keys_from_files_and_activates_them_only_when_told(settings, tmp_path, rsa_pem):
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"{NGINX_KEYS}\n")
    (tmp_path / "cf.pem").write_bytes(rsa_pem)
    (tmp_path / "ak.hex").write_text("0a1b2c3d" * 4 + "\n")
    run = lambda *args: call_command("rotate_key", *args, "--keys-file", str(keys_file), stdout=StringIO())  # noqa: E731
    run("add", "cf1", "--algorithm", "cloudfront", "--private-key", str(tmp_path / "cf.pem"),
        "--key-pair-id", "K2JCJMDEHXQW5F")
    run("add", "ak1", "--algorithm", "akamai", "--secret-file", str(tmp_path / "ak.hex"))
    with pytest.raises(CommandError, match="needs --secret-file"):
        run("add", "gc1", "--algorithm", "cloudcdn")
    with pytest.raises(CommandError, match="cf1 is a cloudfront key, but SECURE_LINK_DELIVERY is nginx"):
        run("activate", "cf1", "--force")  # no app server could sign with it
    settings.SECURE_LINK = {**settings.SECURE_LINK, "DELIVERY": f"cloudfront {CDN}"}
    with pytest.raises(CommandError, match="only the CDN checks"):
        run("activate", "cf1")
    run("activate", "cf1", "--force")
    key_set = KeySet.from_file(keys_file)
    assert key_set.kids == ("k1", "k2", "cf1", "ak1") and key_set.active.kid == "cf1"
    assert "0a1b2c3d" not in "".join(key_set.nginx_includes().values())


def test_the_verifiers_key_sync_never_carries_a_cdns_key(cloudfront, settings, client, tmp_path):
    token_file = tmp_path / "fleet-token"
    token_file.write_text("t" * 43)
    settings.SECURE_LINK = {**settings.SECURE_LINK, "FLEET_TOKEN_FILE": token_file}
    answer = client.get("/_secure_link/keys", HTTP_AUTHORIZATION="Bearer " + "t" * 43)
    assert answer.status_code == 200
    assert KeySet.parse(answer.content.decode()).kids == ("k1", "k2")


def test_revoking_and_deleting_leave_no_empty_image_folder(user, make_image, client_for,
                                                          django_capture_on_commit_callbacks):
    image = make_image(user)
    first_folder = Path(image.file.storage.path(image.folder))
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for(user).post(f"/api/images/{image.pk}/revoke/").status_code == 200
    image.refresh_from_db()
    assert not first_folder.exists() and Path(image.file.path).is_file()
    second_folder = Path(image.file.storage.path(image.folder))
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for(user).delete(f"/api/images/{image.pk}/").status_code == 204
    assert not second_folder.exists() and second_folder.parent.is_dir()


def test_the_template_tag_and_sign_url_bind_a_link_to_a_network(settings, rf):
    (Path(settings.MEDIA_ROOT) / "videos" / "42").mkdir(parents=True, exist_ok=True)
    (Path(settings.MEDIA_ROOT) / "a.txt").write_bytes(b"a")
    request = rf.get("/", REMOTE_ADDR="192.0.2.9")
    tag = Template('{% load signed_urls %}{% signed_url "a.txt" bind_ip=24 %}').render(Context({"request": request}))
    out = StringIO()
    call_command("sign_url", "a.txt", "--bind-ip", "192.0.2.9/24", "--base-url", "https://files.example.com", stdout=out)
    for url in (html.unescape(tag), out.getvalue().strip()):
        assert "&ip=24" in url
        verify_url(url, remote_addr="192.0.2.200")
        with pytest.raises(BadSignature):
            verify_url(url, remote_addr="192.0.3.9")
    six = rf.get("/", REMOTE_ADDR="2001:db8:1:2::9")
    stream = Template('{% load signed_urls %}{% signed_url "videos/42/" directory=True bind_ip=True bind_ip6=48 %}'
                      ).render(Context({"request": six}))
    assert ",ip48,id=" in stream
    with pytest.raises(CommandError, match="an IPv4 client can be bound to a network of 8 to 32 bits, not 40"):
        call_command("sign_url", "a.txt", "--bind-ip", "192.0.2.9/40", "--base-url", "https://files.example.com")
