"""Files in a bucket behind the same links: a real S3 server (SeaweedFS), a real origin nginx that
checks each link as ever and fetches the object through its cache and its SigV4 signer, an
edge in front of it, and gunicorn for the API, the compatibility view and share links.

The bucket is private: only signed requests read it (the app's identity writes, the origin's
reads). What a client sees is what it saw with files on disk; the storage's own words (its
XML, its x-amz-* headers) never reach it.
"""

from __future__ import annotations

import datetime
import http.client
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from harness.nginx import NginxServer, start_edge, start_nginx
from harness.seaweedfs import SeaweedFS, running_seaweedfs, unsigned_get
from harness.stack import Stack, running_stack, seed
from signing import HMAC_SHA256, Key, KeySet, SecureLinkSigner, generate_secret
from signing.buckets import Bucket, Credentials
from signing.keys import write_private_file
from signing.nginx.folder_cookie import COOKIE_NAME
from tests.client import fetch
from tests.test_hls_client import ABSOLUTE_STREAM, STREAM, copy_with_absolute_uris, fetched, fetched_below, make_stream, play

pytestmark = pytest.mark.nginx

KEYS = KeySet((Key("k1", generate_secret()), Key("h1", generate_secret(), HMAC_SHA256)), "k1")
EDGE_ADDRESS = "127.0.0.31"
# The tricky names of the disk tests, and the characters SigV4 signers get wrong.
TRICKY_KEYS = ["names/a b.txt", "names/a+b.txt", "names/100%.txt", "names/semi;colon.txt", "names/what?.txt",
               "names/hash#tag.txt", "names/你好.txt", "names/mix 你+%;?#.txt", "names/quote'.txt",
               "names/sub!*().txt", "names/tilde~dash-under_score.txt"]
BIG = "files/big.bin"


def signed(path: str, kid: str = "k1", **options: object) -> str:
    return SecureLinkSigner(KEYS.with_active(kid)).sign("/media/" + path, ttl=300, **options).url  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as running:
        yield running


@pytest.fixture(scope="module")
def objects(storage: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Every object the nginx tests ask for, written with the app's identity."""
    app = storage.client("app")
    stored = {key: f"object {index}: {key}\n".encode() for index, key in enumerate(TRICKY_KEYS)}
    stored[BIG] = random.Random(7).randbytes(3 * 1024 * 1024 + 1234)  # more than three 1 MB slices
    stored["files/other.bin"] = b"another object"
    for key, body in stored.items():
        app.put_object(Bucket="media", Key=key, Body=body, ContentType="application/octet-stream"
                       if key.endswith(".bin") else "text/plain; charset=utf-8")
    stream = tmp_path_factory.mktemp("stream")
    files = make_stream(stream / "videos" / "42")
    copy_with_absolute_uris(stream / "videos" / "42", stream / "videos" / "43", ABSOLUTE_STREAM)
    for path in sorted(stream.rglob("*")):
        if path.is_file():
            app.upload_file(str(path), "media", path.relative_to(stream).as_posix())
    stored.update({f"videos/42/{name}": (stream / "videos" / "42" / name).read_bytes() for name in files})
    return stored


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory, storage: SeaweedFS, objects: dict[str, bytes]) -> Iterator[NginxServer]:
    server = start_nginx(tmp_path_factory.mktemp("origin"), media_root=Path("/nonexistent"), key_set=KEYS,
                         bucket=storage.bucket("origin"), edges=(EDGE_ADDRESS,), access_log=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, origin: NginxServer) -> Iterator[NginxServer]:
    server = start_edge(tmp_path_factory.mktemp("edge"), origin_address=f"127.0.0.1:{origin.port}", key_set=KEYS,
                        bind_address=EDGE_ADDRESS, access_log=True)
    try:
        yield server
    finally:
        server.stop()


def fetches_of(origin: NginxServer, key: str) -> int:
    """How many fetches of ``key`` the origin's signer made (its log names object keys)."""
    return sum(1 for line in origin.fetch_log.splitlines() if line.split(" ")[2:3] == ["/" + key])


