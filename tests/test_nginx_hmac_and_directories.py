"""HMAC-SHA256 links (Lua) and directory links, against the real nginx and the Python verifier.

Keys k1/k2 are MD5 keys, h1/h2 HMAC-SHA256 keys (tests/conftest.py). Every case goes
through both nginx and the verifier, which must agree with each other and with the expected
status; a seeded fuzz then mutates valid links of every kind and compares the two on each.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from signing import MalformedRequest, SecureLinkSigner, SecureLinkVerifier, SignedLink, nginx_uri
from signing.algorithms import hmac_token, md5_token
from signing.nginx.signed_string import DIRECTORY_KIND, signed_string
from tests.client import fetch
from tests.conftest import NginxSite
from tests.parity import Case, link_field_cases, past, python_status

pytestmark = pytest.mark.nginx

BLOB = "/media/files/blob.bin"
VIDEO_FILES = {"index.m3u8": b"#EXTM3U\n720p/seg001.ts\n", "720p/seg001.ts": b"segment one", "720p/seg 2.ts": b"two"}


@pytest.fixture(scope="module")
def site(nginx: NginxSite) -> NginxSite:
    for relative, content in VIDEO_FILES.items():
        for folder in ("videos/42", "videos/4"):
            path = nginx.media_root / folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    return nginx


def replace_token(url: str, argument: str) -> str:
    token = url.split(f"{argument}=")[1].split("&")[0]
    return url.replace(token, token[:5] + ("B" if token[5] != "B" else "C") + token[6:])


def shifted_expiry(signer: SecureLinkSigner) -> str:
    """A token that is right for the signed string nginx would build if `expires` could hold a "|"."""
    from signing.algorithms import hmac_token

    expires = signer.get_timestamp() + 300
    key = signer.key_set.active
    token = hmac_token(key.secret.encode(), f"{expires}|x|{key.kid}||||{BLOB}".encode())
    return f"{BLOB}?hmac={token}&expires={expires}|x&kid={key.kid}"


def non_canonical(url: str) -> str:
    """The link with its token's last character changed in the 2 bits that 32 bytes leave unused."""
    token = url.split("hmac=")[1].split("&")[0]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return url.replace(token, token[:-1] + alphabet[alphabet.index(token[-1]) | 1])


def hmac_signer(site: NginxSite) -> SecureLinkSigner:
    return site.signer("h1")


def md5_signer(site: NginxSite) -> SecureLinkSigner:
    return site.signer("k1")


