"""Key rotation and "revoke every link" across a fleet: real gunicorn (``--preload``), the origin
nginx, two edges, and a sync agent beside each nginx.

The documented procedures are run with the real commands alone (``manage.py rotate_key``; no
nginx is reloaded by hand, no app server signalled) while background threads keep
downloading through the origin and both edges and minting links through the API. Every
answer is checked: a valid link refused, a retired link served after the bound, or a 5xx is
a wrong answer, and there must be none.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import requests

from signing.django.fleet import RELOAD_SETTLE
from harness.fleet import Fleet, running_fleet
from harness.nginx import REPO_ROOT, NginxServer
from harness.stack import Stack, manage, seed
from signing import SecureLinkSigner
from tests.client import fetch

pytestmark = pytest.mark.nginx

MAX_TTL = 6  # seconds: the normal retirement waits this out for real
PICKUP_BOUND = 2.0  # SECURE_LINK_KEYS_CHECK_INTERVAL (1 s) + 1 s, as the README states
FLEET_BOUND = 5.0  # agents pull every 1 s: one interval, one pull, one reload, with margin
LOAD_DEADLINE = 120.0  # the load stops by itself whatever happens to the test


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    environment = {"SECURE_LINK_MAX_TTL": str(MAX_TTL), "SECURE_LINK_DEFAULT_TTL": str(MAX_TTL),
                   "SECURE_LINK_SHARE_TTL": str(MAX_TTL), "SECURE_LINK_FLEET_BOUND": str(FLEET_BOUND)}
    # gunicorn --preload with 2 workers, as the demo runs it
    with running_fleet(tmp_path_factory.mktemp("var"), edges={"edge-a": "127.0.0.31", "edge-b": "127.0.0.32"},
                       environment=environment) as running:
        yield running


@dataclass
class Link:
    url: str
    kid: str  # the key that signed it (share tokens do not show theirs)
    expires: float
    size: int


@dataclass
class Load:
    """Downloads of known-good links and fresh links minted by the API, until stopped."""

    fleet: Fleet
    token: str
    image_id: int
    size: int
    good_links: list[Link] = field(default_factory=list)
    signing_kid: str | None = "k1"  # links minted now must carry this key id (None: in transition)
    requests_made: int = 0
    downloads: dict[str, int] = field(default_factory=dict)  # per verifier
    wrong: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def stack(self) -> Stack:
        return self.fleet.stack

    def api(self, action: str) -> dict:
        response = requests.post(f"{self.stack.base_url}/api/images/{self.image_id}/{action}/", json={},
                                 headers={"Authorization": f"Token {self.token}", "Connection": "close"}, timeout=10)
        if response.status_code != 201:
            raise AssertionError(f"POST {action}: {response.status_code} {response.text[:200]}")
        return response.json()

    def expect_download(self, what: str, url: str, expires: float, server: NginxServer) -> None:
        now = time.time()
        if abs(now - expires) < 1.5:
            return  # nginx's clock second and ours may straddle the expiry: no fixed answer
        expected = 200 if now < expires else 410
        answer = fetch(server.base_url, target(url))
        if answer.status != expected or (expected == 200 and len(answer.body) != self.size):
            self.record(f"{what} via {server.base_url} {url}: {answer.status} ({len(answer.body)} bytes), "
                        f"expected {expected}")
        with self.lock:
            self.downloads[server.base_url] = self.downloads.get(server.base_url, 0) + 1

    def record(self, wrong: str) -> None:
        with self.lock:
            self.wrong.append(wrong)

    def run(self, seed_value: int) -> None:
        chooser = random.Random(seed_value)
        deadline = time.monotonic() + LOAD_DEADLINE
        while not self.stop.is_set() and time.monotonic() < deadline:
            server = chooser.choice(list(self.fleet.verifiers.values()))
            try:
                with self.lock:
                    link = chooser.choice(self.good_links) if self.good_links else None
                if link is None or chooser.random() < 0.25:
                    expected_kid = self.signing_kid
                    minted = self.api(chooser.choice(["links", "share"]))
                    if expected_kid and minted.get("kid", expected_kid) != expected_kid:
                        self.record(f"minted with {minted['kid']} after {expected_kid} took over")
                    self.expect_download("fresh link", minted["url"], time.time() + MAX_TTL, server)
                else:
                    self.expect_download("known link", link.url, link.expires, server)
            except Exception as error:  # noqa: BLE001 - any failure is a wrong answer, counted
                self.record(f"{type(error).__name__}: {error}")
            with self.lock:
                self.requests_made += 1

    def add(self, kid: str, *urls: str) -> None:
        with self.lock:
            self.good_links += [Link(url, kid, time.time() + MAX_TTL, self.size) for url in urls]

    def forget(self, kid: str) -> list[str]:
        """Stop expecting 200 for links signed with ``kid``; return those still unexpired."""
        with self.lock:
            dropped = [link for link in self.good_links if link.kid == kid]
            self.good_links = [link for link in self.good_links if link not in dropped]
        return [link.url for link in dropped if link.expires > time.time() + 0.5]


def target(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def rotate(stack: Stack, *args: str) -> str:
    return manage(stack.env, "rotate_key", *args)


def wait_for_signing_kid(load: Load, kid: str) -> float:
    """Mint through the API until links carry ``kid``; return how long that took."""
    started = time.monotonic()
    while time.monotonic() - started < PICKUP_BOUND + 1:
        if load.api("links")["kid"] == kid:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"the app servers still sign with another key {PICKUP_BOUND + 1} s after activating {kid}")


def statuses(fleet: Fleet, url: str) -> dict[str, int]:
    """What each verifier answers to ``url`` now."""
    return {name: fetch(server.base_url, target(url)).status for name, server in fleet.verifiers.items()}


def seconds_until(fleet: Fleet, url: str, wanted: int, bound: float) -> float:
    """How long until every verifier answers ``wanted`` to ``url``, and still does once old nginx
    workers are gone (RELOAD_SETTLE later); fails past ``bound``."""
    started = time.monotonic()
    while True:
        answers = statuses(fleet, url)
        if set(answers.values()) == {wanted}:
            took = time.monotonic() - started
            time.sleep(RELOAD_SETTLE)
            if set(statuses(fleet, url).values()) == {wanted}:
                return took
        assert time.monotonic() - started < bound, f"not every verifier answers {wanted} after {bound} s: {answers}"
        time.sleep(0.05)


def test_rotation_and_revocation_reach_every_verifier_and_app_server_under_load(fleet):
    stack = fleet.stack
    demo = seed(stack.env)
    image = demo["images"][0]
    size = len(requests.get(f"{stack.base_url}/download/image/{image['id']}",
                            headers={"Authorization": f"Token {demo['token']}"}, timeout=10).content)
    load = Load(fleet, demo["token"], image["id"], size)
    old_link, old_share = load.api("links"), load.api("share")
    assert old_link["kid"] == "k1"
    load.add("k1", old_link["url"], old_share["url"])
    threads = [threading.Thread(target=load.run, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    try:
        # The documented rotation, commands only: add, activate (gated), (links expire), retire.
        rotate(stack, "add", "k2")
        probe = SecureLinkSigner(stack.key_set().with_active("k2")).sign(urlsplit(old_link["url"]).path, ttl=60).url
        added_after = seconds_until(fleet, probe, 200, FLEET_BOUND)
        load.signing_kid = None
        rotate(stack, "activate", "k2")
        took = wait_for_signing_kid(load, "k2")
        time.sleep(max(0.0, PICKUP_BOUND - took))
        load.signing_kid = "k2"
        load.add("k2", load.api("links")["url"], load.api("share")["url"])
        refused = subprocess.run([sys.executable, "manage.py", "rotate_key", "retire", "k1"], cwd=REPO_ROOT,
                                 env=stack.env, capture_output=True, text=True)
        assert refused.returncode == 1 and "may live until" in refused.stderr
        active_since = stack.key_set().active_since
        assert active_since is not None
        time.sleep(max(0.0, active_since + PICKUP_BOUND + MAX_TTL + 1.2 - time.time()))
        load.forget("k1")  # every k1 link has expired by now
        old_keys = stack.key_set()
        rotate(stack, "retire", "k1", "--no-wait")
        retired_probe = SecureLinkSigner(old_keys.with_active("k1")).sign(urlsplit(old_link["url"]).path, ttl=60).url
        retired_after = seconds_until(fleet, retired_probe, 403, FLEET_BOUND)
        assert set(statuses(fleet, old_link["url"]).values()) == {403}  # retired key: 403, not 410

        # Revoke everything: add, activate, retire --force; the command waits until every verifier refuses.
        live_k2 = [load.api("links")["url"], load.api("share")["url"]]
        load.add("k2", *live_k2)
        revoked = load.forget("k2")
        rotate(stack, "add", "k3")
        load.signing_kid = None
        rotate(stack, "activate", "k3")
        forced = time.monotonic()
        output = rotate(stack, "retire", "k2", "--force")
        forced_took = time.monotonic() - forced
        load.signing_kid = "k3"
        assert "every verifier refuses k2 now" in output
        assert load.api("links")["kid"] == "k3"
        for url in [url for url in revoked if "md5=" in url]:  # at once, at every verifier
            assert set(statuses(fleet, url).values()) == {403}, url
        deadline = time.monotonic() + PICKUP_BOUND  # share tokens: the app servers' pick-up bound
        shares = [url for url in revoked if "token=" in url]
        while any(fetch(stack.base_url, target(url)).status != 403 for url in shares) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [fetch(stack.base_url, target(url)).status for url in shares] == [403] * len(shares)
        assert shares and len(shares) < len(revoked)
        load.add("k3", load.api("links")["url"], load.api("share")["url"])
        time.sleep(1)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    print(f"\nfleet rotation: add -> every verifier accepts in {added_after:.2f} s; retire -> every verifier "
          f"refuses in {retired_after:.2f} s; retire --force took {forced_took:.2f} s; {load.requests_made} requests "
          f"({load.downloads}), {len(load.wrong)} wrong")
    assert load.requests_made > 50 and len(load.downloads) == 3
    assert load.wrong == [], f"{len(load.wrong)} wrong answers of {load.requests_made}: {load.wrong[:5]}"
