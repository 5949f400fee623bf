"""Links that nginx's stock ``secure_link`` module verifies by itself.

A link is the file's URL path, percent-encoded, with these query arguments::

    /media/images/a%20b.jpg?md5=TOKEN&expires=1767225600&kid=k1[&ip=1][&disposition=D][&filename=F]

``TOKEN`` is the unpadded base64url MD5 of the *signed string*, seven fields joined by ``|``::

    {expires}|{kid}|{client}|{disposition}|{filename}|{uri}|{secret}

=============  ==============================  ================================================
field          nginx variable                  value
=============  ==============================  ================================================
expires        ``$secure_link_expires``        the ``expires`` argument as sent: Unix seconds
kid            ``$arg_kid``                    the key id that picked the secret
client         ``$secure_link_client``         ``""``, or ``$remote_addr`` when ``ip=1``
disposition    ``$secure_link_disposition``    ``""``, ``attachment`` or ``inline``
filename       ``$secure_link_filename``       ``""``, or the download name as
                                               ``quote(name, safe="")``
uri            ``$uri``                        the decoded, normalised path (UTF-8 bytes)
secret         ``$secure_link_secret``         the secret of key ``kid``
=============  ==============================  ================================================

Why no two links share a signed string: the first five fields can never hold ``|`` (digits,
a key id from ``[a-z0-9_-]``, an IP address, a fixed word, percent-encoded text), and nginx
maps any other value of ``ip``, ``disposition`` or ``filename`` to ``!``, which no signer
emits. The secret is fixed by the key id. So the first five ``|`` and the ``|secret`` suffix
split every signed string one way only, even when ``uri`` contains ``|``; an optional field
that is empty in one link and set in another differs in its own slot and nowhere else.

**HMAC-SHA256 keys** (``kid=hmac-sha256:SECRET``) sign the same fields without the secret
field, ``{expires}|{kid}|{client}|{disposition}|{filename}|{uri}``, as an HMAC-SHA256 keyed
by the secret; the 43-character unpadded base64url token goes in ``hmac=`` instead of
``md5=``. nginx checks it with njs (nginx/secure_link.js). A link is accepted only in its
key's algorithm: an ``hmac=`` token with an MD5 key's id, or an ``md5=`` token with an HMAC
key's id, is 403. For HMAC, ``expires`` must be 1 to 15 digits and the token must be the
canonical encoding (compared in full, in constant time).

**Directory links** cover every file under a prefix, with the token in the path, so that
relative URLs (an HLS or DASH playlist's segments) keep it::

    /media/videos/42/-/k1,1767225600[,ip],TOKEN/720p/seg001.ts

The part before ``/-/`` is the signed prefix (it ends at a ``/``), then the key id, expires,
an optional ``ip`` flag and the token (MD5 or HMAC per the key), then the file below the
prefix. The signed string is::

    {expires}|{kid}|{client}|directory||{prefix}[|{secret}]

``directory`` sits where a file link has its disposition, which can never be ``directory``
there (nginx maps it to ``!``), and a file link's path never ends with ``/``: a directory
token never verifies as a file token or the reverse. nginx normalises ``$uri`` before any
location matches, so no ``..``, ``%2e%2e``, ``%2F`` or ``//`` survives to leave the prefix.

The verifier here answers exactly what ``nginx/secure_link.conf`` answers: nginx's
``$secure_link`` is ``""`` (403), ``"0"`` (410, ``expires < now``) or ``"1"``.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NamedTuple, TypeVar
from urllib.parse import unquote

from .directory import DIRECTORY_KIND, SignedDirectory, directory_prefix_bytes, directory_url, parse_directory_uri
from .disposition import DISPOSITIONS, content_disposition, filename_field
from .encoding import nginx_base64url_decode, ttl_seconds
from .exc import BadSignature, LinkExpired
from .keys import ALGORITHMS, MD5, check_keys
from .nginx import nginx_arg, nginx_atotm
from .paths import nginx_uri, prepare_path, quote_path
from .tokens import hmac_expires, hmac_matches, hmac_token_for, token_for

_MAX_TOKEN_LENGTH = 24
_MAX_REMEMBERED_LINKS = 16384
# (signed string after expires, URL up to the token, query after expires, token function)
_LinkParts = tuple[bytes, str, str, Callable[[bytes], str]]
_NO_PATHS: dict[str, _LinkParts] = {}
_Key = TypeVar("_Key")
# Values of the optional fields, as nginx/secure_link_rules.conf maps them; "!" is never signed.
_UNSIGNABLE = b"!"
_DISPOSITION_FIELD = {b"": b"", **{kind.encode(): kind.encode() for kind in DISPOSITIONS}}
_FILENAME_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~%-")
_ASCII_NAME_BYTES = _FILENAME_BYTES | frozenset(b"!$'()+@")


class LinkStatus(enum.Enum):
    """The value of nginx's ``$secure_link`` for a request."""

    INVALID = ""
    EXPIRED = "0"
    VALID = "1"


