"""How nginx reads a request's query: ``$arg_<name>``, byte for byte."""

from __future__ import annotations


def nginx_arg(query: bytes, name: bytes) -> bytes | None:
    """``$arg_<name>``: the raw value of the first ``name=`` argument, name case-insensitive."""
    if not query:
        return None
    size = len(name)
    for argument in query.split(b"&"):
        if argument[size : size + 1] == b"=" and argument[:size].lower() == name:
            return argument[size + 1 :]
    return None

