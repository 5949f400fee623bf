"""signing.cdn.cloudfront, signing.cdn.cloudcdn, signing.cdn.akamai: checked against code nobody here wrote.

CloudFront against botocore's ``CloudFrontSigner`` signing with the independent ``rsa`` package;
Cloud CDN against Google's documented algorithm written out here and Google's own known answers;
Akamai against the ``akamai-edgeauth`` package.
"""

import base64
import hashlib
import hmac
import importlib
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import rsa
from botocore.signers import CloudFrontSigner as BotocoreCloudFrontSigner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa as crypto_rsa

from signing.cdn.akamai import EdgeAuthSigner, akamai_secret_problem
from signing.cdn.akamai import signer_from_secret as akamai_signer_from_secret
from signing.cdn.cloudcdn import CloudCDNSigner, cloudcdn_secret_problem
from signing.cdn.cloudcdn import signer_from_secret as cloudcdn_signer_from_secret
from signing.cdn.cloudfront import (
    CloudFrontSigner, cloudfront_secret, cloudfront_secret_problem, parse_cloudfront_secret,
)
from signing.cdn.cloudfront import signer_from_secret as cloudfront_signer_from_secret
from signing.exc import KeySetError


def _import_edgeauth():
    """akamai.edgeauth, imported without keeping the TZ=GMT it sets in os.environ on import."""
    saved = os.environ.get("TZ")
    module = importlib.import_module("akamai.edgeauth")
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    return module


EdgeAuth = _import_edgeauth().EdgeAuth

EXPIRES, NOT_BEFORE = 2_000_000_000, 1_900_000_000
KEY_PAIR_ID = "K2JCJMDEHXQW5F"


def _python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_cdn_modules_import_neither_django_nor_cryptography():
    result = _python(
        "import sys, signing.cdn.cloudfront, signing.cdn.cloudcdn, signing.cdn.akamai, signing.cdn.cli;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'cryptography')))")
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


def test_without_cryptography_a_cloudfront_signer_says_what_to_install():
    result = _python(
        "import sys; sys.modules['cryptography'] = None\n"
        "from signing.cdn.cloudfront import CloudFrontSigner\n"
        "from signing.exc import KeySetError\n"
        "try: CloudFrontSigner('K2JCJMDEHXQW5F', b'')\n"
        "except KeySetError as error: print(error)")
    assert result.stdout.strip() == "CloudFront signing needs the 'cryptography' package (pip install cryptography)"


# CloudFront

@pytest.fixture(scope="module")
def rsa_key():
    return crypto_rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def pkcs1_pem(rsa_key):
    return rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())


@pytest.fixture(scope="module")
def cloudfront(pkcs1_pem):
    return CloudFrontSigner(KEY_PAIR_ID, pkcs1_pem)


@pytest.fixture(scope="module")
def botocore_signer(pkcs1_pem):
    private_key = rsa.PrivateKey.load_pkcs1(pkcs1_pem)
    return BotocoreCloudFrontSigner(KEY_PAIR_ID, lambda message: rsa.sign(message, private_key, "SHA-1"))


@pytest.fixture(scope="module")
def public_key(pkcs1_pem):
    private_key = rsa.PrivateKey.load_pkcs1(pkcs1_pem)
    return rsa.PublicKey(private_key.n, private_key.e)


def utc(moment):
    return datetime.fromtimestamp(moment, tz=timezone.utc)


def cloudfront_b64decode(text):
    return base64.b64decode(text.translate(str.maketrans("-_~", "+=/")))


def policy_verifies(policy, signature, public_key):
    try:
        return rsa.verify(policy, signature, public_key) == "SHA-1"
    except rsa.VerificationError:
        return False


CLOUDFRONT_URLS = [
    "https://d111111abcdef8.cloudfront.net/image.jpg",
    "https://d111111abcdef8.cloudfront.net/image.jpg?color=red&size=medium",
    "https://media.example.com/%E4%BD%A0%E5%A5%BD/a%20b%2Bc.txt",
    "http://media.example.com/",
]