@pytest.mark.parametrize("kid", ["k1", "h1"])
@pytest.mark.parametrize("key", TRICKY_KEYS)
def test_every_tricky_name_is_fetched_from_the_bucket_with_a_signature(origin, objects, key, kid):
    answer = fetch(origin.base_url, signed(key, kid, filename="file.txt"))
    assert (answer.status, answer.body) == (200, objects[key])
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"  # the object's own
    assert answer.headers["Content-Disposition"] == "attachment; filename=\"file.txt\"; filename*=UTF-8''file.txt"
    assert not [name for name in answer.headers if name.lower().startswith(("x-amz-", "seaweed"))]


def test_the_bucket_refuses_every_read_without_a_signature(storage, objects):
    for key in ("names/a b.txt", BIG):
        assert unsigned_get(f"{storage.endpoint}/media/{quote(key)}") == 403
    origin_client = storage.client("origin")  # the origin's identity reads, and nothing else
    with pytest.raises(Exception, match="AccessDenied"):
        origin_client.put_object(Bucket="media", Key="written-by-the-origin", Body=b"x")


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)


def ask_signer(origin: NginxServer, method: str, path: str, gate: str | None) -> tuple[int, bytes]:
    """Ask the origin's signer on its socket, with its cache tier's gate value (``"right"``), another, or none."""
    assert origin.bucket is not None
    connection = UnixConnection(str(origin.bucket.signer_socket))
    sent = origin.bucket.gate if gate == "right" else gate
    connection.request(method, path, headers={"X-Secure-Link-Gate": sent} if sent else {})
    answer = connection.getresponse()
    return answer.status, answer.read()


def test_the_signer_never_collapses_a_double_slash_in_a_key(origin, storage):
    """No link names a key with "//" (nginx merges slashes before the check), but the bucket may
    hold one: the signer signs and sends it as it is."""
    storage.client("app").put_object(Bucket="media", Key="x//y.txt", Body=b"two slashes")
    assert ask_signer(origin, "GET", "/x//y.txt", "right") == (200, b"two slashes")


@pytest.mark.parametrize("method, path, gate, status", [
    ("GET", "/files/other.bin", None, 403),  # any local user can reach the socket: not its cache tier
    ("GET", "/files/other.bin", "a-guess", 403),
    ("DELETE", "/files/other.bin", "right", 405),
    ("PUT", "/files/other.bin", "right", 405),
    ("GET", "/", "right", 404),  # "/" would be S3's listing of the bucket
    ("GET", "/names/", "right", 404),
])
def test_the_signer_answers_only_its_cache_tier_and_only_for_an_objects_key(origin, storage, objects, method, path,
                                                                            gate, status):
    before = origin.fetch_log
    answer_status, body = ask_signer(origin, method, path, gate)
    assert answer_status == status and b"<?xml" not in body and b"ListBucketResult" not in body
    (line,) = origin.fetch_log[len(before):].splitlines()
    assert line.split(" ")[3:5] == [str(status), "-"]  # answered by the signer itself: nothing fetched
    stored = storage.client("admin").get_object(Bucket="media", Key="files/other.bin")["Body"].read()
    assert stored == objects["files/other.bin"]  # not deleted, not replaced


def test_a_folder_cookie_for_the_whole_media_folder_never_lists_the_bucket(origin, objects):
    grant = SecureLinkSigner(KEYS).sign_folder_cookie("/media/", ttl=300)
    answer = fetch(origin.base_url, "/media/", headers={"Cookie": f"{COOKIE_NAME}={grant.cookies[COOKIE_NAME]}"})
    assert answer.status == 404 and b"ListBucketResult" not in answer.body and b"names/" not in answer.body
    inside = fetch(origin.base_url, "/media/files/other.bin",
                   headers={"Cookie": f"{COOKIE_NAME}={grant.cookies[COOKIE_NAME]}"})
    assert (inside.status, inside.body) == (200, objects["files/other.bin"])


