"""The signed string and the link value: what both the signer and the verifier build on.

docs/link-format.md specifies the signed string field by field and argues why no two links
share one; :func:`signed_string` is the one place that joins its fields.
"""

from __future__ import annotations

import base64
import os
import re
from datetime import datetime, timezone
from email.utils import format_datetime
from http.cookies import Morsel
from typing import NamedTuple

from .encoding import utc_iso
from .folder_cookie import check_cookie_value
from .paths import quote_path

DIRECTORY_KIND = b"directory"  # the disposition slot of a directory link; never a file link's

# A link id: what nginx/secure_link/rules.conf accepts in `id` (and names a state file by).
LINK_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}")
MAX_DOWNLOADS_LIMIT = 1000  # the most downloads a limited link may allow (rules.conf reads up to 4 digits)


_ID_BATCH = 256  # ids drawn from the OS at once: one getrandom(2) per 256 links, not one per link
_fresh_ids: list[str] = []
os.register_at_fork(after_in_child=_fresh_ids.clear)  # a forked worker never hands out its parent's ids


def new_link_id() -> str:
    """A fresh random link id: 16 URL-safe characters (96 bits from ``os.urandom``), never
    starting with ``-`` (a command line would take it for an option).

    Ids are drawn in batches; ``list.pop`` is atomic, so threads never share one, and a
    forked process starts with an empty batch.
    """
    while True:
        try:
            return _fresh_ids.pop()
        except IndexError:
            text = base64.urlsafe_b64encode(os.urandom(12 * _ID_BATCH)).decode("ascii")
            _fresh_ids.extend(link_id for index in range(0, len(text), 16)
                              if not (link_id := text[index:index + 16]).startswith("-"))


def check_link_fields(link_id: str, not_before: int | None, max_downloads: int | None) -> None:
    """ValueError unless nginx would read these fields back as they are signed."""
    if not LINK_ID_PATTERN.fullmatch(link_id):
        raise ValueError(f"link id {link_id!r} must be 8 to 64 of A-Z a-z 0-9 _ -")
    if not_before is not None and not (0 < not_before < 10**15):
        raise ValueError(f"not_before must be a positive Unix time, got {not_before}")
    if max_downloads is not None and not (1 <= max_downloads <= MAX_DOWNLOADS_LIMIT):
        raise ValueError(f"max_downloads must be 1 to {MAX_DOWNLOADS_LIMIT}, got {max_downloads}")


def link_fields(link_id: str, not_before: int | None = None, max_downloads: int | None = None) -> bytes:
    """The link's own fields as signed: ``ID|NOT_BEFORE|MAX_DOWNLOADS|``, empty for an absent one.

    They stand in front of the path, which always starts with ``/``: a link minted before
    link ids (no fields) and one with fields can never sign the same string.
    """
    return b"%s|%s|%s|" % (
        link_id.encode("ascii"),
        b"" if not_before is None else b"%d" % not_before,
        b"" if max_downloads is None else b"%d" % max_downloads,
    )


def signed_string(
    expires: bytes, kid: bytes, client: bytes, disposition: bytes, filename: bytes, uri: bytes, fields: bytes = b""
) -> bytes:
    """The signed string. With ``expires=b""`` it is the part every link to one file repeats.

    ``fields`` is :func:`link_fields`, or empty for a link without an id (directory links,
    links minted before ids).
    """
    return b"|".join((expires, kid, client, disposition, filename, fields + uri))


class SignedLink(NamedTuple):
    """A freshly signed link. ``url`` is relative unless a base was prepended (:meth:`with_base`).

    ``path`` is the decoded path that was signed: a file, or for a directory link the
    prefix (ending with ``/``) below which every file opens.
    """

    url: str
    path: str
    expires: int  # Unix seconds
    kid: str
    link_id: str | None = None  # None for a directory link
    not_before: int | None = None  # Unix seconds; None: valid at once
    max_downloads: int | None = None  # None: unlimited

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, tz=timezone.utc)

    @property
    def expires_iso(self) -> str:
        """``expires`` as ISO 8601 UTC (``2026-11-23T22:00:00Z``)."""
        return utc_iso(self.expires)

    @property
    def not_before_at(self) -> datetime | None:
        return None if self.not_before is None else datetime.fromtimestamp(self.not_before, tz=timezone.utc)

    @property
    def not_before_iso(self) -> str | None:
        return None if self.not_before is None else utc_iso(self.not_before)

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
        return self._replace(url=base_url + self.url)


class CookieGrant(NamedTuple):
    """Cookies that open every file below a folder until ``expires``: ours, or a CDN's.

    ``cookies`` maps each cookie's name to its value, which is sent as is (only RFC 6265
    cookie-octets, never quoted). ``path`` is the folder's URL path, ending with ``/``: the
    cookies' ``Path``, so that a browser sends them with the folder's requests alone.
    """

    cookies: dict[str, str]
    path: str
    expires: int  # Unix seconds
    kid: str

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, tz=timezone.utc)

    @property
    def expires_iso(self) -> str:
        return utc_iso(self.expires)

    def as_json(self) -> dict[str, object]:
        """``{"cookies": {name: value}, "path": ..., "expires_at": ISO 8601}``."""
        return {"cookies": dict(self.cookies), "path": self.path, "expires_at": self.expires_iso}

    def attributes(self, *, secure: bool = True, domain: str | None = None) -> list[tuple[str, str | bool]]:
        """The cookies' attributes, as the CDNs recommend: ``Path`` the folder, ``Expires`` the
        grant's, ``Domain`` when given, ``Secure`` unless told otherwise (plain-HTTP demos),
        ``HttpOnly`` and ``SameSite=Lax``; a flag's value is True."""
        attributes: list[tuple[str, str | bool]] = [("Path", self.path),
                                                     ("Expires", format_datetime(self.expires_at, usegmt=True))]
        if domain:
            attributes.append(("Domain", domain))
        if secure:
            attributes.append(("Secure", True))
        return attributes + [("HttpOnly", True), ("SameSite", "Lax")]

    def morsels(self, *, secure: bool = True, domain: str | None = None) -> dict[str, Morsel[str]]:
        """The cookies as :mod:`http.cookies` morsels (Django's ``response.cookies``), with
        :meth:`attributes`; values are sent as they are (ValueError for one a Set-Cookie header
        cannot carry unquoted)."""
        attributes = self.attributes(secure=secure, domain=domain)
        morsels: dict[str, Morsel[str]] = {}
        for name, value in self.cookies.items():
            check_cookie_value(name, value)
            morsel: Morsel[str] = Morsel()
            morsel.set(name, value, value)
            for attribute, setting in attributes:
                morsel[attribute.lower()] = setting  # a flag's True sets it
            morsels[name] = morsel
        return morsels

    def set_cookie_headers(self, *, secure: bool = True, domain: str | None = None) -> list[str]:
        """One ``Set-Cookie`` value per cookie, with :meth:`attributes` in their order."""
        rendered = "".join(f"; {attribute}" if setting is True else f"; {attribute}={setting}"
                           for attribute, setting in self.attributes(secure=secure, domain=domain))
        headers = []
        for name, value in self.cookies.items():
            check_cookie_value(name, value)
            headers.append(f"{name}={value}{rendered}")
        return headers
