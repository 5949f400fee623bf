"""signing.cdn.cli: the cloudfront, cloudcdn and akamai commands print what the library signs."""

import argparse
import contextlib
import io

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from signing.cdn.akamai import EdgeAuthSigner
from signing.cdn.cli import add_cdn_commands
from signing.cdn.cloudcdn import CloudCDNSigner
from signing.cdn.cloudfront import CloudFrontSigner
from signing.exc import LinkError

EXPIRES, NOT_BEFORE = 2_000_000_000, 1_900_000_000
KEY_PAIR_ID = "K2JCJMDEHXQW5F"
CLOUDCDN_KEY = "nZtRohdNF9m3cKM24IcK4w=="
AKAMAI_KEY = "52a152a152a152a152a152a152a152a1"


def run(argv):
    """(exit status, stdout lines, stderr) of the commands, with ``python -m signing``'s error handling."""
    parser = argparse.ArgumentParser(prog="python -m signing")
    add_cdn_commands(parser.add_subparsers(dest="command", required=True))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            options = parser.parse_args(argv)
            status = options.run(options)
        except SystemExit as exit:
            status = exit.code
        except (ValueError, LinkError, OSError) as error:
            print(f"error: {error}", file=err)
            status = 2
    return status, out.getvalue().splitlines(), err.getvalue()


@pytest.fixture(scope="module")
def pem():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


@pytest.fixture
def pem_file(tmp_path, pem):
    path = tmp_path / "cloudfront.pem"
    path.write_bytes(pem)
    return str(path)


def test_cloudfront_prints_the_librarys_canned_url(pem, pem_file):
    url = "https://d111111abcdef8.cloudfront.net/a%20b.mp4?lang=en"
    status, out, _ = run(["cloudfront", url, "--key-pair-id", KEY_PAIR_ID, "--private-key", pem_file,
                          "--expires", str(EXPIRES)])
    assert status == 0 and out[-1] == CloudFrontSigner(KEY_PAIR_ID, pem).sign_url(url, expires=EXPIRES)


def test_cloudfront_prints_the_librarys_custom_policy_url(pem, pem_file):
    url, resource = "https://d111111abcdef8.cloudfront.net/videos/a.mp4", "https://d111111abcdef8.cloudfront.net/videos/*"
    status, out, _ = run(["cloudfront", url, "--key-pair-id", KEY_PAIR_ID, "--private-key", pem_file,
                          "--expires", str(EXPIRES), "--resource", resource, "--not-before", str(NOT_BEFORE),
                          "--ip", "192.0.2.0/24"])
    expected = CloudFrontSigner(KEY_PAIR_ID, pem).sign_url(url, expires=EXPIRES, resource=resource,
                                                           not_before=NOT_BEFORE, ip="192.0.2.0/24")
    assert status == 0 and out[-1] == expected


def test_cloudfront_cookies_are_the_last_three_lines(pem, pem_file):
    resource = "https://d111111abcdef8.cloudfront.net/videos/*"
    status, out, _ = run(["cloudfront", "https://d111111abcdef8.cloudfront.net/videos/a.mp4", "--key-pair-id",
                          KEY_PAIR_ID, "--private-key", pem_file, "--expires", str(EXPIRES), "--resource", resource,
                          "--cookies"])
    cookies = CloudFrontSigner(KEY_PAIR_ID, pem).cookies(resource, expires=EXPIRES)
    assert status == 0 and out[-3:] == [f"{name}={value}" for name, value in cookies.items()]


@pytest.mark.parametrize("extra", [[], ["--prefix", "https://media.example.com/videos/"],
                                   ["--prefix", "https://media.example.com/videos/", "--cookie"], ["--cookie"]],
                         ids=["url", "prefix", "cookie", "cookie-of-the-url"])