def test_an_empty_object_is_an_empty_200_and_an_objects_own_disposition_never_doubles_the_links(origin, storage):
    app = storage.client("app")
    app.put_object(Bucket="media", Key="files/empty.txt", Body=b"", ContentType="text/plain")
    for attempt in ("MISS", "HIT"):
        answer = fetch(origin.base_url, signed("files/empty.txt"))
        assert (answer.status, answer.body, answer.headers["Content-Length"]) == (200, b"", "0")
        assert answer.headers["X-Cache-Status"] == attempt  # cached like any object (S3 answered its range with 416)
    app.put_object(Bucket="media", Key="files/disposed.txt", Body=b"x",
                   ContentDisposition='attachment; filename="from-the-object.txt"')
    answer = fetch(origin.base_url, signed("files/disposed.txt", filename="from-the-link.txt"))
    dispositions = [value for name, value in answer.headers.items() if name.lower() == "content-disposition"]
    assert dispositions == ["attachment; filename=\"from-the-link.txt\"; filename*=UTF-8''from-the-link.txt"]


@pytest.mark.parametrize("kind", ["tampered", "expired", "unknown key", "another file's token"])
def test_a_refused_link_never_costs_a_fetch(origin, objects, kind):
    key = "files/other.bin"
    link = signed(key)
    refused = {
        "tampered": link.replace("&expires=", "&expires=1"),
        "expired": SecureLinkSigner(KEYS, clock=lambda: time.time() - 3600).sign("/media/" + key, ttl=60).url,
        "unknown key": link.replace("kid=k1", "kid=zz"),
        "another file's token": link.replace("other.bin", "big.bin"),
    }[kind]
    before = origin.fetch_log
    assert fetch(origin.base_url, refused).status in (403, 410)
    assert origin.fetch_log == before


def test_each_object_is_fetched_once_whatever_link_asks_for_it(origin, objects):
    key = "videos/42/v1/seg001.ts"
    links = [signed(key), signed(key, "h1"), signed(key, filename="x.ts"),
             SecureLinkSigner(KEYS).sign_directory("/media/videos/42/", ttl=300).url_for("v1/seg001.ts")]
    answers = [fetch(origin.base_url, link) for link in links]
    assert [(a.status, a.body == objects[key]) for a in answers] == [(200, True)] * 4
    assert [a.headers["X-Cache-Status"] for a in answers[1:]] == ["HIT"] * 3
    assert fetches_of(origin, key) == 1


@pytest.mark.parametrize("header, status, expected", [
    ("bytes=2-5", 206, lambda b: b[2:6]),
    ("bytes=1048570-1048580", 206, lambda b: b[1048570:1048581]),  # across two slices
    ("bytes=3145700-", 206, lambda b: b[3145700:]),
    ("bytes=-100", 206, lambda b: b[-100:]),
    ("bytes=0-", 206, lambda b: b),
])
def test_ranges_are_answered_from_the_slices_as_from_disk(origin, objects, header, status, expected):
    body = objects[BIG]
    answer = fetch(origin.base_url, signed(BIG), headers={"Range": header})
    assert (answer.status, answer.body) == (status, expected(body))
    first = len(body) - len(expected(body)) if header.startswith("bytes=-") else int(header[6:].split("-")[0])
    assert answer.headers["Content-Range"] == f"bytes {first}-{first + len(expected(body)) - 1}/{len(body)}"


def test_several_ranges_get_the_whole_object_as_at_the_edges_and_one_past_the_end_a_416(origin, edge, objects):
    """A cache of 1 MB slices answers one range (nginx's slice module): several ranges get the
    whole file, a valid answer to a Range header, as every edge always gave."""
    body = objects[BIG]
    for server in (origin, edge):
        several = fetch(server.base_url, signed(BIG), headers={"Range": "bytes=0-1,2097152-2097155"})
        assert (several.status, several.body) == (200, body)
    past = fetch(origin.base_url, signed(BIG), headers={"Range": "bytes=99999999-"})
    assert past.status == 416 and past.headers["Content-Range"] == f"bytes */{len(body)}"


def test_head_and_conditional_requests_are_answered_like_a_file_on_disk(origin, objects):
    link = signed("files/other.bin")
    full = fetch(origin.base_url, link)
    head = fetch(origin.base_url, link, method="HEAD")
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", str(len(objects["files/other.bin"])))
    for header in ({"If-None-Match": full.headers["ETag"]}, {"If-Modified-Since": full.headers["Last-Modified"]}):
        assert fetch(origin.base_url, link, headers=header).status == 304
    assert fetch(origin.base_url, link, headers={"If-None-Match": '"another"'}).status == 200


