"""Links bound to a network (``client_ip="ADDRESS/LENGTH"``, ``ip=24``), against the real nginx
(shipped config, ``secure_link/lua/network.lua``) and the Python verifier.

Every kind of grant (file link, directory link, folder cookie) in both algorithms is asked from
several loopback addresses (127.0.0.2 and 127.0.0.3 in 127.0.0.0/24, 127.0.1.2 outside it), and
through realip for IPv6 and IPv4-mapped clients: this nginx believes ``X-Real-IP`` from
127.0.0.1, as an origin believes its edges. Both sides must give the expected status.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from harness.nginx import NginxServer, start_nginx
from signing import HMAC_SHA256, Key, KeySet, SecureLinkSigner, generate_secret
from signing.addresses import canonical_client_address
from signing.nginx.folder_cookie import COOKIE_NAME
from tests.client import fetch
from tests.parity import python_status

pytestmark = pytest.mark.nginx

KEYS = KeySet((Key("k1", generate_secret()), Key("h1", generate_secret(), HMAC_SHA256)), "k1")
FILE = "/media/videos/42/seg.ts"
FOLDER = "/media/videos/42/"
TRUSTED = "127.0.0.1"  # X-Real-IP is believed from it (realip), as an origin believes its edges


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    base = tmp_path_factory.mktemp("network")
    media = base / "media"
    (media / "videos" / "42").mkdir(parents=True)
    (media / "videos" / "42" / "seg.ts").write_bytes(b"segment\n")
    running = start_nginx(base / "nginx", media_root=media, key_set=KEYS, edges=(TRUSTED,))
    try:
        yield running
    finally:
        running.stop()


@dataclass(frozen=True)
class Client:
    """Where a request comes from: a loopback source address, or an address realip takes from X-Real-IP."""

    source: str
    real_ip: str | None = None

    @property
    def remote_addr(self) -> str:
        return canonical_client_address(self.real_ip) if self.real_ip else self.source


def client(address: str) -> Client:
    return Client(address) if address.startswith("127.") else Client(TRUSTED, address)


def request(kind: str, kid: str, binding: str) -> tuple[str, str]:
    """(target, Cookie header) of a grant of ``kind`` bound to ``binding`` (ADDRESS or ADDRESS/LENGTH)."""
    signer = SecureLinkSigner(KEYS.with_active(kid))
    if kind == "file":
        return signer.sign(FILE, ttl=300, client_ip=binding).url, ""
    if kind == "directory":
        return signer.sign_directory(FOLDER, ttl=300, client_ip=binding).url_for("seg.ts"), ""
    grant = signer.sign_folder_cookie(FOLDER, ttl=300, client_ip=binding)
    return FILE, f"{COOKIE_NAME}={grant.cookies[COOKIE_NAME]}"


def both(server: NginxServer, target: str, cookie: str, asker: Client) -> tuple[int, int]:
    headers = {"Cookie": cookie} if cookie else {}
    if asker.real_ip:
        headers["X-Real-IP"] = asker.real_ip
    answer = fetch(server.base_url, target, headers=headers, source_address=asker.source).status
    return answer, python_status(KEYS, target, asker.remote_addr, cookie)


# (bound to, asked from, status): the minting client's network against where the link is used.
CASES = [
    ("127.0.0.9/24", "127.0.0.2", 200),
    ("127.0.0.9/24", "127.0.0.3", 200),
    ("127.0.0.9/24", "127.0.1.2", 403),
    ("127.0.0.9/16", "127.0.1.2", 200),
    ("127.0.0.9/8", "127.0.1.2", 200),
    ("127.0.0.2/32", "127.0.0.2", 200),
    ("127.0.0.2/32", "127.0.0.3", 403),
    ("127.0.0.2", "127.0.0.3", 403),  # bound to the address alone, as before
    ("2001:db8:1:2::9/64", "2001:db8:1:2:ffff::1", 200),
    ("2001:db8:1:2::9/64", "2001:DB8:1:2:0:0:0:5", 200),  # another textual form of an address in it
    ("2001:db8:1:2::9/64", "2001:db8:1:3::1", 403),
    ("2001:db8:1:2::9/48", "2001:db8:1:3::1", 200),
    ("2001:db8::9/128", "2001:db8::9", 200),
    ("2001:db8::9/128", "2001:db8::a", 403),
    ("203.0.113.9/24", "::ffff:203.0.113.7", 200),  # an IPv4-mapped client counts as IPv4
    ("::ffff:203.0.113.9/24", "203.0.113.7", 200),
    ("203.0.113.9/24", "203.0.114.7", 403),
    ("203.0.113.9/24", "2001:db8::1", 403),  # an IPv4 network never opens for an IPv6 client
    ("2001:db8::9/64", "203.0.113.7", 403),
]


@pytest.mark.parametrize("kid", ["k1", "h1"])
@pytest.mark.parametrize("kind", ["file", "directory", "cookie"])
@pytest.mark.parametrize("bound, asked_from, expected", CASES)
def test_a_network_bound_grant_opens_for_its_network_alone(server, kind, kid, bound, asked_from, expected):
    target, cookie = request(kind, kid, bound)
    assert both(server, target, cookie, client(asked_from)) == (expected, expected), (target, cookie)


TAMPERED: dict[str, Callable[[str], str]] = {
    "a wider prefix": lambda text: text.replace("ip=24", "ip=16").replace("ip24", "ip16"),
    "the address alone instead": lambda text: text.replace("ip=24", "ip=1").replace("ip24", "ip"),
    "no binding": lambda text: text.replace("&ip=24", "").replace(",ip24,", ",").replace(":ip24:", ":"),
    "a length with a leading zero": lambda text: text.replace("ip=24", "ip=024").replace("ip24", "ip024"),
}


@pytest.mark.parametrize("kid", ["k1", "h1"])
@pytest.mark.parametrize("kind", ["file", "directory", "cookie"])
@pytest.mark.parametrize("tamper", list(TAMPERED))
def test_a_tampered_prefix_is_refused(server, kind, kid, tamper):
    target, cookie = request(kind, kid, "127.0.0.9/24")
    edit = TAMPERED[tamper]
    target, cookie = (target, edit(cookie)) if cookie else (edit(target), cookie)
    assert both(server, target, cookie, client("127.0.0.2")) == (403, 403), (target, cookie)


def test_seeded_fuzz_nginx_and_the_verifier_agree_on_mutated_network_bound_links(server):
    chooser = random.Random(20261206)
    askers = [client(address) for address in ("127.0.0.2", "127.0.1.2", "2001:db8:1:2::7", "::ffff:127.0.0.5")]
    checked = 0
    for kind in ("file", "directory", "cookie"):
        for kid in ("k1", "h1"):
            for bound in ("127.0.0.9/24", "2001:db8:1:2::9/64", "127.0.0.9/9"):
                target, cookie = request(kind, kid, bound)
                for _ in range(12):
                    text = cookie or target
                    if cookie:
                        start, end = len(COOKIE_NAME) + 1 + len(FOLDER), len(text)
                    elif "/-/" in text:
                        start = text.index("/-/") + 3
                        end = text.index("/", start)
                    else:
                        start, end = text.index("?") + 1, len(text)
                    at = chooser.randrange(start, end)  # the grant's fields, not the file it opens
                    mutated = text[:at] + chooser.choice("0123456789ip,:/=&") + text[at + 1:]
                    mutated_target, mutated_cookie = (target, mutated) if cookie else (mutated, cookie)
                    if "\n" in mutated or " " in mutated_target:
                        continue
                    asker = chooser.choice(askers)
                    nginx_says, python_says = both(server, mutated_target, mutated_cookie, asker)
                    assert nginx_says == python_says, (mutated_target, mutated_cookie, asker)
                    checked += 1
    assert checked > 150
