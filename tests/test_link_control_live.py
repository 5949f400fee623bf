"""Every link its own, against real processes: gunicorn (``--preload``), the origin nginx, two
edges and a sync agent beside each, on SQLite and (``--database=postgresql``) PostgreSQL.

Links are minted through the API; nginx alone refuses a revoked link (403), a link before its
``not_before`` (403) and a used-up download-limited link (410). Limited links are counted at
the origin, once per download, wherever they are asked for. The logs name links by id and
never hold a token.
"""

from __future__ import annotations

import re
import socket
import struct
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from harness.fleet import Fleet, running_fleet
from harness.nginx import NginxServer
from harness.stack import seed
from tests.client import Response, fetch, first_demo_image, link_api as app_link_api, mint_link
from tests.client import request_target as target, token_auth as auth, until

pytestmark = [pytest.mark.nginx, pytest.mark.database]

AGENT_INTERVAL = 0.5
EDGE_BOUND = 3.0  # agent interval + one pull, with room for a loaded machine
ORIGIN_BOUND = 2.0


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, database_url: str | None) -> Iterator[Fleet]:
    with running_fleet(tmp_path_factory.mktemp("var"), edges={"edge-a": "127.0.0.51", "edge-b": "127.0.0.52"},
                       interval=AGENT_INTERVAL, access_log=True, database_url=database_url,
                       nginx_workers=2) as running:  # the count must hold across the origin's workers
        yield running


@pytest.fixture(scope="module")
def demo(fleet: Fleet) -> dict:
    return seed(fleet.stack.env)


@pytest.fixture(scope="module")
def image(fleet: Fleet, demo: dict) -> dict:
    """The first demo image, with its bytes as stored."""
    return first_demo_image(fleet.stack.base_url, fleet.stack.base_url, demo)


def mint(fleet: Fleet, demo: dict, image: dict, **options: object) -> dict:
    return mint_link(fleet.stack.base_url, demo, image, **options)


def link_api(fleet: Fleet, demo: dict, link_id: str, action: str = "") -> requests.Response:
    return app_link_api(fleet.stack.base_url, demo, link_id, action)


def ask(server: NginxServer, link: dict, **options: object) -> Response:
    return fetch(server.base_url, target(link["url"]), **options)  # type: ignore[arg-type]


def test_a_minted_link_carries_its_signed_id_and_is_recorded(fleet, demo, image):
    link = mint(fleet, demo, image)
    assert parse_qs(urlsplit(link["url"]).query)["id"] == [link["id"]]
    detail = link_api(fleet, demo, link["id"]).json()
    assert detail["status"] == "active" and detail["image"] == image["id"] and detail["downloads"] is None
    for server in fleet.verifiers.values():
        assert ask(server, link).body == image["bytes"]


def test_revoking_one_link_refuses_it_everywhere_and_leaves_the_others(fleet, demo, image):
    kept, revoked = mint(fleet, demo, image), mint(fleet, demo, image)
    for server in fleet.verifiers.values():
        assert ask(server, revoked).status == 200  # the edges cache the file: revocation must still hold
    answer = link_api(fleet, demo, revoked["id"], "revoke")
    assert answer.status_code == 200 and answer.json()["status"] == "revoked"
    origin_took = until(lambda: ask(fleet.stack.nginx, revoked).status == 403, within=ORIGIN_BOUND)
    edge_took = max(until(lambda e=edge: ask(e, revoked).status == 403, within=EDGE_BOUND)
                    for edge in fleet.edges.values())
    print(f"\nrevoked: origin refused after {origin_took:.2f} s, the edges after {edge_took:.2f} s")
    for server in fleet.verifiers.values():
        assert ask(server, revoked).status == 403
        assert ask(server, kept).body == image["bytes"]
    alive = requests.get(f"{fleet.stack.base_url}/api/images/{image['id']}/links/", headers=auth(demo), timeout=10)
    assert revoked["id"] not in {entry["id"] for entry in alive.json()}
    assert kept["id"] in {entry["id"] for entry in alive.json()}


