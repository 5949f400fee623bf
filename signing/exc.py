"""The one exception hierarchy of :mod:`signing`.

``LinkError`` is the root. What went wrong decides the class, and so the HTTP answer:

- :class:`BadSignature` (403): the link or token does not verify, or is missing a part.
- :class:`LinkExpired` (410): it verifies, but its expiry has passed.
- :class:`LinkNotYetValid` (403): it verifies, but its ``not_before`` is still ahead.
- :class:`LinkRevoked` (403): it verifies, but its link id was revoked.
- :class:`DownloadsUsedUp` (410): a download-limited link whose downloads are all taken.
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


class LinkNotYetValid(BadSignature):
    """The signature is good but the link opens only at ``not_before`` (Unix seconds)."""

    def __init__(self, message: str, *, not_before: int) -> None:
        super().__init__(message)
        self.not_before = not_before


class LinkRevoked(BadSignature):
    """The signature is good but the link, by its id, was revoked."""


class DownloadsUsedUp(BadSignature):
    """A download-limited link whose every download has been taken (410, like an expired one)."""


class MalformedRequest(LinkError):
    """A request path that nginx answers with 400 (bad escape, NUL, ``..`` above the root)."""


class UnsafePath(LinkError, ValueError):
    """A path that cannot be signed: outside the prefix, dot or empty segments, control bytes."""


class KeySetError(LinkError, ValueError):
    """A key set that cannot be read or used, or a change to it that the rotation rules refuse."""
