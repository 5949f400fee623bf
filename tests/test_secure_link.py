"""The signer and the Python verifier, without nginx (see test_nginx_secure_link.py for nginx)."""

import hashlib
from datetime import datetime, timedelta, timezone

from urllib.parse import quote

import pytest

from signing import (
    BadSignature, Key, KeySet, LinkExpired, TokenStatus, MalformedRequest, SecureLinkSigner, SecureLinkVerifier, SignedLink,
    UnsafePath, nginx_uri,
)
from signing.algorithms import md5_token as token_for
from signing.nginx.disposition import ASCII_NAME_SAFE
from signing.encoding import nginx_atotm
from signing.nginx.query import nginx_arg
from signing.addresses import canonical_client_address

NOW = 1_800_000_000
KEYS = KeySet((Key("k1", "s" * 32), Key("k2", "t" * 40)), active_kid="k1")


def keys(text: str) -> KeySet:
    return KeySet.parse(text)


def make_signer(now: float = NOW, key_set: KeySet = KEYS, **options) -> SecureLinkSigner:
    return SecureLinkSigner(key_set, clock=lambda: now, **options)


def make_verifier(now: float = NOW, key_set: KeySet = KEYS) -> SecureLinkVerifier:
    return SecureLinkVerifier(key_set, clock=lambda: now)


def split(url: str) -> tuple[bytes, bytes]:
    path, _, query = url.partition("?")
    return path.encode(), query.encode()


def status_of(signer: SecureLinkSigner, url: str, remote_addr: str = "127.0.0.1") -> TokenStatus:
    """nginx's verdict on ``url`` with the signer's keys, prefix and clock."""
    raw_path, query = split(url)
    verifier = SecureLinkVerifier(signer.key_set, prefix=signer.prefix, clock=signer.clock)
    return verifier.status(uri=nginx_uri(raw_path), query=query, remote_addr=remote_addr)


def test_nginx_documented_example_is_a_known_answer():
    # echo -n '2147483647/s/link127.0.0.1 secret' | openssl md5 -binary | openssl base64 | tr +/ -_ | tr -d =
    assert token_for(b"2147483647/s/link127.0.0.1 secret") == "_e4Nc3iduzkWRm01TBBNYw"


def test_signed_link_is_a_pinned_known_answer():
    link = make_signer().sign("/media/a b.jpg", ttl=600, link_id="AbCdEfGh12345678")
    signed_string = b"1800000600|k1||||AbCdEfGh12345678|||/media/a b.jpg|" + b"s" * 32
    assert link.url == (f"/media/a%20b.jpg?md5={token_for(signed_string)}&expires=1800000600&kid=k1"
                        "&id=AbCdEfGh12345678")
    assert token_for(signed_string) == "V43HCEhfqNUomqbMNjXhKA"  # openssl md5 -binary | base64 | tr +/ -_
    assert (link.expires, link.kid, link.path, link.link_id) == (1800000600, "k1", "/media/a b.jpg", "AbCdEfGh12345678")
    assert link.expires_at == datetime(2027, 1, 15, 8, 10, tzinfo=timezone.utc)


def test_a_link_minted_before_link_ids_still_verifies():
    # The signed string of a link from before link ids: no fields in front of the path.
    signer = make_signer()
    token = token_for(b"1800000600|k1||||/media/a b.jpg|" + b"s" * 32)
    assert token == "Gy9Nz6OWcmn7MFIj1D2wAw"
    assert status_of(signer, f"/media/a%20b.jpg?md5={token}&expires=1800000600&kid=k1") is TokenStatus.VALID
    assert status_of(signer, f"/media/a%20b.jpg?md5={token}&expires=1800000600&kid=k1&id=AbCdEfGh12345678") \
        is TokenStatus.INVALID  # an id added to an old link is not signed


def test_every_link_gets_its_own_random_id():
    signer = make_signer()
    ids = {signer.sign("/media/a.jpg", ttl=60).link_id for _ in range(2000)}
    assert len(ids) == 2000 and all(len(link_id) == 16 for link_id in ids)
    assert not any(link_id.startswith("-") for link_id in ids)  # `revoke_link ID` would read it as an option


def test_a_bucketed_link_signed_twice_in_one_window_is_one_link():
    signer = SecureLinkSigner(make_signer().key_set, expiry_bucket=300, clock=lambda: 1_800_000_000)
    first, second = signer.sign("/media/a.jpg", ttl=60), signer.sign("/media/a.jpg", ttl=60)
    assert first.url == second.url and first.link_id
    assert signer.sign("/media/b.jpg", ttl=60).link_id != first.link_id


