"""Directory links: the URL form that carries a token in the path, and how nginx reads it.

``/media/videos/42/-/k1,1767225600[,ip[LENGTH]][,id=ID[,nb=NOT_BEFORE]],TOKEN/720p/seg001.ts``: the
signed prefix (up to the first ``/-/``), then ``KID,EXPIRES``, the binding (``ip``: the address,
``ip24``: its /24 network), the grant's own
fields (its link id and start time, signed as a file link's are; links minted before ids
have none), the token, then the file below the prefix. Because the token is a path segment,
a relative URL resolved against a playlist's URL keeps it. The pattern below is the one of
the ``location ~`` in nginx/secure_link/server/directory.conf, applied, as nginx does, to the
normalised ``$uri``.
"""

from __future__ import annotations

import functools
import re

from ..exc import UnsafePath
from ..paths import check_signable_path

SEPARATOR = "-"  # the path segment between the prefix and the token segment

@functools.lru_cache(maxsize=16)
def directory_pattern(media_prefix: str) -> str:
    """The PCRE/Python pattern of a directory link under ``media_prefix`` (as in the nginx configs)."""
    return (
        rf"^(?P<prefix>{re.escape(media_prefix)}(?P<below>(?:[^/]+/)*?)){SEPARATOR}/"
        r"(?P<kid>[a-z0-9][a-z0-9_-]*),(?P<expires>[0-9]+),(?:(?P<ip>ip(?P<length>[89]|[1-9][0-9]{1,2})?),)?"
        r"(?:id=(?P<id>[A-Za-z0-9_-]{8,64}),(?:nb=(?P<nb>[1-9][0-9]{0,14}),)?)?(?P<token>[A-Za-z0-9_-]+)/"
        r"(?P<file>.+)$"
    )


def parse_directory_uri(uri: bytes, media_prefix: str) -> dict[str, bytes] | None:
    """The parts of a directory link's ``$uri`` (``ip``, ``id``, ``nb`` are b"" when absent), or None for a file link."""
    return match_parts(directory_pattern(media_prefix), uri)


@functools.lru_cache(maxsize=16)
def _compiled(pattern: str) -> re.Pattern[bytes]:
    return re.compile(pattern.encode())


def match_parts(pattern: str, value: bytes) -> dict[str, bytes] | None:
    """The named groups of ``pattern`` matched at the start of ``value`` (b"" for an absent one), or None."""
    match = _compiled(pattern).match(value)
    if match is None:
        return None
    return {name: part or b"" for name, part in match.groupdict().items()}


def directory_prefix_bytes(prefix: str, media_prefix: str) -> bytes:
    """The UTF-8 bytes of a signable directory prefix, or UnsafePath.

    It lies under (or is) ``media_prefix``, ends with ``/``, and has no empty, ``.``,
    ``..`` or ``-`` segment and no control character.
    """
    if not prefix.startswith(media_prefix) or not prefix.endswith("/"):
        raise UnsafePath(f"directory {prefix!r} must start with {media_prefix!r} and end with '/'")
    if f"/{SEPARATOR}/" in prefix:
        raise UnsafePath(f"directory {prefix!r} has a {SEPARATOR!r} segment, which separates the token")
    check_signable_path(prefix + "x", prefix=media_prefix)  # the segments' rules, on a file below it
    return prefix.encode("utf-8")


def grant_fields(link_id: str | None, not_before: int | None, separator: str) -> str:
    """A directory link's or a folder cookie's own fields as its URL or value carries them:
    ``id=ID`` and ``nb=NOT_BEFORE``, each followed by ``separator``; empty without an id."""
    if link_id is None:
        return ""
    return f"id={link_id}{separator}" + (f"nb={not_before}{separator}" if not_before is not None else "")


def directory_url(quoted_prefix: str, kid: str, expires: int, binding: str | None, token: str,
                  link_id: str | None = None, not_before: int | None = None) -> str:
    flag = f",{binding}" if binding else ""
    return f"{quoted_prefix}{SEPARATOR}/{kid},{expires}{flag},{grant_fields(link_id, not_before, ',')}{token}/"
