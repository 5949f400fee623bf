"""The fleet follows the keys: real gunicorn (``--preload``), the origin nginx, two edges and a
sync agent beside each nginx, driven only by ``manage.py`` commands.

- ``rotate_key activate`` refuses, naming the verifier, while one edge is frozen (SIGSTOP), and
  the app keeps signing with the old key; after SIGCONT it succeeds.
- A corrupt key file offered to an edge never replaces its good keys, and the fleet status
  reports the edge that fell behind.
- ``check_secure_link`` names an edge whose keys differ as such.
"""

from __future__ import annotations

import http.server
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.fleet import Fleet, running_fleet
from harness.nginx import REPO_ROOT, NginxServer, config_test_command
from signing.django.fleet import PROBE_NAME
from harness.stack import seed
from signing import KeySet, SecureLinkSigner
from signing.fleet.protocol import FLEET_TOKEN_FILE_NAME
from tests.client import fetch

pytestmark = pytest.mark.nginx

FLEET_BOUND = 3.0
PROBE_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    environment = {"SECURE_LINK_FLEET_BOUND": str(FLEET_BOUND), "SECURE_LINK_PROBE_TIMEOUT": str(PROBE_TIMEOUT)}
    with running_fleet(tmp_path_factory.mktemp("var"), edges={"edge-a": "127.0.0.41", "edge-b": "127.0.0.42"},
                       environment=environment) as running:
        yield running


@pytest.fixture(scope="module")
def demo(fleet: Fleet) -> dict:
    return seed(fleet.stack.env)


def manage(fleet: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=fleet.stack.env,
                          capture_output=True, text=True, timeout=120)


def minted_link(fleet: Fleet, demo: dict) -> dict:
    response = requests.post(f"{fleet.stack.base_url}/api/images/{demo['images'][0]['id']}/links/", json={},
                             headers={"Authorization": f"Token {demo['token']}"}, timeout=10)
    assert response.status_code == 201
    return response.json()