def test_a_link_id_swapped_into_another_link_is_refused(fleet, demo, image):
    first, second = mint(fleet, demo, image), mint(fleet, demo, image)
    swapped = {"url": first["url"].replace(f"id={first['id']}", f"id={second['id']}")}
    for server in fleet.verifiers.values():
        assert ask(server, swapped).status == 403
        assert ask(server, {"url": re.sub(r"&id=[^&]+", "", first["url"])}).status == 403  # nor dropped


def test_a_three_download_link_gives_three_whole_files_then_410_and_no_range(fleet, demo, image):
    link = mint(fleet, demo, image, max_downloads=3)
    answers = [ask(fleet.stack.nginx, link) for _ in range(3)]
    assert [(a.status, a.body == image["bytes"]) for a in answers] == [(200, True)] * 3
    used_up = ask(fleet.stack.nginx, link, headers={"Accept": "text/plain"})
    assert used_up.status == 410 and b"used as many times as it allows" in used_up.body
    assert b"used up" in ask(fleet.stack.nginx, link, headers={"Accept": "text/html"}).body
    assert ask(fleet.stack.nginx, link, headers={"Range": "bytes=0-9"}).status == 410
    detail = link_api(fleet, demo, link["id"]).json()
    assert (detail["downloads"], detail["max_downloads"], detail["status"]) == (3, 3, "used_up")


def test_thirty_clients_racing_a_five_download_link_get_exactly_five_files(fleet, demo, image):
    link = mint(fleet, demo, image, max_downloads=5)
    servers = list(fleet.verifiers.values())
    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(lambda index: ask(servers[index % 3], link), range(30)))
    whole = [a for a in answers if a.status == 200 and a.body == image["bytes"]]
    refused = [a for a in answers if a.status == 410]
    assert (len(whole), len(refused)) == (5, 25), sorted(a.status for a in answers)
    assert link_api(fleet, demo, link["id"]).json()["downloads"] == 5


def test_a_limited_link_used_through_one_edge_is_used_up_everywhere(fleet, demo, image):
    link = mint(fleet, demo, image, max_downloads=2)
    edge_a, edge_b = fleet.edges["edge-a"], fleet.edges["edge-b"]
    assert [ask(edge_a, link).status for _ in range(2)] == [200, 200]
    assert ask(fleet.stack.nginx, link).status == 410
    assert ask(edge_b, link).status == 410
    assert ask(edge_a, link).status == 410


def test_a_request_that_sends_no_file_bytes_takes_no_download(fleet, demo, image):
    link = mint(fleet, demo, image, max_downloads=1)
    assert ask(fleet.stack.nginx, link, method="HEAD").status == 200
    unsatisfiable = ask(fleet.edges["edge-a"], link, headers={"Range": "bytes=999999-"})
    assert unsatisfiable.status == 416
    # The origin gives the download back after the answer (its log phase): the API shows it.
    until(lambda: link_api(fleet, demo, link["id"]).json()["downloads"] == 0, within=5)
    assert ask(fleet.stack.nginx, link, headers={"Range": "bytes=0-9"}).status == 206  # the one download
    assert ask(fleet.stack.nginx, link).status == 410


def test_a_link_before_its_start_is_refused_with_the_time_it_opens(fleet, demo, image):
    opens = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=5)
    link = mint(fleet, demo, image, not_before=opens.isoformat().replace("+00:00", "Z"))
    assert link_api(fleet, demo, link["id"]).json()["status"] == "not_yet_valid"
    for server in fleet.verifiers.values():
        early = ask(server, link, headers={"Accept": "text/plain"})
        assert early.status == 403
        assert f"opens at {opens:%Y-%m-%dT%H:%M:%S}Z".encode() in early.body
    until(lambda: ask(fleet.stack.nginx, link).status == 200, within=8)
    assert datetime.now(timezone.utc) >= opens
    for server in fleet.verifiers.values():
        assert ask(server, link).body == image["bytes"]
    assert link_api(fleet, demo, link["id"]).json()["status"] == "active"


