"""Folder cookies through a real edge in front of a real origin, and what the edge sends upstream.

The edge checks the cookie itself (tests/test_nginx_folder_cookies.py holds the full table
against one origin): files below the signed folder with the cookie alone, nothing outside
it however the path is spelled, nothing for a forged folder or after expiry. It serves them
from the cache entry every link of the file shares (the cookie is not in the key), and it
never forwards the client's Cookie header: an edge in front of a recording server shows the
origin's side of the fetch.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.nginx import NginxServer, running_origin_and_edge, start_edge
from signing import HMAC_SHA256, Key, KeySet, generate_secret
from signing.nginx.folder_cookie import COOKIE_NAME
from tests.client import Response, fetch
from tests.conftest import NginxSite
from tests.parity import past
from tests.test_nginx_folder_cookies import cookie_of, forged

pytestmark = pytest.mark.nginx

EDGE_ADDRESS = "127.0.0.14"
FOLDER = "/media/videos/42/"
OTHER_FOLDER = "/media/videos/4/"
FILES = {"index.m3u8": b"#EXTM3U\n", "720p/seg001.ts": b"segment one"}


@dataclass
class EdgeSite(NginxSite):
    """An edge (``server``) and the origin behind it, which serves ``media_root``."""

    origin: NginxServer


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeSite]:
    """An edge in front of an origin that serves FILES under FOLDER and OTHER_FOLDER (each with its own bytes)."""
    base = tmp_path_factory.mktemp("folder-cookies")
    media = base / "media"
    for folder in (FOLDER, OTHER_FOLDER):
        for relative, content in FILES.items():
            path = media / folder.removeprefix("/media/") / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(folder.encode() + content)
    key_set = KeySet((Key("k1", generate_secret()), Key("h1", generate_secret(), HMAC_SHA256)))
    with running_origin_and_edge(base, media_root=media, key_set=key_set, edge_address=EDGE_ADDRESS) as (origin, server):
        yield EdgeSite(server, media, key_set, origin)


def get(site: NginxSite, target: str, cookie: str = "") -> Response:
    return fetch(site.base_url, target, headers={"Cookie": cookie} if cookie else {})


ESCAPES = {"..": "../4/index.m3u8", "%2e%2e": "%2e%2e/%2E%2E/videos/4/index.m3u8", "%2F": "..%2F4%2Findex.m3u8"}

CASES: dict[str, tuple[Callable[[NginxSite, str], tuple[str, str]], int]] = {
    "a file in the folder": (lambda s, k: (FOLDER + "index.m3u8", cookie_of(s, k)), 200),
    "a file in a subfolder": (lambda s, k: (FOLDER + "720p/seg001.ts", cookie_of(s, k)), 200),
    "no cookie": (lambda s, k: (FOLDER + "index.m3u8", ""), 403),
    "another folder": (lambda s, k: (OTHER_FOLDER + "index.m3u8", cookie_of(s, k)), 403),
    **{f"out with {name}": (lambda s, k, escape=escape: (FOLDER + escape, cookie_of(s, k)), 403)
       for name, escape in ESCAPES.items()},
    "expired": (lambda s, k: (FOLDER + "index.m3u8", f"{COOKIE_NAME}="
                              + past(s.signer(k)).sign_folder_cookie(FOLDER, ttl=60).cookies[COOKIE_NAME]), 410),
}


@pytest.mark.parametrize("kid", ["k1", "h1"])
@pytest.mark.parametrize("case_name", list(CASES))
def test_the_edge_opens_files_below_the_cookies_folder_and_nothing_else(edge, case_name, kid):
    build, expected = CASES[case_name]
    target, cookie = build(edge, kid)
    answer = get(edge, target, cookie)
    assert answer.status == expected, (target, cookie)
    if expected == 200:
        assert answer.body == FOLDER.encode() + FILES[target.removeprefix(FOLDER)]


@pytest.mark.parametrize("escape", list(ESCAPES.values()), ids=list(ESCAPES))
def test_each_escape_reaches_the_other_folder_which_its_own_cookie_opens(edge, escape):
    """The control for the escapes above: they were refused for leaving the folder, not for their spelling."""
    answer = get(edge, FOLDER + escape, cookie_of(edge, "k1", OTHER_FOLDER))
    assert (answer.status, answer.body) == (200, OTHER_FOLDER.encode() + FILES["index.m3u8"])


@pytest.mark.parametrize("folder", ["/media/videos|/", "/media/x|/media/"])
def test_the_edge_refuses_a_correctly_signed_cookie_for_a_folder_holding_a_bar(edge, folder):
    assert get(edge, FOLDER + "index.m3u8", forged(edge, folder)).status == 403


def test_a_cookie_that_opened_a_file_is_410_once_it_expires(edge):
    grants = [edge.signer(kid).sign_folder_cookie(FOLDER, ttl=1) for kid in ("k1", "h1")]
    cookies = [f"{COOKIE_NAME}={grant.cookies[COOKIE_NAME]}" for grant in grants]
    assert [get(edge, FOLDER + "index.m3u8", cookie).status for cookie in cookies] == [200, 200]
    while time.time() < max(grant.expires for grant in grants) + 1:  # nginx: expired once expires < now
        time.sleep(0.1)
    assert [get(edge, FOLDER + "index.m3u8", cookie).status for cookie in cookies] == [410, 410]


def test_two_different_cookies_for_one_file_share_its_cache_entry(edge):
    path = FOLDER + "720p/cached.ts"
    (edge.media_root / path.removeprefix("/media/")).write_bytes(b"fetched once")
    answers = [get(edge, path, cookie_of(edge, "k1")), get(edge, path, cookie_of(edge, "h1", client_ip="127.0.0.1"))]
    assert [(answer.status, answer.body) for answer in answers] == [(200, b"fetched once")] * 2
    assert [answer.headers["X-Cache-Status"] for answer in answers] == ["MISS", "HIT"]
    assert edge.origin.access_log.count(f"/_edge{path} ") == 1


class RecordingOrigin(http.server.ThreadingHTTPServer):
    """A stand-in origin on loopback: keeps each request's path and headers, answers 200 with BODY."""

    BODY = b"from the recorder"

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        super().__init__(("127.0.0.1", 0), RecordingHandler)


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    server: RecordingOrigin
    protocol_version = "HTTP/1.1"  # the edge keeps its connections to the origin alive

    def do_GET(self) -> None:
        self.server.requests.append((self.path, {name.lower(): value for name, value in self.headers.items()}))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(self.server.BODY)))
        self.end_headers()
        self.wfile.write(self.server.BODY)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads ``requests``."""


@pytest.fixture
def recorded_edge(tmp_path: Path) -> Iterator[tuple[NginxServer, RecordingOrigin]]:
    """An edge whose origin is a RecordingOrigin."""
    recorder = RecordingOrigin()
    thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    thread.start()
    try:
        key_set = KeySet((Key("k1", generate_secret()),))
        server = start_edge(tmp_path / "edge", origin_address=f"127.0.0.1:{recorder.server_address[1]}",
                            key_set=key_set, bind_address=EDGE_ADDRESS)
        try:
            yield server, recorder
        finally:
            server.stop()
    finally:
        recorder.shutdown()
        recorder.server_close()
        thread.join(timeout=5)


def test_the_edge_never_forwards_the_clients_cookie_to_the_origin(recorded_edge):
    server, recorder = recorded_edge
    site = NginxSite(server, Path(), server.key_set)
    answer = get(site, FOLDER + "index.m3u8", f"session=abc; {cookie_of(site, 'k1')}; theme=dark")
    assert (answer.status, answer.body) == (200, RecordingOrigin.BODY)
    assert [path for path, _ in recorder.requests] == ["/_edge/media/videos/42/index.m3u8"]
    assert "cookie" not in recorder.requests[0][1]
