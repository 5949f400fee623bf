"""The CDNs' links from a key set: :class:`CDNLinkSigner`, with the same calls as nginx's signer.

Each key of a CDN's own algorithm signs that CDN's format (:mod:`signing.cdn.cloudfront`,
:mod:`~signing.cdn.cloudcdn`, :mod:`~signing.cdn.akamai`, each imported only when such a key
is used: CloudFront's needs ``cryptography``). A link form the CDN cannot express is a
ValueError that says so, never a link the CDN would read differently (docs/cdn.md).
"""

from __future__ import annotations

import ipaddress

import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..addresses import canonical_client_address, client_network
from ..encoding import LinkClock
from ..exc import KeySetError
from ..keys import Key, KeySet
from ..links import CookieGrant, SignedLink
from ..nginx.folder_cookie import cookie_folder_bytes
from ..paths import prepare_path

if TYPE_CHECKING:  # pragma: no cover - signing.delivery imports this module
    from ..delivery import DeliveryTarget

# What each CDN's links can carry besides an expiry (docs/cdn.md).
_CAN_CARRY = {
    "cloudfront": frozenset({"not_before", "client_ip"}),
    "cloudcdn": frozenset(),
    "akamai": frozenset({"not_before", "client_ip"}),
}
_OPTION_NAMES = {
    "not_before": "a start time (not_before)",
    "client_ip": "a client address",
    "filename": "a download name",
    "disposition": "a Content-Disposition",
    "max_downloads": "a download limit",
    "link_id": "a link id (its links cannot be revoked one by one)",
}


