"""The edge tier against real processes: one origin (nginx + gunicorn) and two edges, each its own nginx.

Edge A keeps the shipped freshness bound (60 s); edge B is given 2 s so that the tests can
watch a bound run out. The origin's access log shows what reached it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from harness.nginx import REPO_ROOT, NginxServer, start_edge, start_nginx
from harness.stack import Stack, prepare, seed, start_stack
from signing import Key, KeySet, SecureLinkSigner, content_disposition
from signing.nginx.disposition import filename_field
from tests.client import Response, fetch

pytestmark = pytest.mark.nginx

EDGE_A_ADDRESS, EDGE_B_ADDRESS = "127.0.0.11", "127.0.0.12"
SLICE = 1024 * 1024


@dataclass
class Tier:
    stack: Stack
    edge_a: NginxServer
    edge_b: NginxServer

    @property
    def origin(self) -> NginxServer:
        return self.stack.nginx

    @property
    def edges(self) -> list[NginxServer]:
        return [self.edge_a, self.edge_b]

    def signer(self, **options: object) -> SecureLinkSigner:
        return self.stack.signer(**options)

    def origin_fetches(self, path: str) -> list[str]:
        """Lines of the origin's access log for edge fetches of ``path`` (its /media/ path)."""
        target = "/_edge" + path
        return [line for line in self.origin.access_log.splitlines() if f'"GET {target}' in line or f'"HEAD {target}' in line]


@pytest.fixture(scope="module")
def tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tier]:
    var_dir = tmp_path_factory.mktemp("var")
    prepare(var_dir)
    media = var_dir / "media"
    (media / "files").mkdir(parents=True)
    (media / "files" / "photo.png").write_bytes(os.urandom(20_000))
    (media / "files" / "video.bin").write_bytes(os.urandom(24 * SLICE + 12345))
    (media / "files" / "你好 a+b;#?.txt").write_bytes(b"tricky name")
    stack = start_stack(var_dir, edges=(EDGE_A_ADDRESS, EDGE_B_ADDRESS), access_log=True)
    origin = f"127.0.0.1:{stack.nginx.port}"
    key_set = stack.key_set()
    edges: list[NginxServer] = []
    try:
        edges.append(start_edge(var_dir / "edge-a", origin_address=origin, key_set=key_set, bind_address=EDGE_A_ADDRESS))
        edges.append(start_edge(var_dir / "edge-b", origin_address=origin, key_set=key_set, bind_address=EDGE_B_ADDRESS,
                                freshness="2s"))
        yield Tier(stack, *edges)
    finally:
        for edge in edges:
            edge.stop()
        stack.stop()


def get(server: NginxServer, url: str, **options: object) -> Response:
    parts = urlsplit(url)
    return fetch(server.base_url, f"{parts.path}?{parts.query}" if parts.query else parts.path, **options)  # type: ignore[arg-type]


def test_fifty_distinct_links_to_one_file_cost_one_origin_fetch_per_edge(tier):
    path = "/media/files/photo.png"
    content = (tier.stack.media_root / "files" / "photo.png").read_bytes()
    key_set = tier.stack.key_set()
    links = []
    for index in range(50):
        signer = SecureLinkSigner(key_set.with_active(key_set.kids[index % len(key_set)]))
        options: dict[str, object] = {"ttl": 60 + index}
        if index % 3 == 1:
            options.update(filename=f"photo {index}.png", disposition="inline" if index % 2 else "attachment")
        if index % 5 == 0:
            options["client_ip"] = "127.0.0.1"
        links.append((signer.sign(path, **options), options))
    for edge in tier.edges:
        for link, options in links:
            answer = get(edge, link.url)
            assert (answer.status, answer.body) == (200, content)
            name = options.get("filename")
            expected = content_disposition(str(options["disposition"]), filename_field(str(name))) if name else None
            assert answer.headers.get("Content-Disposition") == expected
    assert len(tier.origin_fetches(path)) == len(tier.edges)  # one each, whatever token was asked with
    assert {line.split()[0] for line in tier.origin_fetches(path)} == {"0.0.0.0"}


def test_cache_status_shows_hits_and_headers_stay_safe_for_third_party_caches(tier):
    link = tier.signer().sign("/media/files/photo.png", ttl=60)
    get(tier.edge_a, link.url)
    answer = get(tier.edge_a, tier.signer().sign("/media/files/photo.png", ttl=90).url)
    assert answer.headers["X-Cache-Status"] == "HIT"
    assert answer.headers["Cache-Control"] == "private, max-age=0, must-revalidate"
    assert answer.headers.get_all("Cache-Control") == ["private, max-age=0, must-revalidate"]


