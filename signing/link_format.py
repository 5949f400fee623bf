"""The signed string and the link value: what both the signer and the verifier build on.

docs/link-format.md specifies the signed string field by field and argues why no two links
share one; :func:`signed_string` is the one place that joins its fields.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import NamedTuple

from .encoding import utc_iso
from .paths import quote_path

DIRECTORY_KIND = b"directory"  # the disposition slot of a directory link; never a file link's


def signed_string(expires: bytes, kid: bytes, client: bytes, disposition: bytes, filename: bytes, uri: bytes) -> bytes:
    """The signed string. With ``expires=b""`` it is the part every link to one file repeats."""
    return b"|".join((expires, kid, client, disposition, filename, uri))


class SignedLink(NamedTuple):
    """A freshly signed link. ``url`` is relative unless a base was prepended (:meth:`with_base`).

    ``path`` is the decoded path that was signed: a file, or for a directory link the
    prefix (ending with ``/``) below which every file opens.
    """

    url: str
    path: str
    expires: int  # Unix seconds
    kid: str

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, tz=timezone.utc)

    @property
    def expires_iso(self) -> str:
        """``expires`` as ISO 8601 UTC (``2026-11-23T22:00:00Z``)."""
        return utc_iso(self.expires)

    @property
    def is_directory(self) -> bool:
        return self.path.endswith("/")

    def url_for(self, relative_path: str) -> str:
        """A directory link's URL for a file below its prefix (``"720p/seg001.ts"``), percent-encoded."""
        if not self.is_directory:
            raise ValueError(f"{self.path!r} is a file link; only directory links have files below them")
        return self.url + quote_path(relative_path.lstrip("/"))

    def with_base(self, base_url: str) -> SignedLink:
        """The same link with ``base_url`` (scheme and host) before its URL."""
        return SignedLink(base_url + self.url, self.path, self.expires, self.kid)