def test_counts_and_revocations_survive_a_reload_and_a_restart(fleet, demo, image):
    limited, revoked = mint(fleet, demo, image, max_downloads=2), mint(fleet, demo, image)
    assert ask(fleet.stack.nginx, limited).status == 200
    link_api(fleet, demo, revoked["id"], "revoke")
    until(lambda: all(ask(s, revoked).status == 403 for s in fleet.verifiers.values()), within=EDGE_BOUND)
    for server in fleet.verifiers.values():
        server.reload()
    assert all(ask(s, revoked).status == 403 for s in fleet.verifiers.values())
    origin = fleet.stack.nginx
    origin.restart()
    assert ask(origin, revoked).status == 403
    assert [ask(origin, limited).status for _ in range(2)] == [200, 410]  # one was left before the restart


def test_logs_hold_link_ids_and_no_token_and_the_owner_reads_the_download_log(fleet, demo, image):
    link = mint(fleet, demo, image, max_downloads=4)
    plain = mint(fleet, demo, image)
    for server in fleet.verifiers.values():
        assert ask(server, plain).status == 200
    assert ask(fleet.edges["edge-b"], link).status == 200
    tokens = [parse_qs(urlsplit(entry["url"]).query)["md5"][0] for entry in (link, plain)]
    assert all(len(token) == 22 for token in tokens)
    for server in fleet.verifiers.values():  # the download log is buffered: its lines arrive within flush=1s
        log = server.run_dir / "downloads.log"
        until(lambda: log.exists() and f'"link":"{plain["id"]}"' in log.read_text(), within=3)
    logs = {}
    for name, server in fleet.verifiers.items():
        for log in ("access.log", "error.log", "downloads.log", "sync-keys.log"):
            path = server.run_dir / log
            logs[f"{name}/{log}"] = path.read_text(errors="replace") if path.exists() else ""
    logs["gunicorn.log"] = (fleet.stack.var_dir / "gunicorn.log").read_text(errors="replace")
    for name, text in logs.items():
        for token in tokens:
            assert token not in text, f"a token reached {name}"
        assert "md5=" not in text and "hmac=" not in text, name
    for name in fleet.verifiers:
        assert f"link={plain['id']}" in logs[f"{name}/access.log"]
        assert f'"link":"{plain["id"]}"' in logs[f"{name}/downloads.log"]
    downloads = link_api(fleet, demo, plain["id"], "downloads").json()
    assert sorted(entry["verifier"] for entry in downloads) == ["edge-a", "edge-b", "origin"]
    assert {(entry["status"], entry["bytes"]) for entry in downloads} == {(200, len(image["bytes"]))}
    limited = link_api(fleet, demo, link["id"], "downloads").json()
    assert [(entry["verifier"], entry["status"]) for entry in limited] == [("edge-b", 200)]  # counted once


def test_nobody_but_the_owner_or_staff_sees_or_revokes_a_link(fleet, demo, image):
    link = mint(fleet, demo, image)
    stranger = requests.post(f"{fleet.stack.base_url}/api/links/{link['id']}/revoke/", timeout=10)
    assert stranger.status_code == 401
    assert link_api(fleet, demo, "A" * 16).status_code == 404
    assert ask(fleet.stack.nginx, link).status == 200


def test_a_precondition_cannot_spend_a_download_without_the_file(fleet, demo, image):
    link = mint(fleet, demo, image, max_downloads=1)
    answer = ask(fleet.stack.nginx, link, headers={"If-Match": '"not-this-one"', "If-Unmodified-Since":
                                                   "Thu, 01 Jan 1970 00:00:00 GMT"})
    assert (answer.status, answer.body) == (200, image["bytes"])  # a limited link is one download: it is sent
    assert ask(fleet.stack.nginx, link).status == 410
    assert link_api(fleet, demo, link["id"]).json()["downloads"] == 1