HMAC_CASES = {
    "valid": Case(lambda s: hmac_signer(s).sign(BLOB, ttl=300).url, 200),
    **link_field_cases(lambda s: hmac_signer(s), BLOB),
    "expired": Case(lambda s: past(hmac_signer(s)).sign(BLOB, ttl=60).url, 410),
    "expiry edited": Case(lambda s: hmac_signer(s).sign(BLOB, ttl=300).url.replace("&expires=", "&expires=1"), 403),
    "expiry holding a '|' that moves the signed fields": Case(lambda s: shifted_expiry(hmac_signer(s)), 403),
    "expiry of 16 digits": Case(lambda s: hmac_signer(s).sign(BLOB, ttl=300).url.replace("&expires=", "&expires=000000"), 403),
    "path edited": Case(lambda s: hmac_signer(s).sign(BLOB, ttl=300).url.replace("blob.bin", "other.bin"), 403),
    "token edited": Case(lambda s: replace_token(hmac_signer(s).sign(BLOB, ttl=300).url, "hmac"), 403),
    "token's last character not canonical": Case(lambda s: non_canonical(hmac_signer(s).sign(BLOB, ttl=300).url), 403),
    "a key longer than SHA-256's block": Case(lambda s: s.signer("h3").sign(BLOB, ttl=300).url, 200),
    "a key longer than SHA-256's block, token edited": Case(
        lambda s: replace_token(s.signer("h3").sign(BLOB, ttl=300).url, "hmac"), 403),
    "token padded": Case(lambda s: hmac_signer(s).sign(BLOB, ttl=300).url.replace("&expires", "=&expires"), 403),
    "token truncated": Case(lambda s: re.sub(r"(hmac=[^&]+)[^&]&", r"\1&", hmac_signer(s).sign(BLOB, ttl=300).url), 403),
    "an MD5 token under an HMAC key's id": Case(
        lambda s: md5_signer(s).sign(BLOB, ttl=300).url.replace("kid=k1", "kid=h1"), 403),
    "an HMAC token under an MD5 key's id": Case(
        lambda s: hmac_signer(s).sign(BLOB, ttl=300).url.replace("kid=h1", "kid=k1"), 403),
    "an HMAC token passed as md5": Case(lambda s: hmac_signer(s).sign(BLOB, ttl=300).url.replace("hmac=", "md5="), 403),
    "an MD5 token passed as hmac": Case(lambda s: md5_signer(s).sign(BLOB, ttl=300).url.replace("md5=", "hmac="), 403),
    "another HMAC key's id": Case(lambda s: hmac_signer(s).sign(BLOB, ttl=300).url.replace("kid=h1", "kid=h2"), 403),
    "key id in upper case": Case(lambda s: hmac_signer(s).sign(BLOB, ttl=300).url.replace("kid=h1", "kid=H1"), 403),
    "argument names in upper case": Case(
        lambda s: hmac_signer(s).sign(BLOB, ttl=300).url.replace("hmac=", "HMAC=").replace("kid=", "KID="), 200),
    "bound, from the right address": Case(lambda s: hmac_signer(s).sign(BLOB, ttl=300, client_ip="127.0.0.1").url, 200),
    "bound, from a wrong address": Case(
        lambda s: hmac_signer(s).sign(BLOB, ttl=300, client_ip="127.0.0.1").url, 403, "127.0.0.2"),
    "filename edited": Case(
        lambda s: hmac_signer(s).sign(BLOB, ttl=300, filename="a.bin").url.replace("filename=a.bin", "filename=b.bin"), 403),
    "disposition switched": Case(
        lambda s: hmac_signer(s).sign(BLOB, ttl=300, filename="a.bin").url.replace("=attachment", "=inline"), 403),
    "non-UTF-8 path byte": Case(lambda s: hmac_signer(s).sign(BLOB, ttl=300).url.replace("blob", "bl%FFob"), 403),
}

