"""How nginx checks a link, in Python: the verifier answers what the shipped configs answer.

nginx reads the request's fields with the maps of ``nginx/secure_link/rules.conf`` and
decides with ``$secure_link``'s values: ``""`` (invalid: 403), ``"0"`` (valid but expired:
410) or ``"1"``. A file link's ``hmac`` argument selects the HMAC-SHA256 check (Lua), else
the stock MD5 check; a directory link's key decides. A request that names no MD5 key in its
query and carries a folder cookie is checked by its cookie (``signing.folder_cookie``).
Either way a link verifies only in its key's own algorithm. The parity tests run both
against the same requests.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from ..addresses import client_network
from ..algorithms import HMAC_SHA256, MD5, SigningAlgorithm
from ..exc import BadSignature, LinkExpired, LinkNotYetValid
from ..keys import Key, KeySet
from ..paths import nginx_uri
from .directory import parse_directory_uri
from .disposition import DISPOSITIONS, content_disposition
from .folder_cookie import COOKIE_NAME, FOLDER_KIND, nginx_cookie, parse_folder_cookie
from .query import nginx_arg
from .signed_string import DIRECTORY_KIND, LINK_ID_PATTERN, link_fields, signed_string

# Values of the optional fields, as nginx/secure_link/rules.conf maps them; "!" is never signed.
_UNSIGNABLE = b"!"
_DISPOSITION_FIELD = {b"": b"", **{kind.encode(): kind.encode() for kind in DISPOSITIONS}}
_FILENAME_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~%-")
_ASCII_NAME_BYTES = _FILENAME_BYTES | frozenset(b"!$'()+@")
# A prefix length in a link (ip=24, ,ip24,): what the rules let reach Lua's network check.
_LENGTH = re.compile(rb"[89]|[1-9][0-9]{1,2}")
# The link's own fields as $secure_link_fields reads them (nginx/secure_link/rules.conf).
_LINK_FIELDS = re.compile(rb"(?P<secure_link_id>%s):(?P<secure_link_nb>(?:[1-9][0-9]{0,14})?):"
                          rb"(?P<secure_link_limit>(?:[1-9][0-9]{0,3})?)" % LINK_ID_PATTERN.pattern.encode())


class TokenStatus(enum.Enum):
    """The value of nginx's ``$secure_link`` for a request."""

    INVALID = ""
    EXPIRED = "0"
    VALID = "1"


@dataclass(frozen=True)
class VerifiedLink:
    """What a request that verified grants: the file's ``$uri`` and how to present it."""

    uri: bytes
    expires: int
    kid: str
    disposition: str
    filename_field: str  # quote(name), or quote(name):quote(ascii name)
    link_id: str | None = None  # None for a link without an id (minted before ids)
    not_before: int | None = None
    max_downloads: int | None = None

    @property
    def filename(self) -> str:
        return unquote(self.filename_field.partition(":")[0])

    @property
    def content_disposition(self) -> str | None:
        return content_disposition(self.disposition, self.filename_field)


