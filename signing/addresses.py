"""Client addresses as nginx reports them in ``$remote_addr``: the text a bound link signs."""

from __future__ import annotations

import functools
import ipaddress


@functools.lru_cache(maxsize=4096)
def canonical_client_address(address: str) -> str:
    """The text nginx's ``$remote_addr`` holds for ``address`` (IPv4 or IPv6)."""
    if "%" in address:
        raise ValueError(f"client address {address!r} has a zone id, which nginx never reports")
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return f"::ffff:{parsed.ipv4_mapped}"
    return str(parsed)
