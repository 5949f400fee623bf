"""The token algorithms, as objects: what each signs, where nginx reads its token, how it checks.

In the style of itsdangerous's ``SigningAlgorithm``: a key carries its algorithm, and every
question that depends on it (the query argument, the nginx include, making and checking a
token) is a method here, never a string compared elsewhere.

``md5``: nginx's stock ``secure_link_md5``, the unpadded base64url MD5 of the signed string
followed by ``|`` and the secret. ``hmac-sha256``: checked by Lua (``secure_link/hmac.lua``),
the unpadded base64url HMAC-SHA256 of the signed string, keyed by the secret. docs/link-format.md
is the specification. ``cloudfront``, ``cloudcdn`` and ``akamai`` keys sign those CDNs' own
link formats (:class:`CDNKeyAlgorithm`; docs/cdn.md).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import importlib
import re
from collections.abc import Callable

from .encoding import nginx_atotm, nginx_base64url_decode

_TO_BASE64URL = bytes.maketrans(b"+/", b"-_")
_b2a_base64 = binascii.b2a_base64
try:
    # CPython's own MD5 (no OpenSSL context to set up) is 2x faster on messages of a few
    # hundred bytes, which is what a signed string is; equal near 4 KB. The same digest.
    from _md5 import md5 as _md5  # type: ignore[import-not-found]
except ImportError:  # a Python built without it
    _md5 = hashlib.md5
# nginx's secure_link refuses a token longer than this before decoding it.
_MAX_MD5_TOKEN_LENGTH = 24
# The expires rule of the Lua check (secure_link/hmac.lua): 1 to 15 digits, exact in a double.
_HMAC_EXPIRES = re.compile(rb"[0-9]{1,15}")
HMAC_TOKEN_LENGTH = 43  # 32 bytes in unpadded base64url

Tokenizer = Callable[[bytes], str]
NGINX_TARGET = "nginx"  # the delivery target of the MD5 and HMAC-SHA256 keys: our own nginx


class SigningAlgorithm:
    """How links of one kind of key are signed and checked; one shared instance per algorithm."""

    name: str  # as written in a keys file: ``kid=NAME:SECRET``
    token_argument: str  # the query argument that carries the token
    nginx_include: str  # the keys include nginx's map for this algorithm reads
    delivery_target = NGINX_TARGET  # who checks its links: our nginx, or a CDN (CDNKeyAlgorithm)

    def message_suffix(self, secret: bytes) -> bytes:
        """What follows the signed string in the hashed message."""
        raise NotImplementedError

    def tokenizer(self, secret: bytes) -> Tokenizer:
        """A function from the hashed message (signed string + suffix) to the token."""
        raise NotImplementedError

    def read_expires(self, text: bytes) -> int:
        """``expires`` as this algorithm's nginx check reads it; -1 when refused."""
        raise NotImplementedError

    def verify(self, token: bytes, secret: bytes, signed: bytes) -> bool:
        """Whether ``token`` is a valid token of the signed string, as nginx decides it."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<SigningAlgorithm {self.name}>"


class MD5Algorithm(SigningAlgorithm):
    """nginx's stock ``secure_link`` module: MD5 over the signed string and the secret."""

    name = "md5"
    token_argument = "md5"
    nginx_include = "secure_link_keys.conf"

    def message_suffix(self, secret: bytes) -> bytes:
        return b"|" + secret

    def tokenizer(self, secret: bytes) -> Tokenizer:
        return md5_token

    def read_expires(self, text: bytes) -> int:
        return nginx_atotm(text)

    def verify(self, token: bytes, secret: bytes, signed: bytes) -> bool:
        # nginx decodes the token leniently (padding optional, low bits of the last
        # character dropped) and compares the 16 bytes.
        if len(token) > _MAX_MD5_TOKEN_LENGTH:
            return False
        digest = nginx_base64url_decode(token)
        if digest is None or len(digest) != 16:
            return False
        return hmac.compare_digest(digest, _md5(signed + b"|" + secret).digest())