class SecureLinkVerifier:
    """Checks requests against a key set exactly as nginx with the shipped config does."""

    def __init__(self, key_set: KeySet, *, prefix: str = "/media/", clock: Callable[[], float] = time.time) -> None:
        self.key_set = key_set
        self.prefix = prefix
        self.clock = clock
        # nginx's map compares key ids case-insensitively; a CDN's keys never reach nginx.
        self._keys = {key.kid.lower().encode("ascii"): key for key in key_set.nginx_keys()}

    def __repr__(self) -> str:
        return f"<SecureLinkVerifier kids={list(self.key_set.kids)} prefix={self.prefix!r}>"

    def get_timestamp(self) -> int:
        return int(self.clock())

    def status(self, *, uri: bytes, query: bytes, remote_addr: str, cookies: Sequence[bytes] = ()) -> TokenStatus:
        """nginx's ``$secure_link`` for a request whose ``$uri``, raw query and Cookie headers are given."""
        return self._check(uri, query, remote_addr, cookies)[0]

    def verify(
        self, *, raw_path: bytes, query: bytes, remote_addr: str, cookies: Sequence[bytes] = ()
    ) -> VerifiedLink:
        """Check a request as nginx does; return what it grants or raise.

        ``cookies`` are the request's Cookie header values, as sent.

        Raises MalformedRequest (nginx: 400) for a path nginx refuses, BadSignature (403)
        for an invalid link, LinkExpired (410) for an expired one and LinkNotYetValid (403)
        before its ``not_before``. Revocation and download limits are state, not signature:
        :class:`signing.nginx.link_state.LinkState` and the app's counter
        (``signing.django.counting``) check them.
        """
        uri = nginx_uri(raw_path)
        status, verified = self._check(uri, query, remote_addr, cookies)
        if status is TokenStatus.INVALID:
            raise BadSignature(f"the link for {uri.decode('utf-8', 'replace')!r} does not verify")
        if status is TokenStatus.EXPIRED:
            raise LinkExpired(f"the link expired at {verified.expires}", expires=verified.expires)
        if verified.not_before is not None and verified.not_before > self.get_timestamp():
            raise LinkNotYetValid(f"the link opens at {verified.not_before}", not_before=verified.not_before)
        return verified

    def _check(
        self, uri: bytes, query: bytes, remote_addr: str, cookies: Sequence[bytes]
    ) -> tuple[TokenStatus, VerifiedLink]:
        directory = parse_directory_uri(uri, self.prefix)
        if directory is not None:
            return self._check_directory(directory, remote_addr)
        kid = nginx_arg(query, b"kid") or b""
        hmac_token = nginx_arg(query, b"hmac")
        if not hmac_token and cookies:  # no MD5 key named in the query: the folder cookie decides
            key = self._keys.get(kid.lower())
            if key is None or key.algorithm is not MD5:
                cookie = nginx_cookie(cookies, COOKIE_NAME.encode())
                if cookie:
                    return self._check_folder_cookie(uri, cookie, remote_addr)
        disposition = _DISPOSITION_FIELD.get((nginx_arg(query, b"disposition") or b"").lower(), _UNSIGNABLE)
        filename = _filename_field(query)
        if hmac_token:  # an "hmac" argument selects the Lua check, whatever else is there
            algorithm: SigningAlgorithm = HMAC_SHA256
            token, expires_text = hmac_token, nginx_arg(query, b"expires") or b""
        else:
            algorithm = MD5
            token, expires_text = _token_and_expires(query)
        expires = algorithm.read_expires(expires_text)
        own_fields, link_id, not_before, max_downloads = _link_fields(query)
        signed = signed_string(expires_text, kid, _client_field(query, remote_addr), disposition, filename, uri,
                               own_fields)
        valid = self._valid(self._keys.get(kid.lower()), algorithm, expires, token, signed)
        fields = VerifiedLink(uri, expires, kid.decode("ascii", "replace"), disposition.decode(), filename.decode(),
                              link_id, not_before, max_downloads)
        return self._status(valid, expires), fields

    def _check_directory(self, directory: dict[str, bytes], remote_addr: str) -> tuple[TokenStatus, VerifiedLink]:
        uri = directory["prefix"] + directory["file"]
        return self._check_folder_grant(uri, DIRECTORY_KIND, directory["prefix"], directory, remote_addr)

    def _check_folder_cookie(self, uri: bytes, cookie: bytes, remote_addr: str) -> tuple[TokenStatus, VerifiedLink]:
        parts = parse_folder_cookie(cookie, self.prefix)
        if parts is None or not uri.startswith(parts["folder"]):  # anchored: the folder, then below it
            return TokenStatus.INVALID, VerifiedLink(uri, -1, "", "", "")
        return self._check_folder_grant(uri, FOLDER_KIND, parts["folder"], parts, remote_addr)

    def _check_folder_grant(
        self, uri: bytes, kind: bytes, folder: bytes, parts: dict[str, bytes], remote_addr: str
    ) -> tuple[TokenStatus, VerifiedLink]:
        """A directory link's or a folder cookie's token (``parts``: kid, expires, ip, id, nb, token) for ``folder``."""
        kid, expires_text = parts["kid"], parts["expires"]
        key = self._keys.get(kid.lower())
        algorithm = key.algorithm if key is not None else MD5  # the key's algorithm decides, as in nginx's maps
        expires = algorithm.read_expires(expires_text)
        client = _bound_client(parts["length"], remote_addr) if parts["ip"] else b""
        # The patterns allow an nb only after an id; a grant minted before ids has no fields.
        link_id = parts["id"].decode() if parts["id"] else None
        not_before = int(parts["nb"]) if parts["nb"] else None
        fields = link_fields(link_id, not_before) if link_id else b""
        signed = signed_string(expires_text, kid, client, kind, b"", folder, fields)
        valid = self._valid(key, algorithm, expires, parts["token"], signed)
        return self._status(valid, expires), VerifiedLink(uri, expires, kid.decode(), "", "", link_id, not_before)

    @staticmethod
    def _valid(key: Key | None, algorithm: SigningAlgorithm, expires: int, token: bytes, signed: bytes) -> bool:
        """A key of this algorithm, a positive expiry, and a token of the signed string."""
        if key is None or key.algorithm is not algorithm or expires <= 0:
            return False
        return algorithm.verify(token, key.secret.encode("ascii"), signed)

    def _status(self, valid: bool, expires: int) -> TokenStatus:
        """nginx's verdict once the signature is checked: a signature comes before the expiry."""
        if not valid:
            return TokenStatus.INVALID
        return TokenStatus.EXPIRED if expires < self.get_timestamp() else TokenStatus.VALID


