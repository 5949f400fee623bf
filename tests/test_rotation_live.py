"""Key rotation and "revoke every link" against real gunicorn (``--preload``) and real nginx.

The README's procedures are run with the real commands (``manage.py rotate_key``, nginx
reloads) while background threads keep downloading through nginx and minting links through
the API. No app server is reloaded or signalled: the workers must follow the keys file by
themselves. Every answer is checked; the number of wrong answers must be 0.
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

from harness.nginx import REPO_ROOT
from harness.stack import Stack, django_environment, manage, prepare, seed, start_stack
from tests.client import fetch

pytestmark = pytest.mark.nginx

MAX_TTL = 6  # seconds: the normal retirement waits this out for real
PICKUP_BOUND = 2.0  # SECURE_LINK_KEYS_CHECK_INTERVAL (1 s) + 1 s, as the README states
LOAD_DEADLINE = 90.0  # the load stops by itself whatever happens to the test


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var_dir = tmp_path_factory.mktemp("var")
    prepare(var_dir)
    env = django_environment(var_dir, SECURE_LINK_MAX_TTL=str(MAX_TTL), SECURE_LINK_DEFAULT_TTL=str(MAX_TTL),
                             SECURE_LINK_SHARE_TTL=str(MAX_TTL))
    running = start_stack(var_dir, env=env)  # gunicorn --preload, 2 workers, as the demo runs it
    try:
        yield running
    finally:
        running.stop()


@dataclass
class Link:
    url: str
    kid: str  # the key that signed it (share tokens do not show theirs)
    expires: float
    size: int


@dataclass
class Load:
    """Downloads of known-good links and fresh links minted by the API, until stopped."""

    stack: Stack
    token: str
    image_id: int
    size: int
    good_links: list[Link] = field(default_factory=list)
    signing_kid: str | None = "k1"  # links minted now must carry this key id (None: in transition)
    requests_made: int = 0
    wrong: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def api(self, action: str) -> dict:
        response = requests.post(f"{self.stack.base_url}/api/images/{self.image_id}/{action}/", json={},
                                 headers={"Authorization": f"Token {self.token}", "Connection": "close"}, timeout=10)
        if response.status_code != 201:
            raise AssertionError(f"POST {action}: {response.status_code} {response.text[:200]}")
        return response.json()

    def expect_download(self, what: str, url: str, expires: float) -> None:
        now = time.time()
        if abs(now - expires) < 1.5:
            return  # nginx's clock second and ours may straddle the expiry: no fixed answer
        expected = 200 if now < expires else 410
        parts = urlsplit(url)
        answer = fetch(self.stack.base_url, f"{parts.path}?{parts.query}")
        if answer.status != expected or (expected == 200 and len(answer.body) != self.size):
            self.record(f"{what} {url}: {answer.status} ({len(answer.body)} bytes), expected {expected}")

    def record(self, wrong: str) -> None:
        with self.lock:
            self.wrong.append(wrong)

    def run(self, seed_value: int) -> None:
        chooser = random.Random(seed_value)
        deadline = time.monotonic() + LOAD_DEADLINE
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                with self.lock:
                    link = chooser.choice(self.good_links) if self.good_links else None
                if link is None or chooser.random() < 0.25:
                    expected_kid = self.signing_kid
                    minted = self.api(chooser.choice(["links", "share"]))
                    if expected_kid and minted.get("kid", expected_kid) != expected_kid:
                        self.record(f"minted with {minted['kid']} after {expected_kid} took over")
                    self.expect_download("fresh link", minted["url"], time.time() + MAX_TTL)
                else:
                    self.expect_download("known link", link.url, link.expires)
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


def rotate(stack: Stack, *args: str) -> str:
    nginx_keys = stack.nginx.run_dir / "secure_link_keys.conf"
    return manage(stack.env, "rotate_key", *args, "--nginx-keys", str(nginx_keys))


def wait_for_signing_kid(load: Load, kid: str) -> float:
    """Mint through the API until links carry ``kid``; return how long that took."""
    started = time.monotonic()
    while time.monotonic() - started < PICKUP_BOUND + 1:
        if load.api("links")["kid"] == kid:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"the app servers still sign with another key {PICKUP_BOUND + 1} s after activating {kid}")


def status_of(stack: Stack, url: str) -> int:
    parts = urlsplit(url)
    return fetch(stack.base_url, f"{parts.path}?{parts.query}").status


def test_rotation_and_revocation_reach_running_app_servers_under_load(stack):
    demo = seed(stack.env)
    image = demo["images"][0]
    size = len(requests.get(f"{stack.base_url}/download/image/{image['id']}",
                            headers={"Authorization": f"Token {demo['token']}"}, timeout=10).content)
    load = Load(stack, demo["token"], image["id"], size)
    old_link, old_share = load.api("links"), load.api("share")
    assert old_link["kid"] == "k1"
    load.add("k1", old_link["url"], old_share["url"])
    threads = [threading.Thread(target=load.run, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    try:
        # The README's rotation: add, reload nginx, activate, (links expire), retire, reload nginx.
        rotate(stack, "add", "k2")
        stack.nginx.reload()
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
        time.sleep(max(0.0, active_since + MAX_TTL + 1.2 - time.time()))
        load.forget("k1")  # every k1 link has expired by now
        rotate(stack, "retire", "k1")
        stack.nginx.reload()
        assert status_of(stack, old_link["url"]) == 403  # retired key: 403, no longer 410

        # Revoke everything: add, reload nginx, activate, retire --force, reload nginx.
        live_k2 = [load.api("links")["url"], load.api("share")["url"]]
        load.add("k2", *live_k2)
        rotate(stack, "add", "k3")
        stack.nginx.reload()
        load.signing_kid = None
        rotate(stack, "activate", "k3")
        revoked = load.forget("k2")
        rotate(stack, "retire", "k2", "--force")  # waits out what is left of the pick-up bound
        load.signing_kid = "k3"
        stack.nginx.reload()
        assert load.api("links")["kid"] == "k3"
        deadline = time.monotonic() + PICKUP_BOUND
        answers = {url: status_of(stack, url) for url in revoked}
        while any(status != 403 for status in answers.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
            answers = {url: status_of(stack, url) for url in revoked}
        assert sorted(answers.values()) == [403] * len(revoked), answers
        assert any("token=" in url for url in revoked) and any("md5=" in url for url in revoked)
        load.add("k3", load.api("links")["url"], load.api("share")["url"])
        time.sleep(1)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert load.requests_made > 50
    assert load.wrong == [], f"{len(load.wrong)} wrong answers of {load.requests_made}: {load.wrong[:5]}"
