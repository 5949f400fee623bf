"""Timed tokens for links that Django itself checks (itsdangerous underneath).

A token is ``URLSafeTimedSerializer(secrets, salt).dumps([subject, ttl])``: the
serializer adds the signing time, the payload names what the token grants (``subject``,
for example ``"image:42"``) and for how long. It is valid while
``issued_at + ttl >= now``, the same "expired means strictly in the past" rule as nginx.
The salt is a namespace per purpose, not a secret: a token for one purpose never
verifies for another. The secrets are a key set's: its active key signs, every key verifies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import itsdangerous

from .encoding import ttl_seconds
from .exc import BadSignature, LinkExpired
from .keys import KeySet


class _ClockedSigner(itsdangerous.TimestampSigner):
    clock: Callable[[], float] = time.time

    def get_timestamp(self) -> int:
        return int(self.clock())


class TimedTokenSigner:
    """Issues and checks expiring tokens bound to a subject, for one purpose (``salt``)."""

    def __init__(self, key_set: KeySet, *, salt: str, clock: Callable[[], float] = time.time) -> None:
        active = key_set.check().active
        if not salt:
            raise ValueError("TimedTokenSigner needs a salt naming the token's purpose")
        signer = type("_Signer", (_ClockedSigner,), {"clock": staticmethod(clock)})
        self.salt = salt
        self.clock = clock
        # itsdangerous signs with the last secret and accepts them all.
        secrets = [key.secret for key in key_set if key is not active] + [active.secret]
        self._serializer = itsdangerous.URLSafeTimedSerializer(secrets, salt=salt, signer=signer)

    def __repr__(self) -> str:
        return f"<TimedTokenSigner salt={self.salt!r}>"

    def sign(self, subject: str, *, ttl: int | timedelta) -> tuple[str, int]:
        """Return ``(token, expires)`` for ``subject``; ``expires`` is in Unix seconds."""
        seconds = ttl_seconds(ttl)
        token = self._serializer.dumps([subject, seconds])
        return token, int(self.clock()) + seconds

    def verify(self, token: str, *, subject: str) -> int:
        """Return the token's expiry (Unix seconds) if it grants ``subject`` now.

        Raises BadSignature for a malformed, tampered or foreign token (another subject,
        another purpose, an unknown key) and LinkExpired once it has expired.
        """
        granted_subject, expires = self.granted(token)
        if granted_subject != subject:
            raise BadSignature(f"the token grants {granted_subject!r}, not {subject!r}")
        return expires

    def granted(self, token: str) -> tuple[str, int]:
        """``(subject, expires)`` of a token that is genuine and unexpired; raises as :meth:`verify`."""
        try:
            payload, issued_at = self._serializer.loads(token, return_timestamp=True)
        except itsdangerous.BadData as error:
            raise BadSignature(f"the token does not verify ({type(error).__name__})") from error
        granted_subject, seconds = _unpack(payload)
        expires = int(issued_at.timestamp()) + seconds
        if expires < int(self.clock()):
            raise LinkExpired(f"the token for {granted_subject!r} expired at {expires}", expires=expires)
        return granted_subject, expires


def _unpack(payload: Any) -> tuple[str, int]:
    if (
        isinstance(payload, list)
        and len(payload) == 2
        and isinstance(payload[0], str)
        and type(payload[1]) is int
    ):
        return payload[0], payload[1]
    raise BadSignature("the token's payload is not [subject, ttl]")