def _token_and_expires(query: bytes) -> tuple[bytes, bytes]:
    # secure_link "$arg_md5,$arg_expires": nginx splits the joined value at the first ','.
    joined = (nginx_arg(query, b"md5") or b"") + b"," + (nginx_arg(query, b"expires") or b"")
    token, _, expires_text = joined.partition(b",")
    return token, expires_text


def _link_fields(query: bytes) -> tuple[bytes, str | None, int | None, int | None]:
    """``$secure_link_fields`` (empty without them, ``ID|NB|LIMIT|`` when well formed, else "!"),
    with the id, not-before and limit it read (None for each when it reads none)."""
    link_id, not_before, max_downloads = (nginx_arg(query, name) or b"" for name in (b"id", b"nb", b"limit"))
    if not (link_id or not_before or max_downloads):
        return b"", None, None, None
    if not _LINK_FIELDS.fullmatch(b"%s:%s:%s" % (link_id, not_before, max_downloads)):
        return _UNSIGNABLE, None, None, None
    return (b"%s|%s|%s|" % (link_id, not_before, max_downloads), link_id.decode("ascii"),
            int(not_before) if not_before else None, int(max_downloads) if max_downloads else None)


def _client_field(query: bytes, remote_addr: str) -> bytes:
    """``$secure_link_client``: "" unbound, the address for ``ip=1``, its network for ``ip=LENGTH``."""
    bind = nginx_arg(query, b"ip") or b""
    if bind == b"":
        return b""
    if bind == b"1":
        return remote_addr.encode("ascii")
    return _bound_client(bind, remote_addr) if _LENGTH.fullmatch(bind) else _UNSIGNABLE


def _bound_client(length: bytes, remote_addr: str) -> bytes:
    """The client field of a binding to the address (no ``length``) or to its network of ``length`` bits
    (``network.lua``: "!" for a length its family does not allow)."""
    if not length:
        return remote_addr.encode("ascii")
    try:
        return client_network(remote_addr, int(length)).encode("ascii")
    except ValueError:
        return _UNSIGNABLE


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