@pytest.mark.parametrize("url", CLOUDFRONT_URLS)
def test_canned_url_is_byte_identical_to_botocores(cloudfront, botocore_signer, url):
    expected = botocore_signer.generate_presigned_url(url, date_less_than=utc(EXPIRES))
    assert cloudfront.sign_url(url, expires=EXPIRES) == expected
    assert cloudfront.policy(url, expires=EXPIRES) == botocore_signer.build_policy(url, utc(EXPIRES))


def test_pkcs1_pkcs8_and_der_keys_sign_alike(rsa_key, pkcs1_pem, cloudfront):
    pkcs8 = serialization.PrivateFormat.PKCS8
    pem = rsa_key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())
    der = rsa_key.private_bytes(serialization.Encoding.DER, pkcs8, serialization.NoEncryption())
    url = CLOUDFRONT_URLS[0]
    assert {CloudFrontSigner(KEY_PAIR_ID, key).sign_url(url, expires=EXPIRES) for key in (pem, der)} == {
        cloudfront.sign_url(url, expires=EXPIRES)}


CUSTOM_POLICIES = [  # resource, not_before, ip
    ("https://d111111abcdef8.cloudfront.net/videos/*", None, None),
    ("https://d111111abcdef8.cloudfront.net/videos/*", NOT_BEFORE, None),
    ("https://d111111abcdef8.cloudfront.net/a.mp4", None, "192.0.2.7"),
    ("https://d111111abcdef8.cloudfront.net/a?b*", NOT_BEFORE, "192.0.2.0/24"),
]


@pytest.mark.parametrize("resource, not_before, ip", CUSTOM_POLICIES)
def test_custom_policy_is_botocores_build_policy(cloudfront, botocore_signer, resource, not_before, ip):
    ours = cloudfront.policy(resource, expires=EXPIRES, not_before=not_before, ip=ip)
    theirs = botocore_signer.build_policy(resource, utc(EXPIRES), None if not_before is None else utc(not_before), ip)
    assert ours == theirs


@pytest.mark.parametrize("resource, not_before, ip", CUSTOM_POLICIES)
def test_custom_policy_url_verifies_with_the_public_key(cloudfront, botocore_signer, public_key,
                                                         resource, not_before, ip):
    url = "https://d111111abcdef8.cloudfront.net/videos/a.mp4?lang=en"
    signed = cloudfront.sign_url(url, expires=EXPIRES, resource=resource, not_before=not_before, ip=ip)
    assert signed.startswith(url + "&Policy=")
    query = parse_qs(urlsplit(signed).query)
    policy, signature = cloudfront_b64decode(query["Policy"][0]), cloudfront_b64decode(query["Signature"][0])
    assert query["Key-Pair-Id"] == [KEY_PAIR_ID]
    assert policy.decode() == botocore_signer.build_policy(
        resource, utc(EXPIRES), None if not_before is None else utc(not_before), ip)
    assert policy_verifies(policy, signature, public_key)


def test_custom_policy_of_the_url_itself_when_only_a_start_or_an_ip_is_given(cloudfront):
    url = CLOUDFRONT_URLS[0]
    signed = cloudfront.sign_url(url, expires=EXPIRES, ip="192.0.2.7")
    policy = cloudfront_b64decode(parse_qs(urlsplit(signed).query)["Policy"][0]).decode()
    assert policy == cloudfront.policy(url, expires=EXPIRES, ip="192.0.2.7")


@pytest.mark.parametrize("resource, not_before, ip", CUSTOM_POLICIES)
def test_cookies_carry_a_custom_policy_that_verifies(cloudfront, botocore_signer, public_key, resource, not_before, ip):
    cookies = cloudfront.cookies(resource, expires=EXPIRES, not_before=not_before, ip=ip)
    assert list(cookies) == ["CloudFront-Policy", "CloudFront-Signature", "CloudFront-Key-Pair-Id"]
    assert cookies["CloudFront-Key-Pair-Id"] == KEY_PAIR_ID
    assert all(re.fullmatch(r"[A-Za-z0-9_~-]+", cookies[name]) for name in ("CloudFront-Policy", "CloudFront-Signature"))
    policy = cloudfront_b64decode(cookies["CloudFront-Policy"])
    assert policy.decode() == botocore_signer.build_policy(
        resource, utc(EXPIRES), None if not_before is None else utc(not_before), ip)
    assert policy_verifies(policy, cloudfront_b64decode(cookies["CloudFront-Signature"]), public_key)