def test_cloudcdn_prints_the_librarys_url_or_cookie(tmp_path, extra):
    url = "https://media.example.com/videos/a.mp4"
    key_file = tmp_path / "cdn.key"
    key_file.write_text(CLOUDCDN_KEY + "\n")
    status, out, _ = run(["cloudcdn", url, "--key-name", "my-key", "--key", f"@{key_file}",
                          "--expires", str(EXPIRES), *extra])
    signer = CloudCDNSigner.from_base64url("my-key", CLOUDCDN_KEY)
    if "--cookie" in extra:
        prefix = extra[1] if "--prefix" in extra else url
        expected = f"Cloud-CDN-Cookie={signer.cookie(prefix, expires=EXPIRES)['Cloud-CDN-Cookie']}"
    elif extra:
        expected = signer.sign_url_prefix(url, prefix=extra[1], expires=EXPIRES)
    else:
        expected = signer.sign_url(url, expires=EXPIRES)
    assert status == 0 and out[-1] == expected


@pytest.mark.parametrize("target, cookie", [(["--url", "/videos/a.mp4"], False), (["--acl", "/videos/*"], False),
                                            (["--acl", "/videos/*"], True)], ids=["url", "acl", "cookie"])
def test_akamai_prints_the_librarys_token(target, cookie):
    status, out, _ = run(["akamai", *target, "--key", AKAMAI_KEY, "--expires", str(EXPIRES),
                          "--not-before", str(NOT_BEFORE), "--ip", "192.0.2.7", *(["--cookie"] if cookie else [])])
    signer, limits = EdgeAuthSigner.from_hex(AKAMAI_KEY), {"expires": EXPIRES, "not_before": NOT_BEFORE, "ip": "192.0.2.7"}
    token = signer.url_token(target[1], **limits) if target[0] == "--url" else signer.acl_token(target[1], **limits)
    assert status == 0 and out[-1] == (f"__token__={token}" if cookie else token)


def test_the_key_options_warn_that_the_command_line_is_visible_in_ps():
    for command in ("cloudcdn", "akamai"):
        status, out, _ = run([command, "--help"])
        assert status == 0 and "visible to other users in ps" in " ".join(" ".join(out).split())


@pytest.mark.parametrize("argv, message", [
    (["cloudcdn", "https://a.example/x", "--key-name", "k", "--key", "bm90LXNpeHRlZW4tYnl0ZXM", "--expires", "1"],
     "16 bytes"),
    (["cloudcdn", "https://a.example/x", "--key-name", "k", "--key", CLOUDCDN_KEY, "--expires", "1",
      "--prefix", "https://b.example/"], "does not start with the prefix"),
    (["cloudcdn", "https://a.example/x", "--key-name", "k", "--key", "@/nonexistent/cdn.key", "--expires", "1"],
     "No such file"),
    (["akamai", "--url", "/a", "--key", "abcdef0123", "--expires", "1"], "at least 16 bytes"),
    (["akamai", "--acl", "/a/*", "--key", AKAMAI_KEY, "--expires", "0"], "expires must be a positive"),
    (["akamai", "--url", "/a", "--acl", "/a", "--key", AKAMAI_KEY, "--expires", "1"], "not allowed with argument"),
    (["akamai", "--url", "/a", "--key", AKAMAI_KEY, "--expires", "soon"], "invalid int value"),
])
def test_bad_input_exits_2_with_an_error_line_that_never_quotes_the_key(argv, message):
    status, out, err = run(argv)
    assert status == 2 and "error:" in err and message in err and out == []
    key = argv[argv.index("--key") + 1]
    assert key.startswith("@") or key not in err


def test_a_bad_cloudfront_key_file_exits_2_without_quoting_it(tmp_path):
    key_file = tmp_path / "bad.pem"
    key_file.write_text("-----BEGIN RSA PRIVATE KEY-----\nTUlJRXBBSUJBQUtDQVFFQTNlY3JldA==\n-----END RSA PRIVATE KEY-----\n")
    status, _, err = run(["cloudfront", "https://d1.cloudfront.net/a", "--key-pair-id", KEY_PAIR_ID,
                          "--private-key", str(key_file), "--expires", str(EXPIRES)])
    assert status == 2 and "error: the CloudFront private key cannot be read" in err and "TUlJ" not in err


def test_a_bad_cloudfront_ip_exits_2(pem_file):
    status, _, err = run(["cloudfront", "https://d1.cloudfront.net/a", "--key-pair-id", KEY_PAIR_ID,
                          "--private-key", pem_file, "--expires", str(EXPIRES), "--ip", "192.0.2.300"])
    assert status == 2 and "error: ip '192.0.2.300' is not an IP address" in err
