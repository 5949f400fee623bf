"""How nginx reads a request's query: ``$arg_<name>`` and ``ngx_atotm``, byte for byte."""

from __future__ import annotations

# nginx's ngx_atotm refuses values above the largest 64-bit time_t.
_MAX_TIME_T = 2**63 - 1


def nginx_arg(query: bytes, name: bytes) -> bytes | None:
    """``$arg_<name>``: the raw value of the first ``name=`` argument, name case-insensitive."""
    if not query:
        return None
    size = len(name)
    for argument in query.split(b"&"):
        if argument[size : size + 1] == b"=" and argument[:size].lower() == name:
            return argument[size + 1 :]
    return None


def nginx_atotm(text: bytes) -> int:
    """nginx's ``ngx_atotm``: decimal digits to an int, or -1 when empty, not digits or too big."""
    if not text or not text.isdigit() or not text.isascii():
        return -1
    value = int(text)
    return value if value <= _MAX_TIME_T else -1