VIDEOS = "/media/videos/42/"
DIRECTORY_CASES = {
    f"{algorithm}: {name}": Case(build, expected, source)
    for algorithm, kid in (("md5", "k1"), ("hmac", "h1"))
    for name, (build, expected, source) in {
        "playlist": (lambda s, kid=kid: s.signer(kid).sign_directory(VIDEOS, ttl=300).url_for("index.m3u8"), 200, "127.0.0.1"),
        "segment in a subfolder": (lambda s, kid=kid: s.signer(kid).sign_directory(VIDEOS, ttl=300).url_for("720p/seg001.ts"),
                                   200, "127.0.0.1"),
        "name with a space": (lambda s, kid=kid: s.signer(kid).sign_directory(VIDEOS, ttl=300).url_for("720p/seg 2.ts"),
                              200, "127.0.0.1"),
        "expired": (lambda s, kid=kid: past(s.signer(kid)).sign_directory(VIDEOS, ttl=60).url_for("index.m3u8"),
                    410, "127.0.0.1"),
        "token edited": (lambda s, kid=kid: _edit_directory_token(s.signer(kid).sign_directory(VIDEOS, ttl=300).url_for("index.m3u8")),
                         403, "127.0.0.1"),
        "expiry edited": (lambda s, kid=kid: _edit_directory_expiry(s.signer(kid).sign_directory(VIDEOS, ttl=300).url_for("index.m3u8")),
                          403, "127.0.0.1"),
        "token of /videos/4/ for /videos/42/": (
            lambda s, kid=kid: s.signer(kid).sign_directory("/media/videos/4/", ttl=300).url_for("index.m3u8").replace(
                "/videos/4/", "/videos/42/"), 403, "127.0.0.1"),
        "out of the prefix with ..": (lambda s, kid=kid: s.signer(kid).sign_directory("/media/videos/4/", ttl=300).url_for("x")
                                      .replace("/x", "/../../42/index.m3u8"), 403, "127.0.0.1"),
        "out of the prefix with %2e%2e": (lambda s, kid=kid: s.signer(kid).sign_directory("/media/videos/4/", ttl=300).url_for("x")
                                          .replace("/x", "/%2e%2e/%2E%2E/42/index.m3u8"), 403, "127.0.0.1"),
        "out of the prefix with %2F": (lambda s, kid=kid: s.signer(kid).sign_directory("/media/videos/4/", ttl=300).url_for("x")
                                       .replace("/x", "/..%2F..%2F42%2Findex.m3u8"), 403, "127.0.0.1"),
        "double and dot slashes inside": (lambda s, kid=kid: s.signer(kid).sign_directory(VIDEOS, ttl=300).url_for("x")
                                          .replace("/x", "//720p/./seg001.ts"), 200, "127.0.0.1"),
        "bound, from the right address": (lambda s, kid=kid: s.signer(kid).sign_directory(VIDEOS, ttl=300, client_ip="127.0.0.2")
                                          .url_for("index.m3u8"), 200, "127.0.0.2"),
        "bound, from a wrong address": (lambda s, kid=kid: s.signer(kid).sign_directory(VIDEOS, ttl=300, client_ip="127.0.0.2")
                                        .url_for("index.m3u8"), 403, "127.0.0.1"),
        "binding flag removed": (lambda s, kid=kid: s.signer(kid).sign_directory(VIDEOS, ttl=300, client_ip="127.0.0.1")
                                 .url_for("index.m3u8").replace(",ip,", ","), 403, "127.0.0.1"),
        "as a file token": (lambda s, kid=kid: _directory_token_as_file_link(s.signer(kid).sign_directory(VIDEOS, ttl=300).url, kid),
                            403, "127.0.0.1"),
        "key id swapped to the other algorithm": (
            lambda s, kid=kid: s.signer(kid).sign_directory(VIDEOS, ttl=300).url_for("index.m3u8").replace(
                f"/-/{kid},", "/-/h2," if kid == "k1" else "/-/k2,"), 403, "127.0.0.1"),
        "minted before links had ids": (lambda s, kid=kid: _old_directory_link(s, kid), 200, "127.0.0.1"),
        "its start time passed": (lambda s, kid=kid: s.signer(kid).sign_directory(VIDEOS, ttl=300, not_before=1_700_000_000)
                                  .url_for("index.m3u8"), 200, "127.0.0.1"),
        "its start time to come": (lambda s, kid=kid: _opening_later(s, kid).url_for("index.m3u8"), 403, "127.0.0.1"),
        "the start time removed": (lambda s, kid=kid: re.sub(r",nb=[0-9]+,", ",", _opening_later(s, kid).url_for("x")),
                                   403, "127.0.0.1"),
        "the start time moved earlier": (lambda s, kid=kid: re.sub(r",nb=[0-9]+,", ",nb=1700000000,",
                                                                   _opening_later(s, kid).url_for("index.m3u8")), 403, "127.0.0.1"),
        "the id removed": (lambda s, kid=kid: re.sub(r",id=[A-Za-z0-9_-]+,", ",", s.signer(kid).sign_directory(VIDEOS, ttl=300)
                                                     .url_for("index.m3u8")), 403, "127.0.0.1"),
        "the id swapped for another link's": (lambda s, kid=kid: _swapped_directory_id(s, kid), 403, "127.0.0.1"),
    }.items()
}


def _opening_later(site: NginxSite, kid: str) -> SignedLink:
    signer = site.signer(kid)
    return signer.sign_directory(VIDEOS, ttl=300, not_before=signer.get_timestamp() + 200)


def _swapped_directory_id(site: NginxSite, kid: str) -> str:
    mine, other = (site.signer(kid).sign_directory(VIDEOS, ttl=300) for _ in range(2))
    return mine.url_for("index.m3u8").replace(f",id={mine.link_id},", f",id={other.link_id},")


def _old_directory_link(site: NginxSite, kid: str) -> str:
    """A directory link as signers minted them before links had ids: no id, no start time."""
    expires = b"%d" % (site.signer(kid).get_timestamp() + 300)
    secret = site.key_set[kid].secret.encode()
    signed = signed_string(expires, kid.encode(), b"", DIRECTORY_KIND, b"", VIDEOS.encode())
    token = md5_token(signed + b"|" + secret) if kid.startswith("k") else hmac_token(secret, signed)
    return f"{VIDEOS}-/{kid},{expires.decode()},{token}/index.m3u8"