def test_a_missing_object_gets_the_404_page_never_the_storages_xml(origin):
    answer = fetch(origin.base_url, signed("files/nothing-here.bin"))
    assert answer.status == 404 and answer.body == b"This file is not here (removed or replaced): ask for a new link.\n"
    html = fetch(origin.base_url, signed("files/nothing-here.bin"), headers={"Accept": "text/html"})
    assert html.status == 404 and b"This file is not here" in html.body and b"<Error>" not in html.body


def test_a_link_through_the_edge_gets_the_object_of_the_bucket(edge, origin, objects):
    answers = [fetch(edge.base_url, signed("names/你好.txt", ttl)) for ttl in ("k1", "h1")]
    assert [(a.status, a.body) for a in answers] == [(200, objects["names/你好.txt"])] * 2
    assert answers[1].headers["X-Cache-Status"] == "HIT"


@pytest.mark.parametrize("through", ["origin", "edge"])
def test_ffmpeg_plays_a_stream_from_the_bucket_by_directory_link_and_by_folder_cookie(origin, edge, objects,
                                                                                       tmp_path, through):
    server = origin if through == "origin" else edge
    directory = SecureLinkSigner(KEYS).sign_directory(STREAM, ttl=300)
    since = len(server.access_log)
    result = play(server.base_url + directory.url_for("master.m3u8"), tmp_path / "by-link.ts")
    assert result.returncode == 0, result.stderr
    files = sorted(key[len("videos/42/"):] for key in objects if key.startswith("videos/42/"))
    assert sorted(fetched(server, directory.url, since)) == files
    grant = SecureLinkSigner(KEYS.with_active("h1")).sign_folder_cookie(ABSOLUTE_STREAM, ttl=300)
    since = len(server.access_log)
    result = play(server.base_url + ABSOLUTE_STREAM + "master.m3u8", tmp_path / "by-cookie.ts", "-cookies",
                  f"{COOKIE_NAME}={grant.cookies[COOKIE_NAME]}; path={grant.path}; domain={server.host}:{server.port}")
    assert result.returncode == 0, result.stderr
    answers = fetched_below(server, ABSOLUTE_STREAM, since)
    assert sorted(answers) == files and set(answers.values()) <= {"200", "206"}


# The signature nginx sends, cross-checked with botocore's for the same request ---------------