class SignedLink(NamedTuple):
    """A freshly signed link. ``url`` is relative: prepend the site's scheme and host."""

    url: str
    path: str
    expires: int
    kid: str

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, tz=timezone.utc)



@dataclass(frozen=True)
class VerifiedLink:
    """What a request that verified grants: the file's ``$uri`` and how to present it."""

    uri: bytes
    expires: int
    kid: str
    disposition: str
    filename_field: str  # quote(name), or quote(name):quote(ascii name)

    @property
    def filename(self) -> str:
        return unquote(self.filename_field.partition(":")[0])

    @property
    def content_disposition(self) -> str | None:
        return content_disposition(self.disposition, self.filename_field)


@dataclass(frozen=True)
class _SigningKey:
    """One key as the signer uses it: its id and secret as bytes, and how it makes tokens."""

    kid: bytes
    secret: bytes
    algorithm: str

    @property
    def token_argument(self) -> str:
        return "md5" if self.algorithm == MD5 else "hmac"

    def tokenizer(self) -> Callable[[bytes], str]:
        """Token of ``expires`` + the rest of the signed string (MD5: with the secret field)."""
        if self.algorithm == MD5:
            return token_for
        return functools.partial(hmac_token_for, self.secret)

    @property
    def secret_field(self) -> bytes:
        return b"|" + self.secret if self.algorithm == MD5 else b""


@functools.lru_cache(maxsize=4096)
def canonical_client_address(address: str) -> str:
    """The text nginx's ``$remote_addr`` holds for ``address`` (IPv4 or IPv6)."""
    if "%" in address:
        raise ValueError(f"client address {address!r} has a zone id, which nginx never reports")
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return f"::ffff:{parsed.ipv4_mapped}"
    return str(parsed)