@pytest.mark.parametrize("tamper", [
    lambda policy: policy.replace(str(EXPIRES), str(EXPIRES + 86400)),  # a later expiry
    lambda policy: policy.replace("/videos/*", "/*"),  # a wider resource
    lambda policy: policy.replace(str(NOT_BEFORE), str(NOT_BEFORE - 86400)),  # an earlier start
], ids=["later-expiry", "wider-resource", "earlier-start"])
def test_a_tampered_policy_does_not_verify(cloudfront, public_key, tamper):
    cookies = cloudfront.cookies(CUSTOM_POLICIES[1][0], expires=EXPIRES, not_before=NOT_BEFORE)
    policy, signature = (cloudfront_b64decode(cookies[name]) for name in ("CloudFront-Policy", "CloudFront-Signature"))
    tampered = tamper(policy.decode()).encode()
    assert tampered != policy
    assert policy_verifies(policy, signature, public_key) and not policy_verifies(tampered, signature, public_key)


def test_a_bare_address_gets_32_bits_and_ipv6_is_refused_as_cloudfront_documents(cloudfront):
    assert '"AWS:SourceIp":"192.0.2.7/32"' in cloudfront.policy(CLOUDFRONT_URLS[0], expires=EXPIRES, ip="192.0.2.7")
    with pytest.raises(ValueError, match="IPv4 only"):
        cloudfront.policy(CLOUDFRONT_URLS[0], expires=EXPIRES, ip="2001:db8::7")


@pytest.mark.parametrize("arguments, message", [
    ({"url": "https://d1.cloudfront.net/a", "expires": 0}, "expires must be a positive"),
    ({"url": "https://d1.cloudfront.net/a", "expires": True}, "expires must be a positive"),
    ({"url": "https://d1.cloudfront.net/a", "expires": EXPIRES, "not_before": EXPIRES}, "must come before"),
    ({"url": "https://d1.cloudfront.net/a", "expires": EXPIRES, "ip": "300.1.1.1"}, "not an IP address"),
    ({"url": "https://d1.cloudfront.net/a", "expires": EXPIRES, "ip": "192.0.2.0/33"}, "not an IP address"),
    ({"url": "https://d1.cloudfront.net/你好", "expires": EXPIRES}, "percent-encode"),
    ({"url": "https://d1.cloudfront.net/a b", "expires": EXPIRES}, "percent-encode"),
    ({"url": "/a.jpg", "expires": EXPIRES}, "must be absolute"),
    ({"url": "https://d1.cloudfront.net/a#top", "expires": EXPIRES}, "fragment"),
    ({"url": "https://d1.cloudfront.net/a?Expires=1", "expires": EXPIRES}, "Expires"),
])
def test_bad_url_arguments_are_one_line_value_errors(cloudfront, arguments, message):
    with pytest.raises(ValueError, match=message) as raised:
        cloudfront.sign_url(**arguments)
    assert "\n" not in str(raised.value)


def _other_keys():
    small = crypto_rsa.generate_private_key(public_exponent=65537, key_size=1024)
    encrypted = small.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.BestAvailableEncryption(b"password"))
    elliptic = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    small_pem = small.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    return [
        (b"not a key at all", "cannot be read"),
        (small_pem[:200], "cannot be read"),
        (encrypted, "encrypted"),
        (elliptic, "must be an RSA key"),
        (small_pem, "1024 bits"),
    ]


@pytest.mark.parametrize("key, message", _other_keys(), ids=["garbage", "truncated", "encrypted", "ec", "1024-bit"])
def test_unusable_key_material_is_a_key_set_error_that_never_quotes_it(key, message):
    with pytest.raises(KeySetError, match=message) as raised:
        CloudFrontSigner(KEY_PAIR_ID, key)
    assert all(line not in raised.value.message for line in key.decode("ascii", "replace").splitlines()[1:2])
    assert "\n" not in raised.value.message


