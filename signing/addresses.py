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


# The prefix lengths a link may be bound to, per family (an IPv4-mapped address counts as IPv4).
IPV4_LENGTHS = range(8, 33)
IPV6_LENGTHS = range(32, 129)


def client_network(address: str, length: int) -> str:
    """The signed text of the network of ``length`` bits that ``address`` lies in, as
    ``nginx/secure_link/lua/network.lua`` computes it from ``$remote_addr``: IPv4
    ``203.0.113.0/24``, IPv6 fully expanded in lower case (``2001:0db8:0001:0002:0000:0000:0000:0000/64``).

    An IPv4-mapped IPv6 address counts as IPv4. ValueError for a length outside 8 to 32
    (IPv4) or 32 to 128 (IPv6), or for what is not an address.
    """
    parsed = ipaddress.ip_address(canonical_client_address(address))
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    if isinstance(parsed, ipaddress.IPv4Address):
        if length not in IPV4_LENGTHS:
            raise ValueError(f"an IPv4 client can be bound to a network of 8 to 32 bits, not {length}")
        return f"{ipaddress.IPv4Network((parsed, length), strict=False).network_address}/{length}"
    if length not in IPV6_LENGTHS:
        raise ValueError(f"an IPv6 client can be bound to a network of 32 to 128 bits, not {length}")
    return f"{ipaddress.IPv6Network((parsed, length), strict=False).network_address.exploded}/{length}"


def client_binding(client_ip: str) -> tuple[str, str]:
    """``(flag, signed field)`` of a binding: ``client_ip`` is an address (the link opens for that
    address alone: flag ``""``, the field ``$remote_addr``'s text) or ``ADDRESS/LENGTH`` (for every
    address of that network: flag ``LENGTH``, the field :func:`client_network`). ValueError otherwise."""
    address, slash, length = client_ip.partition("/")
    if not slash:
        return "", canonical_client_address(address)
    if not length.isdigit() or length.startswith("0"):
        raise ValueError(f"{client_ip!r}: give ADDRESS/LENGTH with a prefix length of 8 to 32 (IPv4) or 32 to 128 (IPv6)")
    return length, client_network(address, int(length))
