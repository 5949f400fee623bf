"""Akamai Auth Token 2.0 (EdgeAuth) tokens, as the ``akamai-edgeauth`` package makes them.

A token is ``~``-joined ``name=value`` fields, then the HMAC of what it covers::

    [ip=IP~][st=START~]exp=END[~acl=ACL]~hmac=HEX

- *ACL token* (a cookie, a header or a query argument good for many paths): ``acl=`` holds one
  pattern or several joined by ``!``; ``*`` and ``?`` are wildcards. The HMAC covers the token's
  fields: ``ip=..~st=..~exp=..~acl=..``.
- *URL token* (one path): no ``acl=`` field; the HMAC covers the fields and then ``~url=PATH``,
  which the edge takes from the request, so the path is hashed but not sent. The edge's
  "Ignore query string" option must be on when the token rides in the query string.

``HEX`` is the lower-case hex HMAC (SHA-256 by default; SHA-1 and MD5 as EdgeAuth allows) keyed
by the raw bytes of the secret, which Akamai hands out in hex. Times are Unix seconds, written
in decimal; ``st`` is left out when there is no start. Values are used as given: this is
EdgeAuth's ``escape_early=False``, its default, and so the Property Manager's "Escape token
input" off. A keys file keeps the secret as that hex string.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from ..exc import KeySetError
from .urls import append_query, checked_url, opening_time, unix_time

DEFAULT_TOKEN_NAME = "__token__"
MIN_KEY_BYTES = 16
_ALGORITHMS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1, "md5": hashlib.md5}
_TOKEN_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
# What an ACL may hold: printable ASCII without '~', the field delimiter. A URL token's path is
# hashed but not carried, so '~' is harmless there.
_TOKEN_TEXT = re.compile(r"[!-}]+")
_PATH_TEXT = re.compile(r"/[!-~]*")


class EdgeAuthSigner:
    """Makes EdgeAuth tokens with one secret, which its repr never shows."""

    def __init__(self, key: bytes, *, token_name: str = DEFAULT_TOKEN_NAME, algorithm: str = "sha256") -> None:
        """``key``: the secret's raw bytes (16 or more); ``algorithm``: sha256, sha1 or md5."""
        if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
            raise KeySetError(f"an Akamai EdgeAuth key must be at least {MIN_KEY_BYTES} bytes")
        if algorithm.lower() not in _ALGORITHMS:
            raise ValueError(f"algorithm {algorithm!r} must be one of {', '.join(_ALGORITHMS)}")
        if not _TOKEN_NAME.fullmatch(token_name):
            raise ValueError(f"token name {token_name!r} must be 1 to 64 of A-Z, a-z, 0-9, '_' and '-'")
        self._key = key
        self.token_name = token_name
        self.algorithm = algorithm.lower()

    @classmethod
    def from_hex(cls, text: str, *, token_name: str = DEFAULT_TOKEN_NAME, algorithm: str = "sha256") -> EdgeAuthSigner:
        """The signer of a secret written in hex, as Akamai shows it."""
        return cls(decode_key(text), token_name=token_name, algorithm=algorithm)

    def url_token(self, path: str, *, expires: int, not_before: int | None = None, ip: str | None = None) -> str:
        """The token for the one URL path ``path`` (as requested, percent-encoded, no query)."""
        if not _PATH_TEXT.fullmatch(path) or "?" in path or "#" in path:
            raise ValueError(f"path {path!r} must start with '/' and be printable ASCII without '?' or '#'")
        fields = self._fields(expires, not_before, ip)
        return self._token(fields, hashed_too=[f"url={path}"])

    def acl_token(self, acl: str | Sequence[str], *, expires: int, not_before: int | None = None,
                  ip: str | None = None) -> str:
        """The token for every path the ACL matches: one pattern, ``!``-joined ones, or a sequence."""
        patterns = [acl] if isinstance(acl, str) else list(acl)
        for pattern in patterns:
            if not _TOKEN_TEXT.fullmatch(pattern) or (len(patterns) > 1 and "!" in pattern):
                raise ValueError(f"ACL {pattern!r} must be printable ASCII without '~' (and without '!' "
                                 "in a list of ACLs)")
        if not patterns:
            raise ValueError("the ACL is empty: give at least one path pattern")
        fields = self._fields(expires, not_before, ip) + [f"acl={'!'.join(patterns)}"]
        return self._token(fields, hashed_too=[])

    def sign_url(self, url: str, *, expires: int, not_before: int | None = None, ip: str | None = None) -> str:
        """``url`` with ``token_name=TOKEN`` appended, the URL token of its path."""
        checked_url(url, reserved=frozenset({self.token_name}))
        token = self.url_token(urlsplit(url).path or "/", expires=expires, not_before=not_before, ip=ip)
        return append_query(url, f"{self.token_name}={token}")

    def cookie(self, acl: str | Sequence[str], *, expires: int, not_before: int | None = None,
               ip: str | None = None) -> dict[str, str]:
        """``{token_name: ACL token}``, the cookie Akamai reads."""
        return {self.token_name: self.acl_token(acl, expires=expires, not_before=not_before, ip=ip)}

    def _fields(self, expires: int, not_before: int | None, ip: str | None) -> list[str]:
        fields = [] if ip is None else [f"ip={client_address(ip)}"]
        unix_time("expires", expires)
        if not_before is not None:
            fields.append(f"st={opening_time(not_before, expires)}")
        fields.append(f"exp={expires}")
        return fields

    def _token(self, fields: list[str], *, hashed_too: list[str]) -> str:
        digest = hmac.new(self._key, "~".join(fields + hashed_too).encode(), _ALGORITHMS[self.algorithm])
        return "~".join(fields + [f"hmac={digest.hexdigest()}"])

    def __repr__(self) -> str:
        return f"<EdgeAuthSigner token_name={self.token_name!r} algorithm={self.algorithm!r}>"


def client_address(ip: str) -> str:
    """``ip`` as the ``ip=`` field: one IPv4 or IPv6 address, normalised; ValueError otherwise."""
    try:
        if "%" in ip:
            raise ValueError(ip)
        return str(ipaddress.ip_address(ip))
    except ValueError:
        raise ValueError(f"ip {ip!r} is not an IP address (e.g. 192.0.2.7)") from None


def decode_key(text: str) -> bytes:
    """The bytes of a hex secret (even length, 16 bytes or more); KeySetError, never quoting it."""
    text = text.strip()
    if not _HEX.fullmatch(text):
        raise KeySetError("an Akamai EdgeAuth key must be hex digits, an even number of them")
    key = binascii.unhexlify(text)
    if len(key) < MIN_KEY_BYTES:
        raise KeySetError(f"an Akamai EdgeAuth key must be at least {MIN_KEY_BYTES} bytes "
                          f"({2 * MIN_KEY_BYTES} hex digits), this one has {len(key)}")
    return key


def akamai_secret_problem(secret: str) -> str | None:
    """What is wrong with a keys file's EdgeAuth secret (hex, 16 bytes or more), or None."""
    try:
        decode_key(secret)
    except KeySetError as error:
        return error.message
    return None


def signer_from_secret(secret: str) -> EdgeAuthSigner:
    """The SHA-256 signer, token name ``__token__``, of a keys file's hex secret."""
    return EdgeAuthSigner.from_hex(secret)