def _edit_directory_token(url: str) -> str:
    token = url.split("/-/")[1].split("/")[0].split(",")[-1]
    return url.replace(token, token[:5] + ("B" if token[5] != "B" else "C") + token[6:])


def _edit_directory_expiry(url: str) -> str:
    kid, expires = url.split("/-/")[1].split(",")[:2]
    return url.replace(f"/-/{kid},{expires},", f"/-/{kid},{int(expires) + 1},")


def _directory_token_as_file_link(url: str, kid: str) -> str:
    fields = url.split("/-/")[1].rstrip("/").split(",")
    expires, link_id, token = fields[1], fields[2].removeprefix("id="), fields[-1]
    argument = "md5" if kid.startswith("k") else "hmac"
    return f"/media/videos/42/index.m3u8?{argument}={token}&expires={expires}&kid={kid}&id={link_id}"


def check(site: NginxSite, case: Case) -> None:
    target = case.build(site)
    response = fetch(site.base_url, target, source_address=case.source_address)
    assert (response.status, python_status(site.key_set, target, case.source_address)) == (case.expected, case.expected), target


@pytest.mark.parametrize("case_name", list(HMAC_CASES))
def test_hmac_links_parity(site, case_name):
    check(site, HMAC_CASES[case_name])


@pytest.mark.parametrize("case_name", list(DIRECTORY_CASES))
def test_directory_links_parity(site, case_name):
    check(site, DIRECTORY_CASES[case_name])


def test_hmac_link_serves_the_file_with_its_signed_name_range_and_304(site):
    url = hmac_signer(site).sign(BLOB, ttl=300, filename="你好.bin").url
    content = (site.media_root / "files" / "blob.bin").read_bytes()
    full = fetch(site.base_url, url)
    assert (full.status, full.body) == (200, content)
    assert full.headers["Content-Disposition"] == "attachment; filename=\"download.bin\"; filename*=UTF-8''%E4%BD%A0%E5%A5%BD.bin"
    ranged = fetch(site.base_url, url, headers={"Range": "bytes=10-19"})
    assert (ranged.status, ranged.body) == (206, content[10:20])
    assert fetch(site.base_url, url, headers={"If-None-Match": full.headers["ETag"]}).status == 304
    assert fetch(site.base_url, url, method="HEAD").status == 200


def test_a_playlists_relative_urls_keep_the_directory_token(site):
    directory = site.signer("h1").sign_directory(VIDEOS, ttl=300)
    playlist = fetch(site.base_url, directory.url_for("index.m3u8"))
    relative = playlist.body.decode().splitlines()[1]
    segment = fetch(site.base_url, directory.url + relative)  # what a player resolves
    assert (playlist.status, segment.status, segment.body) == (200, 200, b"segment one")
    assert "Content-Disposition" not in segment.headers


MUTATIONS: list[Callable[[str, random.Random], str]] = [
    lambda url, r: url,
    lambda url, r: _flip(url, r),
    lambda url, r: _flip(_flip(url, r), r),
    lambda url, r: url.replace("kid=k1", "kid=" + r.choice(["k2", "h1", "h2", "K1", "zz", ""])),
    lambda url, r: url.replace("kid=h1", "kid=" + r.choice(["h2", "k1", "k2", "H1", ""])),
    lambda url, r: url.replace("/-/k1,", "/-/" + r.choice(["k2", "h1", "h2", "zz"]) + ","),
    lambda url, r: url.replace("/-/h1,", "/-/" + r.choice(["h2", "k1", "k2"]) + ","),
    lambda url, r: url.replace("md5=", "hmac=") if "md5=" in url else url.replace("hmac=", "md5="),
    lambda url, r: url + r.choice(["&ip=1", "&ip=2", "&disposition=inline", "&filename=x", "&hmac=", "&md5=x"]),
    lambda url, r: url.replace("&expires=", "&expires=" + r.choice(["0", "1", "9", ""])),
    lambda url, r: url.replace(",ip,", ",") if ",ip," in url else re.sub(r"(/-/[a-z0-9_-]+,[0-9]+),", r"\1,ip,", url),
    lambda url, r: url.replace("/videos/42/", r.choice(["/videos/4/", "/videos/42/./", "/videos//42/", "/videos/42/../42/"])),
    lambda url, r: url.replace("blob", r.choice(["blob/..", "bl%6Fb", "BLOB", "%62lob", "blob%00"])),
    lambda url, r: url.upper() if r.random() < 0.1 else url.replace("?", "?" + r.choice(["a=1&", "kid=k2&", "md5=&"])),
    lambda url, r: url[: r.randrange(1, len(url))],
]


