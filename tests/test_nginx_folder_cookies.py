"""Folder cookies against the real nginx (shipped config) and the Python verifier.

A cookie ``secure_link_folder`` opens every file below its folder. Every case goes through
both nginx and the verifier, which must agree with each other and with the expected status.
Keys k1/k2 are MD5 keys, h1/h2 HMAC-SHA256 keys (tests/conftest.py). Forged cookies are
signed with the real secret, so nginx refuses them for their shape, not their token.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from signing import UnsafePath
from signing.algorithms import hmac_token, md5_token
from signing.nginx.folder_cookie import COOKIE_NAME, FOLDER_KIND
from signing.nginx.signed_string import signed_string
from tests.client import fetch
from tests.conftest import NginxSite
from tests.parity import past, python_status
from tests.test_nginx_hmac_and_directories import VIDEO_FILES

pytestmark = pytest.mark.nginx

FOLDER = "/media/videos/42/"
# test_nginx_hmac_and_directories.py writes its files under the same names into the same shared site,
# rewriting them in place: the same bytes, or nginx (which keeps a file and its size for a second,
# open_files.conf) could send one at the other's length.
FILES = {**VIDEO_FILES, "a\nb": b"newline", "x": b"plain x"}


@pytest.fixture(scope="module")
def site(nginx: NginxSite) -> NginxSite:
    for folder in ("videos/42", "videos/4", "videos/42x"):
        for relative, content in FILES.items():
            path = nginx.media_root / folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    return nginx


@dataclass(frozen=True)
class CookieCase:
    """A request target and its Cookie header, built from the site; the status both sides must give."""

    build: Callable[[Any], tuple[str, str]]
    expected: int
    source_address: str = "127.0.0.1"


def cookie_of(site: NginxSite, kid: str = "k1", folder: str = FOLDER, **options: Any) -> str:
    """``secure_link_folder=VALUE`` for a freshly signed folder cookie."""
    grant = site.signer(kid).sign_folder_cookie(folder, ttl=300, **options)
    return f"{COOKIE_NAME}={grant.cookies[COOKIE_NAME]}"


def forged(site: NginxSite, folder: str, kid: str = "k1") -> str:
    """A cookie for a folder the signer refuses, with a correct MD5 token over it."""
    expires = b"%d" % (int(site.signer(kid).get_timestamp()) + 300)
    secret = site.key_set[kid].secret.encode()
    token = md5_token(signed_string(expires, kid.encode(), b"", FOLDER_KIND, b"", folder.encode()) + b"|" + secret)
    return f"{COOKIE_NAME}={folder}:{kid}:{expires.decode()}:{token}"


def edited(cookie: str, old: str, new: str) -> str:
    assert old in cookie
    return cookie.replace(old, new, 1)


def edit_token(cookie: str) -> str:
    head, _, token = cookie.rpartition(":")
    return f"{head}:{token[:5]}{'B' if token[5] != 'B' else 'C'}{token[6:]}"


def edit_expiry(cookie: str) -> str:
    return re.sub(r":[a-z0-9_-]+:([0-9]+):", lambda m: m.group(0).replace(m.group(1), str(int(m.group(1)) + 1)), cookie,
                  count=1)


def old_cookie(site: NginxSite, kid: str = "k1") -> str:
    """A cookie as signers minted them before grants had ids: no id, no start time."""
    expires = b"%d" % (int(site.signer(kid).get_timestamp()) + 300)
    secret = site.key_set[kid].secret.encode()
    signed = signed_string(expires, kid.encode(), b"", FOLDER_KIND, b"", FOLDER.encode())
    token = md5_token(signed + b"|" + secret) if kid.startswith("k") else hmac_token(secret, signed)
    return f"{COOKIE_NAME}={FOLDER}:{kid}:{expires.decode()}:{token}"


def grant_id(cookie: str) -> str:
    return re.search(r":id=([A-Za-z0-9_-]+):", cookie).group(1)


CASES: dict[str, CookieCase] = {}
for _algorithm, _kid in (("md5", "k1"), ("hmac", "h1")):
    CASES.update({f"{_algorithm}: {name}": case for name, case in {
        "a file in the folder": CookieCase(lambda s, k=_kid: (FOLDER + "index.m3u8", cookie_of(s, k)), 200),
        "a file in a subfolder": CookieCase(lambda s, k=_kid: (FOLDER + "720p/seg001.ts", cookie_of(s, k)), 200),
        "a name with a space": CookieCase(lambda s, k=_kid: (FOLDER + "720p/seg%202.ts", cookie_of(s, k)), 200),
        "no cookie": CookieCase(lambda s, k=_kid: (FOLDER + "index.m3u8", ""), 403),
        "another folder": CookieCase(lambda s, k=_kid: ("/media/videos/4/index.m3u8", cookie_of(s, k)), 403),
        "a folder whose name starts like it": CookieCase(
            lambda s, k=_kid: ("/media/videos/42x/index.m3u8", cookie_of(s, k)), 403),
        "the parent folder": CookieCase(lambda s, k=_kid: ("/media/videos/index.m3u8", cookie_of(s, k)), 403),
        "out with ..": CookieCase(lambda s, k=_kid: (FOLDER + "../4/index.m3u8", cookie_of(s, k)), 403),
        "out with %2e%2e": CookieCase(lambda s, k=_kid: (FOLDER + "%2e%2e/%2E%2E/videos/4/index.m3u8", cookie_of(s, k)), 403),
        "out with %2F": CookieCase(lambda s, k=_kid: (FOLDER + "..%2F4%2Findex.m3u8", cookie_of(s, k)), 403),
        "a newline in a file's name": CookieCase(lambda s, k=_kid: (FOLDER + "a%0Ab", cookie_of(s, k)), 200),
        "dot and double slashes inside": CookieCase(lambda s, k=_kid: (FOLDER + ".//720p/./seg001.ts", cookie_of(s, k)), 200),
        "the folder edited": CookieCase(
            lambda s, k=_kid: ("/media/videos/4/index.m3u8", edited(cookie_of(s, k), "/videos/42/", "/videos/4/")), 403),
        "the folder widened": CookieCase(
            lambda s, k=_kid: ("/media/videos/4/index.m3u8", edited(cookie_of(s, k), "/videos/42/", "/videos/")), 403),
        "the token edited": CookieCase(lambda s, k=_kid: (FOLDER + "index.m3u8", edit_token(cookie_of(s, k))), 403),
        "the expiry edited": CookieCase(lambda s, k=_kid: (FOLDER + "index.m3u8", edit_expiry(cookie_of(s, k))), 403),
        "expired": CookieCase(lambda s, k=_kid: (FOLDER + "index.m3u8", f"{COOKIE_NAME}=" + past(s.signer(k))
                                                 .sign_folder_cookie(FOLDER, ttl=60).cookies[COOKIE_NAME]), 410),
        "bound, from the right address": CookieCase(
            lambda s, k=_kid: (FOLDER + "index.m3u8", cookie_of(s, k, client_ip="127.0.0.2")), 200, "127.0.0.2"),
        "bound, from a wrong address": CookieCase(
            lambda s, k=_kid: (FOLDER + "index.m3u8", cookie_of(s, k, client_ip="127.0.0.2")), 403),
        "binding flag removed": CookieCase(
            lambda s, k=_kid: (FOLDER + "index.m3u8", edited(cookie_of(s, k, client_ip="127.0.0.1"), ":ip:", ":")), 403),
        "key id swapped to another key": CookieCase(
            lambda s, k=_kid: (FOLDER + "index.m3u8", edited(cookie_of(s, k), f":{k}:", ":h2:" if k == "k1" else ":k2:")), 403),
        "a directory link's token as the cookie's": CookieCase(
            lambda s, k=_kid: (FOLDER + "index.m3u8", directory_token_as_cookie(s, k)), 403),
        "the cookie's token as a directory link's": CookieCase(
            lambda s, k=_kid: (cookie_token_as_directory_link(s, k), ""), 403),
        "the cookie name in upper case": CookieCase(
            lambda s, k=_kid: (FOLDER + "index.m3u8", cookie_of(s, k).replace(COOKIE_NAME, COOKIE_NAME.upper())), 200),
        "among other cookies": CookieCase(
            lambda s, k=_kid: (FOLDER + "index.m3u8", f"a=1; {cookie_of(s, k)}; b=2"), 200),
        "a space after the header's value": CookieCase(
            lambda s, k=_kid: (FOLDER + "index.m3u8", cookie_of(s, k) + " "), 200),
        "a bad one before the good one": CookieCase(
            lambda s, k=_kid: (FOLDER + "index.m3u8", f"{edit_token(cookie_of(s, k))}; {cookie_of(s, k)}"), 403),
        "a cookie whose name ends like it": CookieCase(
            lambda s, k=_kid: (FOLDER + "index.m3u8", "x" + cookie_of(s, k)), 403),
        "quoted": CookieCase(
            lambda s, k=_kid: (FOLDER + "index.m3u8", cookie_of(s, k).replace("=", '="', 1) + '"'), 403),
        "minted before grants had ids": CookieCase(lambda s, k=_kid: (FOLDER + "index.m3u8", old_cookie(s, k)), 200),
        "its start time passed": CookieCase(
            lambda s, k=_kid: (FOLDER + "index.m3u8", cookie_of(s, k, not_before=1_700_000_000)), 200),
        "its start time to come": CookieCase(
            lambda s, k=_kid: (FOLDER + "index.m3u8", cookie_of(s, k, not_before=int(s.signer(k).get_timestamp()) + 200)),
            403),
        "the start time removed": CookieCase(lambda s, k=_kid: (FOLDER + "index.m3u8", re.sub(
            r":nb=[0-9]+:", ":", cookie_of(s, k, not_before=int(s.signer(k).get_timestamp()) + 200))), 403),
        "the start time moved earlier": CookieCase(lambda s, k=_kid: (FOLDER + "index.m3u8", re.sub(
            r":nb=[0-9]+:", ":nb=1700000000:", cookie_of(s, k, not_before=int(s.signer(k).get_timestamp()) + 200))), 403),
        "the id removed": CookieCase(lambda s, k=_kid: (FOLDER + "index.m3u8", re.sub(r":id=[A-Za-z0-9_-]+:", ":",
                                                                                         cookie_of(s, k))), 403),
        "the id swapped for another grant's": CookieCase(lambda s, k=_kid: (FOLDER + "index.m3u8", swapped_id(s, k)), 403),
    }.items()})


def swapped_id(site: NginxSite, kid: str) -> str:
    mine, other = cookie_of(site, kid), cookie_of(site, kid)
    return mine.replace(grant_id(mine), grant_id(other))

CASES.update({
    # The grant is the cookie's alone: a query link decides when it names an MD5 key (or HMAC).
    "a valid query link with a bad cookie": CookieCase(
        lambda s: (s.signer("k1").sign(FOLDER + "index.m3u8", ttl=300).url, edit_token(cookie_of(s))), 200),
    "a bad query link for an MD5 key with a good cookie": CookieCase(
        lambda s: (edit_token_arg(s.signer("k1").sign(FOLDER + "index.m3u8", ttl=300).url), cookie_of(s)), 403),
    "a bad HMAC query link with a good cookie": CookieCase(
        lambda s: (edit_token_arg(s.signer("h1").sign(FOLDER + "index.m3u8", ttl=300).url), cookie_of(s)), 403),
    "a query naming an unknown key with a good cookie": CookieCase(
        lambda s: (FOLDER + "index.m3u8?kid=zz&md5=x&expires=1", cookie_of(s)), 200),
    "a query naming an HMAC key without hmac= and a good cookie": CookieCase(
        lambda s: (FOLDER + "index.m3u8?kid=h1", cookie_of(s)), 200),
    # Folders the signer refuses, forged with a correct token: refused for their shape.
    "forged: a folder holding |": CookieCase(lambda s: ("/media/videos/42/index.m3u8", forged(s, "/media/videos|/")), 403),
    "forged: a folder holding | before the path": CookieCase(
        lambda s: ("/media/videos/42/index.m3u8", forged(s, "/media/x|/media/")), 403),
    "forged: a folder with ..": CookieCase(lambda s: ("/media/videos/42/index.m3u8", forged(s, "/media/x/../")), 403),
    "forged: a folder with an encoded slash": CookieCase(
        lambda s: ("/media/videos/42/index.m3u8", forged(s, "/media/videos%2F42/")), 403),
    "forged: a folder without its last slash": CookieCase(
        lambda s: ("/media/videos/42x/index.m3u8", forged(s, "/media/videos/42")), 403),
    "forged: a folder outside the media prefix": CookieCase(lambda s: ("/media/videos/42/index.m3u8", forged(s, "/")), 403),
    "forged, yet well formed: the media prefix": CookieCase(
        lambda s: ("/media/videos/42/index.m3u8", forged(s, "/media/")), 200),
})


def directory_token_as_cookie(site: NginxSite, kid: str) -> str:
    url = site.signer(kid).sign_directory(FOLDER, ttl=300).url
    fields = url.split("/-/")[1].rstrip("/").split(",")  # KID, EXPIRES, id=ID, TOKEN
    return f"{COOKIE_NAME}={FOLDER}:{':'.join(fields)}"


def cookie_token_as_directory_link(site: NginxSite, kid: str) -> str:
    value = site.signer(kid).sign_folder_cookie(FOLDER, ttl=300).cookies[COOKIE_NAME]
    fields = value[len(FOLDER):].split(":")  # KID, EXPIRES, id=ID, TOKEN
    return f"{FOLDER}-/{','.join(fields)}/index.m3u8"


def edit_token_arg(url: str) -> str:
    argument = "md5=" if "md5=" in url else "hmac="
    token = url.split(argument)[1].split("&")[0]
    return url.replace(token, token[:5] + ("B" if token[5] != "B" else "C") + token[6:])


def nginx_status(site: NginxSite, target: str, cookie: str, source: str) -> int:
    return fetch(site.base_url, target, headers={"Cookie": cookie} if cookie else {}, source_address=source).status


@pytest.mark.parametrize("case_name", list(CASES))
def test_folder_cookie_parity(site, case_name):
    case = CASES[case_name]
    target, cookie = case.build(site)
    answers = (nginx_status(site, target, cookie, case.source_address),
               python_status(site.key_set, target, case.source_address, cookie))
    assert answers == (case.expected, case.expected), (target, cookie)


def test_a_folder_cookie_serves_the_files_bytes_privately(site):
    answer = fetch(site.base_url, FOLDER + "720p/seg001.ts", headers={"Cookie": cookie_of(site, "h1")})
    assert (answer.status, answer.body) == (200, b"segment one")
    assert answer.headers["Cache-Control"] == "private, max-age=0, must-revalidate"


@pytest.mark.parametrize("name, expected", [("a%0Ab", (200, b"newline")), ("x%0A", (404, b"")), ("x", (200, b"plain x"))])
def test_a_newline_in_a_path_serves_that_file_from_the_media_root_and_no_other(site, name, expected):
    # "." and "$" of a regex do not match a newline: a rewrite that missed it once fell through
    # to the server's default root, and "$" matched "x" for "x\n".
    answer = fetch(site.base_url, FOLDER + name, headers={"Cookie": cookie_of(site)})
    assert (answer.status, answer.body if answer.status == 200 else b"") == expected


def test_a_direct_request_to_the_folder_check_is_a_404(site):
    target = "/_secure_link/folder/media/videos/42/index.m3u8"
    assert fetch(site.base_url, target, headers={"Cookie": cookie_of(site)}).status == 404


@pytest.mark.parametrize("folder", ["/media/videos/a b/", "/media/vidéos/", "/media/x|y/", "/media/x/../",
                                    "/media/x/./", "/media/x//", "/media/a:b/", "/media/a%2Fb/", "/media/x", "/other/"])
def test_the_signer_refuses_a_folder_a_cookie_cannot_grant_exactly(site, folder):
    with pytest.raises(UnsafePath):
        site.signer("k1").sign_folder_cookie(folder, ttl=300)


def test_seeded_fuzz_nginx_and_the_verifier_agree_on_mutated_cookies(site):
    chooser = random.Random(20261202)
    seeds = [(FOLDER + "index.m3u8", cookie_of(site, kid, **options), source)
             for kid in ("k1", "h1") for options, source in (({}, "127.0.0.1"), ({"client_ip": "127.0.0.2"}, "127.0.0.2"))]
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:/.|%;=, "
    answers = []
    for _ in range(300):
        target, cookie, source = chooser.choice(seeds)
        position = chooser.randrange(len(cookie))
        mutated = cookie[:position] + chooser.choice(alphabet) + cookie[position + 1:] if chooser.random() < 0.9 else cookie
        answers.append((target, mutated, nginx_status(site, target, mutated, source),
                        python_status(site.key_set, target, source, mutated)))
    disagreements = [answer for answer in answers if answer[2] != answer[3]]
    assert disagreements == [], disagreements[:5]
    assert {200, 403} <= {answer[2] for answer in answers}
