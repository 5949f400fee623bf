"""The values a signer hands back, whoever checks the link: a :class:`SignedLink` or a
:class:`CookieGrant`. nginx's signer and the CDNs' give the same types."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import format_datetime
from http.cookies import Morsel
from typing import NamedTuple

from .encoding import utc_iso
from .paths import quote_path

# What a cookie value may hold unquoted (RFC 6265 cookie-octet): what every grant's value uses.
_COOKIE_OCTETS = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_COOKIE_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


def check_cookie_value(name: str, value: str) -> None:
    """ValueError unless ``name=value`` can be sent as is (no quoting) in a Set-Cookie header."""
    if not _COOKIE_NAME.fullmatch(name) or not _COOKIE_OCTETS.fullmatch(value):
        raise ValueError(f"cookie {name!r} has a name or value that a Set-Cookie header cannot carry unquoted")


class SignedLink(NamedTuple):
    """A freshly signed link. ``url`` is relative unless a base was prepended (:meth:`with_base`).

    ``path`` is the decoded path that was signed: a file, or for a directory link the
    prefix (ending with ``/``) below which every file opens.
    """

    url: str
    path: str
    expires: int  # Unix seconds
    kid: str
    link_id: str | None = None  # None for a CDN's link, or one minted before link ids
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
    ``link_id`` names the grant (ours: revocable alone, named in the download log; None for
    a CDN's cookies); ``not_before`` is when it opens, if not at once.
    """

    cookies: dict[str, str]
    path: str
    expires: int  # Unix seconds
    kid: str
    link_id: str | None = None
    not_before: int | None = None  # Unix seconds

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, tz=timezone.utc)

    @property
    def expires_iso(self) -> str:
        return utc_iso(self.expires)

    @property
    def not_before_at(self) -> datetime | None:
        return None if self.not_before is None else datetime.fromtimestamp(self.not_before, tz=timezone.utc)

    def as_json(self) -> dict[str, object]:
        """``{"id": ..., "cookies": {name: value}, "path": ..., "expires_at": ISO 8601, "not_before": ISO 8601 or null}``."""
        return {"id": self.link_id, "cookies": dict(self.cookies), "path": self.path, "expires_at": self.expires_iso,
                "not_before": None if self.not_before is None else utc_iso(self.not_before)}

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
