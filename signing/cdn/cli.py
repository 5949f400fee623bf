"""The ``cloudfront``, ``cloudcdn`` and ``akamai`` commands of ``python -m signing``.

Each prints its result last on stdout: the signed URL, the cookies as ``Name=Value`` lines, or
(``akamai``) the token. A bad argument raises ValueError or a LinkError, which ``main`` prints as
``error: ...`` with exit status 2. A ``--key`` given as ``@FILE`` is read from that file; one
written on the command line is visible to every user of the machine in ``ps``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .akamai import EdgeAuthSigner
from .cloudcdn import CloudCDNSigner
from .cloudfront import CloudFrontSigner

_KEY_WARNING = "a key on the command line is visible to other users in ps: prefer @FILE"


def secret_argument(text: str) -> str:
    """``text``, or the stripped contents of the file it names as ``@FILE``."""
    if text.startswith("@"):
        return Path(text[1:]).read_text(encoding="utf-8").strip()
    return text


def command_cloudfront(options: argparse.Namespace) -> int:
    """Print the CloudFront signed URL, or with ``--cookies`` its three cookies; 0."""
    signer = CloudFrontSigner(options.key_pair_id, options.private_key.read_bytes())
    limits = {"expires": options.expires, "not_before": options.not_before, "ip": options.ip}
    if options.cookies:
        cookies = signer.cookies(options.resource or options.url, **limits)
        print("\n".join(f"{name}={value}" for name, value in cookies.items()))
    else:
        print(signer.sign_url(options.url, resource=options.resource, **limits))
    return 0


def command_cloudcdn(options: argparse.Namespace) -> int:
    """Print the Cloud CDN signed URL (for the URL or ``--prefix``), or with ``--cookie`` the cookie; 0."""
    signer = CloudCDNSigner.from_base64url(options.key_name, secret_argument(options.key))
    if options.cookie:
        cookie = signer.cookie(options.prefix or options.url, expires=options.expires)
        print("\n".join(f"{name}={value}" for name, value in cookie.items()))
    elif options.prefix is not None:
        print(signer.sign_url_prefix(options.url, prefix=options.prefix, expires=options.expires))
    else:
        print(signer.sign_url(options.url, expires=options.expires))
    return 0


def command_akamai(options: argparse.Namespace) -> int:
    """Print the EdgeAuth token of ``--url`` or ``--acl``, or with ``--cookie`` as ``NAME=TOKEN``; 0."""
    signer = EdgeAuthSigner.from_hex(secret_argument(options.key), token_name=options.token_name)
    limits = {"expires": options.expires, "not_before": options.not_before, "ip": options.ip}
    if options.url is not None:
        token = signer.url_token(options.url, **limits)
    else:
        token = signer.acl_token(options.acl, **limits)
    print(f"{signer.token_name}={token}" if options.cookie else token)
    return 0


def add_cdn_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``cloudfront``, ``cloudcdn`` and ``akamai`` subcommands; each sets ``run``."""
    cloudfront = commands.add_parser("cloudfront", help="print a CloudFront signed URL or signed cookies")
    cloudfront.add_argument("url", help="the URL to sign, percent-encoded, e.g. https://d111.cloudfront.net/a.mp4")
    cloudfront.add_argument("--key-pair-id", required=True, help="the CloudFront public key id (K2JC...) or key-pair id")
    cloudfront.add_argument("--private-key", type=Path, required=True, metavar="PEMFILE",
                            help="the RSA private key, PEM or DER, unencrypted")
    cloudfront.add_argument("--resource", metavar="PATTERN",
                            help="a custom policy on this resource (wildcards * and ?) instead of the URL")
    _add_limits(cloudfront, ip_help="bind to this IPv4 client address or CIDR range (custom policy)")
    cloudfront.add_argument("--cookies", action="store_true",
                            help="print the three CloudFront-* cookies (custom policy) instead of a URL")
    cloudfront.set_defaults(run=command_cloudfront)

    cloudcdn = commands.add_parser("cloudcdn", help="print a Cloud CDN signed URL or signed cookie")
    cloudcdn.add_argument("url", help="the URL to sign, percent-encoded")
    cloudcdn.add_argument("--key-name", required=True, help="the key's name on the backend service or bucket")
    cloudcdn.add_argument("--key", required=True, metavar="BASE64URL|@FILE",
                          help=f"the 16-byte key in base64url, or @FILE holding it ({_KEY_WARNING})")
    cloudcdn.add_argument("--expires", type=int, required=True, metavar="UNIX", help="expiry, Unix seconds")
    cloudcdn.add_argument("--prefix", metavar="URL", help="sign for every URL starting with this prefix")
    cloudcdn.add_argument("--cookie", action="store_true",
                          help="print the Cloud-CDN-Cookie for --prefix (default: the URL) instead of a URL")
    cloudcdn.set_defaults(run=command_cloudcdn)

    akamai = commands.add_parser("akamai", help="print an Akamai EdgeAuth (Auth Token 2.0) token")
    target = akamai.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", metavar="PATH", help="a URL token for this path, e.g. /videos/a.mp4")
    target.add_argument("--acl", metavar="ACL", help="an ACL token for this pattern, e.g. '/videos/*' ('!' joins several)")
    akamai.add_argument("--key", required=True, metavar="HEX|@FILE",
                        help=f"the secret in hex, or @FILE holding it ({_KEY_WARNING})")
    akamai.add_argument("--token-name", default="__token__", help="the token's name (default __token__)")
    _add_limits(akamai, ip_help="bind to this client address")
    akamai.add_argument("--cookie", action="store_true", help="print the token as a TOKEN_NAME=TOKEN cookie")
    akamai.set_defaults(run=command_akamai)


def _add_limits(sub: argparse.ArgumentParser, *, ip_help: str) -> None:
    sub.add_argument("--expires", type=int, required=True, metavar="UNIX", help="expiry, Unix seconds")
    sub.add_argument("--not-before", type=int, metavar="UNIX", help="refused before this Unix time")
    sub.add_argument("--ip", help=ip_help)