def test_link_fields_are_signed_in_front_of_the_path():
    link = make_signer().sign("/media/a.jpg", ttl=60, link_id="AbCdEfGh12345678", not_before=1800000030,
                              max_downloads=3)
    signed_string = b"1800000060|k1||||AbCdEfGh12345678|1800000030|3|/media/a.jpg|" + b"s" * 32
    assert link.url == (f"/media/a.jpg?md5={token_for(signed_string)}&expires=1800000060&kid=k1"
                        "&id=AbCdEfGh12345678&nb=1800000030&limit=3")
    assert (link.not_before, link.max_downloads) == (1800000030, 3)


@pytest.mark.parametrize("options", [{"link_id": "short"}, {"link_id": "a/b" * 4}, {"max_downloads": 0},
                                     {"max_downloads": 1001}, {"not_before": 0}])
def test_link_fields_nginx_could_not_read_back_are_refused(options):
    with pytest.raises(ValueError):
        make_signer().sign("/media/a.jpg", ttl=60, **options)


def test_every_optional_field_lands_in_its_own_slot():
    link = make_signer().sign("/media/a.jpg", ttl=60, client_ip="::1", filename="你 x.jpg", disposition="inline",
                              link_id="AbCdEfGh12345678")
    signed_string = b"1800000060|k1|::1|inline|%E4%BD%A0%20x.jpg:_%20x.jpg|AbCdEfGh12345678|||/media/a.jpg|" + b"s" * 32
    assert f"md5={token_for(signed_string)}&" in link.url
    assert link.url.endswith("&kid=k1&ip=1&disposition=inline&filename=%E4%BD%A0%20x.jpg&ascii=_%20x.jpg"
                             "&id=AbCdEfGh12345678")


@pytest.mark.parametrize(
    "name, ascii_name",
    [("sunset at the beach.png", "sunset at the beach.png"), ("résumé.pdf", "resume.pdf"), ("plain-name.txt", None),
     ('report "final"; v2.png', "report _final__ v2.png"), ("你好 世界 a+b.png", "__ __ a+b.png"), ("你好", None),
     ("a/b\\c%d?.txt", "a_b_c_d_.txt"), ("a b c d e f g h i j.png", "a b c d e f g h_i_j.png")],
)
def test_links_carry_a_close_ascii_name_for_clients_that_ignore_filename_star(name, ascii_name):
    link = make_signer().sign("/media/a.jpg", ttl=60, filename=name)
    assert (link.url.split("&ascii=")[1].split("&")[0] if "&ascii=" in link.url else None) == (quote(ascii_name, safe=ASCII_NAME_SAFE) if ascii_name else None)
    verified = make_verifier().verify(raw_path=b"/media/a.jpg", query=link.url.split("?")[1].encode(), remote_addr="::1")
    fallback = ascii_name or ("plain-name.txt" if name == "plain-name.txt" else "download")
    assert verified.content_disposition == f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def test_links_made_before_the_ascii_name_keep_verifying():
    old_string = b"1800000060|k1||attachment|r%C3%A9sum%C3%A9.pdf|/media/a.pdf|" + b"s" * 32
    query = f"md5={token_for(old_string)}&expires=1800000060&kid=k1&disposition=attachment&filename=r%C3%A9sum%C3%A9.pdf"
    verified = make_verifier().verify(raw_path=b"/media/a.pdf", query=query.encode(), remote_addr="::1")
    assert verified.content_disposition == "attachment; filename=\"download.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
    with pytest.raises(BadSignature):  # the ASCII name cannot be added or edited: it is signed
        make_verifier().verify(raw_path=b"/media/a.pdf", query=(query + "&ascii=x.pdf").encode(), remote_addr="::1")


def test_a_filename_alone_means_attachment():
    link = make_signer().sign("/media/a.jpg", ttl=60, filename="x.jpg")
    assert "&disposition=attachment&filename=x.jpg" in link.url


def test_round_trip_verifies_and_reports_what_it_grants():
    signer = make_signer()
    link = signer.sign("/media/dir/你 好.txt", ttl=60, filename='a "b";.txt')
    raw_path, query = split(link.url)
    verified = make_verifier().verify(raw_path=raw_path, query=query, remote_addr="10.0.0.1")
    assert verified.uri == "/media/dir/你 好.txt".encode()
    assert verified.filename == 'a "b";.txt'
    assert verified.content_disposition == (
        "attachment; filename=\"a _b__.txt\"; filename*=UTF-8''a%20%22b%22%3B.txt"
    )
    assert verified.kid == "k1" and verified.expires == NOW + 60


