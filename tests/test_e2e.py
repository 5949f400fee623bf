"""End to end: real nginx (nginx/secure_link.conf) in front of a real gunicorn and Django.

Uploads go through the API, downloads through nginx by all three kinds of link, and every
refusal is checked against the status it must have.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import struct
import zlib
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image as PillowImage

from app.downloads.sharing import SHARE_SALT
from app.downloads.models import share_subject
from harness.ports import free_port, stop_process
from harness.stack import Stack, django_environment, prepare, seed, start_gunicorn, start_stack
from signing import Key, KeySet, SecureLinkSigner, TimedTokenSigner
from tests.client import OPEN_FILE_CACHE_VALID, fetch, request_target as path_of, until

pytestmark = [pytest.mark.nginx, pytest.mark.database]

UPLOAD_LIMIT = 200_000


def picture(size: tuple[int, int], color: tuple[int, int, int] = (10, 200, 30), noise: bool = False) -> bytes:
    image = PillowImage.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)) if noise else PillowImage.new("RGB", size, color)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database_url: str | None) -> Iterator[Stack]:
    var_dir = tmp_path_factory.mktemp("var")
    prepare(var_dir, database_url=database_url)
    env = django_environment(var_dir, database_url=database_url, IMAGE_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT))
    running = start_stack(var_dir, env=env)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def api(stack: Stack) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {seed(stack.env, '--no-images', '--username', 'alice')['token']}"
    return session


@pytest.fixture(scope="module")
def uploaded(stack: Stack, api: requests.Session) -> dict:
    data = picture((40, 30))
    response = api.post(f"{stack.base_url}/api/images/", files={"file": ("my photo 照片 #1.png", data, "image/png")},
                        data={"title": "Holiday"}, timeout=10)
    assert response.status_code == 201, response.text
    return {**response.json(), "bytes": data}


EXPECTED_DISPOSITION = "attachment; filename=\"my photo __ _1.png\"; filename*=UTF-8''my%20photo%20%E7%85%A7%E7%89%87%20%231.png"


def test_signed_download_url_comes_straight_from_nginx(stack, uploaded):
    response = fetch(stack.base_url, path_of(uploaded["download_url"]))
    assert (response.status, response.body) == (200, uploaded["bytes"])
    assert response.headers["Content-Disposition"] == EXPECTED_DISPOSITION
    assert response.headers["Content-Type"] == "image/png"


def test_compatibility_link_is_checked_by_django_and_sent_by_nginx(stack, api, uploaded):
    response = api.get(uploaded["image_link"], timeout=10)
    assert (response.status_code, response.content) == (200, uploaded["bytes"])
    assert response.headers["Content-Disposition"] == EXPECTED_DISPOSITION
    assert response.headers["Content-Type"] == "image/png"
    assert "X-Accel-Redirect" not in response.headers


def test_compatibility_link_supports_head_and_range(stack, api, uploaded):
    head = api.head(uploaded["image_link"], timeout=10)
    assert (head.status_code, head.content, head.headers["Content-Length"]) == (200, b"", str(len(uploaded["bytes"])))
    ranged = api.get(uploaded["image_link"], headers={"Range": "bytes=0-9"}, timeout=10)
    assert (ranged.status_code, ranged.content) == (206, uploaded["bytes"][:10])


def test_share_link_downloads_without_credentials(stack, api, uploaded):
    share = api.post(f"{stack.base_url}/api/images/{uploaded['id']}/share/", json={"ttl": 60}, timeout=10).json()
    response = requests.get(share["url"], timeout=10)
    assert (response.status_code, response.content) == (200, uploaded["bytes"])
    assert response.headers["Content-Disposition"] == EXPECTED_DISPOSITION


def test_minted_link_with_options_through_nginx(stack, api, uploaded):
    minted = api.post(f"{stack.base_url}/api/images/{uploaded['id']}/links/",
                      json={"ttl": 60, "filename": "résumé.png", "disposition": "inline"}, timeout=10).json()
    response = fetch(stack.base_url, path_of(minted["url"]))
    assert (response.status, response.body) == (200, uploaded["bytes"])
    assert response.headers["Content-Disposition"] == "inline; filename=\"resume.png\"; filename*=UTF-8''r%C3%A9sum%C3%A9.png"


def test_bind_ip_through_nginx_binds_to_the_real_client_address(stack, api, uploaded):
    minted = api.post(f"{stack.base_url}/api/images/{uploaded['id']}/links/", json={"bind_ip": True}, timeout=10).json()
    assert fetch(stack.base_url, path_of(minted["url"]), source_address="127.0.0.1").status == 200
    assert fetch(stack.base_url, path_of(minted["url"]), source_address="127.0.0.2").status == 403


def test_a_link_bound_to_a_slash_24_opens_in_that_network_alone(stack, api, uploaded):
    minted = api.post(f"{stack.base_url}/api/images/{uploaded['id']}/links/", json={"bind_ip": 24}, timeout=10).json()
    assert "&ip=24" in minted["url"]  # minted by a client at 127.0.0.1
    answers = {source: fetch(stack.base_url, path_of(minted["url"]), source_address=source).status
               for source in ("127.0.0.2", "127.0.0.3", "127.0.1.2")}
    assert answers == {"127.0.0.2": 200, "127.0.0.3": 200, "127.0.1.2": 403}
    widened = path_of(minted["url"]).replace("&ip=24", "&ip=16")
    assert fetch(stack.base_url, widened, source_address="127.0.1.2").status == 403


def test_tampered_expired_and_foreign_links_are_refused(stack, uploaded):
    url = path_of(uploaded["download_url"])
    kid = urlsplit(uploaded["download_url"]).query.split("kid=")[1].split("&")[0]
    media_path = urlsplit(uploaded["download_url"]).path  # a stored uuid name: nothing to decode
    expired = SecureLinkSigner(stack.key_set().with_active(kid), clock=lambda: 1_000_000).sign(media_path, ttl=60)
    foreign = SecureLinkSigner(KeySet((Key(kid, "f" * 43),))).sign(media_path, ttl=60)
    assert fetch(stack.base_url, url.replace("&expires=", "&expires=9")).status == 403
    assert fetch(stack.base_url, url.replace("filename=my", "filename=My")).status == 403
    assert fetch(stack.base_url, expired.url).status == 410
    assert fetch(stack.base_url, foreign.url).status == 403
    assert fetch(stack.base_url, url.replace(f"kid={kid}", "kid=nope")).status == 403


def test_compatibility_view_refusals(stack, api, uploaded):
    image_link = uploaded["image_link"]
    assert requests.get(image_link, timeout=10).status_code == 401
    bob = {"Authorization": f"Token {seed(stack.env, '--no-images', '--username', 'bob')['token']}"}
    assert requests.get(image_link, headers=bob, timeout=10).status_code == 404
    assert requests.get(image_link + "?token=garbage", timeout=10).status_code == 403
    expired, _ = TimedTokenSigner(stack.key_set(), salt=SHARE_SALT, clock=lambda: 1_000_000).sign(
        share_subject(uploaded["id"], urlsplit(uploaded["download_url"]).path.removeprefix("/media/")), ttl=60
    )
    assert requests.get(f"{image_link}?token={expired}", timeout=10).status_code == 410
    assert api.get(f"{stack.base_url}/download/image/999999", timeout=10).status_code == 404


def test_internal_location_is_not_reachable_from_outside(stack, uploaded):
    stored = urlsplit(uploaded["download_url"]).path.split("/media/", 1)[1]
    assert fetch(stack.base_url, "/_protected/media/" + stored).status == 404


def test_upload_over_the_limit_gets_djangos_400_not_nginxs_413(stack, api):
    data = picture((400, 400), noise=True)
    assert len(data) > UPLOAD_LIMIT
    response = api.post(f"{stack.base_url}/api/images/", files={"file": ("big.png", data, "image/png")}, timeout=30)
    assert response.status_code == 400
    assert f"the limit is {UPLOAD_LIMIT} bytes" in response.json()["file"][0]


def test_non_image_upload_gets_400(stack, api):
    response = api.post(f"{stack.base_url}/api/images/", files={"file": ("x.png", b"not an image", "image/png")}, timeout=10)
    assert response.status_code == 400 and "valid image" in response.json()["file"][0]


def test_deleting_an_image_makes_its_links_404(stack, api):
    created = api.post(f"{stack.base_url}/api/images/", files={"file": ("gone.png", picture((5, 5)), "image/png")}, timeout=10).json()
    assert fetch(stack.base_url, path_of(created["download_url"])).status == 200
    assert api.delete(f"{stack.base_url}/api/images/{created['id']}/", timeout=10).status_code == 204
    until(lambda: fetch(stack.base_url, path_of(created["download_url"])).status == 404, within=OPEN_FILE_CACHE_VALID + 1)
    assert api.get(created["image_link"], timeout=10).status_code == 404


@pytest.fixture(scope="module")
def django_media_server(stack: Stack) -> Iterator[str]:
    """gunicorn alone, serving /media/ itself (SERVE_WITH_DJANGO), beside the nginx stack."""
    port = free_port()
    env = {**stack.env, "SECURE_LINK_SERVE_WITH_DJANGO": "1"}
    process = start_gunicorn(env, port, workers=1, log=stack.var_dir / "gunicorn-media.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def test_django_without_nginx_answers_exactly_as_nginx(stack, uploaded, django_media_server):
    url = path_of(uploaded["download_url"])
    kid = url.split("kid=")[1].split("&")[0]
    path = urlsplit(uploaded["download_url"]).path  # a stored uuid name: nothing to decode
    expired = SecureLinkSigner(stack.key_set().with_active(kid), clock=lambda: 1_000_000).sign(path, ttl=60).url
    etag = fetch(stack.base_url, url).headers["ETag"]
    last_modified = fetch(stack.base_url, url).headers["Last-Modified"]
    size = len(uploaded["bytes"])
    requests_to_try: dict[str, tuple[str, dict[str, str]]] = {
        "valid": (url, {}),
        "argument names upper-cased": (url.replace("md5=", "MD5=").replace("kid=", "KID="), {}),
        "filename escapes lower-cased": (url.replace("%E7", "%e7"), {}),
        "expired": (expired, {}),
        "tampered": (url.replace("&expires=", "&expires=9"), {}),
        "unknown key": (url.replace(f"kid={kid}", "kid=zz"), {}),
        "bad escape": (url.replace("/images/", "/images/%zz"), {}),
        "missing file": (url.replace(".png?", ".gif?"), {}),
        "no query": (url.split("?")[0], {}),
        "out of the prefix": ("/media/../x" + url[url.index("?"):], {}),
        "absolute form": ("http://127.0.0.1" + url, {}),
        "range": (url, {"Range": "bytes=0-9"}),
        "open range": (url, {"Range": "bytes=10-"}),
        "suffix range": (url, {"Range": "bytes=-5"}),
        "range past the end": (url, {"Range": f"bytes={size}-"}),
        "if-range stale": (url, {"Range": "bytes=0-9", "If-Range": '"0-0"'}),
        "if-none-match": (url, {"If-None-Match": etag}),
        "if-none-match other": (url, {"If-None-Match": '"0-0"'}),
        "if-modified-since": (url, {"If-Modified-Since": last_modified}),
        "if-match other": (url, {"If-Match": '"0-0"'}),
    }
    compared = ("Content-Range", "Content-Length", "ETag", "Last-Modified", "Content-Disposition")

    def answer(base_url: str, target: str, headers: dict[str, str]) -> tuple:
        response = fetch(base_url, target, headers=headers)
        if response.status >= 400:
            return (response.status,)  # the error pages' wording differs
        return (response.status, response.body, *(response.headers.get(name) for name in compared))

    answers = {name: (answer(stack.base_url, *request), answer(django_media_server, *request))
               for name, request in requests_to_try.items()}
    assert {name: nginx for name, (nginx, django) in answers.items()} == \
           {name: django for name, (nginx, django) in answers.items()}
    assert {name: nginx[0] for name, (nginx, _) in answers.items()} == {
        "valid": 200, "argument names upper-cased": 200, "filename escapes lower-cased": 403, "expired": 410,
        "tampered": 403, "unknown key": 403, "bad escape": 400, "missing file": 403, "no query": 403,
        "out of the prefix": 404, "absolute form": 200, "range": 206, "open range": 206, "suffix range": 206,
        "range past the end": 416, "if-range stale": 200, "if-none-match": 304, "if-none-match other": 200,
        "if-modified-since": 304, "if-match other": 412,
    }
    assert answers["range"][0][1] == uploaded["bytes"][:10]


def test_revoking_an_image_stops_its_old_links_within_a_second_and_new_ones_work(stack, api):
    created = api.post(f"{stack.base_url}/api/images/", files={"file": ("revoke me.png", picture((6, 6)), "image/png")},
                       timeout=10).json()
    share = api.post(f"{stack.base_url}/api/images/{created['id']}/share/", json={}, timeout=10).json()["url"]
    minted = api.post(f"{stack.base_url}/api/images/{created['id']}/links/", json={"bind_ip": True}, timeout=10).json()["url"]
    old_links = [created["download_url"], minted]
    assert [fetch(stack.base_url, path_of(url)).status for url in old_links] == [200, 200]
    assert requests.get(share, timeout=10).status_code == 200

    revoked = api.post(f"{stack.base_url}/api/images/{created['id']}/revoke/", timeout=10)
    assert revoked.status_code == 200
    for url in old_links:  # no nginx reload: nginx sees the file gone within open_file_cache_valid
        until(lambda: fetch(stack.base_url, path_of(url)).status == 404, within=OPEN_FILE_CACHE_VALID + 1)
    assert requests.get(share, timeout=10).status_code == 403
    fresh_share = api.post(f"{stack.base_url}/api/images/{created['id']}/share/", json={}, timeout=10).json()["url"]
    assert fetch(stack.base_url, path_of(revoked.json()["download_url"])).status == 200
    assert requests.get(fresh_share, timeout=10).status_code == 200
    assert api.get(created["image_link"], timeout=10).status_code == 200


def test_pictures_that_declare_too_many_pixels_get_a_clear_400(stack, api):
    header = picture((1, 1))
    # A tiny PNG whose header claims 12000 x 12000: patch the IHDR width and height (CRC fixed below).
    ihdr = b"IHDR" + struct.pack(">II", 12000, 12000) + header[24:29]
    bomb = header[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + header[33:]
    assert len(bomb) < 100
    response = api.post(f"{stack.base_url}/api/images/", files={"file": ("bomb.png", bomb, "image/png")}, timeout=10)
    assert response.status_code == 400
    assert response.json()["file"] == ["The image is 12000 x 12000 pixels (144000000); the limit is 40000000 pixels."]


def test_a_request_without_host_never_gets_links_to_the_internal_app_server(stack, api):
    with socket.create_connection(("127.0.0.1", stack.nginx.port), timeout=10) as connection:
        connection.sendall(f"GET /api/images/ HTTP/1.0\r\nAuthorization: {api.headers['Authorization']}\r\n\r\n".encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert f":{stack.app_port}".encode() not in body
    assert b'"download_url":"/media/' in body  # a relative link: there is no host to name


def test_valid_links_to_missing_files_are_404_without_an_error_log_line(stack):
    signer = stack.signer()
    before = stack.nginx.error_log
    answers = [fetch(stack.base_url, signer.sign(f"/media/images/missing-{index}.png", ttl=60).url).status
               for index in range(20)]
    assert answers == [404] * 20
    assert "No such file" not in stack.nginx.error_log[len(before):]


def test_curl_saves_a_download_under_its_close_ascii_name(stack, api, tmp_path):
    created = api.post(f"{stack.base_url}/api/images/", timeout=10,
                       files={"file": ("sunset at the beach.png", picture((4, 4)), "image/png")}).json()
    minted = api.post(f"{stack.base_url}/api/images/{created['id']}/links/", json={"filename": "Crème brûlée.png"},
                      timeout=10).json()
    for url, saved_as in ((created["download_url"], "sunset at the beach.png"), (minted["url"], "Creme brulee.png")):
        subprocess.run(["curl", "-fsSOJ", url], cwd=tmp_path, check=True, timeout=30)  # curl -J reads filename=
        assert (tmp_path / saved_as).is_file()