@pytest.mark.parametrize("key_pair_id", ["", "k2jcjmdehxqw5f", "K2JC:DEHX", "A" * 65])
def test_a_malformed_key_pair_id_is_a_key_set_error(pkcs1_pem, key_pair_id):
    with pytest.raises(KeySetError, match="1 to 64 capitals and digits"):
        CloudFrontSigner(key_pair_id, pkcs1_pem)


def test_the_repr_shows_the_key_pair_id_and_never_the_key(cloudfront, pkcs1_pem):
    assert repr(cloudfront) == f"<CloudFrontSigner key_pair_id='{KEY_PAIR_ID}'>"
    assert not any(line.decode() in repr(cloudfront) for line in pkcs1_pem.splitlines()[1:-1])


def test_the_keys_file_secret_is_the_id_and_the_base64_pkcs8_der_and_signs_alike(cloudfront, pkcs1_pem, rsa_key):
    secret = cloudfront_secret(KEY_PAIR_ID, pkcs1_pem)
    der = rsa_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    assert secret == f"{KEY_PAIR_ID}:{base64.b64encode(der).decode()}"
    assert parse_cloudfront_secret(secret) == (KEY_PAIR_ID, der)
    assert cloudfront_secret_problem(secret) is None
    signer = cloudfront_signer_from_secret(secret)
    assert signer.sign_url(CLOUDFRONT_URLS[1], expires=EXPIRES) == cloudfront.sign_url(CLOUDFRONT_URLS[1], expires=EXPIRES)


@pytest.fixture(scope="module")
def secret(pkcs1_pem):
    return cloudfront_secret(KEY_PAIR_ID, pkcs1_pem)


@pytest.mark.parametrize("spoil, problem", [
    (lambda secret: secret.partition(":")[2], "no ':' found"),
    (lambda secret: "apka1:" + secret.partition(":")[2], "1 to 64 capitals and digits"),
    (lambda secret: KEY_PAIR_ID + ":*" + secret.partition(":")[2][1:], "not valid base64"),
    (lambda secret: secret[:-301], "not valid base64"),
    (lambda secret: secret[:-12], "cannot be read"),
    (lambda secret: KEY_PAIR_ID + ":", "empty"),
], ids=["no-id", "lower-case-id", "bad-alphabet", "cut-mid-quantum", "cut", "empty"])
def test_a_spoilt_keys_file_secret_gets_a_one_line_problem_that_never_quotes_it(secret, spoil, problem):
    spoilt = spoil(secret)
    found = cloudfront_secret_problem(spoilt)
    assert found is not None and problem in found and "\n" not in found
    assert not any(chunk in found for chunk in re.findall(r"[A-Za-z0-9+/]{16}", spoilt))


# Cloud CDN: Google's documented algorithm, written out independently of signing.cdn.cloudcdn.

GOOGLE_KEY_NAME, GOOGLE_KEY, GOOGLE_EXPIRES = "my-key", "nZtRohdNF9m3cKM24IcK4w==", 1549751401


def google_signature(base64_key, signed):
    digest = hmac.new(base64.urlsafe_b64decode(base64_key), signed.encode("utf-8"), hashlib.sha1).digest()
    return base64.urlsafe_b64encode(digest).decode("utf-8")


def google_sign_url(url, key_name, base64_key, expires):
    separator = "&" if urlsplit(url).query else "?"
    url_to_sign = f"{url}{separator}Expires={expires}&KeyName={key_name}"
    return f"{url_to_sign}&Signature={google_signature(base64_key, url_to_sign)}"


def google_sign_url_prefix(url, prefix, key_name, base64_key, expires):
    encoded = base64.urlsafe_b64encode(prefix.encode("utf-8")).decode("utf-8")
    policy = f"URLPrefix={encoded}&Expires={expires}&KeyName={key_name}"
    separator = "&" if urlsplit(url).query else "?"
    return f"{url}{separator}{policy}&Signature={google_signature(base64_key, policy)}"


def google_sign_cookie(prefix, key_name, base64_key, expires):
    encoded = base64.urlsafe_b64encode(prefix.encode("utf-8")).decode("utf-8")
    policy = f"URLPrefix={encoded}:Expires={expires}:KeyName={key_name}"
    return f"{policy}:Signature={google_signature(base64_key, policy)}"


