"""The one exception hierarchy of :mod:`signing`.

``LinkError`` is the root. What went wrong decides the class, and so the HTTP answer:

- :class:`BadSignature` (403): the link or token does not verify, or is missing a part.
- :class:`LinkExpired` (410): it verifies, but its expiry has passed.
- :class:`MalformedRequest` (400): nginx refuses the request before checking anything.
- :class:`UnsafePath` (a ``ValueError`` too): a path that must never be signed.

Messages name the values involved, never a secret.
"""

from __future__ import annotations

from datetime import datetime, timezone


class LinkError(Exception):
    """Base class of every error raised by :mod:`signing`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadSignature(LinkError):
    """The link or token does not verify: tampered, foreign, unknown key, missing field."""


class LinkExpired(BadSignature):
    """The signature is good but ``expires`` (Unix seconds) is in the past."""

    def __init__(self, message: str, *, expires: int) -> None:
        super().__init__(message)
        self.expires = expires

    @property
    def expires_at(self) -> datetime:
        """When the link stopped working, as an aware UTC datetime."""
        return datetime.fromtimestamp(self.expires, tz=timezone.utc)


class MalformedRequest(LinkError):
    """A request path that nginx answers with 400 (bad escape, NUL, ``..`` above the root)."""


class UnsafePath(LinkError, ValueError):
    """A path that cannot be signed: outside the prefix, dot or empty segments, control bytes."""


class KeySetError(LinkError, ValueError):
    """A key set that cannot be read or used, or a change to it that the rotation rules refuse."""
