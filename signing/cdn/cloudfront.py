"""Amazon CloudFront signed URLs and signed cookies (RSA-SHA1, PKCS#1 v1.5).

A CloudFront link carries a *policy*, the JSON statement CloudFront checks the request against::

    {"Statement":[{"Resource":"URL","Condition":{"DateLessThan":{"AWS:EpochTime":E}}}]}

The ``Condition`` may also hold ``"IpAddress":{"AWS:SourceIp":"CIDR"}`` (IPv4) and then
``"DateGreaterThan":{"AWS:EpochTime":S}``, in that order; no whitespace anywhere. The layout and
key order are botocore's ``CloudFrontSigner.build_policy``, so the two give equal strings.

- *Canned policy* (only a URL and an expiry): the policy is not sent; CloudFront rebuilds it from
  the URL and ``Expires``. ``URL?Expires=E&Signature=S&Key-Pair-Id=K``.
- *Custom policy* (a wildcard resource, a start time or a client address):
  ``URL?Policy=P&Signature=S&Key-Pair-Id=K``, or the cookies ``CloudFront-Policy``,
  ``CloudFront-Signature`` and ``CloudFront-Key-Pair-Id``.

``S`` is the RSA-SHA1 PKCS#1 v1.5 signature of the policy's bytes; ``P`` and ``S`` are in
CloudFront's base64: the standard alphabet with ``+`` -> ``-``, ``=`` -> ``_``, ``/`` -> ``~``,
so they need no escaping in a query or a cookie. ``K`` is the CloudFront public key id
(``K2JCJMDEHXQW5F``) or a legacy key-pair id (``APKA...``).

A keys file keeps a CloudFront key as one line, ``KEYPAIRID:BASE64`` with the standard base64
(no newlines) of the PKCS#8 DER private key: the id holds no ``:`` and base64 none, so it splits
unambiguously. ``cryptography`` is imported only when a CloudFront key is read.

"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
import re
from typing import TYPE_CHECKING

from ..exc import KeySetError
from .urls import append_query, checked_url, opening_time, printable_ascii, unix_time

if TYPE_CHECKING:  # pragma: no cover - typing only; the import is lazy at run time
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

_KEY_PAIR_ID = re.compile(r"[A-Z0-9]{1,64}")
_TO_CLOUDFRONT_BASE64 = bytes.maketrans(b"+=/", b"-_~")
_RESERVED_ARGUMENTS = frozenset({"Expires", "Policy", "Signature", "Key-Pair-Id"})
# CloudFront key groups take 2048-bit RSA keys; anything shorter is refused before AWS does.
_MIN_KEY_BITS = 2048


class CloudFrontSigner:
    """Signs CloudFront URLs and cookies with one key pair; the private key never leaves it."""

    def __init__(self, key_pair_id: str, private_key: bytes) -> None:
        """``private_key`` is an unencrypted RSA key, PEM (PKCS#1 or PKCS#8) or DER.

        Raises :class:`~signing.exc.KeySetError` for a malformed id or unusable key material.
        """
        self.key_pair_id = checked_key_pair_id(key_pair_id)
        self._private_key = _load_rsa_private_key(private_key)

    def sign_url(
        self, url: str, *, expires: int, resource: str | None = None,
        not_before: int | None = None, ip: str | None = None,
    ) -> str:
        """``url`` signed until ``expires`` (Unix seconds).

        A canned policy when only ``expires`` is given, else a custom policy on ``resource``
        (default: the URL itself), optionally opening at ``not_before`` and bound to ``ip``.
        """
        checked_url(url, reserved=_RESERVED_ARGUMENTS)
        if resource is None and not_before is None and ip is None:
            policy = self.policy(url, expires=expires)
            first = f"Expires={expires}"
        else:
            policy = self.policy(url if resource is None else resource, expires=expires,
                                 not_before=not_before, ip=ip)
            first = f"Policy={cloudfront_base64(policy.encode())}"
        signature = cloudfront_base64(self.signature(policy))
        return append_query(url, f"{first}&Signature={signature}&Key-Pair-Id={self.key_pair_id}")

    def policy(self, resource: str, *, expires: int, not_before: int | None = None, ip: str | None = None) -> str:
        """The policy JSON, laid out as botocore's ``build_policy`` does (a canned one if only ``expires``)."""
        checked_resource(resource)
        expires = unix_time("expires", expires)
        condition: dict[str, dict[str, int | str]] = {"DateLessThan": {"AWS:EpochTime": expires}}
        if ip is not None:
            condition["IpAddress"] = {"AWS:SourceIp": source_ip_cidr(ip)}
        if not_before is not None:
            condition["DateGreaterThan"] = {"AWS:EpochTime": opening_time(not_before, expires)}
        statement = {"Statement": [{"Resource": resource, "Condition": condition}]}
        return json.dumps(statement, separators=(",", ":"))

    def cookies(
        self, resource: str, *, expires: int, not_before: int | None = None, ip: str | None = None,
    ) -> dict[str, str]:
        """The three signed cookies of a custom policy on ``resource`` (wildcards allowed)."""
        policy = self.policy(resource, expires=expires, not_before=not_before, ip=ip)
        return {
            "CloudFront-Policy": cloudfront_base64(policy.encode()),
            "CloudFront-Signature": cloudfront_base64(self.signature(policy)),
            "CloudFront-Key-Pair-Id": self.key_pair_id,
        }

    def signature(self, policy: str) -> bytes:
        """The raw RSA-SHA1 PKCS#1 v1.5 signature of ``policy``'s UTF-8 bytes."""
        from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
        from cryptography.hazmat.primitives.hashes import SHA1

        return self._private_key.sign(policy.encode(), PKCS1v15(), SHA1())

    def __repr__(self) -> str:
        return f"<CloudFrontSigner key_pair_id={self.key_pair_id!r}>"


def cloudfront_base64(data: bytes) -> str:
    """``data`` in CloudFront's base64: standard alphabet, ``+=/`` replaced by ``-_~``."""
    return base64.b64encode(data).translate(_TO_CLOUDFRONT_BASE64).decode()


def cloudfront_secret(key_pair_id: str, private_key: bytes) -> str:
    """The keys-file form of a CloudFront key: ``KEYPAIRID:BASE64_OF_PKCS8_DER`` (KeySetError if unusable)."""
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    key_pair_id = checked_key_pair_id(key_pair_id)
    der = _load_rsa_private_key(private_key).private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    return f"{key_pair_id}:{base64.b64encode(der).decode()}"


def parse_cloudfront_secret(secret: str) -> tuple[str, bytes]:
    """``(key_pair_id, der)`` from ``KEYPAIRID:BASE64``; KeySetError (never quoting it) if malformed."""
    key_pair_id, colon, encoded = secret.strip().partition(":")
    if not colon:
        raise KeySetError("a CloudFront key must be KEYPAIRID:BASE64_OF_PKCS8_DER (no ':' found)")
    checked_key_pair_id(key_pair_id, quote=False)
    try:
        der = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise KeySetError(f"CloudFront key {key_pair_id}: the private key is not valid base64 "
                          "(standard alphabet, one line)") from None
    if not der:
        raise KeySetError(f"CloudFront key {key_pair_id}: the private key is empty")
    return key_pair_id, der


def cloudfront_secret_problem(secret: str) -> str | None:
    """What is wrong with a keys file's CloudFront secret, in one line, or None if it is usable."""
    try:
        signer_from_secret(secret)
    except KeySetError as error:
        return error.message
    return None


@functools.lru_cache(maxsize=32)
def signer_from_secret(secret: str) -> CloudFrontSigner:
    """The signer of a keys file's ``KEYPAIRID:BASE64_OF_PKCS8_DER`` secret.

    Cached: a key set is checked and its signers built several times per change of the keys,
    and parsing an RSA key is the costly part (the secret is held by the key set anyway)."""
    key_pair_id, der = parse_cloudfront_secret(secret)
    return CloudFrontSigner(key_pair_id, der)


def checked_key_pair_id(key_pair_id: str, *, quote: bool = True) -> str:
    """``key_pair_id`` if it looks like an AWS id (capitals and digits, 1 to 64), else KeySetError.

    ``quote=False`` keeps the value out of the message: read from a secret, it may be key material.
    """
    if not isinstance(key_pair_id, str) or not _KEY_PAIR_ID.fullmatch(key_pair_id):
        shown = f" {key_pair_id!r}" if quote and isinstance(key_pair_id, str) and len(key_pair_id) <= 70 else ""
        raise KeySetError(f"the CloudFront key-pair id{shown} must be 1 to 64 capitals and digits, "
                          "e.g. K2JCJMDEHXQW5F or APKA...")
    return key_pair_id


def source_ip_cidr(ip: str) -> str:
    """``ip`` as CloudFront's ``AWS:SourceIp``: an IPv4 CIDR, a bare address getting /32.

    IPv6 is refused: AWS documents ``IpAddress`` for IPv4 only, and asks for IPv6 to be off on a
    distribution whose policies bind addresses (a viewer on IPv6 could never match).
    """
    try:
        if "%" in ip:
            raise ValueError(ip)
        interface = ipaddress.ip_interface(ip)
    except ValueError:
        raise ValueError(f"ip {ip!r} is not an IP address or CIDR range (e.g. 192.0.2.7 or 192.0.2.0/24)") from None
    if interface.version != 4:
        raise ValueError(f"ip {ip!r} is IPv6; CloudFront's IpAddress condition takes IPv4 only")
    return str(interface)


def checked_resource(resource: str) -> str:
    """``resource`` if it can stand in a policy: printable ASCII (percent-encode the rest)."""
    if not resource or not printable_ascii(resource):
        raise ValueError(f"resource {resource!r} must be non-empty printable ASCII: percent-encode "
                         "spaces and non-ASCII characters as the request will carry them")
    return resource


def _load_rsa_private_key(private_key: bytes) -> RSAPrivateKey:
    """The RSA key in PEM (PKCS#1 or PKCS#8) or DER bytes; KeySetError, never quoting them, if not."""
    try:
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
        from cryptography.hazmat.primitives.serialization import load_der_private_key, load_pem_private_key
    except ImportError:
        raise KeySetError("CloudFront signing needs the 'cryptography' package (pip install cryptography)") from None
    if not isinstance(private_key, bytes):
        raise KeySetError("the CloudFront private key must be bytes (PEM or DER)")
    load = load_pem_private_key if private_key.lstrip().startswith(b"-----BEGIN") else load_der_private_key
    try:
        key = load(private_key, password=None)
    except TypeError:
        raise KeySetError("the CloudFront private key is encrypted: decrypt it first "
                          "(openssl pkey -in KEY.pem -out PLAIN.pem)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeySetError("the CloudFront private key cannot be read: expected an RSA private key, "
                          "PEM (PKCS#1 or PKCS#8) or DER") from None
    if not isinstance(key, RSAPrivateKey):
        raise KeySetError("the CloudFront private key must be an RSA key")
    if key.key_size < _MIN_KEY_BITS:
        raise KeySetError(f"the CloudFront private key has {key.key_size} bits; CloudFront takes 2048-bit RSA keys")
    return key
