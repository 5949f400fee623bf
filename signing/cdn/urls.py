"""URL helpers shared by the CDN signers: what a URL to sign must be, and the times it carries."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit


def unix_time(name: str, value: int) -> int:
    """``value`` if it is a positive int (Unix seconds), else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive number of Unix seconds, got {value!r}")
    return value


def opening_time(not_before: int, expires: int) -> int:
    """``not_before`` if it is a valid time before ``expires``, else ValueError."""
    unix_time("not_before", not_before)
    if not_before >= expires:
        raise ValueError(f"not_before {not_before} must come before expires {expires}")
    return not_before


def checked_url(url: str, *, reserved: frozenset[str]) -> str:
    """``url`` if it can be signed: absolute http(s), printable ASCII, no fragment, no ``reserved`` argument."""
    if not isinstance(url, str) or not printable_ascii(url):
        raise ValueError(f"URL {url!r} must be printable ASCII: percent-encode spaces and non-ASCII characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"URL {url!r} must be absolute, http:// or https://")
    if "#" in url:
        raise ValueError(f"URL {url!r} has a fragment ('#'), which is never sent: drop it")
    clashes = sorted({name for name, _ in parse_qsl(parts.query, keep_blank_values=True)} & reserved)
    if clashes:
        raise ValueError(f"URL {url!r} already has the argument(s) {', '.join(clashes)} that signing adds")
    return url


def append_query(url: str, arguments: str) -> str:
    """``url`` with ``arguments`` appended after ``?``, or ``&`` if it has a query already."""
    return f"{url}{'&' if '?' in url else '?'}{arguments}"


def printable_ascii(text: str) -> bool:
    """Whether ``text`` is printable ASCII without spaces: what a CDN signs as it is."""
    return text.isascii() and text.isprintable() and " " not in text