class CDNLinkSigner(LinkClock):
    """Signs a CDN's links with the key set's keys of that CDN (the active one unless ``kid``).

    The same calls as :class:`~signing.SecureLinkSigner`: ``sign(path, ttl=...)`` gives an
    absolute :class:`SignedLink` to ``base_url`` + the path, ``sign_folder_cookie(folder,
    ttl=...)`` the CDN's cookies for every file below the folder. KeySetError when the key
    set's active key is not one of this CDN's.
    """

    carries_link_ids = False  # no CDN link carries our link id: none is revocable alone
    names_downloads = False  # no CDN sets Content-Disposition from a signed link
    mints_absolute_urls = True

    def __init__(
        self,
        key_set: KeySet,
        target: DeliveryTarget,
        *,
        prefix: str = "/media/",
        expiry_bucket: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        target = target.check()
        if target.is_nginx:
            raise ValueError("the nginx target is signed by SecureLinkSigner")
        key_set.check()
        active = key_set.active
        if not target.signs_with(active):
            raise KeySetError(
                f"the delivery target is {target.name} but the active key {active.kid!r} is a {active.algorithm.name} "
                f"key: add a {target.name} key and activate it (docs/cdn.md)"
            )
        if expiry_bucket < 0:
            raise ValueError(f"expiry_bucket must be 0 or more seconds, got {expiry_bucket}")
        self.key_set = key_set
        self.target = target
        self.active_kid = active.kid
        self.prefix = prefix
        self.expiry_bucket = expiry_bucket
        self.clock = clock
        self._signers = {key.kid: _cdn_signer(key) for key in key_set if target.signs_with(key)}

    def __repr__(self) -> str:
        return f"<CDNLinkSigner target={self.target.name} kids={list(self._signers)} active_kid={self.active_kid!r}>"

    def sign(
        self,
        path: str,
        *,
        ttl: int | timedelta,
        client_ip: str | None = None,
        filename: str | None = None,
        disposition: str | None = None,
        kid: str | None = None,
        link_id: str | None = None,
        not_before: int | None = None,
        max_downloads: int | None = None,
    ) -> SignedLink:
        """The CDN's signed URL for the decoded ``path``; ValueError for what the CDN cannot check."""
        self._refuse({"client_ip": client_ip, "filename": filename, "disposition": disposition,
                      "link_id": link_id, "not_before": not_before, "max_downloads": max_downloads})
        kid = self.active_kid if kid is None else kid
        signer = self._signer(kid)
        _, quoted_path = prepare_path(path, self.prefix)
        url = self.target.base_url + quoted_path
        expires = self.expires_for(ttl)
        if not_before is not None and not_before > expires:
            raise ValueError(f"the link would open at {not_before}, after it expires at {expires}")
        if self.target.name == "cloudcdn":  # an expiry alone (_refuse turned the rest away)
            signed = signer.sign_url(url, expires=expires)
        else:
            signed = signer.sign_url(url, expires=expires, not_before=not_before, ip=self._client(client_ip))
        return SignedLink(signed, path, expires, kid, None, not_before, None)

    def sign_folder_cookie(
        self, folder: str, *, ttl: int | timedelta, client_ip: str | None = None, kid: str | None = None,
        link_id: str | None = None, not_before: int | None = None,
    ) -> CookieGrant:
        """The CDN's cookies for every file below the decoded ``folder`` (``/media/videos/42/``).

        CloudFront: the three signed cookies of a custom policy on ``BASE/FOLDER*``; Cloud
        CDN: ``Cloud-CDN-Cookie`` for the URL prefix ``BASE/FOLDER``; Akamai: the ACL token
        ``FOLDER*`` in ``__token__``. The folder follows the rules of our own folder cookies.
        """
        self._refuse({"client_ip": client_ip, "not_before": not_before, "link_id": link_id})
        kid = self.active_kid if kid is None else kid
        signer = self._signer(kid)
        cookie_folder_bytes(folder, self.prefix)
        expires = self.expires_for(ttl)
        client = self._client(client_ip)
        if self.target.name == "cloudfront":
            cookies = signer.cookies(f"{self.target.base_url}{folder}*", expires=expires, not_before=not_before,
                                     ip=client)
        elif self.target.name == "akamai":
            cookies = signer.cookie(f"{folder}*", expires=expires, not_before=not_before, ip=client)
        else:
            cookies = signer.cookie(f"{self.target.base_url}{folder}", expires=expires)
        return CookieGrant(cookies, folder, expires, kid, None, not_before)

    def _client(self, client_ip: str | None) -> str | None:
        """The CDN's form of a binding: the address, or ``ADDRESS/LENGTH``'s network as a CIDR
        (CloudFront's ``AWS:SourceIp``); Akamai's ``ip`` field names one address (ValueError for a network)."""
        if not client_ip:
            return None
        address, slash, length = client_ip.partition("/")
        if not slash:
            return canonical_client_address(client_ip)
        if not length.isdigit():
            raise ValueError(f"{client_ip!r}: give ADDRESS/LENGTH with a prefix length")
        network = ipaddress.ip_network(client_network(address, int(length)))
        if network.num_addresses == 1:  # /32 or /128: the address alone
            return str(network.network_address)
        if self.target.name == "akamai":
            raise ValueError(f"akamai binds a token to one address, not to the network {network}: bind the "
                             "address alone (bind_ip true)")
        return str(network)

    def sign_directory(self, prefix: str, *, ttl: int | timedelta, client_ip: str | None = None,
                       kid: str | None = None, link_id: str | None = None, not_before: int | None = None) -> SignedLink:
        """Directory links are our nginx's form; a CDN grants a folder by cookie (ValueError)."""
        raise ValueError(f"{self.target.name} cannot check directory links (a token in the path): "
                         "grant the folder with its cookies (sign_folder_cookie) instead")

    def _refuse(self, options: dict[str, Any]) -> None:
        for option, value in options.items():
            if value is not None and option not in _CAN_CARRY[self.target.name]:
                raise ValueError(f"{self.target.name} links cannot carry {_OPTION_NAMES[option]} (docs/cdn.md)")

    def _signer(self, kid: str) -> Any:
        signer = self._signers.get(kid)
        if signer is None:
            raise ValueError(f"no {self.target.name} key {kid!r} (keys: {', '.join(self._signers)})")
        return signer


def _cdn_signer(key: Key) -> Any:
    """The signer of one CDN key (its module is imported only now: CloudFront's needs cryptography)."""
    name = key.algorithm.name
    if name == "cloudfront":
        from .cloudfront import signer_from_secret as cloudfront_signer

        return cloudfront_signer(key.secret)
    if name == "cloudcdn":
        from .cloudcdn import signer_from_secret as cloudcdn_signer

        return cloudcdn_signer(key.kid, key.secret)
    from .akamai import signer_from_secret as akamai_signer

    return akamai_signer(key.secret)