def google_accepts(signed, base64_key):
    """Cloud CDN's check: the signature of everything before ``Signature=`` (and after the URL, for a prefix)."""
    separator = ":" if signed.startswith("URLPrefix=") and ":Signature=" in signed else "&"
    covered, _, signature = signed.rpartition(f"{separator}Signature=")
    if "URLPrefix=" in covered and separator == "&":
        covered = covered[covered.index("URLPrefix="):]
    return hmac.compare_digest(signature, google_signature(base64_key, covered))


@pytest.fixture
def cloudcdn():
    return CloudCDNSigner.from_base64url(GOOGLE_KEY_NAME, GOOGLE_KEY)


# Google's known answers: GoogleCloudPlatform/python-docs-samples, cdn/snippets_test.py.
@pytest.mark.parametrize("url, expected", [
    ("http://35.186.234.33/index.html",
     "http://35.186.234.33/index.html?Expires=1549751401&KeyName=my-key&Signature=CRFqQnVfFyiUyR63OQf-HRUpIwc="),
    ("http://www.example.com/",
     "http://www.example.com/?Expires=1549751401&KeyName=my-key&Signature=OqDUFfHpN5Vxga6r80bhsgxKves="),
    ("http://www.example.com/some/path?some=query&another=param",
     "http://www.example.com/some/path?some=query&another=param&Expires=1549751401&KeyName=my-key"
     "&Signature=9Q9TCxSju8-W5nUkk5CuTrun2_o="),
])
def test_signed_url_matches_googles_published_examples(cloudcdn, url, expected):
    assert cloudcdn.sign_url(url, expires=GOOGLE_EXPIRES) == expected
    assert google_sign_url(url, GOOGLE_KEY_NAME, GOOGLE_KEY, GOOGLE_EXPIRES) == expected


@pytest.mark.parametrize("url, prefix, expected", [
    ("http://35.186.234.33/index.html", "http://35.186.234.33/",
     "http://35.186.234.33/index.html?URLPrefix=aHR0cDovLzM1LjE4Ni4yMzQuMzMv&Expires=1549751401&KeyName=my-key"
     "&Signature=j7HYgoQ8dIOVsW3Rw4cpkjWfRMA="),
    ("http://www.example.com/", "http://www.example.com/",
     "http://www.example.com/?URLPrefix=aHR0cDovL3d3dy5leGFtcGxlLmNvbS8=&Expires=1549751401&KeyName=my-key"
     "&Signature=UdT5nVks6Hh8QFMJI9kmXuXYBk0="),
    ("http://www.example.com/some/path?some=query&another=param", "http://www.example.com/some/",
     "http://www.example.com/some/path?some=query&another=param&URLPrefix=aHR0cDovL3d3dy5leGFtcGxlLmNvbS9zb21lLw==&"
     "Expires=1549751401&KeyName=my-key&Signature=3th4ThmpS95I1TAKYyYSCSq3dnQ="),
])
def test_prefix_signed_url_matches_googles_published_examples(cloudcdn, url, prefix, expected):
    assert cloudcdn.sign_url_prefix(url, prefix=prefix, expires=GOOGLE_EXPIRES) == expected


@pytest.mark.parametrize("prefix, expected", [
    ("http://35.186.234.33/index.html",
     "URLPrefix=aHR0cDovLzM1LjE4Ni4yMzQuMzMvaW5kZXguaHRtbA==:Expires=1549751401:KeyName=my-key"
     ":Signature=uImwlOBCPs91mlCyG9vyyZRrNWU="),
    ("http://www.example.com/foo/",
     "URLPrefix=aHR0cDovL3d3dy5leGFtcGxlLmNvbS9mb28v:Expires=1549751401:KeyName=my-key"
     ":Signature=Z9uYAu73YHioRScZDxnP-TnS274="),
])
def test_signed_cookie_matches_googles_published_examples(cloudcdn, prefix, expected):
    assert cloudcdn.cookie(prefix, expires=GOOGLE_EXPIRES) == {"Cloud-CDN-Cookie": expected}


OTHER_KEY = base64.urlsafe_b64encode(bytes(range(16))).decode()


