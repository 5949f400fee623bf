"""Google Cloud CDN signed URLs and signed cookies (HMAC-SHA1 with a 128-bit key).

Every form signs a string with HMAC-SHA1 under the key named ``KeyName`` on the backend, and
sends the digest as ``Signature``, in base64url *with* its ``=`` padding (as Google's samples)::

    URL?Expires=E&KeyName=N&Signature=S                      S over "URL?Expires=E&KeyName=N"
    URL?URLPrefix=P&Expires=E&KeyName=N&Signature=S          S over "URLPrefix=P&Expires=E&KeyName=N"
    Cloud-CDN-Cookie: URLPrefix=P:Expires=E:KeyName=N:Signature=S
                                                             S over "URLPrefix=P:Expires=E:KeyName=N"

``&`` replaces the ``?`` when the URL has a query already. ``E`` is Unix seconds; ``P`` is the
base64url (padded) of the URL prefix, which Cloud CDN matches as a plain string prefix of the
request URL (so end it with ``/``). The plain signed URL covers the whole URL, scheme and host
included; the prefix forms cover only their fields, the URL prefix standing for the URL. The
cookie's fields are joined by ``:``, not ``&``, in what is signed too.

A keys file keeps the key as Google hands it out: the base64url of its 16 bytes (``=`` optional).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from urllib.parse import urlsplit

from ..exc import KeySetError
from .urls import append_query, checked_url, unix_time

KEY_BYTES = 16
_KEY_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_RESERVED_ARGUMENTS = frozenset({"Expires", "KeyName", "Signature", "URLPrefix"})
COOKIE_NAME = "Cloud-CDN-Cookie"


class CloudCDNSigner:
    """Signs Cloud CDN URLs and cookies with one named key, which its repr never shows."""

    def __init__(self, key_name: str, key: bytes) -> None:
        """``key_name`` as added to the backend (1 to 63 of ``A-Za-z0-9_-``); ``key`` its 16 raw bytes."""
        if not isinstance(key_name, str) or not _KEY_NAME.fullmatch(key_name):
            shown = f" {key_name!r}" if isinstance(key_name, str) and len(key_name) <= 70 else ""
            raise KeySetError(f"the Cloud CDN key name{shown} must be 1 to 63 of A-Z, a-z, 0-9, '_' and '-'")
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            raise KeySetError(f"a Cloud CDN key is {KEY_BYTES} bytes (128 bits)")
        self.key_name = key_name
        self._key = key

    @classmethod
    def from_base64url(cls, key_name: str, text: str) -> CloudCDNSigner:
        """The signer of a key in Google's form, base64url of 16 bytes (``=`` padding optional)."""
        return cls(key_name, decode_key(text))

    def sign_url(self, url: str, *, expires: int) -> str:
        """``url`` signed for itself only, until ``expires`` (Unix seconds)."""
        checked_url(url, reserved=_RESERVED_ARGUMENTS)
        unsigned = append_query(url, f"Expires={unix_time('expires', expires)}&KeyName={self.key_name}")
        return f"{unsigned}&Signature={self.signature(unsigned)}"

    def sign_url_prefix(self, url: str, *, prefix: str, expires: int) -> str:
        """``url`` carrying a signature good for every URL that starts with ``prefix``."""
        checked_url(url, reserved=_RESERVED_ARGUMENTS)
        if not url.startswith(prefix):
            raise ValueError(f"URL {url!r} does not start with the prefix {prefix!r}")
        policy = self._policy(prefix, expires, separator="&")
        return append_query(url, f"{policy}&Signature={self.signature(policy)}")

    def cookie(self, prefix: str, *, expires: int) -> dict[str, str]:
        """``{"Cloud-CDN-Cookie": value}``, good for every URL that starts with ``prefix``."""
        policy = self._policy(prefix, expires, separator=":")
        return {COOKIE_NAME: f"{policy}:Signature={self.signature(policy)}"}

    def signature(self, signed: str) -> str:
        """The ``Signature`` of the string ``signed``: padded base64url of its HMAC-SHA1."""
        digest = hmac.new(self._key, signed.encode(), hashlib.sha1).digest()
        return base64.urlsafe_b64encode(digest).decode()

    def _policy(self, prefix: str, expires: int, *, separator: str) -> str:
        fields = (f"URLPrefix={encoded_prefix(prefix)}", f"Expires={unix_time('expires', expires)}",
                  f"KeyName={self.key_name}")
        return separator.join(fields)

    def __repr__(self) -> str:
        return f"<CloudCDNSigner key_name={self.key_name!r}>"


def encoded_prefix(prefix: str) -> str:
    """``URLPrefix``'s value: the padded base64url of an http(s) prefix without query or fragment."""
    checked_url(prefix, reserved=frozenset())
    if "?" in prefix:
        raise ValueError(f"URL prefix {prefix!r} must not hold a query ('?')")
    if urlsplit(prefix).port is not None:
        # Cloud CDN matches the prefix against the request's host and path, which have no port.
        raise ValueError(f"URL prefix {prefix!r} must not name a port: drop it")
    return base64.urlsafe_b64encode(prefix.encode()).decode()


def decode_key(text: str) -> bytes:
    """The 16 bytes of a base64url key (``=`` optional); KeySetError, never quoting it, if not one."""
    text = text.strip()
    if not _BASE64URL.fullmatch(text):
        raise KeySetError("a Cloud CDN key must be base64url ('-' and '_', not '+' and '/')")
    body = text.rstrip("=")
    try:
        key = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise KeySetError("a Cloud CDN key must be base64url of 16 bytes") from None
    if len(key) != KEY_BYTES:
        raise KeySetError(f"a Cloud CDN key is {KEY_BYTES} bytes (22 base64url characters), this one {len(key)}")
    return key


def cloudcdn_secret_problem(secret: str) -> str | None:
    """What is wrong with a keys file's Cloud CDN secret (base64url of 16 bytes), or None."""
    try:
        decode_key(secret)
    except KeySetError as error:
        return error.message
    return None


def signer_from_secret(key_name: str, secret: str) -> CloudCDNSigner:
    """The signer of the key ``key_name`` kept in a keys file as base64url."""
    return CloudCDNSigner.from_base64url(key_name, secret)
