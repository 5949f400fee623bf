"""No token reaches any nginx log, at the origin or an edge, when nginx reports a failure.

nginx's error log quotes the request line of each request it reports a failure for; the
shipped locations a link passes through write no error-log line
(``nginx/secure_link/location/quiet_errors.conf``) and the failures log names them by status
and link id. Each failure the developers know of is provoked on real nginx processes: an edge
that cannot reach its origin, a file nginx may not open, a Lua error, a refused upstream (the
download counter, the app), for file links, directory links, folder cookies, HMAC links and share
links; then every log file of both servers is searched for every token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.nginx import NginxServer, start_edge, start_nginx
from harness.ports import free_port
from signing import HMAC_SHA256, Key, KeySet, SecureLinkSigner
from tests.client import fetch, until

pytestmark = pytest.mark.nginx

KEYS = KeySet((Key("k1", "1" * 43), Key("h1", "2" * 43, HMAC_SHA256)), "k1")
EDGE_ADDRESS = "127.0.0.63"
SHARE_TOKEN = "eyJpbWFnZSI6N30.share-token-for-the-test"
BROKEN_NOT_BEFORE = 'return { opens_at = function(text) error("a bug in not_before.lua") end }\n'


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NginxServer, NginxServer, Path]]:
    base = tmp_path_factory.mktemp("error-log")
    media = base / "media"
    (media / "stream" / "720p").mkdir(parents=True)
    (media / "ok.txt").write_bytes(b"ok\n")
    (media / "stream" / "720p" / "seg001.ts").write_bytes(b"segment\n")
    (media / "loop.txt").symlink_to(media / "loop.txt")  # open() fails with ELOOP: nginx may not read it
    broken = base / "not_before.lua"
    broken.write_text(BROKEN_NOT_BEFORE)
    # The counter is the default app address, a port nothing listens on: limited links are refused upstream.
    origin = start_nginx(base / "origin", media_root=media, key_set=KEYS, edges=(EDGE_ADDRESS,), access_log=True,
                         snippets={"secure_link/lua/not_before.lua": broken})
    try:
        edge = start_edge(base / "edge", origin_address=f"127.0.0.1:{free_port()}", key_set=KEYS,
                          bind_address=EDGE_ADDRESS, access_log=True)  # an origin that cannot be reached
        try:
            yield origin, edge, base
        finally:
            edge.stop()
    finally:
        origin.stop()


def tokens_of(url: str) -> list[str]:
    """The secret parts of a link: its query token, or its directory token segment."""
    found = re.findall(r"(?:md5|hmac)=([A-Za-z0-9_-]+)", url) + re.findall(r"/-/[^/]*,([A-Za-z0-9_-]{20,})/", url)
    assert found, url
    return found


def test_failures_at_the_origin_and_the_edge_leave_no_token_in_any_log(servers):
    origin, edge, base = servers
    md5 = SecureLinkSigner(KEYS)
    hmac = SecureLinkSigner(KEYS.with_active("h1"))
    cookie = md5.sign_folder_cookie("/media/stream/", ttl=600)
    cookie_header = {"Cookie": "; ".join(f"{name}={value}" for name, value in cookie.cookies.items())}
    cases = [  # (server, target, headers, the status that says which failure it was)
        (origin, md5.sign("/media/loop.txt", ttl=600).url, {}, 403),                      # unreadable file
        (origin, hmac.sign("/media/loop.txt", ttl=600).url, {}, 403),
        (origin, md5.sign_directory("/media/", ttl=600).url_for("loop.txt"), {}, 403),
        (origin, md5.sign("/media/ok.txt", ttl=600, not_before=1).url, {}, 500),          # a Lua error
        (origin, md5.sign("/media/ok.txt", ttl=600, max_downloads=3).url, {}, 503),       # the counter refuses
        (edge, md5.sign("/media/ok.txt", ttl=600).url, {}, 502),                          # the origin is unreachable
        (edge, hmac.sign("/media/ok.txt", ttl=600).url, {}, 502),
        (edge, md5.sign_directory("/media/stream/", ttl=600).url_for("720p/seg001.ts"), {}, 502),
        (edge, md5.sign("/media/ok.txt", ttl=600, max_downloads=3).url, {}, 502),
    ]
    answers = [fetch(server.base_url, target, headers=headers).status for server, target, headers, _ in cases]
    answers.append(fetch(edge.base_url, "/media/stream/720p/seg001.ts", headers=cookie_header).status)
    # A share link's token, to the app (refused: nothing listens) through the origin and the edge.
    share = "/download/image/7?token=" + SHARE_TOKEN
    answers += [fetch(origin.base_url, share).status, fetch(edge.base_url, share).status]
    assert answers == [status for *_, status in cases] + [502, 502, 502]
    tokens = [token for _, target, _, _ in cases for token in tokens_of(target)]
    tokens += [cookie.cookies["secure_link_folder"].rsplit(":", 1)[1], SHARE_TOKEN]

    def failures_logged() -> int:
        return sum(len((server.run_dir / "failures.log").read_text().splitlines())
                   for server in (origin, edge) if (server.run_dir / "failures.log").exists())

    until(lambda: failures_logged() >= 8, within=5)  # each 5xx reported, by path and link id
    logs = {path: path.read_text(errors="replace") for path in base.rglob("*.log")}
    assert {path.name for path in logs} >= {"error.log", "access.log", "failures.log", "downloads.log"}
    assert [(path, token) for path, text in logs.items() for token in tokens if token in text] == []
    failures = (edge.run_dir / "failures.log").read_text()
    assert ' 502 "GET /media/ok.txt" link=' in failures and "upstream=127.0.0.1:" in failures
    assert ' 500 "GET /media/ok.txt" link=' in (origin.run_dir / "failures.log").read_text()