@pytest.mark.parametrize("url", ["https://media.example.com/videos/a%20b.mp4", "https://media.example.com/v/?q=1&r="])
def test_every_form_equals_the_documented_algorithm_for_another_key(url):
    signer = CloudCDNSigner.from_base64url("key-2", OTHER_KEY.rstrip("="))
    prefix = "https://media.example.com/v"
    assert signer.sign_url(url, expires=EXPIRES) == google_sign_url(url, "key-2", OTHER_KEY, EXPIRES)
    assert signer.sign_url_prefix(url, prefix=prefix, expires=EXPIRES) == google_sign_url_prefix(
        url, prefix, "key-2", OTHER_KEY, EXPIRES)
    assert signer.cookie(prefix, expires=EXPIRES)["Cloud-CDN-Cookie"] == google_sign_cookie(
        prefix, "key-2", OTHER_KEY, EXPIRES)


def _cloudcdn_forms(signer):
    url = "https://media.example.com/videos/a.mp4"
    return {
        "url": signer.sign_url(url, expires=EXPIRES),
        "prefix": signer.sign_url_prefix(url, prefix="https://media.example.com/videos/", expires=EXPIRES),
        "cookie": signer.cookie("https://media.example.com/videos/", expires=EXPIRES)["Cloud-CDN-Cookie"],
    }


WIDER_PREFIX = base64.urlsafe_b64encode(b"https://media.example.com/").decode()


def later_expiry(signed):
    return signed.replace(f"Expires={EXPIRES}", f"Expires={EXPIRES + 86400}")


def wider_prefix(signed):
    return re.sub(r"URLPrefix=[^&:]+", f"URLPrefix={WIDER_PREFIX}", signed)


def other_key_name(signed):
    return signed.replace("KeyName=key-2", "KeyName=key-3")


def other_url(signed):
    return signed.replace("/videos/a.mp4", "/videos/b.mp4")


# The prefix forms cover their fields only, so another URL under the prefix keeps its signature.
@pytest.mark.parametrize("form, tamper", [
    ("url", later_expiry), ("url", other_key_name), ("url", other_url),
    ("prefix", later_expiry), ("prefix", wider_prefix), ("prefix", other_key_name),
    ("cookie", later_expiry), ("cookie", wider_prefix), ("cookie", other_key_name),
])
def test_a_tampered_field_fails_the_reference_check(form, tamper):
    signed = _cloudcdn_forms(CloudCDNSigner.from_base64url("key-2", OTHER_KEY))[form]
    tampered = tamper(signed)
    assert tampered != signed
    assert google_accepts(signed, OTHER_KEY) and not google_accepts(tampered, OTHER_KEY)


def test_another_url_under_the_prefix_keeps_the_prefix_signature():
    signed = _cloudcdn_forms(CloudCDNSigner.from_base64url("key-2", OTHER_KEY))["prefix"]
    assert google_accepts(other_url(signed), OTHER_KEY)


@pytest.mark.parametrize("call, message", [
    (lambda s: s.sign_url_prefix("https://a.example/x", prefix="https://b.example/", expires=EXPIRES), "does not start"),
    (lambda s: s.cookie("https://a.example/x?y=1", expires=EXPIRES), "must not hold a query"),
    (lambda s: s.cookie("https://a.example:443/x/", expires=EXPIRES), "must not name a port"),
    (lambda s: s.cookie("ftp://a.example/", expires=EXPIRES), "http:// or https://"),
    (lambda s: s.sign_url("https://a.example/x?KeyName=k", expires=EXPIRES), "KeyName"),
    (lambda s: s.sign_url("https://a.example/x", expires=-1), "expires must be a positive"),
])
def test_bad_cloudcdn_arguments_are_value_errors(cloudcdn, call, message):
    with pytest.raises(ValueError, match=message):
        call(cloudcdn)


