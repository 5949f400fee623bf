"""Delivery targets in the pure library: CDN keys in the key set, and one signer API for every target.

The CDN formats themselves are cross-checked against botocore, Google's vectors and
akamai-edgeauth in tests/test_cdn_signers.py; here the links the target's signer mints are
checked the way each CDN checks them (the public key, Google's algorithm, EdgeAuth).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from urllib.parse import parse_qs, urlsplit

import pytest
import rsa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

from signing import HMAC_SHA256, Key, KeySet, KeySetError, SecureLinkSigner, SecureLinkVerifier, UnsafePath
from signing.algorithms import AKAMAI, CLOUD_CDN, CLOUDFRONT
from signing.cdn.cloudfront import cloudfront_secret
from signing.cdn import CDNLinkSigner
from signing.delivery import DeliveryTarget, link_signer

BASE = "https://d111111abcdef8.cloudfront.net"
NOW = 1_800_000_000


@pytest.fixture(scope="module")
def rsa_pem() -> bytes:
    key = rsa_keys.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def keys(rsa_pem: bytes) -> KeySet:
    """Every algorithm in one key set, as a keys file holds them; cf2 signs."""
    second = rsa_keys.generate_private_key(public_exponent=65537, key_size=2048)
    second_pem = second.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    text = (f"k1={'a' * 43}\nh1=hmac-sha256:{'b' * 43}\n"
            f"cf1=cloudfront:{cloudfront_secret('K2JCJMDEHXQW5F', rsa_pem)}\n"
            f"cf2=cloudfront:{cloudfront_secret('K3NEWKEY000002', second_pem)}\n"
            f"my-key=cloudcdn:{base64.urlsafe_b64encode(bytes(range(16))).decode()}\n"
            f"ak1=akamai:{'0a1b2c3d' * 4}\nactive: cf2 since {NOW - 100}\n")
    return KeySet.parse(text).check()


def public_key(pem: bytes) -> rsa.PublicKey:
    private = rsa.PrivateKey.load_pkcs1(pem)
    return rsa.PublicKey(private.n, private.e)


def cloudfront_base64_decode(text: str) -> bytes:
    return base64.b64decode(text.translate(str.maketrans("-_~", "+=/")))


def test_a_keys_file_holds_cdn_keys_and_reads_back_the_same(keys):
    assert [key.algorithm for key in keys] == [keys["k1"].algorithm, HMAC_SHA256, CLOUDFRONT, CLOUDFRONT, CLOUD_CDN, AKAMAI]
    assert KeySet.parse(keys.render()) == keys
    assert keys.problems() == []


def test_cdn_keys_never_reach_nginx_or_the_verifiers_sync(keys):
    includes = "".join(keys.nginx_includes().values())
    assert '"k1"' in includes and '"h1"' in includes
    for kid in ("cf1", "cf2", "my-key", "ak1"):
        assert kid not in includes and keys[kid].secret not in includes
    assert keys.nginx_keys().kids == ("k1", "h1") and keys.nginx_keys().active_kid is None


@pytest.mark.parametrize("entry, fragment", [
    ("cf1=cloudfront:K2JCJMDEHXQW5F:bm90IGEga2V5", "cf1"),
    ("cf1=cloudfront:not-an-id:AAAA", "cf1"),
    ("cf1=cloudfront:nocolon", "cf1"),
    ("my-key=cloudcdn:c2hvcnQ", "my-key"),
    ("my_key=cloudcdn:" + base64.urlsafe_b64encode(bytes(16)).decode(), "key name"),
    ("ak1=akamai:abc", "ak1"),
    ("ak1=akamai:00112233", "ak1"),
])
def test_a_cdn_key_that_cannot_work_is_named_without_its_secret(entry, fragment):
    problems = KeySet.parse(entry).problems()
    assert len(problems) == 1 and fragment in problems[0].message
    secret = entry.split(":", 1)[1].split(":")[-1]
    assert secret not in problems[0].message


def test_the_nginx_signer_refuses_a_key_set_whose_active_key_is_a_cdns(keys):
    with pytest.raises(KeySetError, match="cf2.*cloudfront key"):
        SecureLinkSigner(keys)


def test_nginx_links_still_sign_and_verify_beside_cdn_keys(keys):
    nginx_keys = keys.with_active("h1")
    link = SecureLinkSigner(nginx_keys).sign("/media/a.jpg", ttl=60)
    path, _, query = link.url.partition("?")
    assert SecureLinkVerifier(nginx_keys).verify(raw_path=path.encode(), query=query.encode(), remote_addr="127.0.0.1")
    # A CDN key's id in a link verifies as nothing (nginx's maps do not hold it).
    forged = link.url.replace("kid=h1", "kid=cf1")
    path, _, query = forged.partition("?")
    assert SecureLinkVerifier(nginx_keys).status(uri=path.encode(), query=query.encode(), remote_addr="1.2.3.4").value == ""


@pytest.mark.parametrize("text, expected", [
    ("nginx", DeliveryTarget()),
    ("cloudfront https://d1.cloudfront.net/", DeliveryTarget("cloudfront", "https://d1.cloudfront.net")),
    ("akamai  https://media.example.com", DeliveryTarget("akamai", "https://media.example.com")),
])
def test_a_delivery_target_reads_from_one_line(text, expected):
    assert DeliveryTarget.parse(text) == expected


@pytest.mark.parametrize("text, message", [
    ("fastly https://x", "not one of"), ("cloudfront", "base URL"), ("cloudcdn ftp://x", "base URL"),
    ("akamai https://x/media/", "base URL"), ("nginx https://x", "SITE_BASE_URL"),
    ("cloudcdn https://cdn.example.com:8443", "cannot name a port"),
])
def test_a_delivery_target_that_cannot_work_says_what_to_write(text, message):
    with pytest.raises(ValueError, match=message):
        DeliveryTarget.parse(text)


def cloudfront_signer(keys: KeySet) -> CDNLinkSigner:
    signer = link_signer(keys, DeliveryTarget("cloudfront", BASE), clock=lambda: NOW)
    assert isinstance(signer, CDNLinkSigner)
    return signer


def test_a_cloudfront_link_is_a_canned_url_the_public_key_verifies(keys):
    signer = cloudfront_signer(keys)
    link = signer.sign("/media/images/a b.jpg", ttl=600)
    url, _, query = link.url.partition("?")
    arguments = parse_qs(query)
    assert url == BASE + "/media/images/a%20b.jpg" and (link.expires, link.kid, link.link_id) == (NOW + 600, "cf2", None)
    assert arguments["Key-Pair-Id"] == ["K3NEWKEY000002"] and arguments["Expires"] == [str(NOW + 600)]
    canned = json.dumps({"Statement": [{"Resource": url, "Condition": {"DateLessThan": {"AWS:EpochTime": NOW + 600}}}]},
                        separators=(",", ":"))
    second_pem = serialization.load_der_private_key(
        base64.b64decode(keys["cf2"].secret.split(":")[1]), None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    assert rsa.verify(canned.encode(), cloudfront_base64_decode(arguments["Signature"][0]), public_key(second_pem))


def test_rotation_the_older_key_of_the_key_group_still_signs_when_asked(keys, rsa_pem):
    link = cloudfront_signer(keys).sign("/media/a.jpg", ttl=60, kid="cf1")
    arguments = parse_qs(urlsplit(link.url).query)
    assert arguments["Key-Pair-Id"] == ["K2JCJMDEHXQW5F"]
    canned = json.dumps({"Statement": [{"Resource": BASE + "/media/a.jpg",
                                        "Condition": {"DateLessThan": {"AWS:EpochTime": NOW + 60}}}]}, separators=(",", ":"))
    assert rsa.verify(canned.encode(), cloudfront_base64_decode(arguments["Signature"][0]), public_key(rsa_pem))


def test_a_cloudfront_link_with_a_start_and_an_address_carries_a_custom_policy(keys):
    link = cloudfront_signer(keys).sign("/media/a.jpg", ttl=60, not_before=NOW + 10, client_ip="192.0.2.7")
    policy = json.loads(cloudfront_base64_decode(parse_qs(urlsplit(link.url).query)["Policy"][0]))
    condition = policy["Statement"][0]["Condition"]
    assert condition == {"DateLessThan": {"AWS:EpochTime": NOW + 60}, "IpAddress": {"AWS:SourceIp": "192.0.2.7/32"},
                         "DateGreaterThan": {"AWS:EpochTime": NOW + 10}}


@pytest.mark.parametrize("client_ip, source_ip", [("192.0.2.7/24", "192.0.2.0/24"), ("::ffff:192.0.2.7/16", "192.0.0.0/16"),
                                                  ("192.0.2.7/32", "192.0.2.7/32")])
def test_a_cloudfront_link_bound_to_a_network_carries_it_as_the_policys_cidr(keys, client_ip, source_ip):
    link = cloudfront_signer(keys).sign("/media/a.jpg", ttl=60, client_ip=client_ip)
    grant = cloudfront_signer(keys).sign_folder_cookie("/media/videos/", ttl=60, client_ip=client_ip)
    for policy in (parse_qs(urlsplit(link.url).query)["Policy"][0], grant.cookies["CloudFront-Policy"]):
        condition = json.loads(cloudfront_base64_decode(policy))["Statement"][0]["Condition"]
        assert condition["IpAddress"] == {"AWS:SourceIp": source_ip}


def test_akamai_binds_one_address_and_refuses_a_network_it_cannot_express(keys):
    signer = link_signer(keys.with_active("ak1"), DeliveryTarget("akamai", "https://media.example.com"),
                         clock=lambda: NOW)
    assert signer.sign("/media/a.jpg", ttl=60, client_ip="192.0.2.7/32").url == signer.sign(
        "/media/a.jpg", ttl=60, client_ip="192.0.2.7").url
    with pytest.raises(ValueError, match="akamai binds a token to one address, not to the network 192.0.2.0/24"):
        signer.sign("/media/a.jpg", ttl=60, client_ip="192.0.2.7/24")


@pytest.mark.parametrize("option, value", [("filename", "a.jpg"), ("disposition", "inline"), ("max_downloads", 3),
                                           ("link_id", "AbCdEfGh12345678")])
def test_a_cdn_refuses_what_it_cannot_check_rather_than_mint_a_link_it_reads_otherwise(keys, option, value):
    with pytest.raises(ValueError, match="cloudfront links cannot carry"):
        cloudfront_signer(keys).sign("/media/a.jpg", ttl=60, **{option: value})


def test_cloudfront_folder_cookies_grant_the_folder_with_a_wildcard_policy(keys):
    grant = cloudfront_signer(keys).sign_folder_cookie("/media/videos/42/", ttl=300)
    assert set(grant.cookies) == {"CloudFront-Policy", "CloudFront-Signature", "CloudFront-Key-Pair-Id"}
    policy = json.loads(cloudfront_base64_decode(grant.cookies["CloudFront-Policy"]))
    assert policy["Statement"][0]["Resource"] == BASE + "/media/videos/42/*"
    assert (grant.path, grant.expires, grant.kid) == ("/media/videos/42/", NOW + 300, "cf2")
    headers = grant.set_cookie_headers()
    assert all("; Path=/media/videos/42/;" in header and header.endswith("; Secure; HttpOnly; SameSite=Lax")
               for header in headers)


@pytest.mark.parametrize("folder", ["/media/a b/", "/media/x|y/", "/media/x/../", "/other/"])
def test_a_cdns_folder_follows_the_folder_cookie_rules(keys, folder):
    with pytest.raises(UnsafePath):
        cloudfront_signer(keys).sign_folder_cookie(folder, ttl=60)


def test_a_cloud_cdn_link_and_cookie_are_googles_algorithm(keys):
    signer = link_signer(keys.with_active("my-key"), DeliveryTarget("cloudcdn", "https://cdn.example.com"),
                         clock=lambda: NOW)
    key = bytes(range(16))
    link = signer.sign("/media/a.jpg", ttl=60)
    unsigned = f"https://cdn.example.com/media/a.jpg?Expires={NOW + 60}&KeyName=my-key"
    expected = base64.urlsafe_b64encode(hmac.new(key, unsigned.encode(), hashlib.sha1).digest()).decode()
    assert link.url == f"{unsigned}&Signature={expected}"
    grant = signer.sign_folder_cookie("/media/videos/42/", ttl=60)
    prefix = base64.urlsafe_b64encode(b"https://cdn.example.com/media/videos/42/").decode()
    policy = f"URLPrefix={prefix}:Expires={NOW + 60}:KeyName=my-key"
    signature = base64.urlsafe_b64encode(hmac.new(key, policy.encode(), hashlib.sha1).digest()).decode()
    assert grant.cookies == {"Cloud-CDN-Cookie": f"{policy}:Signature={signature}"}
    with pytest.raises(ValueError, match="cloudcdn links cannot carry a start time"):
        signer.sign("/media/a.jpg", ttl=60, not_before=NOW + 1)


def test_an_akamai_link_and_cookie_are_edgeauth_tokens(keys):
    os_tz = os.environ.get("TZ")
    from akamai.edgeauth import EdgeAuth  # sets TZ=GMT on import: put it back

    if os_tz is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = os_tz
    signer = link_signer(keys.with_active("ak1"), DeliveryTarget("akamai", "https://media.example.com"),
                         clock=lambda: NOW)
    link = signer.sign("/media/a.jpg", ttl=60, not_before=NOW, client_ip="192.0.2.7")
    reference = EdgeAuth(key="0a1b2c3d" * 4, algorithm="sha256", start_time=NOW, end_time=NOW + 60, ip="192.0.2.7")
    assert link.url == "https://media.example.com/media/a.jpg?__token__=" + reference.generate_url_token("/media/a.jpg")
    grant = signer.sign_folder_cookie("/media/videos/42/", ttl=60)
    acl = EdgeAuth(key="0a1b2c3d" * 4, algorithm="sha256", end_time=NOW + 60).generate_acl_token("/media/videos/42/*")
    assert grant.cookies == {"__token__": acl}


def test_a_cdn_signer_needs_its_own_key_active(keys):
    with pytest.raises(KeySetError, match="delivery target is akamai but the active key 'cf2' is a cloudfront key"):
        CDNLinkSigner(keys, DeliveryTarget("akamai", "https://media.example.com"))
    with pytest.raises(ValueError, match="cannot check directory links"):
        cloudfront_signer(keys).sign_directory("/media/videos/42/", ttl=60)


def test_adding_a_cdn_key_takes_its_secret_and_checks_it():
    key_set = KeySet((Key("k1", "a" * 43),))
    with pytest.raises(KeySetError, match="comes from the CDN"):
        key_set.add("ak1", algorithm=AKAMAI, now=NOW)
    with pytest.raises(KeySetError, match="ak1"):
        key_set.add("ak1", algorithm=AKAMAI, now=NOW, secret="abc")
    changed, key = key_set.add("ak1", algorithm=AKAMAI, now=NOW, secret="0a1b2c3d" * 4)
    assert changed.kids == ("k1", "ak1") and changed.active.kid == "k1" and key.algorithm is AKAMAI