@pytest.mark.parametrize("edge_name", ["edge_a", "edge_b"])
def test_refused_links_never_reach_the_origin(tier, edge_name):
    edge = getattr(tier, edge_name)
    path = "/media/files/photo.png"
    good = tier.signer().sign(path, ttl=60).url
    expired = tier.signer(clock=lambda: 1_000_000).sign(path, ttl=60).url
    bound_elsewhere = tier.signer().sign(path, ttl=60, client_ip="127.0.0.2").url
    before = tier.origin.access_log
    answers = {
        "tampered": get(edge, good.replace("&expires=", "&expires=1")).status,
        "expired": get(edge, expired).status,
        "unknown key": get(edge, re.sub(r"kid=\w+", "kid=nope", good)).status,
        "wrong address": get(edge, bound_elsewhere).status,
        "no token": get(edge, path).status,
        "origin's fetch location": get(edge, "/_edge" + path).status,
    }
    assert answers == {"tampered": 403, "expired": 410, "unknown key": 403, "wrong address": 403, "no token": 403,
                       "origin's fetch location": 404}
    assert tier.origin.access_log == before


def test_a_link_bound_through_an_edge_binds_the_real_client(tier):
    demo = seed(tier.stack.env, "--username", "edgy")
    image_id = demo["images"][0]["id"]

    def mint(server: NginxServer, source: str, **headers: str) -> str:
        answer = fetch(server.base_url, f"/api/images/{image_id}/links/", method="POST", body=b'{"bind_ip": true}',
                       headers={"Authorization": f"Token {demo['token']}", "Content-Type": "application/json", **headers},
                       source_address=source)
        assert answer.status == 201, answer.body
        return json.loads(answer.body)["url"]

    through_edge = mint(tier.edge_a, "127.0.0.2")  # the origin believes edge A's X-Real-IP
    assert [get(edge, through_edge, source_address="127.0.0.2").status for edge in tier.edges] == [200, 200]
    assert get(tier.edge_a, through_edge, source_address="127.0.0.1").status == 403
    spoofed = mint(tier.origin, "127.0.0.1", **{"X-Real-IP": "127.0.0.2"})  # not an edge: not believed
    assert get(tier.edge_a, spoofed, source_address="127.0.0.2").status == 403
    assert get(tier.edge_a, spoofed, source_address="127.0.0.1").status == 200


def test_range_in_the_middle_of_a_large_file_costs_one_slice(tier):
    path = "/media/files/video.bin"
    content = (tier.stack.media_root / "files" / "video.bin").read_bytes()
    start = 11 * SLICE + 1000
    answer = get(tier.edge_b, tier.signer().sign(path, ttl=60).url, headers={"Range": f"bytes={start}-{start + 99_999}"})
    assert (answer.status, answer.body) == (206, content[start:start + 100_000])
    assert answer.headers["Content-Range"] == f"bytes {start}-{start + 99_999}/{len(content)}"
    sent = sum(int(line.split('" ')[1].split()[1]) for line in tier.origin_fetches(path))
    assert SLICE <= sent <= SLICE + 4096, f"the origin sent {sent} bytes for a 100 kB range"


def test_conditional_and_head_requests_through_an_edge(tier):
    url = tier.signer().sign("/media/files/photo.png", ttl=60).url
    first = get(tier.edge_a, url)
    assert get(tier.edge_a, url, headers={"If-None-Match": first.headers["ETag"]}).status == 304
    head = get(tier.edge_a, url, method="HEAD")
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", "20000")


def test_tricky_names_and_missing_files_through_an_edge(tier):
    signer = tier.signer()
    answer = get(tier.edge_a, signer.sign("/media/files/你好 a+b;#?.txt", ttl=60).url)
    assert (answer.status, answer.body) == (200, b"tricky name")
    assert get(tier.edge_a, signer.sign("/media/files/none.png", ttl=60).url).status == 404


def test_a_deleted_file_stops_being_served_within_the_freshness_bound(tier):
    doomed = tier.stack.media_root / "files" / "doomed.png"
    doomed.write_bytes(b"soon gone")
    url = tier.signer().sign("/media/files/doomed.png", ttl=120).url
    assert [get(edge, url).status for edge in tier.edges] == [200, 200]
    doomed.unlink()
    deadline = time.monotonic() + 2 + 3  # edge B's bound, plus slack for a loaded machine
    while get(tier.edge_b, url).status != 404:
        assert time.monotonic() < deadline, "edge B still serves a deleted file past its 2 s bound"
        time.sleep(0.2)
    assert get(tier.edge_a, url).status == 200  # edge A's bound (60 s) has not run out yet