@pytest.mark.parametrize("secret, problem", [
    ("nZtRohdNF9m3cKM24IcK4w", None),  # padding is optional
    ("nZtRohdNF9m3cKM24IcK4w==\n", None),  # as `head -c 16 /dev/urandom | base64 | tr +/ -_` writes it
    ("nZtRohdNF9m3cKM24IcK", "16 bytes"),
    ("nZtRohdNF9m3cKM24IcK4w+/", "base64url"),
    ("nZtR=ohdNF9m3cKM24IcK4w", "base64url"),
    ("n", "base64url of 16 bytes"),
])
def test_cloudcdn_secret_problems_are_one_line_and_never_quote_the_secret(secret, problem):
    found = cloudcdn_secret_problem(secret)
    if problem is None:
        assert found is None and cloudcdn_signer_from_secret("k", secret).sign_url(
            "https://a.example/", expires=EXPIRES) == google_sign_url("https://a.example/", "k", GOOGLE_KEY, EXPIRES)
    else:
        assert problem in found and secret.strip() not in found


@pytest.mark.parametrize("key_name", ["", "my key", "k" * 64, "ключ"])
def test_a_bad_key_name_is_a_key_set_error(key_name):
    with pytest.raises(KeySetError, match="key name"):
        CloudCDNSigner(key_name, bytes(16))


def test_the_cloudcdn_repr_never_shows_the_key(cloudcdn):
    assert repr(cloudcdn) == "<CloudCDNSigner key_name='my-key'>"


# Akamai EdgeAuth

AKAMAI_KEY = "52a152a152a152a152a152a152a152a1"


@pytest.mark.parametrize("algorithm", ["sha256", "sha1", "md5"])
@pytest.mark.parametrize("not_before, ip", [(None, None), (NOT_BEFORE, None), (None, "192.0.2.7"),
                                             (NOT_BEFORE, "2001:db8::7")])
def test_url_and_acl_tokens_equal_akamai_edgeauths(algorithm, not_before, ip):
    theirs = EdgeAuth(key=AKAMAI_KEY, algorithm=algorithm, start_time=not_before, end_time=EXPIRES, ip=ip)
    ours = EdgeAuthSigner.from_hex(AKAMAI_KEY, algorithm=algorithm)
    limits = {"expires": EXPIRES, "not_before": not_before, "ip": ip}
    assert ours.url_token("/videos/a%20b.mp4", **limits) == theirs.generate_url_token("/videos/a%20b.mp4")
    assert ours.acl_token("/videos/*", **limits) == theirs.generate_acl_token("/videos/*")
    assert ours.acl_token(["/videos/*", "/posters/?.jpg"], **limits) == theirs.generate_acl_token(
        ["/videos/*", "/posters/?.jpg"])


def test_a_url_token_path_may_hold_a_tilde_since_it_is_not_carried():
    token = EdgeAuthSigner.from_hex(AKAMAI_KEY).url_token("/~user/a.mp4", expires=EXPIRES)
    assert token == EdgeAuth(key=AKAMAI_KEY, end_time=EXPIRES).generate_url_token("/~user/a.mp4")


def test_a_url_token_hashes_the_path_but_does_not_carry_it():
    token = EdgeAuthSigner.from_hex(AKAMAI_KEY).url_token("/videos/a.mp4", expires=EXPIRES, not_before=NOT_BEFORE,
                                                          ip="192.0.2.7")
    assert re.fullmatch(rf"ip=192\.0\.2\.7~st={NOT_BEFORE}~exp={EXPIRES}~hmac=[0-9a-f]{{64}}", token)


@pytest.mark.parametrize("url, path", [
    ("https://example.akamaized.net/videos/a.mp4", "/videos/a.mp4"),
    ("https://example.akamaized.net/videos/a.mp4?lang=en", "/videos/a.mp4"),
    ("https://example.akamaized.net", "/"),
])
def test_sign_url_appends_the_url_token_of_the_path(url, path):
    token = EdgeAuth(key=AKAMAI_KEY, end_time=EXPIRES).generate_url_token(path)
    separator = "&" if "?" in url else "?"
    assert EdgeAuthSigner.from_hex(AKAMAI_KEY).sign_url(url, expires=EXPIRES) == f"{url}{separator}__token__={token}"


def test_the_cookie_is_named_after_the_token_and_holds_the_acl_token():
    signer = EdgeAuthSigner.from_hex(AKAMAI_KEY, token_name="hdnts")
    theirs = EdgeAuth(key=AKAMAI_KEY, token_name="hdnts", end_time=EXPIRES).generate_acl_token("/videos/*")
    assert signer.cookie("/videos/*", expires=EXPIRES) == {"hdnts": theirs}