class SecureLinkSigner:
    """Signs links for nginx and verifies them exactly as nginx does.

    ``keys`` maps key ids to secrets and ``algorithms`` names the keys that are not MD5
    keys (``{"k2": "hmac-sha256"}``); links are signed with ``active_kid`` and any key in
    ``keys`` verifies, in its own algorithm only. ``expiry_bucket`` (seconds, 0 for none)
    rounds ``expires`` up to a multiple of itself, so that links minted inside one window
    are the same URL.
    """

    def __init__(
        self,
        *,
        keys: Mapping[str, str],
        active_kid: str,
        algorithms: Mapping[str, str] | None = None,
        prefix: str = "/media/",
        expiry_bucket: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_keys(keys)
        if active_kid not in keys:
            raise ValueError(f"the active key id {active_kid!r} is not among the keys {sorted(keys)}")
        algorithms = dict(algorithms or {})
        for kid, algorithm in algorithms.items():
            if kid not in keys or algorithm not in ALGORITHMS:
                raise ValueError(f"algorithm {algorithm!r} for key {kid!r}: use a listed key and one of {ALGORITHMS}")
        if not (prefix.startswith("/") and prefix.endswith("/")):
            raise ValueError(f"the protected prefix {prefix!r} must start and end with '/'")
        if expiry_bucket < 0:
            raise ValueError(f"expiry_bucket must be 0 or more seconds, got {expiry_bucket}")
        self._keys = {
            kid: _SigningKey(kid.encode("ascii"), secret.encode("ascii"), algorithms.get(kid, MD5))
            for kid, secret in keys.items()
        }
        # Verification looks keys up as nginx's map does: case-insensitively, per algorithm.
        self._md5_secrets = {k.kid: k.secret for k in self._keys.values() if k.algorithm == MD5}
        self._hmac_secrets = {k.kid: k.secret for k in self._keys.values() if k.algorithm != MD5}
        # What links repeat (see _link_parts): per key and path for plain links, and per
        # (path, kid, client_ip, filename, disposition) for links with options.
        self._plain_parts: dict[str, dict[str, _LinkParts]] = {kid: {} for kid in keys}
        self._option_parts: dict[tuple[str, str, str | None, str | None, str | None], _LinkParts] = {}
        self.active_kid = active_kid
        self.prefix = prefix
        self.expiry_bucket = expiry_bucket
        self._unbucketed = expiry_bucket <= 1
        self.clock = clock

    def __repr__(self) -> str:
        return f"<SecureLinkSigner kids={sorted(self._keys)} active_kid={self.active_kid!r} prefix={self.prefix!r}>"

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def algorithm(self, kid: str) -> str:
        return self._keys[kid].algorithm

    def get_timestamp(self) -> int:
        """Now, in whole Unix seconds: the one place the signer reads the time."""
        return int(self.clock())

    def expires_for(self, ttl: int | timedelta) -> int:
        """The ``expires`` value for a link that must live at least ``ttl`` seconds from now."""
        seconds = ttl_seconds(ttl)
        expires = self.get_timestamp() + seconds
        bucket = self.expiry_bucket
        return expires if bucket <= 1 else -(-expires // bucket) * bucket

    def sign(
        self,
        path: str,
        *,
        ttl: int | timedelta,
        client_ip: str | None = None,
        filename: str | None = None,
        disposition: str | None = None,
        kid: str | None = None,
    ) -> SignedLink:
        """Sign the decoded URL ``path`` (``/media/a b.jpg``) for ``ttl`` seconds.

        ``client_ip`` binds the link to one address. ``filename`` makes nginx send
        ``Content-Disposition`` (``attachment`` unless ``disposition="inline"``).
        Raises UnsafePath for a path that cannot be signed and ValueError for bad options.
        """
        kid = self.active_kid if kid is None else kid
        if type(ttl) is int and ttl > 0 and self._unbucketed:
            expires = self.get_timestamp() + ttl  # the common case, without expires_for's checks
        else:
            expires = self.expires_for(ttl)
        if client_ip is None and filename is None and disposition is None:
            parts = self._plain_parts.get(kid, _NO_PATHS).get(path)
        else:
            parts = self._option_parts.get((path, kid, client_ip, filename, disposition))
        if parts is None:
            parts = self._link_parts(path, kid, client_ip, filename, disposition)
        signed_tail, url_head, url_tail, tokenize = parts
        token = tokenize(b"%d" % expires + signed_tail)
        return SignedLink(f"{url_head}{token}&expires={expires}{url_tail}", path, expires, kid)

    def _key(self, kid: str) -> _SigningKey:
        key = self._keys.get(kid)
        if key is None:
            raise ValueError(f"unknown key id {kid!r}")
        return key

    def _link_parts(
        self, path: str, kid: str, client_ip: str | None, filename: str | None, disposition: str | None
    ) -> _LinkParts:
        """Check a link's options and remember what every link with them repeats.

        That is all of the signed string after ``expires``, the URL up to the token, and
        the query after ``expires``: links to one file are signed again and again.
        """
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
        client = canonical_client_address(client_ip) if client_ip else ""
        signed_tail = b"|%b|%b|%b|%b|%b%b" % (
            key.kid, client.encode(), disposition_field.encode(), signed_filename.encode(), uri, key.secret_field
        )
        url_tail = f"&kid={kid}"
        if client:
            url_tail += "&ip=1"
        if disposition_field:
            url_tail += f"&disposition={disposition_field}"
        if signed_filename:
            quoted_name, _, quoted_ascii = signed_filename.partition(":")
            url_tail += f"&filename={quoted_name}" + (f"&ascii={quoted_ascii}" if quoted_ascii else "")
        parts = (signed_tail, f"{quoted_path}?{key.token_argument}=", url_tail, key.tokenizer())
        if client_ip is None and filename is None and disposition is None:
            _remember(self._plain_parts[kid], path, parts)
        else:
            _remember(self._option_parts, (path, kid, client_ip, filename, disposition), parts)
        return parts

    def sign_directory(
        self, prefix: str, *, ttl: int | timedelta, client_ip: str | None = None, kid: str | None = None
    ) -> SignedDirectory:
        """Sign every file under the decoded directory ``prefix`` (``/media/videos/42/``) for ``ttl`` seconds.

        The result's ``url`` ends with ``/``: append any relative path below the prefix
        (``url_for("720p/seg001.ts")``). Raises UnsafePath for a prefix that cannot be signed.
        """
        key = self._key(self.active_kid if kid is None else kid)
        prefix_bytes = directory_prefix_bytes(prefix, self.prefix)
        expires = self.expires_for(ttl)
        client = canonical_client_address(client_ip) if client_ip else ""
        signed = b"%d|%b|%b|%b||%b%b" % (expires, key.kid, client.encode(), DIRECTORY_KIND, prefix_bytes, key.secret_field)
        token = key.tokenizer()(signed)
        url = directory_url(quote_path(prefix), key.kid.decode(), expires, bool(client), token)
        return SignedDirectory(url, prefix, expires, key.kid.decode())

    def status(self, *, uri: bytes, query: bytes, remote_addr: str) -> LinkStatus:
        """nginx's ``$secure_link`` for a request whose ``$uri`` and raw query are given."""
        return self._check(uri, query, remote_addr)[0]

    def _check(self, uri: bytes, query: bytes, remote_addr: str) -> tuple[LinkStatus, VerifiedLink]:
        """Read the request's fields once, as nginx/secure_link_rules.conf does, and check them."""
        directory = parse_directory_uri(uri, self.prefix)
        if directory is not None:
            return self._check_directory(directory, remote_addr)
        kid = nginx_arg(query, b"kid") or b""
        disposition = _DISPOSITION_FIELD.get((nginx_arg(query, b"disposition") or b"").lower(), _UNSIGNABLE)
        filename = _filename_field(query)
        hmac_token = nginx_arg(query, b"hmac")
        if hmac_token:  # an "hmac" argument selects the njs check, whatever else is there
            expires_text = nginx_arg(query, b"expires") or b""
            expires = hmac_expires(expires_text)
        else:
            token, expires_text = _token_and_expires(query)
            expires = nginx_atotm(expires_text)
        fields = VerifiedLink(uri, expires, kid.decode("ascii", "replace"), disposition.decode(), filename.decode())
        head = (expires_text, kid, _client_field(query, remote_addr), disposition, filename, uri)
        if hmac_token:
            valid = self._hmac_valid(kid, expires, hmac_token, b"|".join(head))
        else:
            valid = self._md5_valid(kid, expires, token, head)
        return self._status(valid, expires), fields

    def _status(self, valid: bool, expires: int) -> LinkStatus:
        """nginx's verdict once the signature is checked: a signature comes before the expiry."""
        if not valid:
            return LinkStatus.INVALID
        return LinkStatus.EXPIRED if expires < self.get_timestamp() else LinkStatus.VALID

    def _md5_valid(self, kid: bytes, expires: int, token: bytes, head: tuple[bytes, ...]) -> bool:
        """nginx's secure_link module: an MD5 key, a well-formed token, the MD5 of head|secret."""
        secret = self._md5_secrets.get(kid.lower())
        if secret is None or expires <= 0 or len(token) > _MAX_TOKEN_LENGTH:
            return False
        digest = nginx_base64url_decode(token)
        if digest is None or len(digest) != 16:
            return False
        return hmac.compare_digest(digest, hashlib.md5(b"|".join((*head, secret))).digest())

    def _hmac_valid(self, kid: bytes, expires: int, token: bytes, message: bytes) -> bool:
        """nginx/secure_link.js: an HMAC key, and exactly the canonical HMAC token of the message."""
        secret = self._hmac_secrets.get(kid.lower())
        return secret is not None and expires > 0 and hmac_matches(token, secret, message)

    def _check_directory(self, directory: dict[str, bytes], remote_addr: str) -> tuple[LinkStatus, VerifiedLink]:
        kid, token, expires_text = directory["kid"], directory["token"], directory["expires"]
        client = remote_addr.encode("ascii") if directory["ip"] else b""
        head = (b"|".join((expires_text, kid, client, DIRECTORY_KIND, b"")), directory["prefix"])
        if kid.lower() in self._hmac_secrets:  # the key's algorithm decides, as in nginx's maps
            expires = hmac_expires(expires_text)
            valid = self._hmac_valid(kid, expires, token, b"|".join(head))
        else:
            expires = nginx_atotm(expires_text)
            valid = self._md5_valid(kid, expires, token, head)
        fields = VerifiedLink(directory["prefix"] + directory["file"], expires, kid.decode(), "", "")
        return self._status(valid, expires), fields

    def verify(self, *, raw_path: bytes, query: bytes, remote_addr: str) -> VerifiedLink:
        """Check a request as nginx does; return what it grants or raise.

        Raises MalformedRequest (nginx: 400) for a path nginx refuses, BadSignature (403)
        for an invalid link and LinkExpired (410) for an expired one.
        """
        uri = nginx_uri(raw_path)
        status, verified = self._check(uri, query, remote_addr)
        if status is LinkStatus.INVALID:
            raise BadSignature(f"the link for {uri.decode('utf-8', 'replace')!r} does not verify")
        if status is LinkStatus.EXPIRED:
            raise LinkExpired(f"the link expired at {verified.expires}", expires=verified.expires)
        return verified


def _remember(cache: dict[_Key, _LinkParts], key: _Key, parts: _LinkParts) -> None:
    if len(cache) >= _MAX_REMEMBERED_LINKS:  # a bound, not an LRU: refilling is cheap
        cache.clear()
    cache[key] = parts


def _token_and_expires(query: bytes) -> tuple[bytes, bytes]:
    # secure_link "$arg_md5,$arg_expires": nginx splits the joined value at the first ','.
    joined = (nginx_arg(query, b"md5") or b"") + b"," + (nginx_arg(query, b"expires") or b"")
    token, _, expires_text = joined.partition(b",")
    return token, expires_text


def _client_field(query: bytes, remote_addr: str) -> bytes:
    bind = nginx_arg(query, b"ip") or b""
    if bind == b"":
        return b""
    return remote_addr.encode("ascii") if bind == b"1" else _UNSIGNABLE


def _filename_field(query: bytes) -> bytes:
    """``$secure_link_filename``: the quoted name, or name:ascii name, or "!" for anything else."""
    filename = nginx_arg(query, b"filename") or b""
    ascii_name = nginx_arg(query, b"ascii") or b""
    if filename == b"" and ascii_name == b"":
        return b""
    if filename == b"" or not _only(filename, _FILENAME_BYTES) or not _only(ascii_name, _ASCII_NAME_BYTES):
        return _UNSIGNABLE
    return filename + b":" + ascii_name if ascii_name else filename


def _only(value: bytes, allowed: frozenset[int]) -> bool:
    return all(byte in allowed for byte in value)