def test_expired_link_raises_link_expired_with_its_expiry():
    link = make_signer().sign("/media/a.jpg", ttl=60)
    later = make_verifier(now=NOW + 61)
    raw_path, query = split(link.url)
    with pytest.raises(LinkExpired) as caught:
        later.verify(raw_path=raw_path, query=query, remote_addr="127.0.0.1")
    assert caught.value.expires == NOW + 60
    assert caught.value.expires_at == datetime.fromtimestamp(NOW + 60, tz=timezone.utc)
    assert isinstance(caught.value, BadSignature)


def test_expiry_is_strict_like_nginx_expires_equal_to_now_is_valid():
    link = make_signer().sign("/media/a.jpg", ttl=60)
    assert status_of(make_signer(now=NOW + 60), link.url) is TokenStatus.VALID
    assert status_of(make_signer(now=NOW + 61), link.url) is TokenStatus.EXPIRED


def test_malformed_request_path_raises_malformed_request():
    link = make_signer().sign("/media/a.jpg", ttl=60)
    query = split(link.url)[1]
    with pytest.raises(MalformedRequest):
        make_verifier().verify(raw_path=b"/media/a%zz.jpg", query=query, remote_addr="127.0.0.1")


LINK = make_signer().sign("/media/a.jpg", ttl=60, link_id="AbCdEfGh12345678").url  # one token, every run
_TOKEN = LINK.split("md5=")[1].split("&")[0]
TAMPERED = {
    "expires edited": LINK.replace("expires=1800000060", "expires=1800000061"),
    "expires with a leading zero": LINK.replace("expires=", "expires=0"),
    "expires missing": LINK.replace("&expires=1800000060", ""),
    "expires not a number": LINK.replace("expires=1800000060", "expires=18e8"),
    "expires overflowing time_t": LINK.replace("expires=1800000060", "expires=99999999999999999999"),
    "path edited": LINK.replace("/media/a.jpg", "/media/b.jpg"),
    "token edited": LINK.replace(f"md5={_TOKEN}", f"md5={'B' if _TOKEN[0] == 'A' else 'A'}{_TOKEN[1:]}"),
    "token missing": LINK.replace("md5=", "x="),
    "token too long": LINK.replace("&expires", "===&expires"),
    "token with a comma": LINK.replace("&expires=", ",1&expires="),
    "kid swapped": LINK.replace("kid=k1", "kid=k2"),
    "kid unknown": LINK.replace("kid=k1", "kid=k9"),
    "kid missing": LINK.replace("&kid=k1", ""),
    "kid upper-case": LINK.replace("kid=k1", "kid=K1"),
    "ip flag added": LINK + "&ip=1",
    "filename added": LINK + "&filename=x.jpg",
    "disposition added": LINK + "&disposition=inline",
    "disposition invented": LINK + "&disposition=evil",
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampered_links_are_invalid(case):
    assert status_of(make_signer(), TAMPERED[case]) is TokenStatus.INVALID


def test_tampered_link_raises_bad_signature_but_not_expired():
    raw_path, query = split(TAMPERED["path edited"])
    with pytest.raises(BadSignature) as caught:
        make_verifier().verify(raw_path=raw_path, query=query, remote_addr="127.0.0.1")
    assert not isinstance(caught.value, LinkExpired)


@pytest.mark.parametrize(
    "variant",
    [
        LINK.replace("&expires", "==&expires"),  # padding is ignored by nginx
        LINK.replace("md5=", "MD5=").replace("kid=", "KiD="),  # argument names ignore case
        LINK + "&md5=AAAAAAAAAAAAAAAAAAAAAA",  # the first occurrence wins
        "/media/a.jpg?" + "&".join(reversed(LINK.split("?")[1].split("&"))),  # order is free
        LINK.replace("/media/a.jpg", "/media//x/../a.jpg"),  # nginx normalises the path first
    ],
)
def test_equivalent_requests_stay_valid_as_in_nginx(variant):
    assert status_of(make_signer(), variant) is TokenStatus.VALID


def test_address_binding_accepts_only_that_address():
    signer = make_signer()
    link = signer.sign("/media/a.jpg", ttl=60, client_ip="127.0.0.1")
    assert status_of(signer, link.url, "127.0.0.1") is TokenStatus.VALID
    assert status_of(signer, link.url, "127.0.0.2") is TokenStatus.INVALID
    assert status_of(signer, link.url.replace("&ip=1", ""), "127.0.0.1") is TokenStatus.INVALID
    assert status_of(signer, link.url.replace("&ip=1", "&ip=2"), "127.0.0.1") is TokenStatus.INVALID


@pytest.mark.parametrize(
    "address, remote_addr",
    [("::1", "::1"), ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"), ("::ffff:10.0.0.1", "::ffff:10.0.0.1"), ("10.0.0.1", "10.0.0.1")],
)
def test_client_addresses_are_written_as_nginx_writes_remote_addr(address, remote_addr):
    assert canonical_client_address(address) == remote_addr


@pytest.mark.parametrize("address", ["localhost", "1.2.3", "fe80::1%eth0", ""])
def test_bad_client_addresses_are_refused(address):
    with pytest.raises(ValueError):
        make_signer().sign("/media/a.jpg", ttl=60, client_ip=address or "x")


def test_a_filename_with_a_pipe_cannot_shift_the_path_field():
    # The signed string of a file literally named "x|/media/b.jpg" in a link with filename "a"...
    signer = make_signer()
    link = signer.sign("/media/x|/media/b.jpg", ttl=60, filename="a")
    token = link.url.split("md5=")[1].split("&")[0]
    # ...replayed for /media/b.jpg with a raw filename "a|/media/x" would hash the same
    # bytes, were it not that nginx (and we) map such a filename to "!".
    forged = f"/media/b.jpg?md5={token}&expires={link.expires}&kid=k1&disposition=attachment&filename=a|/media/x"
    assert status_of(signer, forged) is TokenStatus.INVALID


def test_empty_and_absent_optional_fields_cannot_be_confused():
    signer = make_signer()
    plain = signer.sign("/media/a.jpg", ttl=60)
    bound = signer.sign("/media/a.jpg", ttl=60, client_ip="127.0.0.1")
    assert plain.url.split("&")[0] != bound.url.split("&")[0]


@pytest.mark.parametrize("bucket, expires", [(0, NOW + 90), (1, NOW + 90), (60, NOW + 120), (3600, 1800003600)])
def test_expiry_bucket_rounds_up_and_never_shortens_the_ttl(bucket, expires):
    assert make_signer(expiry_bucket=bucket).sign("/media/a.jpg", ttl=90).expires == expires


def test_links_minted_inside_one_bucket_are_the_same_url():
    urls = {make_signer(now=NOW + offset, expiry_bucket=300).sign("/media/a.jpg", ttl=600).url for offset in range(0, 300, 7)}
    assert len(urls) <= 2  # the window boundary may fall inside the range
    assert len({make_signer(now=NOW + o, expiry_bucket=300).sign("/media/a.jpg", ttl=600).url for o in (1, 299)}) == 1


def test_ttl_accepts_a_timedelta():
    assert make_signer().sign("/media/a.jpg", ttl=timedelta(minutes=2)).expires == NOW + 120


@pytest.mark.parametrize("ttl", [0, -5, 1.5, True, "60"])
def test_bad_ttl_is_a_value_error(ttl):
    with pytest.raises(ValueError, match="ttl"):
        make_signer().sign("/media/a.jpg", ttl=ttl)


def test_signing_with_another_known_key_works_and_unknown_key_fails():
    signer = make_signer()
    assert "kid=k2" in signer.sign("/media/a.jpg", ttl=60, kid="k2").url
    with pytest.raises(ValueError, match="unknown key id"):
        signer.sign("/media/a.jpg", ttl=60, kid="nope")


def test_unsafe_path_raises_before_anything_is_signed():
    with pytest.raises(UnsafePath):
        make_signer().sign("/media/../etc/passwd", ttl=60)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"key_set": KeySet()}, "no signing keys"),
        ({"key_set": keys("k1=short")}, "at least 32"),
        ({"key_set": keys("k1=" + "s" * 31 + "$")}, "characters nginx cannot hold"),
        ({"key_set": keys("K1=" + "s" * 32)}, "key id 'K1' is not valid"),
        ({"key_set": KEYS.with_active("k3")}, "active key id 'k3' is not among"),
        ({"prefix": "/media"}, "must start and end with '/'"),
        ({"expiry_bucket": -1}, "expiry_bucket"),
    ],
)
def test_unusable_configuration_is_a_value_error_that_says_what_to_fix(options, message):
    with pytest.raises(ValueError, match=message):
        make_signer(**options)