def test_refusals_are_logged_with_the_link_id(fleet, demo, image):
    link = mint(fleet, demo, image, max_downloads=1)
    assert [ask(fleet.edges["edge-a"], link).status for _ in range(2)] == [200, 410]
    link_api(fleet, demo, link["id"], "revoke")
    until(lambda: ask(fleet.edges["edge-a"], link).status == 403, within=EDGE_BOUND)
    def statuses() -> list[int]:  # the download log is buffered: its lines arrive within flush=1s
        return [entry["status"] for entry in link_api(fleet, demo, link["id"], "downloads").json()]
    until(lambda: statuses()[-1:] == [403], within=3)
    assert statuses()[:2] == [200, 410]


# Range requests and resumed downloads (signing/django/counting.py states the rule).

BIG = 48 << 20  # far more than the socket buffers hold, so that a client can cut a download short


@pytest.fixture(scope="module")
def big_file(fleet: Fleet) -> tuple[str, bytes]:
    body = bytes(range(256)) * (BIG // 256)
    path = fleet.stack.media_root / "files" / "big.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return "/media/files/big.bin", body


def cut_download(server: NginxServer, target_url: str, *, keep: int, start: int = 0) -> int:
    """Ask for ``target_url`` from byte ``start``, read ``keep`` bytes of the body and hang up; returns
    the bytes read (a client whose connection broke)."""
    with socket.create_connection((server.host, server.port), timeout=10) as connection:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        range_header = f"Range: bytes={start}-\r\n" if start else ""
        connection.sendall(f"GET {target_url} HTTP/1.1\r\nHost: x\r\n{range_header}Connection: close\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received:
            received += connection.recv(65536)
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.split()[1] in (b"200", b"206"), head
        while len(body) < keep:
            body += connection.recv(65536)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset, at once
    return min(len(body), keep)


def limited_link(fleet: Fleet, path: str, limit: int) -> str:
    return target(fleet.stack.signer().sign(path, ttl=600, max_downloads=limit).url)


def test_every_range_request_counts_a_download_so_small_ranges_cannot_beat_a_limit(fleet, big_file):
    path, body = big_file
    url = limited_link(fleet, path, 2)
    origin = fleet.stack.nginx
    answers = [fetch(origin.base_url, url, headers={"Range": f"bytes={first}-{first + 9}"}) for first in (0, 10, 20)]
    assert [answer.status for answer in answers] == [206, 206, 410]
    assert answers[1].body == body[10:20]
    whole = limited_link(fleet, path, 1)
    assert fetch(origin.base_url, whole, headers={"Range": "bytes=0-"}).status == 206  # bytes=0- is a download
    assert fetch(origin.base_url, whole, headers={"Range": "bytes=0-"}).status == 410


def test_a_one_time_download_cut_short_resumes_from_where_the_client_stopped_and_only_once(fleet, big_file):
    path, body = big_file
    url = limited_link(fleet, path, 1)
    origin = fleet.stack.nginx
    kept = cut_download(origin, url, keep=1 << 20)
    # The origin tells the counter after the request ended: a HEAD (which takes nothing) shows the credit.
    until(lambda: fetch(origin.base_url, url, method="HEAD").status == 200, within=5)
    rest = fetch(origin.base_url, url, headers={"Range": f"bytes={kept}-"})
    assert (rest.status, len(rest.body)) == (206, BIG - kept)
    assert rest.body == body[kept:]
    assert fetch(origin.base_url, url, headers={"Range": f"bytes={kept}-"}).status == 410  # the credit is spent
    assert fetch(origin.base_url, url).status == 410


def test_a_resume_cut_again_without_progress_earns_no_new_credit(fleet, big_file):
    path, _ = big_file
    url = limited_link(fleet, path, 1)
    origin = fleet.stack.nginx
    cut_download(origin, url, keep=1 << 20)
    until(lambda: fetch(origin.base_url, url, method="HEAD").status == 200, within=5)
    cut_download(origin, url, keep=1 << 20)  # the resume, from the start again, cut again after 1 MiB
    time.sleep(1)  # its settle reaches the counter
    # Its resume point (what it sent, less the margin for bytes lost in flight) is not past the
    # credit it used: no new credit, so cutting and asking again cannot repeat a file.
    assert fetch(origin.base_url, url, headers={"Range": f"bytes={2 << 20}-"}).status == 410
