"""The signed string of nginx's links: what both the signer and the verifier build on.

docs/link-format.md specifies the signed string field by field and argues why no two links
share one; :func:`signed_string` is the one place that joins its fields. A link's own fields
(its id, start time and download limit) and the ids themselves are made here too.
"""

from __future__ import annotations

import base64
import os
import re

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
            _fresh_ids.extend([link_id for index in range(0, len(text), 16)
                               if (link_id := text[index:index + 16])[0] != "-"])


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
