"""A stream's directory link and a folder cookie, each revoked alone, against real processes:
gunicorn (``--preload``), the origin nginx, two edges and a sync agent beside each, and a real
HLS client (Debian's ffmpeg).

Two viewers get grants of the same folder: a directory link each (``manage.py sign_url
--directory --json``, revoked with ``manage.py revoke_link``) and folder cookies each (the
cookies API, revoked with ``POST /api/links/<id>/revoke/``). Once one viewer's grants are
revoked, nginx refuses them (403) at the origin and at both edges within the fleet bound,
while the other viewer's grants keep playing the whole stream; the download log names each
grant's requests by its id.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from harness.fleet import Fleet, running_fleet
from harness.nginx import REPO_ROOT, NginxServer
from harness.stack import seed
from signing.nginx.folder_cookie import COOKIE_NAME
from tests.client import fetch, link_api, token_auth, until
from tests.test_hls_client import cookie_option, copy_with_absolute_uris, make_stream, play

pytestmark = [pytest.mark.nginx]

AGENT_INTERVAL = 0.5
EDGE_BOUND = 3.0  # agent interval + one pull, with room for a loaded machine (docs/per-link.md: the fleet bound)
ORIGIN_BOUND = 2.0


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with running_fleet(tmp_path_factory.mktemp("var"), edges={"edge-a": "127.0.0.71", "edge-b": "127.0.0.72"},
                       interval=AGENT_INTERVAL, access_log=True) as running:
        yield running


@pytest.fixture(scope="module")
def demo(fleet: Fleet) -> dict:
    return seed(fleet.stack.env)


def cookies_for(fleet: Fleet, demo: dict, image_id: int) -> dict:
    """``POST /api/images/<id>/cookies/`` as the image's owner: the grant, with its id."""
    answer = requests.post(f"{fleet.stack.base_url}/api/images/{image_id}/cookies/", json={}, headers=token_auth(demo),
                           timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def stream(fleet: Fleet, demo: dict) -> dict:
    """An HLS stream in the first demo image's own folder: relative URIs below rel/, absolute ones below abs/."""
    folder = cookies_for(fleet, demo, demo["images"][0]["id"])["path"]  # /media/images/.../
    on_disk = fleet.stack.media_root / folder.removeprefix("/media/")
    files = make_stream(on_disk / "rel")
    copy_with_absolute_uris(on_disk / "rel", on_disk / "abs", folder + "abs/")
    return {"folder": folder, "name": folder.removeprefix("/media/"), "files": files}


def manage(fleet: Fleet, *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=fleet.stack.env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def directory_link(fleet: Fleet, stream: dict) -> dict:
    printed = json.loads(manage(fleet, "sign_url", stream["name"] + "rel/", "--directory", "--json", "--base-url",
                                fleet.stack.base_url))
    assert f",id={printed['id']}," in printed["url"]
    return printed


def plays_link(server: NginxServer, url: str, output: Path) -> subprocess.CompletedProcess[str]:
    path = url.split("://", 1)[1].split("/", 1)[1]
    return play(f"{server.base_url}/{path}master.m3u8", output)


def plays_cookie(server: NginxServer, grant: dict, stream: dict, output: Path) -> subprocess.CompletedProcess[str]:
    return play(server.base_url + stream["folder"] + "abs/master.m3u8", output,
                *cookie_option(server, grant["cookies"][COOKIE_NAME], grant["path"]))


def first_segment(server: NginxServer, link: dict | None = None, grant: dict | None = None, stream: dict | None = None) -> int:
    if link is not None:
        path = link["url"].split("://", 1)[1].split("/", 1)[1]
        return fetch(server.base_url, f"/{path}v0/seg000.ts").status
    assert grant is not None and stream is not None
    return fetch(server.base_url, stream["folder"] + "abs/v0/seg000.ts",
                 headers={"Cookie": f"{COOKIE_NAME}={grant['cookies'][COOKIE_NAME]}"}).status


def test_a_stream_and_a_cookie_revoked_alone_stop_everywhere_while_another_viewers_grants_play(
        fleet, demo, stream, tmp_path):
    image_id = demo["images"][0]["id"]
    revoked_link, kept_link = directory_link(fleet, stream), directory_link(fleet, stream)
    revoked_cookie, kept_cookie = cookies_for(fleet, demo, image_id), cookies_for(fleet, demo, image_id)
    assert revoked_cookie["id"] != kept_cookie["id"] and f":id={revoked_cookie['id']}:" in \
        revoked_cookie["cookies"][COOKIE_NAME]
    for server in fleet.verifiers.values():
        assert first_segment(server, revoked_link) == 200
        assert first_segment(server, grant=revoked_cookie, stream=stream) == 200

    assert "revoked" in manage(fleet, "revoke_link", revoked_link["id"])
    revoked_at = time.monotonic()
    answer = link_api(fleet.stack.base_url, demo, revoked_cookie["id"], "revoke")
    assert answer.status_code == 200 and answer.json()["status"] == "revoked" and answer.json()["kind"] == "cookie"
    cookie_revoked_at = time.monotonic()
    took = {}
    for name, server in fleet.verifiers.items():
        bound = ORIGIN_BOUND if name == "origin" else EDGE_BOUND
        until(lambda s=server: first_segment(s, revoked_link) == 403, within=bound)
        took[f"{name} directory link"] = time.monotonic() - revoked_at
        until(lambda s=server: first_segment(s, grant=revoked_cookie, stream=stream) == 403, within=bound)
        took[f"{name} cookie"] = time.monotonic() - cookie_revoked_at
    print("\nrevoked grants refused after: " + ", ".join(f"{where} {seconds:.2f} s" for where, seconds in took.items()))

    for name, server in fleet.verifiers.items():  # the other viewer plays on, every playlist and segment
        for plays, grant in ((plays_link, kept_link["url"]), (plays_cookie, kept_cookie)):
            output = tmp_path / f"{name}-{plays.__name__}.ts"
            result = plays(server, grant, output) if plays is plays_link else plays_cookie(server, grant, stream, output)
            assert result.returncode == 0, (name, result.stderr)
            assert output.stat().st_size > 10_000
        refused = plays_link(server, revoked_link["url"], tmp_path / "refused.ts")
        assert refused.returncode != 0 and "403 Forbidden" in refused.stderr
        refused = plays_cookie(server, revoked_cookie, stream, tmp_path / "refused.ts")
        assert refused.returncode != 0 and "403 Forbidden" in refused.stderr


def test_a_grants_requests_are_in_the_download_log_by_its_id(fleet, demo, stream):
    link = directory_link(fleet, stream)
    grant = cookies_for(fleet, demo, demo["images"][0]["id"])
    for server in fleet.verifiers.values():
        assert first_segment(server, link) == 200 and first_segment(server, grant=grant, stream=stream) == 200
    for server in fleet.verifiers.values():  # buffered: the lines arrive within flush=1s
        log = server.run_dir / "downloads.log"
        until(lambda: all(f'"link":"{grant_id}"' in log.read_text() for grant_id in (link["id"], grant["id"])),
              within=3)
    downloads = link_api(fleet.stack.base_url, demo, grant["id"], "downloads").json()
    assert sorted(entry["verifier"] for entry in downloads) == ["edge-a", "edge-b", "origin"]
    record = link_api(fleet.stack.base_url, demo, grant["id"]).json()
    assert (record["kind"], record["path"], record["status"]) == ("cookie", stream["folder"], "active")
    assert "id=" + link["id"] in link["url"]  # the directory link's id is in its URL, and logged, never its token
    token = link["url"].rstrip("/").rsplit(",", 1)[1]
    for server in fleet.verifiers.values():
        assert token not in (server.run_dir / "access.log").read_text()


def test_a_link_bound_to_a_slash_24_opens_in_that_network_alone_at_every_verifier(fleet, demo):
    image_id = demo["images"][0]["id"]
    minted = requests.post(f"{fleet.stack.base_url}/api/images/{image_id}/links/", json={"bind_ip": 24},
                           headers=token_auth(demo), timeout=10).json()  # by a client at 127.0.0.1
    assert "&ip=24" in minted["url"]
    path = minted["url"].split("://", 1)[1].split("/", 1)[1]
    for name, server in fleet.verifiers.items():  # an edge forwards the client's address, the origin believes it
        answers = {source: fetch(server.base_url, "/" + path, source_address=source).status
                   for source in ("127.0.0.2", "127.0.0.3", "127.0.1.2")}
        assert answers == {"127.0.0.2": 200, "127.0.0.3": 200, "127.0.1.2": 403}, name