def akamai_hmac_matches(token, *, url=None):
    """Recompute a token's HMAC as the edge does, from its fields (and the request path for a URL token)."""
    fields, _, digest = token.rpartition("~hmac=")
    covered = fields if url is None else f"{fields}~url={url}"
    return hmac.compare_digest(digest, hmac.new(bytes.fromhex(AKAMAI_KEY), covered.encode(), hashlib.sha256).hexdigest())


@pytest.mark.parametrize("tamper", [
    lambda token: token.replace(f"exp={EXPIRES}", f"exp={EXPIRES + 86400}"),
    lambda token: token.replace(f"st={NOT_BEFORE}", f"st={NOT_BEFORE - 86400}"),
    lambda token: token.replace("ip=192.0.2.7", "ip=192.0.2.8"),
    lambda token: token.replace("acl=/videos/*", "acl=/*"),
], ids=["later-expiry", "earlier-start", "other-ip", "wider-acl"])
def test_a_tampered_token_no_longer_matches_a_recomputed_hmac(tamper):
    signer = EdgeAuthSigner.from_hex(AKAMAI_KEY)
    acl_token = signer.acl_token("/videos/*", expires=EXPIRES, not_before=NOT_BEFORE, ip="192.0.2.7")
    url_token = signer.url_token("/videos/a.mp4", expires=EXPIRES, not_before=NOT_BEFORE, ip="192.0.2.7")
    assert akamai_hmac_matches(acl_token) and akamai_hmac_matches(url_token, url="/videos/a.mp4")
    assert not akamai_hmac_matches(tamper(acl_token))
    if tamper(url_token) != url_token:
        assert not akamai_hmac_matches(tamper(url_token), url="/videos/a.mp4")
    assert not akamai_hmac_matches(url_token, url="/videos/b.mp4")


@pytest.mark.parametrize("call, message", [
    (lambda s: s.acl_token("/a~b/*", expires=EXPIRES), "without '~'"),
    (lambda s: s.acl_token(["/a/*", "/b!/*"], expires=EXPIRES), "without '!'"),
    (lambda s: s.acl_token([], expires=EXPIRES), "empty"),
    (lambda s: s.url_token("videos/a.mp4", expires=EXPIRES), "start with '/'"),
    (lambda s: s.url_token("/a.mp4?x=1", expires=EXPIRES), "'?'"),
    (lambda s: s.url_token("/a.mp4", expires=EXPIRES, ip="192.0.2.0/24"), "not an IP address"),
    (lambda s: s.url_token("/a.mp4", expires=EXPIRES, not_before=EXPIRES + 1), "must come before"),
    (lambda s: s.sign_url("https://a.example/x?__token__=1", expires=EXPIRES), "__token__"),
])
def test_bad_akamai_arguments_are_value_errors(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call(EdgeAuthSigner.from_hex(AKAMAI_KEY))


@pytest.mark.parametrize("secret, problem", [
    (AKAMAI_KEY, None), (AKAMAI_KEY.upper() + "\n", None),
    (AKAMAI_KEY[:-1], "even number"), (AKAMAI_KEY[:-2], "at least 16 bytes"), ("zz" * 16, "hex digits"),
])
def test_akamai_secret_problems_never_quote_the_secret(secret, problem):
    found = akamai_secret_problem(secret)
    if problem is None:
        assert found is None and akamai_signer_from_secret(secret).acl_token("/*", expires=EXPIRES) == EdgeAuth(
            key=AKAMAI_KEY, end_time=EXPIRES).generate_acl_token("/*")
    else:
        assert problem in found and secret.strip() not in found


@pytest.mark.parametrize("arguments, error", [
    ({"key": bytes(15)}, KeySetError), ({"key": bytes(16), "algorithm": "sha512"}, ValueError),
    ({"key": bytes(16), "token_name": "a b"}, ValueError),
])
def test_bad_akamai_configuration_is_refused_in_the_constructor(arguments, error):
    with pytest.raises(error):
        EdgeAuthSigner(**arguments)


def test_the_akamai_repr_never_shows_the_key():
    assert AKAMAI_KEY not in repr(EdgeAuthSigner.from_hex(AKAMAI_KEY)).lower()