def test_secrets_never_appear_in_repr_or_errors():
    signer = make_signer()
    assert "sss" not in repr(signer) and "ttt" not in repr(signer)
    with pytest.raises(ValueError) as caught:
        make_signer(key_set=keys("k1=" + "x" * 20 + "SECRETPART"))
    assert "SECRETPART" not in str(caught.value)


@pytest.mark.parametrize(
    "query, name, value",
    [
        (b"a=1&b=2", b"b", b"2"),
        (b"A=1", b"a", b"1"),
        (b"xa=1&a=2", b"a", b"2"),
        (b"a&a=3", b"a", b"3"),
        (b"a=", b"a", b""),
        (b"b=1", b"a", None),
        (b"", b"a", None),
        (b"a=1;b=2", b"a", b"1;b=2"),
    ],
)
def test_nginx_arg_matches_ngx_http_arg(query, name, value):
    assert nginx_arg(query, name) == value


@pytest.mark.parametrize(
    "text, value",
    [(b"1", 1), (b"0", 0), (b"007", 7), (b"", -1), (b"-1", -1), (b"1e3", -1), (b"9223372036854775807", 2**63 - 1),
     (b"9223372036854775808", -1), ("١".encode(), -1)],
)
def test_nginx_atotm_matches_ngx_atotm(text, value):
    assert nginx_atotm(text) == value