def target(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def pids_of(server: NginxServer) -> list[int]:
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    return [server.process.pid, *map(int, children)]


def test_every_verifier_is_in_step_at_start(fleet):
    status = manage(fleet, "secure_link_fleet")
    assert status.returncode == 0, status.stdout + status.stderr
    assert [line.split("): ", 1)[1] for line in status.stdout.splitlines()[:3]] == ["accepts k1; in step"] * 3


def test_activate_refuses_while_an_edge_is_frozen_and_succeeds_once_it_thaws(fleet, demo):
    frozen = pids_of(fleet.edges["edge-b"])
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        assert manage(fleet, "rotate_key", "add", "k2").returncode == 0
        started = time.monotonic()
        refused = manage(fleet, "rotate_key", "activate", "k2")
        took = time.monotonic() - started
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert "not activating k2; k1 keeps signing" in lines[0] and "1 verifier(s) do not accept k2" in lines[0]
    assert lines[1:] == [f"  edge-b ({fleet.edges['edge-b'].base_url}) gave no answer within {PROBE_TIMEOUT:g} s"]
    assert took < FLEET_BOUND + 3 * PROBE_TIMEOUT + 5  # seconds, not minutes (the rest is manage.py's start-up)
    print(f"\nactivate refused in {took:.1f} s with edge-b frozen (bound {FLEET_BOUND:g} s, probe {PROBE_TIMEOUT:g} s)")
    assert fleet.stack.key_set().active.kid == "k1" and minted_link(fleet, demo)["kid"] == "k1"

    activated = manage(fleet, "rotate_key", "activate", "k2")
    assert activated.returncode == 0, activated.stderr
    deadline = time.monotonic() + 3
    while (link := minted_link(fleet, demo))["kid"] != "k2":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    answers = {name: fetch(server.base_url, target(link["url"])).status for name, server in fleet.verifiers.items()}
    assert answers == {"origin": 200, "edge-a": 200, "edge-b": 200}


def test_activate_force_says_what_will_break(fleet):
    for pid in (frozen := pids_of(fleet.edges["edge-a"])):
        os.kill(pid, signal.SIGSTOP)
    try:
        assert manage(fleet, "rotate_key", "add", "k3").returncode == 0
        forced = manage(fleet, "rotate_key", "activate", "k3", "--force")
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    assert forced.returncode == 0, forced.stderr
    assert "--force: activating k3 although links signed with it will get 403 or no answer at:" in forced.stdout
    assert "edge-a" in forced.stdout and "edge-b" not in forced.stdout.split("at:")[1]
    assert fleet.stack.key_set().active.kid == "k3"


def accepts(server: NginxServer, key_set: KeySet, kid: str) -> int:
    return fetch(server.base_url, SecureLinkSigner(key_set.with_active(kid)).sign(f"/media/{PROBE_NAME}", ttl=60).url).status


def test_keys_written_by_the_command_itself_still_reach_nginx_through_the_agent(fleet):
    """`--nginx-keys` writes the origin's includes before its agent looks: the agent must reload all the same."""
    includes = str(fleet.stack.nginx.run_dir)
    added = manage(fleet, "rotate_key", "add", "k9", "--nginx-keys", includes)
    assert added.returncode == 0, added.stderr
    key_set = fleet.stack.key_set()
    deadline = time.monotonic() + FLEET_BOUND
    while accepts(fleet.stack.nginx, key_set, "k9") != 200:
        assert time.monotonic() < deadline, "the origin never loaded the k9 its includes on disk hold"
        time.sleep(0.1)
    activated = manage(fleet, "rotate_key", "activate", "k9", "--nginx-keys", includes)
    assert activated.returncode == 0, activated.stderr
    retired = manage(fleet, "rotate_key", "retire", "k1", "--force", "--nginx-keys", includes)
    assert retired.returncode == 0, retired.stderr
    assert "every verifier refuses k1 now" in retired.stdout
    assert {name: accepts(server, key_set, "k1") for name, server in fleet.verifiers.items()} == {
        "origin": 403, "edge-a": 403, "edge-b": 403}
    assert {name: accepts(server, key_set, "k9") for name, server in fleet.verifiers.items()} == {
        "origin": 200, "edge-a": 200, "edge-b": 200}
    assert fleet.stack.key_set().retired_kids == ("k1",)


def test_a_cdn_key_beside_the_nginx_keys_is_named_not_probed(fleet, tmp_path):
    pem = tmp_path / "cloudfront.pem"
    pem.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    added = manage(fleet, "rotate_key", "add", "cf1", "--algorithm", "cloudfront", "--private-key", str(pem),
                   "--key-pair-id", "K2JCJMDEHXQW5F")
    assert added.returncode == 0, added.stderr
    status = manage(fleet, "secure_link_fleet")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "cf1 (cloudfront): checked by cloudfront, not by these verifiers; not probed" in status.stdout
    assert all(line.endswith("in step") for line in status.stdout.splitlines()[:3])


class CorruptSource(http.server.BaseHTTPRequestHandler):
    """An app that answers the keys request with a broken keys file."""

    bodies: list[bytes] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = self.bodies[0]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("body", [b"k1=trunc", b"<html><body>502 Bad Gateway</body></html>", b"\xff\xfe"])
def test_a_corrupt_key_file_never_replaces_good_keys(fleet, demo, body):
    edge = fleet.edges["edge-a"]
    includes = {path.name: path.read_bytes() for path in edge.run_dir.glob("secure_link_*keys.conf")}
    link = minted_link(fleet, demo)
    CorruptSource.bodies = [body]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CorruptSource)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "signing", "sync-keys", "--once", "--from", f"http://127.0.0.1:{server.server_port}",
             "--token-file", str(fleet.stack.var_dir / FLEET_TOKEN_FILE_NAME), "--output", str(edge.run_dir),
             "--pid-file", str(edge.run_dir / "nginx.pid"),
             "--test-command", shlex.join(config_test_command(edge.run_dir))],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    finally:
        server.shutdown()
    assert result.returncode == 1 and "keeps its last good keys" in result.stderr
    assert {path.name: path.read_bytes() for path in edge.run_dir.glob("secure_link_*keys.conf")} == includes
    assert fetch(edge.base_url, target(link["url"])).status == 200
    assert (fleet.stack.var_dir / FLEET_TOKEN_FILE_NAME).read_text().strip() not in result.stderr


def test_the_fleet_status_names_an_edge_that_fell_behind(fleet):
    agent = fleet.agents.pop("edge-a")  # edge-a's agent is cut off: it gets no new keys
    agent.terminate()
    agent.wait(timeout=10)
    assert manage(fleet, "rotate_key", "add", "k4").returncode == 0
    probe = SecureLinkSigner(fleet.stack.key_set().with_active("k4")).sign(f"/media/{PROBE_NAME}", ttl=60).url
    deadline = time.monotonic() + FLEET_BOUND
    while fetch(fleet.edges["edge-b"].base_url, probe).status != 200:  # the agents still running have k4
        assert time.monotonic() < deadline
        time.sleep(0.1)
    status = manage(fleet, "secure_link_fleet")
    assert status.returncode == 1
    assert "1 of 3 verifier(s) are not in step" in status.stderr
    (behind,) = [line for line in status.stdout.splitlines() if "NOT in step" in line]
    assert behind.startswith("edge-a ") and "does not accept key k4 (403)" in behind
    refused = manage(fleet, "rotate_key", "activate", "k4")
    assert refused.returncode == 1 and "edge-a" in refused.stderr and "does not accept key k4 (403)" in refused.stderr


def test_no_secret_reaches_a_log(fleet):
    secrets = [key.secret for key in fleet.stack.key_set()]
    secrets.append((fleet.stack.var_dir / FLEET_TOKEN_FILE_NAME).read_text().strip())
    logs = [fleet.stack.var_dir / "gunicorn.log"]
    for server in fleet.verifiers.values():
        logs += [server.run_dir / "error.log", server.run_dir / "sync-keys.log"]
    text = "".join(path.read_text(errors="replace") for path in logs if path.exists())
    assert "keys k1" in text  # the agents did log, by key id
    assert [secret for secret in secrets if secret in text] == []
