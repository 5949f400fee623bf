"""Signing links that nginx verifies by itself (the stock ``secure_link`` module, or Lua for HMAC).

A file link is the file's URL path, percent-encoded, with the token and its fields in the
query; a directory link carries them in a path segment, so that relative URLs below it keep
them. docs/link-format.md specifies both, field by field; :mod:`signing.nginx.signed_string`
builds the signed string and :mod:`signing.nginx.verifier` checks links exactly as nginx does.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from ..addresses import client_binding
from ..algorithms import NGINX_TARGET
from ..encoding import LinkClock
from ..exc import KeySetError
from ..keys import Key, KeySet
from ..links import CookieGrant, SignedLink
from ..paths import prepare_path, quote_path
from .directory import directory_prefix_bytes, directory_url
from .disposition import DISPOSITIONS, filename_field
from .folder_cookie import COOKIE_NAME, FOLDER_KIND, cookie_folder_bytes, folder_cookie_value
from .signed_string import DIRECTORY_KIND, check_link_fields, link_fields, new_link_id, signed_string

_MAX_REMEMBERED_LINKS = 16384
_new_tuple = tuple.__new__
_CacheKey = TypeVar("_CacheKey")


class _PreparedKey:
    """A key as the signer uses it on every link: id and secret as bytes, its tokenizer."""

    __slots__ = ("kid", "suffix", "token_argument", "tokenize", "_id_key")

    def __init__(self, key: Key) -> None:
        secret = key.secret.encode("ascii")
        self.kid = key.kid.encode("ascii")
        self.suffix = key.algorithm.message_suffix(secret)
        self.token_argument = key.algorithm.token_argument
        self.tokenize = key.algorithm.tokenizer(secret)
        self._id_key = hashlib.blake2b(secret, digest_size=32, person=b"link-id").digest()

    def derived_link_id(self, message: bytes) -> str:
        """The link id of a bucketed link: the same link signed twice in one window is one link."""
        digest = hashlib.blake2b(message, key=self._id_key, digest_size=12).digest()
        link_id = base64.urlsafe_b64encode(digest).decode("ascii")
        return "A" + link_id[1:] if link_id.startswith("-") else link_id  # as new_link_id: never an option


# What every link with the same options repeats: the hashed message after ``expires`` up to
# the link's own fields and after them, the URL up to the token, the query after ``expires``,
# and the key.
_LinkParts = tuple[bytes, bytes, str, str, _PreparedKey]
_NO_PARTS: dict[str, _LinkParts] = {}


class SecureLinkSigner(LinkClock):
    """Signs links with the key set's active key (or a chosen one) for nginx to verify.

    ``prefix`` is the URL prefix nginx protects. ``expiry_bucket`` (seconds, 0 for none)
    rounds ``expires`` up to a multiple of itself, so that links minted inside one window
    are the same URL. ValueError (KeySetError) for a key set that cannot be used.
    """

    carries_link_ids = True  # every file link carries an id: revocable, countable
    names_downloads = True  # filename= and disposition= set Content-Disposition
    mints_absolute_urls = False  # links are paths: the caller puts the site's base in front

    def __init__(
        self,
        key_set: KeySet,
        *,
        prefix: str = "/media/",
        expiry_bucket: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key_set.check()
        active = key_set.active
        if active.algorithm.delivery_target != NGINX_TARGET:
            raise KeySetError(
                f"the active key {active.kid!r} is a {active.algorithm.name} key, which signs {active.algorithm.name} "
                f"links: sign those with signing.cdn.CDNLinkSigner (SECURE_LINK['DELIVERY'] = "
                f"'{active.algorithm.name} BASE_URL'), or activate an md5 or hmac-sha256 key for nginx"
            )
        if not (prefix.startswith("/") and prefix.endswith("/")):
            raise ValueError(f"the protected prefix {prefix!r} must start and end with '/'")
        if expiry_bucket < 0:
            raise ValueError(f"expiry_bucket must be 0 or more seconds, got {expiry_bucket}")
        self.key_set = key_set
        self.active_kid = active.kid
        self.prefix = prefix
        self.expiry_bucket = expiry_bucket
        self.clock = clock
        self._keys = {key.kid: _PreparedKey(key) for key in key_set.nginx_keys()}  # a CDN's keys sign elsewhere
        self._unbucketed = expiry_bucket <= 1
        # Links to one file are signed again and again: remember what they repeat, per key
        # and path for plain links, per (path, kid, client_ip, filename, disposition) otherwise.
        self._plain_parts: dict[str, dict[str, _LinkParts]] = {kid: {} for kid in self._keys}
        self._option_parts: dict[tuple[str, str, str | None, str | None, str | None], _LinkParts] = {}

    def __repr__(self) -> str:
        return f"<SecureLinkSigner kids={list(self._keys)} active_kid={self.active_kid!r} prefix={self.prefix!r}>"

    def sign(
        self,
        path: str,
        *,
        ttl: int | timedelta,
        client_ip: str | None = None,
        filename: str | None = None,
        disposition: str | None = None,
        kid: str | None = None,
        link_id: str | None = None,
        not_before: int | None = None,
        max_downloads: int | None = None,
    ) -> SignedLink:
        """Sign the decoded URL ``path`` (``/media/a b.jpg``) for ``ttl`` seconds.

        ``client_ip`` binds the link to one address, or with ``ADDRESS/LENGTH`` to the network of
        that many bits it lies in (IPv4 8 to 32, IPv6 32 to 128). ``filename`` makes nginx send
        ``Content-Disposition`` (``attachment`` unless ``disposition="inline"``). ``kid``
        signs with another key of the set than the active one. Every link carries a link id,
        random unless given (with an expiry bucket, derived from the link, so that one
        window's links stay one URL); ``not_before`` (Unix seconds) and ``max_downloads``
        are signed with it. Raises UnsafePath for a path that cannot be signed and
        ValueError for bad options.
        """
        kid = self.active_kid if kid is None else kid
        if type(ttl) is int and ttl > 0 and self._unbucketed:
            expires = self.get_timestamp() + ttl  # the common case, without expires_for's checks
        else:
            expires = self.expires_for(ttl)
        if client_ip is None and filename is None and disposition is None:
            parts = self._plain_parts.get(kid, _NO_PARTS).get(path)
        else:
            parts = self._option_parts.get((path, kid, client_ip, filename, disposition))
        if parts is None:
            parts = self._link_parts(path, kid, client_ip, filename, disposition)
        message_head, message_tail, url_head, url_tail, key = parts
        if not_before is None and max_downloads is None:
            if link_id is None:
                link_id = new_link_id() if self._unbucketed else key.derived_link_id(b"%d" % expires + message_head
                                                                                      + message_tail)
            else:
                check_link_fields(link_id, None, None)
            # The hot path: link_fields(link_id) is ID|||, and the link is built in one step. SignedLink(...)
            # without the Python frame of a NamedTuple's __new__: the same tuple, every one of its 7 fields given
            # (tests/test_secure_link.py checks the count).
            token = key.tokenize(b"%d" % expires + message_head + link_id.encode("ascii") + b"|||" + message_tail)
            return _new_tuple(SignedLink, (f"{url_head}{token}&expires={expires}{url_tail}&id={link_id}", path,
                                           expires, kid, link_id, None, None))
        if link_id is None:
            link_id = new_link_id()
        check_link_fields(link_id, not_before, max_downloads)
        if not_before is not None and not_before > expires:
            raise ValueError(f"the link would open at {not_before}, after it expires at {expires}")
        token = key.tokenize(b"%d" % expires + message_head + link_fields(link_id, not_before, max_downloads)
                             + message_tail)
        url_fields = f"&id={link_id}" + (f"&nb={not_before}" if not_before is not None else "") + (
            f"&limit={max_downloads}" if max_downloads is not None else "")
        return SignedLink(f"{url_head}{token}&expires={expires}{url_tail}{url_fields}", path, expires, kid, link_id,
                          not_before, max_downloads)

    def sign_directory(
        self, prefix: str, *, ttl: int | timedelta, client_ip: str | None = None, kid: str | None = None,
        link_id: str | None = None, not_before: int | None = None,
    ) -> SignedLink:
        """Sign every file under the decoded directory ``prefix`` (``/media/videos/42/``) for ``ttl`` seconds.

        The link's ``url`` ends with ``/``; ``url_for("720p/seg001.ts")`` gives a file's. It
        carries a link id as a file link does (revocable alone, named in the download log) and
        ``not_before`` when given. Raises UnsafePath for a prefix that cannot be signed, ValueError
        for bad options.
        """
        kid = self.active_kid if kid is None else kid
        expires, binding, token, link_id = self._folder_token(
            DIRECTORY_KIND, directory_prefix_bytes(prefix, self.prefix), ttl=ttl, client_ip=client_ip, kid=kid,
            link_id=link_id, not_before=not_before)
        return SignedLink(directory_url(quote_path(prefix), kid, expires, binding, token, link_id, not_before), prefix,
                          expires, kid, link_id, not_before)

    def sign_folder_cookie(
        self, folder: str, *, ttl: int | timedelta, client_ip: str | None = None, kid: str | None = None,
        link_id: str | None = None, not_before: int | None = None,
    ) -> CookieGrant:
        """The cookie that opens every file below the decoded ``folder`` (``/media/videos/42/``) for ``ttl`` seconds.

        nginx checks it at the origin and at every edge (``nginx/secure_link/server/folder.conf``).
        Like a directory link it carries a link id and ``not_before`` when given. Raises
        UnsafePath for a folder a cookie cannot grant: outside the prefix, or a name outside
        ``A-Z a-z 0-9 . _ ~ -`` (a directory link can sign those).
        """
        kid = self.active_kid if kid is None else kid
        expires, binding, token, link_id = self._folder_token(
            FOLDER_KIND, cookie_folder_bytes(folder, self.prefix), ttl=ttl, client_ip=client_ip, kid=kid,
            link_id=link_id, not_before=not_before)
        value = folder_cookie_value(folder, kid, expires, binding, token, link_id, not_before)
        return CookieGrant({COOKIE_NAME: value}, folder, expires, kid, link_id, not_before)

    def _folder_token(
        self, kind: bytes, folder: bytes, *, ttl: int | timedelta, client_ip: str | None, kid: str,
        link_id: str | None, not_before: int | None,
    ) -> tuple[int, str | None, str, str]:
        """``(expires, binding, token, link_id)`` of a grant of every file below ``folder``: a directory
        link or a cookie. ``binding`` is its flag (``ip``, ``ip24``), None when unbound. Its id is random
        unless given (with an expiry bucket, derived, as a file link's)."""
        key = self._key(kid)
        expires = self.expires_for(ttl)
        length, client = client_binding(client_ip) if client_ip else ("", "")
        head = signed_string(b"%d" % expires, key.kid, client.encode(), kind, b"", b"")
        if link_id is None:
            link_id = new_link_id() if self._unbucketed else key.derived_link_id(head + folder)
        check_link_fields(link_id, not_before, None)
        if not_before is not None and not_before > expires:
            raise ValueError(f"the grant would open at {not_before}, after it expires at {expires}")
        signed = head + link_fields(link_id, not_before) + folder
        return expires, f"ip{length}" if client else None, key.tokenize(signed + key.suffix), link_id

    def _key(self, kid: str) -> _PreparedKey:
        key = self._keys.get(kid)
        if key is None:
            raise ValueError(f"unknown key id {kid!r} (keys: {', '.join(self._keys)})")
        return key

    def _link_parts(
        self, path: str, kid: str, client_ip: str | None, filename: str | None, disposition: str | None
    ) -> _LinkParts:
        """Check a link's options and remember what every link with them repeats."""
        uri, quoted_path = prepare_path(path, self.prefix)
        key = self._key(kid)
        if disposition is None:
            disposition_field = "attachment" if filename else ""
        elif disposition in DISPOSITIONS:
            disposition_field = disposition
        else:
            raise ValueError(f"disposition must be one of {DISPOSITIONS}, got {disposition!r}")
        if filename is not None and (not filename or "\0" in filename):
            raise ValueError("filename must be a non-empty name without NUL")
        signed_filename = filename_field(filename) if filename else ""
        length, client = client_binding(client_ip) if client_ip else ("", "")
        message_head = signed_string(b"", key.kid, client.encode(), disposition_field.encode(),
                                     signed_filename.encode(), b"")
        url_tail = f"&kid={kid}"
        if client:
            url_tail += f"&ip={length or 1}"
        if disposition_field:
            url_tail += f"&disposition={disposition_field}"
        if signed_filename:
            quoted_name, _, quoted_ascii = signed_filename.partition(":")
            url_tail += f"&filename={quoted_name}" + (f"&ascii={quoted_ascii}" if quoted_ascii else "")
        parts = (message_head, uri + key.suffix, f"{quoted_path}?{key.token_argument}=", url_tail, key)
        if client_ip is None and filename is None and disposition is None:
            _remember(self._plain_parts[kid], path, parts)
        else:
            _remember(self._option_parts, (path, kid, client_ip, filename, disposition), parts)
        return parts


def _remember(cache: dict[_CacheKey, _LinkParts], key: _CacheKey, parts: _LinkParts) -> None:
    if len(cache) >= _MAX_REMEMBERED_LINKS:  # a bound, not an LRU: refilling is cheap
        cache.clear()
    cache[key] = parts