def test_token_is_the_unpadded_base64url_md5():
    assert token_for(b"abc") == "kAFQmDzST7DWlj99KOF_cg"
    assert hashlib.md5(b"abc").hexdigest() == "900150983cd24fb0d6963f7d28e17f72"


def test_signing_the_same_link_again_reads_the_clock_again():
    now = {"t": NOW}
    signer = SecureLinkSigner(KEYS, clock=lambda: now["t"])
    first = signer.sign("/media/a.jpg", ttl=60, filename="a.jpg")
    now["t"] += 5
    second = signer.sign("/media/a.jpg", ttl=60, filename="a.jpg")
    assert (first.expires, second.expires) == (NOW + 60, NOW + 65)
    assert status_of(make_signer(now=NOW + 62), first.url) is TokenStatus.EXPIRED
    assert status_of(make_signer(now=NOW + 62), second.url) is TokenStatus.VALID


def test_refused_options_are_refused_every_time():
    signer = make_signer()
    for _ in range(2):
        with pytest.raises(ValueError):
            signer.sign("/media/a.jpg", ttl=60, client_ip="not-an-address")
        with pytest.raises(UnsafePath):
            signer.sign("/media/../a.jpg", ttl=60)
        with pytest.raises(ValueError, match="unknown key id"):
            signer.sign("/media/a.jpg", ttl=60, kid="k9")


def test_remembered_link_parts_are_bounded_and_stay_correct(monkeypatch):
    import signing.nginx.signer as secure_link

    monkeypatch.setattr(secure_link, "_MAX_REMEMBERED_LINKS", 3)
    signer = make_signer()
    for index in range(10):
        for options in ({}, {"filename": f"{index}.jpg"}):
            link = signer.sign(f"/media/{index}.jpg", ttl=60, **options)
            assert status_of(signer, link.url) is TokenStatus.VALID
    assert len(signer._plain_parts["k1"]) <= 3 and len(signer._option_parts) <= 3


def test_a_link_that_would_open_after_it_expires_is_refused():
    with pytest.raises(ValueError, match="after it expires"):
        make_signer().sign("/media/a.jpg", ttl=60, not_before=1_800_000_061)


def test_link_ids_are_unique_across_threads_and_never_shared_with_a_forked_child():
    import os
    import threading

    from signing.nginx import signed_string
    from signing.nginx.signed_string import LINK_ID_PATTERN, new_link_id

    drawn: list[list[str]] = [[] for _ in range(4)]
    threads = [threading.Thread(target=lambda out: out.extend(new_link_id() for _ in range(5000)), args=(out,))
               for out in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [link_id for out in drawn for link_id in out]
    assert len(set(ids)) == len(ids) == 20000
    assert all(LINK_ID_PATTERN.fullmatch(link_id) and not link_id.startswith("-") for link_id in ids)
    new_link_id()
    buffered = set(signed_string._fresh_ids)
    assert buffered  # the parent holds ids drawn but not handed out ...
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # ... which the child never hands out
        os.write(write_end, ",".join(new_link_id() for _ in range(300)).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        child_ids = set(pipe.read().split(","))
    assert len(child_ids) == 300 and not child_ids & buffered


def test_a_plain_link_is_a_whole_signed_link_tuple():
    """sign() builds an ordinary link with tuple.__new__ (no NamedTuple frame): every field is there."""
    link = SecureLinkSigner(KEYS).sign("/media/a.png", ttl=60)
    assert len(link) == len(SignedLink._fields) and link == SignedLink(*link)
    assert (link.path, link.kid, link.not_before, link.max_downloads) == ("/media/a.png", "k1", None, None)