class HMACSHA256Algorithm(SigningAlgorithm):
    """HMAC-SHA256 keyed by the secret, checked in nginx by ``secure_link/hmac.lua``."""

    name = "hmac-sha256"
    token_argument = "hmac"
    nginx_include = "secure_link_hmac_keys.conf"

    def message_suffix(self, secret: bytes) -> bytes:
        return b""

    def tokenizer(self, secret: bytes) -> Tokenizer:
        return _HMACTokenizer(secret)

    def read_expires(self, text: bytes) -> int:
        return int(text) if _HMAC_EXPIRES.fullmatch(text) else -1

    def verify(self, token: bytes, secret: bytes, signed: bytes) -> bool:
        # Only the canonical encoding is accepted, compared whole and in constant time.
        return hmac.compare_digest(token, hmac_token(secret, signed).encode())


def md5_token(message: bytes) -> str:
    """The ``md5`` argument for ``message``: unpadded base64url MD5."""
    # 16 bytes are 22 base64 characters, "==" and a newline; binascii and translate run in C.
    return _b2a_base64(_md5(message).digest())[:22].translate(_TO_BASE64URL).decode()


def hmac_token(secret: bytes, message: bytes) -> str:
    """The ``hmac`` argument for ``message``: unpadded base64url HMAC-SHA256 keyed by ``secret``."""
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return _b2a_base64(digest)[:HMAC_TOKEN_LENGTH].translate(_TO_BASE64URL).decode()


class _HMACTokenizer:
    """``hmac_token`` bound to one secret, which its repr never shows (a partial's would)."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def __call__(self, message: bytes) -> str:
        return hmac_token(self._secret, message)

    def __repr__(self) -> str:
        return "<HMAC-SHA256 tokenizer>"


class CDNKeyAlgorithm(SigningAlgorithm):
    """A CDN's key (CloudFront, Cloud CDN, Akamai): it signs that CDN's links, and nginx never sees it.

    Its secret is checked by its module (``signing.cdn.cloudfront`` and the others, imported
    only when such a key is used); nginx's keys includes and the verifiers' key sync leave
    it out. A key set rotates it as any other key: the CDN accepts every key it was given
    (a CloudFront key group, a Cloud CDN backend's keys, Akamai's transition key).
    """

    token_argument = ""
    nginx_include = ""

    def __init__(self, name: str, secret_format: str, *, kid_rule: tuple[str, str] | None = None) -> None:
        self.name = self.delivery_target = name
        self.secret_format = secret_format  # what `kid=NAME:...` holds, for messages
        self._kid_rule = (re.compile(kid_rule[0]), kid_rule[1]) if kid_rule else None

    def secret_problem(self, kid: str, secret: str) -> str | None:
        """One line saying what is wrong with this key (never showing its secret), or None."""
        if self._kid_rule and not self._kid_rule[0].fullmatch(kid):
            return f"key {kid!r}: {self._kid_rule[1]}"
        module = importlib.import_module(f"signing.cdn.{self.name}")
        problem: str | None = getattr(module, f"{self.name}_secret_problem")(secret)
        return None if problem is None else f"key {kid!r} ({self.name}, {self.secret_format}): {problem}"


MD5 = MD5Algorithm()
HMAC_SHA256 = HMACSHA256Algorithm()
CLOUDFRONT = CDNKeyAlgorithm("cloudfront", "cloudfront:KEY_PAIR_ID:BASE64_PKCS8_DER")
CLOUD_CDN = CDNKeyAlgorithm("cloudcdn", "cloudcdn:BASE64URL_KEY", kid_rule=(
    r"[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?", "a Cloud CDN key's id is its key name: a-z, 0-9 and '-', starting with a letter"))
AKAMAI = CDNKeyAlgorithm("akamai", "akamai:HEX_KEY")
NGINX_ALGORITHMS: tuple[SigningAlgorithm, ...] = (MD5, HMAC_SHA256)
ALGORITHMS: dict[str, SigningAlgorithm] = {
    algorithm.name: algorithm for algorithm in (MD5, HMAC_SHA256, CLOUDFRONT, CLOUD_CDN, AKAMAI)
}
DELIVERY_TARGETS = (NGINX_TARGET, CLOUDFRONT.name, CLOUD_CDN.name, AKAMAI.name)
