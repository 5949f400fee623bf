"""The ``Content-Disposition`` header of a signed download, byte for byte as nginx builds it.

The signed ``filename`` argument is the download name percent-encoded with
``quote(name, safe="")``, so it is already a valid RFC 5987 ``filename*`` value. The
quoted ``filename=`` fallback for old clients is the name itself when it is plain ASCII
(``A-Z a-z 0-9 . _ ~ -``), else ``download`` plus the name's extension. Nothing a client
controls ever lands between the quotes unchecked.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import quote

DISPOSITIONS = ("attachment", "inline")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9._~-]+")
_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,16})$")


@functools.lru_cache(maxsize=4096)
def quote_filename(filename: str) -> str:
    """Percent-encode a download name as it travels in a link (``quote(name, safe="")``)."""
    return quote(filename, safe="")


def fallback_filename(quoted_filename: str) -> str:
    """The ASCII name for ``filename="..."``: nginx's ``$secure_link_fallback_name``."""
    if _PLAIN_NAME.fullmatch(quoted_filename):
        return quoted_filename
    extension = _EXTENSION.search(quoted_filename)
    return f"download.{extension.group(1)}" if extension else "download"


def content_disposition(disposition: str, quoted_filename: str = "") -> str | None:
    """The header value for a disposition and a quoted file name, or None for no header."""
    if disposition not in DISPOSITIONS:
        return None
    if not quoted_filename:
        return disposition
    return (
        f'{disposition}; filename="{fallback_filename(quoted_filename)}"; '
        f"filename*=UTF-8''{quoted_filename}"
    )
