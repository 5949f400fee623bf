"""Paths as nginx sees them: the canonical form we sign and the ``$uri`` nginx hashes.

nginx percent-decodes the request path once, merges slashes and resolves ``.`` and
``..`` before it fills ``$uri``. We sign that decoded form (its UTF-8 bytes) and emit it
percent-encoded with :func:`urllib.parse.quote`, so one token verifies however a client
re-encodes the path.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import quote

from .exc import MalformedRequest, UnsafePath

_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


# One scan for every rule: a control character, or an empty, "." or ".." segment.
_UNSIGNABLE = re.compile(r"[\x00-\x1f\x7f]|/(?:\.\.?)?(?:/|\Z)")
# Paths made only of these characters need no percent-encoding.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.~/-]*")


def check_signable_path(path: str, *, prefix: str) -> bytes:
    """Return the UTF-8 bytes nginx's ``$uri`` will hold for ``path``, or raise UnsafePath.

    ``path`` is the decoded URL path (``/media/images/a b.jpg``). It must lie under
    ``prefix``, and have no empty, ``.`` or ``..`` segments and no control characters,
    because nginx would rewrite such a path before hashing it.
    """
    if not path.startswith(prefix) or len(path) == len(prefix):
        raise UnsafePath(f"path {path!r} is not a file under the protected prefix {prefix!r}")
    problem = _UNSIGNABLE.search(path)
    if problem:
        if problem.group()[0] != "/":
            raise UnsafePath(f"path {path!r} contains a control character")
        raise UnsafePath(f"path {path!r} has an empty, '.' or '..' segment")
    try:
        return path.encode("utf-8")
    except UnicodeEncodeError as error:
        raise UnsafePath(f"path {path!r} is not encodable as UTF-8") from error


def quote_path(path: str) -> str:
    """Percent-encode a canonical path for a URL (``quote``, never ``quote_plus``)."""
    return path if _PLAIN_PATH.fullmatch(path) else quote(path, safe="/")


@functools.lru_cache(maxsize=16384)
def prepare_path(path: str, prefix: str) -> tuple[bytes, str]:
    """``(uri bytes, quoted path)`` for a signable path, cached: links to one file repeat."""
    return check_signable_path(path, prefix=prefix), quote_path(path)


def nginx_uri(raw_path: bytes) -> bytes:
    """Return what nginx puts in ``$uri`` for the raw request path, or raise MalformedRequest.

    Mirrors ``ngx_http_parse_complex_uri`` with ``merge_slashes on``: decode ``%XX`` once,
    then merge slashes and resolve dot segments. Invalid escapes, NUL and ``..`` above the
    root are the cases nginx answers with 400.
    """
    if not raw_path.startswith(b"/"):
        raise MalformedRequest(f"request path {raw_path!r} does not start with '/'")
    decoded = _percent_decode(raw_path)
    segments: list[bytes] = []
    parts = decoded.split(b"/")[1:]
    for index, segment in enumerate(parts):
        is_last = index == len(parts) - 1
        if segment == b"..":
            if not segments:
                raise MalformedRequest(f"request path {raw_path!r} climbs above the root")
            segments.pop()
        elif segment not in (b"", b"."):
            segments.append(segment)
            continue
        if is_last:
            segments.append(b"")
    return b"/" + b"/".join(segments)


def _percent_decode(raw_path: bytes) -> bytes:
    if b"\0" in raw_path:
        raise MalformedRequest("request path contains NUL")
    pieces = raw_path.split(b"%")
    decoded = bytearray(pieces[0])
    for piece in pieces[1:]:
        if len(piece) < 2 or piece[0] not in _HEX_DIGITS or piece[1] not in _HEX_DIGITS:
            raise MalformedRequest(f"request path {raw_path!r} has an invalid %-escape")
        byte = int(piece[:2], 16)
        if byte == 0:
            raise MalformedRequest("request path contains an encoded NUL")
        decoded.append(byte)
        decoded += piece[2:]
    return bytes(decoded)