class Recorder(BaseHTTPRequestHandler):
    """A stand-in for the storage that records each request and answers with a small object."""

    received: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802
        Recorder.received.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        body = b"recorded"
        self.send_response(206)
        self.send_header("Content-Range", f"bytes 0-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def recorded_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NginxServer, Bucket, Credentials]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    folder = tmp_path_factory.mktemp("recorded")
    credentials = Credentials("AKIDRECORDED0001", "recordedsecret/with+chars=0000000000")
    write_private_file(folder / "origin.credentials", credentials.render())
    bucket = Bucket("media", f"http://127.0.0.1:{server.server_address[1]}", "eu-west-3", "path",
                    folder / "origin.credentials")
    origin = start_nginx(folder / "origin", media_root=Path("/nonexistent"), key_set=KEYS, bucket=bucket)
    try:
        yield origin, bucket, credentials
    finally:
        origin.stop()
        server.shutdown()


@pytest.mark.parametrize("key", ["names/a b.txt", "names/mix 你+%;?#.txt", "names/sub!*().txt", "plain.txt"])
def test_the_authorization_nginx_sends_is_botocores_for_the_same_request(recorded_origin, key):
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotocoreCredentials

    origin, bucket, credentials = recorded_origin
    Recorder.received.clear()
    assert fetch(origin.base_url, signed(key)).status == 200
    (received,) = Recorder.received
    assert received["path"] == "/media/" + quote(key, safe="/~")  # exactly the path boto3 would send
    request = AWSRequest(method="GET", url=bucket.endpoint + received["path"],
                         headers={"X-Amz-Content-SHA256": received["x-amz-content-sha256"]})
    signer = S3SigV4Auth(BotocoreCredentials(credentials.key_id, credentials.secret), "s3", bucket.region)
    when = datetime.datetime.strptime(received["x-amz-date"], "%Y%m%dT%H%M%SZ")
    signer._timestamp = lambda: received["x-amz-date"]  # type: ignore[method-assign]  # the instant nginx signed at
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("botocore.auth.datetime.datetime", type("Frozen", (datetime.datetime,), {
            "utcnow": classmethod(lambda cls: when), "now": classmethod(lambda cls, tz=None: when.replace(tzinfo=tz))}))
        signer.add_auth(request)
    assert received["host"] == request.headers["Host"] if "Host" in request.headers else bucket.host
    assert "x-secure-link-gate" not in received  # the tier's gate value stays on the origin
    assert received["authorization"] == request.headers["Authorization"]


# Faults of the storage: a fresh SeaweedFS and origin of their own ----------------------------


@pytest.fixture
def fragile(tmp_path: Path) -> Iterator[tuple[SeaweedFS, NginxServer]]:
    with running_seaweedfs(tmp_path / "seaweedfs") as store:
        app = store.client("app")
        for key in ("cached.txt", "uncached-1.txt", "uncached-2.txt", "uncached-3.txt"):
            app.put_object(Bucket="media", Key=key, Body=f"the object {key}".encode())
        server = start_nginx(tmp_path / "origin", media_root=Path("/nonexistent"), key_set=KEYS,
                             bucket=store.bucket("origin"))
        try:
            yield store, server
        finally:
            server.stop()


def timed(server: NginxServer, key: str) -> tuple[int, bytes, float]:
    started = time.monotonic()
    answer = fetch(server.base_url, signed(key), timeout=15)
    return answer.status, answer.body, time.monotonic() - started


@pytest.mark.parametrize("fault", ["paused (SIGSTOP)", "killed"])
def test_a_storage_that_is_down_costs_a_502_or_the_cached_copy_within_5_s(fragile, fault):
    store, server = fragile
    assert timed(server, "cached.txt")[:2] == (200, b"the object cached.txt")
    if fault == "killed":
        store.kill()
    else:
        store.pause()
    try:
        for key in ("cached.txt", "uncached-1.txt", "uncached-2.txt"):
            status, body, seconds = timed(server, key)
            assert seconds < 5, (key, status, seconds)
            if key == "cached.txt":
                assert (status, body) == (200, b"the object cached.txt")  # the copy it holds
            else:
                assert status == 502 and b"the object" not in body  # never a wrong 200
    finally:
        if fault == "killed":
            store.restart()
        else:
            store.resume()
    assert timed(server, "uncached-3.txt")[:2] == (200, b"the object uncached-3.txt")  # back: 200 again


def test_wrong_credentials_get_a_502_and_one_error_log_line_naming_the_cause(fragile, tmp_path):
    store, _ = fragile
    wrong = tmp_path / "wrong.credentials"
    write_private_file(wrong, Credentials(store.credentials["origin"].key_id, "not-the-secret-at-all").render())
    bucket = Bucket("media", store.endpoint, "us-east-1", "path", wrong)
    server = start_nginx(tmp_path / "wrong-origin", media_root=Path("/nonexistent"), key_set=KEYS, bucket=bucket)
    try:
        answer = fetch(server.base_url, signed("uncached-1.txt"))
        assert answer.status == 502 and b"<Error>" not in answer.body and b"Signature" not in answer.body
        lines = [line for line in server.error_log.splitlines() if "secure_link s3:" in line]
        assert len(lines) == 1 and "refused the origin's fetch (403 SignatureDoesNotMatch)" in lines[0]
        assert "md5=" not in server.error_log and "expires=" not in server.error_log  # no token in the log
    finally:
        server.stop()


# Through the app: uploads into the bucket, links, the compatibility view, revocations ---------


@pytest.fixture(scope="module")
def s3_stack(tmp_path_factory: pytest.TempPathFactory, storage: SeaweedFS) -> Iterator[Stack]:
    # A freshness bound of 2 s instead of 60 s (install_nginx --freshness), so that the test of
    # revocations waits little.
    with running_stack(tmp_path_factory.mktemp("var"), storage=storage, bucket_freshness=2) as stack:
        yield stack


FRESHNESS = 2.0


def test_an_upload_lands_in_the_bucket_and_every_kind_of_link_serves_it(s3_stack, storage):
    from tests.app_fixtures import png_bytes

    token = seed(s3_stack.env, "--no-images", "--username", "uploader")["token"]
    auth = {"Authorization": f"Token {token}"}
    data = png_bytes((20, 10))
    boundary = "----upload"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cat.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    created = fetch(s3_stack.base_url, "/api/images/", method="POST", body=body,
                    headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert created.status == 201, created.body
    image = json.loads(created.body)
    stored = storage.client("admin").list_objects_v2(Bucket="media", Prefix="images/")["Contents"]
    names = [entry["Key"] for entry in stored]
    assert any(name.endswith(".png") for name in names)
    assert not (s3_stack.var_dir / "media").exists()  # nothing on the origin's disk
    url = image["download_url"]
    assert fetch(s3_stack.base_url, url[len(s3_stack.base_url):]).body == data
    assert fetch(s3_stack.base_url, f"/download/image/{image['id']}", headers=auth).body == data  # X-Accel-Redirect
    share = json.loads(fetch(s3_stack.base_url, f"/api/images/{image['id']}/share/", method="POST", body=b"{}",
                             headers={**auth, "Content-Type": "application/json"}).body)["url"]
    assert fetch(s3_stack.base_url, share[len(s3_stack.base_url):]).body == data
    old_link = url[len(s3_stack.base_url):]

    revoked = fetch(s3_stack.base_url, f"/api/images/{image['id']}/revoke/", method="POST", headers=auth)
    new_link = json.loads(revoked.body)["download_url"][len(s3_stack.base_url):]
    assert fetch(s3_stack.base_url, new_link).body == data  # a copy under a new name, server-side
    waited = until_status(s3_stack, old_link, 404)
    assert waited <= FRESHNESS + 1.5, waited  # the origin's freshness bound
    assert fetch(s3_stack.base_url, share[len(s3_stack.base_url):]).status == 403  # bound to the old name

    assert fetch(s3_stack.base_url, f"/api/images/{image['id']}/", method="DELETE", headers=auth).status == 204
    assert until_status(s3_stack, new_link, 404) <= FRESHNESS + 1.5
    assert not [entry for entry in storage.client("admin").list_objects_v2(Bucket="media", Prefix="images/")
                .get("Contents", []) if entry["Key"] in names]


def until_status(stack: Stack, link: str, status: int, limit: float = 10.0) -> float:
    """Seconds until ``link`` answers ``status``; fails after ``limit``."""
    started = time.monotonic()
    while fetch(stack.base_url, link).status != status:
        assert time.monotonic() - started < limit, f"{link} still not {status} after {limit} s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_check_secure_link_probes_the_bucket_origin_and_its_canary_lives_in_the_bucket(s3_stack, storage):
    import subprocess
    import sys

    from harness.nginx import REPO_ROOT

    result = subprocess.run([sys.executable, "manage.py", "check_secure_link", "--base-url", s3_stack.base_url],
                            cwd=REPO_ROOT, env=s3_stack.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 6 probes passed" in result.stdout
    assert not storage.client("admin").list_objects_v2(Bucket="media", Prefix="_secure_link_canary/").get("Contents")


def test_copy_media_to_storage_moves_a_disk_deployments_files_into_the_bucket_under_the_same_names(
        s3_stack, storage, tmp_path):
    from harness.stack import manage

    old_media = tmp_path / "media"
    files = {"moved/old one.png": b"an image of before", "moved/你好 +%.txt": b"a tricky name"}
    for name, body in files.items():
        (old_media / name).parent.mkdir(parents=True, exist_ok=True)
        (old_media / name).write_bytes(body)
    assert "would copy 2 file(s)" in manage(s3_stack.env, "copy_media_to_storage", "--from", str(old_media), "--dry-run")
    assert not storage.client("admin").list_objects_v2(Bucket="media", Prefix="moved/").get("Contents")
    output = manage(s3_stack.env, "copy_media_to_storage", "--from", str(old_media))
    assert "copied 2 file(s)" in output and "skipped 0" in output
    for name, body in files.items():
        assert storage.client("admin").get_object(Bucket="media", Key=name)["Body"].read() == body
        link = manage(s3_stack.env, "sign_url", name, "--base-url", s3_stack.base_url).strip()
        assert fetch(s3_stack.base_url, link[len(s3_stack.base_url):]).body == body  # the old links' paths
    again = manage(s3_stack.env, "copy_media_to_storage", "--from", str(old_media))
    assert "copied 0 file(s)" in again and "skipped 2 already in the storage" in again
