"""Where an origin nginx counts the downloads of download-limited links: the app servers.

An origin holds no count of its own. For each request of a limited link its Lua
(``secure_link/lua/downloads.lua``) asks one of the app servers listed here
(``POST /_secure_link/downloads/take``, then ``…/settle`` for a request that did not send the
whole file), and the app answers from one atomic statement in its database
(:mod:`signing.django.counting`). The installer writes the list and the counter token into
``secure_link_counter.conf`` (mode 0600) beside nginx's main config.

The counter token is derived from the fleet token, so that what travels to the app servers
on every limited download cannot open the key set.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

COUNTER_INCLUDE = "secure_link_counter.conf"
_TOKEN_CONTEXT = b"secure-link download counter"


def counter_token(fleet_token: str) -> str:
    """The token an origin shows the counter, derived from the fleet token (HMAC-SHA256, hex)."""
    return hmac.new(fleet_token.encode(), _TOKEN_CONTEXT, hashlib.sha256).hexdigest()


def counter_address(url: str) -> str:
    """``url`` as the origin's Lua connects to it: ``http://IP:PORT`` (IPv6 in brackets) or
    ``unix:/absolute/path``; ValueError in one line for anything else."""
    if url.startswith("unix:/"):
        if any(character.isspace() or character in '"$;{}\\' for character in url):
            raise ValueError(f"the counter {url!r} has a character nginx's config cannot hold")
        return url
    parts = urlsplit(url)
    try:
        ipaddress.ip_address(parts.hostname or "")
        port = parts.port
    except ValueError:
        raise ValueError(f"the counter {url!r} is not http://IP:PORT nor unix:/PATH (nginx's Lua connects "
                         "without a resolver: give the app server's address, not its name)") from None
    if parts.scheme != "http" or port is None or parts.path not in ("", "/") or parts.query or parts.username:
        raise ValueError(f"the counter {url!r} is not http://IP:PORT nor unix:/PATH")
    return f"http://{parts.netloc}"


@dataclass(frozen=True)
class DownloadCounter:
    """The app servers an origin asks (tried from a random one, the next on a refused
    connection) and the counter token; ``render()`` is ``secure_link_counter.conf``."""

    urls: tuple[str, ...]
    token: str = field(repr=False)

    @classmethod
    def of(cls, urls: Sequence[str], fleet_token: str) -> DownloadCounter:
        if not urls:
            raise ValueError("no counter: give the app servers that count downloads (--counter http://IP:PORT)")
        if not fleet_token:
            raise ValueError("the fleet token is empty: the counter needs it")
        return cls(tuple(counter_address(url) for url in urls), counter_token(fleet_token))

    def render(self) -> str:
        return render_counter_include(self.urls, self.token)


def render_counter_include(urls: Sequence[str], token: str) -> str:
    """``secure_link_counter.conf``; without urls, limited links get 503 and nginx logs why once."""
    return (
        "# Written by the installer (manage.py install_nginx --counter, python -m signing install-nginx\n"
        "# --counter): the app servers that count the downloads of download-limited links, and the\n"
        "# counter token they expect. Mode 0600. secure_link/lua/downloads.lua reads both.\n"
        f'map $secure_link_id $secure_link_counter {{ default "{" ".join(urls)}"; }}\n'
        f'map $secure_link_id $secure_link_counter_token {{ default "{token}"; }}\n'
    )