def test_key_rotation_across_origin_and_edges(tier):
    path = "/media/files/photo.png"
    old_keys = tier.stack.key_set()
    old_kid = old_keys.active.kid
    old_link = tier.signer().sign(path, ttl=300).url
    new_key = Key("k9", "9" * 43)
    new_keys = KeySet((*old_keys.keys, new_key), old_kid)
    for server in (tier.origin, *tier.edges):  # 1. every nginx learns the new key
        server.set_keys(new_keys)
    new_link = SecureLinkSigner(new_keys.with_active("k9")).sign(path, ttl=300).url
    assert [get(edge, url).status for edge in tier.edges for url in (old_link, new_link)] == [200] * 4
    retired = KeySet((new_key,))
    for server in (tier.origin, *tier.edges):  # 3. the old key is retired everywhere
        server.set_keys(retired)
    assert [get(edge, old_link).status for edge in tier.edges] == [403, 403]
    assert [get(edge, new_link).status for edge in tier.edges] == [200, 200]
    for server in (tier.origin, *tier.edges):
        server.set_keys(old_keys)
    assert old_kid in old_link


def test_origin_down_serves_what_is_cached_and_a_clean_502_for_the_rest(tmp_path):
    media = tmp_path / "media"
    (media / "files").mkdir(parents=True)
    (media / "files" / "kept.png").write_bytes(b"cached before the outage")
    (media / "files" / "never.png").write_bytes(b"never fetched")
    key_set = KeySet((Key("k1", "1" * 43),))
    origin = start_nginx(tmp_path / "origin", media_root=media, key_set=key_set, edges=(EDGE_B_ADDRESS,))
    edge = start_edge(tmp_path / "edge", origin_address=f"127.0.0.1:{origin.port}", key_set=key_set,
                      bind_address=EDGE_B_ADDRESS, freshness="1s")
    signer = SecureLinkSigner(key_set)
    try:
        kept = signer.sign("/media/files/kept.png", ttl=60).url
        assert get(edge, kept).status == 200
        origin.stop()
        # nginx keeps time in whole seconds: a 1 s entry is stale for sure 2 s after it was stored.
        time.sleep(2.1)  # the cached copy is now stale: revalidation fails, the stale copy is served
        started = time.monotonic()
        stale = get(edge, kept)
        assert (stale.status, stale.body, stale.headers["X-Cache-Status"]) == (200, b"cached before the outage", "STALE")
        assert get(edge, signer.sign("/media/files/never.png", ttl=60).url).status == 502
        assert time.monotonic() - started < 5  # nothing hangs
    finally:
        edge.stop()
        origin.stop()


def test_the_origin_fetch_location_refuses_everyone_but_its_edges(tier):
    path = "/_edge/media/files/photo.png"
    assert fetch(tier.origin.base_url, path).status == 403
    assert fetch(tier.origin.base_url, path, headers={"X-Real-IP": "0.0.0.0"}).status == 403
    assert fetch(tier.origin.base_url, path, headers={"X-Real-IP": "0.0.0.0"}, source_address=EDGE_A_ADDRESS).status == 200


def check_secure_link(tier: Tier, *edges: str) -> subprocess.CompletedProcess[str]:
    arguments = [argument for edge in edges for argument in ("--edge", edge)]
    return subprocess.run([sys.executable, "manage.py", "check_secure_link", "--base-url", tier.origin.base_url,
                           *arguments], cwd=REPO_ROOT, env=tier.stack.env, capture_output=True, text=True, timeout=60)


def test_check_secure_link_probes_every_edge(tier):
    result = check_secure_link(tier, tier.edge_a.base_url, tier.edge_b.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 14 probes passed" in result.stdout
    assert f"ok    edge {tier.edge_b.host}:{tier.edge_b.port}: another token, cache hit: 200" in result.stdout


def test_check_secure_link_diagnoses_an_edge_with_other_keys(tier, tmp_path):
    stray = start_edge(tmp_path / "stray", origin_address=f"127.0.0.1:{tier.origin.port}",
                       key_set=KeySet(tuple(Key(kid, "x" * 43) for kid in tier.stack.key_set().kids)),
                       bind_address=EDGE_A_ADDRESS)
    try:
        result = check_secure_link(tier, stray.base_url)
    finally:
        stray.stop()
    assert result.returncode == 1
    assert f"edge {stray.host}:{stray.port} does not accept key k1: its keys differ from the origin's" in result.stdout
    assert "proxy_cache_key" not in result.stdout  # the refusal is not blamed on the cache
