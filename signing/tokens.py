"""The two token algorithms, as the nginx side computes them.

``md5``: nginx's stock ``secure_link_md5``, the unpadded base64url MD5 of the signed string,
whose last field is the secret. ``hmac-sha256``: checked by njs (nginx/secure_link.js), the
unpadded base64url HMAC-SHA256 of the signed string without the secret field, keyed by the
secret; it travels in its own argument (``hmac=``), never in ``md5=``.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re

HMAC_TOKEN_LENGTH = 43  # 32 bytes in unpadded base64url
# The expires rule of the njs check: 1 to 15 digits (exact in a JavaScript number), above 0.
_HMAC_EXPIRES = re.compile(rb"[0-9]{1,15}")
_TO_BASE64URL = bytes.maketrans(b"+/", b"-_")
_b2a_base64 = binascii.b2a_base64


def token_for(signed_string: bytes) -> str:
    """The ``md5`` argument nginx expects for ``signed_string``: unpadded base64url MD5."""
    # 16 bytes are 22 base64 characters, "==" and a newline; binascii and translate run in C.
    return _b2a_base64(hashlib.md5(signed_string).digest())[:22].translate(_TO_BASE64URL).decode()


def hmac_token_for(secret: bytes, message: bytes) -> str:
    """The ``hmac`` token for ``message``: unpadded base64url HMAC-SHA256 keyed by ``secret``."""
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return _b2a_base64(digest)[:HMAC_TOKEN_LENGTH].translate(_TO_BASE64URL).decode()


def hmac_expires(text: bytes) -> int:
    """``expires`` as the njs check reads it: the value, or -1 when it is not 1-15 digits."""
    return int(text) if _HMAC_EXPIRES.fullmatch(text) else -1


def hmac_matches(token: bytes, secret: bytes, message: bytes) -> bool:
    """Whether ``token`` is exactly the canonical HMAC token (compared in constant time)."""
    return hmac.compare_digest(token, hmac_token_for(secret, message).encode())
