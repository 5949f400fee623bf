"""Folder cookies: one signed cookie that opens every file below a folder until it expires.

A player that follows absolute segment URLs (``/media/videos/42/720p/seg001.ts``) keeps no
token from its playlist's URL; a cookie scoped to the folder goes with every request
instead. The cookie ``secure_link_folder`` holds ``FOLDER:KID:EXPIRES[:ip][:id=ID[:nb=NB]]:TOKEN``;
its token signs ``EXPIRES|KID|CLIENT|folder||[ID|NB||]FOLDER`` ("folder" stands where a file
link's disposition stands, so a cookie's token verifies as nothing else; the grant's id and
start time are signed as a file link's are, and a cookie minted before ids has none).

nginx checks it in ``nginx/secure_link/folder.conf`` with the pattern below, which is the one
of ``nginx/secure_link/rules.conf`` (the contract test compares them). A signed folder is
matched exactly and anchored: it is made only of ``A-Z a-z 0-9 . _ ~ -`` segments (no ``.``
or ``..`` segment), so it holds no ``|``, ``%`` or ``:``, it is its own percent-encoding, and
nothing in it can widen the grant. The request's normalised ``$uri`` must start with it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from .directory import grant_fields, match_parts
from ..exc import UnsafePath

COOKIE_NAME = "secure_link_folder"
FOLDER_KIND = b"folder"  # the disposition slot of a folder cookie's signed string
# One segment of a signable folder: safe characters, and never "." or "..".
_SEGMENT = r"(?!\.\.?/)[A-Za-z0-9._~-]+/"


@functools.lru_cache(maxsize=16)
def folder_cookie_pattern(media_prefix: str) -> str:
    """The PCRE/Python pattern of a folder cookie's value under ``media_prefix`` (as in rules.conf)."""
    return (
        rf"^(?P<folder>{re.escape(media_prefix)}(?:{_SEGMENT})*):(?P<kid>[a-z0-9][a-z0-9_-]*):"
        r"(?P<expires>[0-9]+):(?:(?P<ip>ip(?P<length>[89]|[1-9][0-9]{1,2})?):)?(?:id=(?P<id>[A-Za-z0-9_-]{8,64}):(?:nb=(?P<nb>[1-9][0-9]{0,14}):)?)?"
        r"(?P<token>[A-Za-z0-9_-]+)$"
    )


def parse_folder_cookie(value: bytes, media_prefix: str) -> dict[str, bytes] | None:
    """The parts of a folder cookie's value (``ip``, ``id``, ``nb`` are b"" when absent), or None if it is not one."""
    return match_parts(folder_cookie_pattern(media_prefix), value)


def cookie_folder_bytes(folder: str, media_prefix: str) -> bytes:
    """The bytes of a folder a cookie may grant, or UnsafePath saying why it may not."""
    if not folder.startswith(media_prefix) or not folder.endswith("/"):
        raise UnsafePath(f"folder {folder!r} must start with {media_prefix!r} and end with '/'")
    if not re.fullmatch(rf"{re.escape(media_prefix)}(?:{_SEGMENT})*", folder):
        raise UnsafePath(
            f"folder {folder!r} cannot be granted by a cookie: use folder names of A-Z a-z 0-9 . _ ~ - "
            "(no '.' or '..' segment), or a directory link"
        )
    return folder.encode("ascii")


def folder_cookie_value(folder: str, kid: str, expires: int, binding: str | None, token: str,
                        link_id: str | None = None, not_before: int | None = None) -> str:
    """The cookie's value: ``FOLDER:KID:EXPIRES[:ip[LENGTH]][:id=ID[:nb=NB]]:TOKEN``."""
    flag = f":{binding}" if binding else ""
    return f"{folder}:{kid}:{expires}{flag}:{grant_fields(link_id, not_before, ':')}{token}"


def nginx_cookie(cookie_headers: Sequence[bytes], name: bytes) -> bytes | None:
    """``$cookie_<name>``: the value of the first ``name=`` cookie in the Cookie headers.

    Mirrors nginx 1.22's ``ngx_http_parse_multi_header_lines`` on header values as nginx
    stores them (leading and trailing spaces dropped): the name is compared
    case-insensitively, spaces around ``=`` are skipped, the value runs to the next ``;``,
    and cookies are separated by ``;`` or ``,``.
    """
    size = len(name)
    lowered = name.lower()
    for header in (value.strip(b" ") for value in cookie_headers):
        if size > len(header):
            continue
        start, end = 0, len(header)
        while start < end:
            if header[start:start + size].lower() == lowered:
                start += size
                while start < end and header[start] == 0x20:
                    start += 1
                if start < end:
                    equals = header[start] == 0x3D
                    start += 1
                    if equals:
                        while start < end and header[start] == 0x20:
                            start += 1
                        last = header.find(b";", start)
                        return header[start:end if last < 0 else last]
            while start < end:
                start += 1
                if header[start - 1] in b";,":
                    break
            while start < end and header[start] == 0x20:
                start += 1
    return None
