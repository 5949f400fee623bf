"""Real nginx, real HTTP: every claim about what nginx accepts or refuses is proven here.

Each parity case goes through both nginx (nginx/secure_link.conf on a loopback port) and
the Python verifier, and both must give the same status.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from signing import KeySet, SecureLinkSigner, SecureLinkVerifier, UnsafePath, content_disposition, generate_secret
from signing.nginx.disposition import filename_field
from tests.client import fetch
from tests.conftest import OUTSIDE_SECRET, TRICKY_NAMES, NginxSite
from signing.algorithms import md5_token
from tests.parity import Case, link_field_cases, past, python_status

pytestmark = pytest.mark.nginx

BLOB = "/media/files/blob.bin"


def _swap_token_char(url: str) -> str:
    token = url.split("md5=")[1].split("&")[0]
    middle = "B" if token[5] != "B" else "C"
    return url.replace(token, token[:5] + middle + token[6:])


def _link_without_id(signer: SecureLinkSigner) -> str:
    """A link as signers minted it before link ids: no fields in front of the path."""
    expires = signer.get_timestamp() + 300
    key = signer.key_set.active
    token = md5_token(f"{expires}|{key.kid}||||{BLOB}|{key.secret}".encode())
    return f"{BLOB}?md5={token}&expires={expires}&kid={key.kid}"


PARITY = {
    "valid": Case(lambda s: s.sign(BLOB, ttl=300).url, 200),
    "expired": Case(lambda s: past(s).sign(BLOB, ttl=60).url, 410),
    "expiry edited": Case(lambda s: s.sign(BLOB, ttl=300).url.replace("&expires=", "&expires=1"), 403),
    "expiry edited on an expired link": Case(lambda s: past(s).sign(BLOB, ttl=60).url.replace("&expires=", "&expires=2"), 403),
    "expiry with a leading zero": Case(lambda s: s.sign(BLOB, ttl=300).url.replace("&expires=", "&expires=0"), 403),
    "path edited": Case(lambda s: s.sign(BLOB, ttl=300).url.replace("blob.bin", "other.bin"), 403),
    "token edited": Case(lambda s: _swap_token_char(s.sign(BLOB, ttl=300).url), 403),
    "token padded": Case(lambda s: s.sign(BLOB, ttl=300).url.replace("&expires", "==&expires"), 200),
    "token padded past 24 characters": Case(lambda s: s.sign(BLOB, ttl=300).url.replace("&expires", "===&expires"), 403),
    "token in base64 (+/) alphabet": Case(lambda s: s.sign(BLOB, ttl=300).url.replace("md5=", "md5=+/").replace("&expires", "&expires"), 403),
    "key id swapped": Case(lambda s: s.sign(BLOB, ttl=300).url.replace("kid=k1", "kid=k2"), 403),
    "unknown key id": Case(lambda s: s.sign(BLOB, ttl=300).url.replace("kid=k1", "kid=k9"), 403),
    "key id in upper case": Case(lambda s: s.sign(BLOB, ttl=300).url.replace("kid=k1", "kid=K1"), 403),
    "missing token": Case(lambda s: s.sign(BLOB, ttl=300).url.replace("md5=", "nomd5="), 403),
    "missing expires": Case(lambda s: s.sign(BLOB, ttl=300).url.replace("&expires=", "&noexpires="), 403),
    "missing key id": Case(lambda s: s.sign(BLOB, ttl=300).url.replace("&kid=", "&nokid="), 403),
    "no query at all": Case(lambda s: BLOB, 403),
    "argument names in upper case": Case(lambda s: s.sign(BLOB, ttl=300).url.replace("md5=", "MD5=").replace("expires=", "EXPIRES="), 200),
    "arguments reordered": Case(lambda s: BLOB + "?" + "&".join(reversed(s.sign(BLOB, ttl=300).url.split("?")[1].split("&"))), 200),
    "bound, from the right address": Case(lambda s: s.sign(BLOB, ttl=300, client_ip="127.0.0.1").url, 200),
    "bound, from a wrong address": Case(lambda s: s.sign(BLOB, ttl=300, client_ip="127.0.0.1").url, 403, "127.0.0.2"),
    "bound to 127.0.0.2, from it": Case(lambda s: s.sign(BLOB, ttl=300, client_ip="127.0.0.2").url, 200, "127.0.0.2"),
    "bound, binding flag removed": Case(lambda s: s.sign(BLOB, ttl=300, client_ip="127.0.0.1").url.replace("&ip=1", ""), 403),
    "unbound, binding flag added": Case(lambda s: s.sign(BLOB, ttl=300).url + "&ip=1", 403),
    "bound to ::1, from ::1": Case(lambda s: s.sign(BLOB, ttl=300, client_ip="::1").url, 200, "::1"),
    "filename edited": Case(lambda s: s.sign(BLOB, ttl=300, filename="a.bin").url.replace("filename=a.bin", "filename=b.bin"), 403),
    "filename removed": Case(lambda s: s.sign(BLOB, ttl=300, filename="a.bin").url.replace("&filename=a.bin", ""), 403),
    "filename added": Case(lambda s: s.sign(BLOB, ttl=300).url + "&disposition=attachment&filename=a.bin", 403),
    "filename with a raw pipe": Case(lambda s: s.sign(BLOB, ttl=300, filename="a.bin").url + "|x", 403),
    "disposition switched": Case(lambda s: s.sign(BLOB, ttl=300, filename="a.bin").url.replace("=attachment", "=inline"), 403),
    "a link from before link ids": Case(lambda s: _link_without_id(s), 200),
    "a link from before link ids, id added": Case(lambda s: _link_without_id(s) + "&id=AbCdEfGh12345678", 403),
    **link_field_cases(lambda s: s, BLOB),
    "malformed escape in the path": Case(lambda s: s.sign(BLOB, ttl=300).url.replace("blob", "bl%zzob"), 400),
    "encoded NUL in the path": Case(lambda s: s.sign(BLOB, ttl=300).url.replace("blob", "bl%00ob"), 400),
}


@pytest.mark.parametrize("case_name", list(PARITY))
def test_parity_nginx_and_python_verifier(nginx: NginxSite, case_name: str):
    case = PARITY[case_name]
    signer = nginx.signer()
    target = case.build(signer)
    base = nginx.base_url.replace("127.0.0.1", "[::1]") if case.source_address == "::1" else nginx.base_url
    response = fetch(base, target, source_address=case.source_address)
    assert (response.status, python_status(signer.key_set, target, case.source_address)) == (case.expected, case.expected)
    if case.expected == 200:
        assert response.body == (nginx.media_root / "files" / "blob.bin").read_bytes()


def _encodings(name: str) -> dict[str, bytes]:
    """The same path written three ways: quote(), lower-case hex, and as raw as HTTP allows."""
    signed = quote(f"/media/names/{name}")
    partly_raw = "".join(quote(char, safe="") if char in " %?#" else char for char in f"/media/names/{name}")
    return {
        "upper-case escapes": signed.encode(),
        "lower-case escapes": _lower_escapes(signed).encode(),
        "partly raw": partly_raw.encode("utf-8"),
    }


def _lower_escapes(text: str) -> str:
    pieces = text.split("%")
    return pieces[0] + "".join("%" + piece[:2].lower() + piece[2:] for piece in pieces[1:])


@pytest.mark.parametrize("name", TRICKY_NAMES)
def test_tricky_file_names_download_byte_for_byte_under_every_encoding(nginx: NginxSite, name: str):
    signer = nginx.signer()
    link = signer.sign(f"/media/names/{name}", ttl=300)
    query = link.url.split("?", 1)[1].encode()
    expected = (nginx.media_root / "names" / name).read_bytes()
    for label, raw_path in _encodings(name).items():
        target = raw_path + b"?" + query
        response = fetch(nginx.base_url, target)
        assert (label, response.status, response.body) == (label, 200, expected)
        assert python_status(signer.key_set, target, "127.0.0.1") == 200, label


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/media/../outside.txt",
        b"/media/%2e%2e/outside.txt",
        b"/media/%2E%2E%2Foutside.txt",
        b"/media/names/..%2F..%2Foutside.txt",
        b"/media/names/%2e%2e/%2e%2e/outside.txt",
        b"/media/..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        b"/_protected/media/../outside.txt",
        b"/_protected/media/%2e%2e/outside.txt",
    ],
)
def test_traversal_never_returns_a_file_outside_media(nginx: NginxSite, raw_path: bytes):
    signer = nginx.signer()
    # Even a link signed for whatever nginx would resolve the path to must not escape.
    query = signer.sign("/media/files/blob.bin", ttl=300).url.split("?", 1)[1].encode()
    response = fetch(nginx.base_url, raw_path + b"?" + query)
    assert response.status != 200
    assert OUTSIDE_SECRET not in response.body and b"root:" not in response.body


def test_the_signer_refuses_traversal_paths_outright(nginx: NginxSite):
    for path in ("/media/../outside.txt", "/media/names/../../outside.txt", "/media/./files/blob.bin"):
        with pytest.raises(UnsafePath):
            nginx.signer().sign(path, ttl=60)


def test_missing_file_with_a_valid_link_is_404(nginx: NginxSite):
    response = fetch(nginx.base_url, nginx.signer().sign("/media/files/nope.bin", ttl=300).url)
    assert response.status == 404


def test_internal_location_is_404_when_asked_directly(nginx: NginxSite):
    assert fetch(nginx.base_url, "/_protected/media/files/blob.bin").status == 404


def test_head_range_and_conditional_requests_work_on_signed_links(nginx: NginxSite):
    url = nginx.signer().sign(BLOB, ttl=300).url
    blob = (nginx.media_root / "files" / "blob.bin").read_bytes()

    head = fetch(nginx.base_url, url, method="HEAD")
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", str(len(blob)))

    ranged = fetch(nginx.base_url, url, headers={"Range": "bytes=100-199"})
    assert (ranged.status, ranged.body) == (206, blob[100:200])
    assert ranged.headers["Content-Range"] == f"bytes 100-199/{len(blob)}"

    etag = fetch(nginx.base_url, url).headers["ETag"]
    conditional = fetch(nginx.base_url, url, headers={"If-None-Match": etag})
    assert (conditional.status, conditional.body) == (304, b"")


def test_refused_links_carry_no_content_disposition(nginx: NginxSite):
    url = nginx.signer().sign(BLOB, ttl=300, filename="evil.bin").url.replace("evil", "evi1")
    response = fetch(nginx.base_url, url)
    assert response.status == 403
    assert response.headers["Content-Disposition"] is None


@pytest.mark.parametrize(
    "filename, disposition, header",
    [
        ("report.pdf", None, "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"),
        ("你好.txt", None, "attachment; filename=\"download.txt\"; filename*=UTF-8''%E4%BD%A0%E5%A5%BD.txt"),
        ('a";\r\nX-Evil: 1.txt', None, "attachment; filename=\"a____X-Evil_ 1.txt\"; filename*=UTF-8''a%22%3B%0D%0AX-Evil%3A%201.txt"),
        ("photo.jpg", "inline", "inline; filename=\"photo.jpg\"; filename*=UTF-8''photo.jpg"),
        (None, "inline", "inline"),
        (None, None, None),
    ],
)
def test_content_disposition_is_signed_and_identical_in_nginx_and_python(nginx: NginxSite, filename, disposition, header):
    signer = nginx.signer()
    link = signer.sign(BLOB, ttl=300, filename=filename, disposition=disposition)
    response = fetch(nginx.base_url, link.url)
    assert response.status == 200
    assert response.headers["Content-Disposition"] == header
    assert response.headers["X-Evil"] is None
    raw_path, _, query = link.url.encode().partition(b"?")
    verified = SecureLinkVerifier(signer.key_set).verify(raw_path=raw_path, query=query, remote_addr="127.0.0.1")
    assert verified.content_disposition == header


@pytest.mark.parametrize("spaces", range(10))
def test_ascii_fallback_names_keep_their_spaces_in_nginx_as_in_python(nginx: NginxSite, spaces: int):
    name = " ".join(["Crème", "(l'été)", "$1+@!", "a", "b", "c", "d", "e", "f", "g"][: spaces + 1]) + ".png"
    signer = nginx.signer()
    link = signer.sign(BLOB, ttl=300, filename=name)
    expected = content_disposition("attachment", filename_field(name))
    assert 'filename="Creme' in expected
    assert fetch(nginx.base_url, link.url).headers["Content-Disposition"] == expected


def test_every_configured_key_verifies_and_links_name_their_key(nginx: NginxSite):
    for kid in ("k1", "k2"):
        link = nginx.signer(kid).sign(BLOB, ttl=300)
        assert f"kid={kid}" in link.url
        assert fetch(nginx.base_url, link.url).status == 200


def test_a_link_signed_with_a_foreign_secret_is_refused(nginx: NginxSite):
    foreign = SecureLinkSigner(KeySet.parse(f"k1={generate_secret()}"))
    assert fetch(nginx.base_url, foreign.sign(BLOB, ttl=300).url).status == 403


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(
    "kind, status, sentence",
    [("expired", 410, "This link has expired"), ("tampered", 403, "This link is not valid")],
)
def test_refusals_explain_themselves_in_html_to_browsers_and_in_one_line_to_curl(nginx: NginxSite, kind, status, sentence):
    signer = nginx.signer()
    url = past(signer).sign(BLOB, ttl=60).url if kind == "expired" else _swap_token_char(signer.sign(BLOB, ttl=60).url)
    browser = fetch(nginx.base_url, url, headers={"Accept": BROWSER_ACCEPT})
    assert (browser.status, browser.headers["Content-Type"]) == (status, "text/html; charset=utf-8")
    assert f"<h1>{sentence}</h1>" in browser.body.decode() and "ask whoever sent it to you for a new link" in browser.body.decode()
    curl = fetch(nginx.base_url, url, headers={"Accept": "*/*"})
    assert (curl.status, curl.headers["Content-Type"]) == (status, "text/plain; charset=utf-8")
    assert curl.body.decode().startswith(sentence) and curl.body.decode().endswith("ask for a new link.\n")


def test_nginx_errors_in_front_of_the_api_are_json(nginx: NginxSite):
    unavailable = fetch(nginx.base_url, "/api/images/")  # this nginx's app server is not running
    assert (unavailable.status, unavailable.headers["Content-Type"]) == (502, "application/json")
    assert json.loads(unavailable.body)["code"] == "service_unavailable"
    too_large = fetch(nginx.base_url, "/api/images/", method="POST", headers={"Content-Length": str(100 * 1024 * 1024)})
    assert (too_large.status, json.loads(too_large.body)["code"]) == (413, "request_too_large")
