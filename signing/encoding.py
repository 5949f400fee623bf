"""Helpers shared by the signers: base64url and numbers as nginx reads them, lifetimes in seconds, UTC times."""

from __future__ import annotations

import base64
import binascii
import functools
import time
from collections.abc import Callable
from datetime import timedelta

# nginx's ngx_decode_base64url accepts exactly this alphabet; '=' ends the input.
_BASE64URL_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
# nginx's ngx_atotm refuses values above the largest 64-bit time_t.
_MAX_TIME_T = 2**63 - 1


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


def nginx_atotm(text: bytes) -> int:
    """nginx's ``ngx_atotm``: decimal digits to an int, or -1 when empty, not digits or too big."""
    if not text or not text.isdigit() or not text.isascii():
        return -1
    value = int(text)
    return value if value <= _MAX_TIME_T else -1


def ttl_seconds(ttl: int | timedelta) -> int:
    """A lifetime as whole seconds; ValueError unless it is a positive int or timedelta."""
    seconds = int(ttl.total_seconds()) if isinstance(ttl, timedelta) else ttl
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return seconds


@functools.lru_cache(maxsize=256)
def utc_iso(moment: int) -> str:
    """Unix seconds as ISO 8601 UTC (``2026-11-23T22:00:00Z``): the one way times are printed.

    Cached, since every link minted in one second shares its expiry.
    """
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


class LinkClock:
    """When a signer's links expire: ``clock`` read in whole seconds, plus a TTL rounded up to
    a multiple of ``expiry_bucket`` (0 or 1: not rounded). Shared by every target's signer."""

    clock: Callable[[], float]
    expiry_bucket: int

    def get_timestamp(self) -> int:
        """Now, in whole Unix seconds: the one place a signer reads the time."""
        return int(self.clock())

    def expires_for(self, ttl: int | timedelta) -> int:
        """The ``expires`` value for a link that must live at least ``ttl`` seconds from now."""
        expires = self.get_timestamp() + ttl_seconds(ttl)
        bucket = self.expiry_bucket
        return expires if bucket <= 1 else -(-expires // bucket) * bucket
