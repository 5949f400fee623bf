"""The ``Content-Disposition`` header of a signed download, byte for byte as nginx builds it.

The signed ``filename`` argument is the download name percent-encoded with
``quote(name, safe="")``, so it is already a valid RFC 5987 ``filename*`` value. Clients that
ignore ``filename*`` (``curl -OJ``, old ones) read the quoted ``filename=`` fallback:

- the name itself when it is plain ASCII (``A-Z a-z 0-9 . _ ~ -``);
- else a close ASCII name that the link carries, signed, in ``ascii=``: accents stripped,
  spaces kept (up to seven), every other character but ``A-Z a-z 0-9 ! $ ' ( ) + . @ _ ~ -``
  replaced by ``_`` (``sunset at the beach.png``, ``resume.pdf`` for ``résumé.pdf``);
- else (links made before ``ascii=`` existed, or nothing usable left) ``download`` plus the
  name's extension.

The signed filename field is ``quote(name)``, or ``quote(name):ASCII`` when the link carries
an ASCII name (its spaces as ``%20``); links without ``ascii=`` hash exactly as before. Nothing a client controls
ever lands between the quotes unchecked.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from urllib.parse import quote, unquote

DISPOSITIONS = ("attachment", "inline")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9._~-]+")
_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,16})$")
# What may stand in an ASCII fallback name: characters that travel raw in a query string and
# are harmless between quotes in a header, and spaces. It travels with only its spaces
# escaped (%20), so that nginx's stock maps can turn it back (nginx/secure_link/rules.conf), at
# most MAX_ASCII_SPACES of them; further spaces become '_'.
ASCII_NAME_CHARACTERS = " !$'()+.@_~A-Za-z0-9-"
ASCII_NAME_SAFE = "!$'()+@"  # quote(name, safe=...): every character but the space stays raw
MAX_ASCII_SPACES = 7
_NOT_IN_ASCII_NAME = re.compile(f"[^{ASCII_NAME_CHARACTERS}]")


@functools.lru_cache(maxsize=4096)
def quote_filename(filename: str) -> str:
    """Percent-encode a download name as it travels in a link (``quote(name, safe="")``)."""
    return quote(filename, safe="")


@functools.lru_cache(maxsize=4096)
def ascii_filename(filename: str) -> str | None:
    """The close ASCII name a link carries for ``filename``; None when the name is plain or none is left."""
    if _PLAIN_NAME.fullmatch(filename):
        return None
    stripped = "".join(char for char in unicodedata.normalize("NFKD", filename) if not unicodedata.combining(char))
    name = _NOT_IN_ASCII_NAME.sub("_", stripped).strip(" .")
    head, *rest = name.split(" ", MAX_ASCII_SPACES)
    name = " ".join([head, *rest[:-1], rest[-1].replace(" ", "_")]) if rest else head
    stem = name.rsplit(".", 1)[0]
    return name if any(char.isascii() and char.isalnum() for char in stem) else None  # else download.<ext>


def filename_field(filename: str) -> str:
    """The signed filename field for a download name (see the module docstring)."""
    ascii_name = ascii_filename(filename)
    quoted = quote_filename(filename)
    return f"{quoted}:{quote(ascii_name, safe=ASCII_NAME_SAFE)}" if ascii_name else quoted


def fallback_filename(field: str) -> str:
    """The ASCII name for ``filename="..."``: nginx's ``$secure_link_fallback_name``."""
    quoted, _, quoted_ascii = field.partition(":")
    if quoted_ascii:
        return unquote(quoted_ascii)
    if _PLAIN_NAME.fullmatch(quoted):
        return quoted
    extension = _EXTENSION.search(quoted)
    return f"download.{extension.group(1)}" if extension else "download"


def content_disposition(disposition: str, field: str = "") -> str | None:
    """The header value for a disposition and a signed filename field, or None for no header."""
    if disposition not in DISPOSITIONS:
        return None
    if not field:
        return disposition
    quoted = field.partition(":")[0]
    return f"{disposition}; filename=\"{fallback_filename(field)}\"; filename*=UTF-8''{quoted}"
