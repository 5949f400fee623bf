"""Byte helpers shared by the signers: base64url without padding, as nginx reads it."""

from __future__ import annotations

import base64
import binascii

# nginx's ngx_decode_base64url accepts exactly this alphabet; '=' ends the input.
_BASE64URL_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def want_bytes(value: str | bytes, encoding: str = "utf-8") -> bytes:
    """Return ``value`` as bytes, encoding text with ``encoding``."""
    return value.encode(encoding) if isinstance(value, str) else value


def base64url_encode(data: bytes) -> str:
    """Encode ``data`` as unpadded base64url text (RFC 4648 section 5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def nginx_base64url_decode(token: bytes) -> bytes | None:
    """Decode ``token`` exactly as nginx's ``ngx_decode_base64url`` does, or return None.

    Decoding stops at the first ``=`` (so padding and anything after it are ignored),
    a character outside the base64url alphabet fails, and so does a length of 4n+1.
    The low bits of the last character are dropped, as in nginx.
    """
    end = token.find(b"=")
    body = token if end < 0 else token[:end]
    if any(byte not in _BASE64URL_ALPHABET for byte in body) or len(body) % 4 == 1:
        return None
    padded = body + b"=" * (-len(body) % 4)
    try:
        return base64.urlsafe_b64decode(padded)
    except binascii.Error:  # pragma: no cover - the checks above exclude every failure
        return None