def _flip(url: str, chooser: random.Random) -> str:
    position = chooser.randrange(len(url))
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_,/=&%.?"
    return url[:position] + chooser.choice(alphabet) + url[position + 1:]


def seeds(site: NginxSite) -> list[tuple[str, str]]:
    """Valid links of every kind and dialect (md5/hmac, file/directory, plain/bound/named), and their source."""
    links = []
    for kid in ("k1", "h1"):
        signer = site.signer(kid)
        links += [
            (signer.sign(BLOB, ttl=300).url, "127.0.0.1"),
            (signer.sign(BLOB, ttl=300, client_ip="127.0.0.1").url, "127.0.0.1"),
            (signer.sign(BLOB, ttl=300, client_ip="127.0.0.9/24").url, "127.0.0.1"),
            (signer.sign_directory(VIDEOS, ttl=300, client_ip="127.0.0.9/16").url_for("index.m3u8"), "127.0.0.1"),
            (signer.sign(BLOB, ttl=300, filename="a b.bin", disposition="inline").url, "127.0.0.1"),
            (past(signer).sign(BLOB, ttl=60).url, "127.0.0.1"),
            (signer.sign_directory(VIDEOS, ttl=300).url_for("720p/seg001.ts"), "127.0.0.1"),
            (signer.sign_directory(VIDEOS, ttl=300, client_ip="127.0.0.2").url_for("index.m3u8"), "127.0.0.2"),
            (past(signer).sign_directory(VIDEOS, ttl=60).url_for("index.m3u8"), "127.0.0.1"),
            (signer.sign_directory(VIDEOS, ttl=300, not_before=1_700_000_000).url_for("index.m3u8"), "127.0.0.1"),
            (_opening_later(site, kid).url_for("720p/seg001.ts"), "127.0.0.1"),
        ]
    return links


def test_seeded_fuzz_nginx_and_the_verifier_agree_on_every_mutated_request(site):
    chooser = random.Random(20261124)
    originals = seeds(site)
    requests = []
    for _ in range(1200):
        url, source = chooser.choice(originals)
        mutated = chooser.choice(MUTATIONS)(url, chooser)
        if not mutated.startswith("/") or " " in mutated or "#" in mutated.split("?")[0]:
            mutated = url  # what an HTTP client cannot send as a request target
        requests.append((mutated, source))
    verifier = SecureLinkVerifier(site.key_set)

    def both(request: tuple[str, str]) -> tuple[str, int, int]:
        target, source = request
        return target, fetch(site.base_url, target, source_address=source).status, predicted(verifier, site, target, source)

    requests = [request for request in requests if is_a_link(request[0])]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(both, requests))
    disagreements = [(target, nginx, python) for target, nginx, python in answers if nginx != python]
    statuses = {nginx for _, nginx, _ in answers}
    assert disagreements == [], f"{len(disagreements)} of {len(answers)} differ: {disagreements[:5]}"
    assert {200, 403, 410} <= statuses  # the mutations reach every outcome, not only refusals
    assert len(answers) >= 1000


def is_a_link(target: str) -> bool:
    """A request nginx checks as a link: under /media/ once normalised, or one it refuses with 400."""
    try:
        return nginx_uri(target.split("?")[0].encode()).startswith(b"/media/")
    except MalformedRequest:
        return True


def predicted(verifier: SecureLinkVerifier, site: NginxSite, target: str, source: str) -> int:
    """The verifier's status, and 404 where a valid link names no file (nginx then looks on disk)."""
    status = python_status(site.key_set, target, source)
    if status != 200:
        return status
    raw_path, _, query = target.encode().partition(b"?")
    uri = verifier.verify(raw_path=raw_path, query=query, remote_addr=source).uri
    return 200 if (site.media_root / uri[len(b"/media/"):].decode("utf-8", "surrogateescape")).is_file() else 404
