"""Signing stored files: from a storage name to an absolute signed URL, and the helpers around it.

Every function takes a storage name (``images/a.jpg``, relative to ``MEDIA_ROOT``) and signs the
URL path below ``MEDIA_URL``, the prefix nginx protects, for the delivery target
(``SECURE_LINK['DELIVERY']``): our nginx's links, or a CDN's.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponseBase

from .. import CookieGrant, SignedLink, new_link_id
from ..paths import check_signable_path, quote_path
from .conf import INTERNAL_MEDIA_PREFIX, get_link_signer, link_settings

if TYPE_CHECKING:  # pragma: no cover - models import this module's callers
    from django.contrib.auth.models import AbstractBaseUser

    from .models import IssuedLink


def media_folder(name: str) -> str:
    """The decoded URL path of a stored folder, ending with ``/`` (``videos/42`` -> ``/media/videos/42/``)."""
    return media_path(name if name.endswith("/") else name + "/")


def media_path(name: str) -> str:
    """The decoded URL path of a stored file (``images/a.jpg`` -> ``/media/images/a.jpg``)."""
    return link_settings().media_url + name


def internal_redirect_target(name: str) -> str:
    """The ``X-Accel-Redirect`` value for a stored file: the internal location, percent-encoded.

    Raises UnsafePath for a name that could leave the media root: the rules of signing.
    """
    check_signable_path(media_path(name), prefix=link_settings().media_url)
    return quote_path(INTERNAL_MEDIA_PREFIX + name)


def absolute_url(path_and_query: str, request: HttpRequest | None = None) -> str:
    """``SECURE_LINK['BASE_URL']`` + path when set, else the request's scheme and host + path.

    ``path_and_query`` must already be percent-encoded (signed links are). A request that
    named no host (HTTP/1.0 without ``Host``) gets the path alone: Django would otherwise
    fall back to the app server's own address, which no client can reach. The request's
    base is worked out once per request: a page of 100 links asks for it 100 times.
    """
    base_url = link_settings().base_url
    if base_url or request is None:
        return base_url + path_and_query
    request_base: str | None = getattr(request, "_absolute_url_base", None)
    if request_base is None:
        request_base = request.build_absolute_uri("/")[:-1] if request.META.get("HTTP_HOST") else ""
        setattr(request, "_absolute_url_base", request_base)
    return request_base + path_and_query


class LinkIssuer:
    """What every link signed for one request shares, looked up once: signer, TTL, base URL.

    The signer is the delivery target's (``SECURE_LINK['DELIVERY']``): nginx's, or a CDN's,
    whose links are absolute already. A page of 100 links is signed with one key even if the
    keys file changes while it renders.
    """

    __slots__ = ("signer", "ttl", "media_url", "base_url")

    def __init__(self, request: HttpRequest | None = None, *, ttl: int | timedelta | None = None) -> None:
        config = link_settings()
        self.signer = get_link_signer()
        self.ttl = config.default_ttl if ttl is None else ttl
        self.media_url = config.media_url
        self.base_url = "" if self.signer.mints_absolute_urls else absolute_url("", request)

    def sign(self, name: str, *, filename: str | None = None, disposition: str | None = None,
             client_ip: str | None = None, not_before: int | None = None,
             max_downloads: int | None = None, link_id: str | None = None,
             name_if_possible: bool = False) -> SignedLink:
        """An absolute link to the stored file ``name``; raises UnsafePath as ``sign_file`` does.

        With ``name_if_possible``, ``filename`` and ``disposition`` are a page's presentation
        hints: a delivery target that cannot carry them (a CDN) gets the link without them.
        Otherwise an option the target cannot carry is a ValueError.
        """
        if name_if_possible and not self.signer.names_downloads:
            filename = disposition = None
        link = self.signer.sign(self.media_url + name, ttl=self.ttl, filename=filename,
                                disposition=disposition, client_ip=client_ip, not_before=not_before,
                                max_downloads=max_downloads, link_id=link_id)
        return link.with_base(self.base_url)


def sign_file(
    name: str,
    *,
    ttl: int | timedelta | None = None,
    filename: str | None = None,
    disposition: str | None = None,
    client_ip: str | None = None,
    not_before: int | None = None,
    max_downloads: int | None = None,
    request: HttpRequest | None = None,
    name_if_possible: bool = False,
) -> SignedLink:
    """Sign the stored file ``name`` for the delivery target; ``ttl`` defaults to ``SECURE_LINK['DEFAULT_TTL']``.

    ``not_before`` (Unix seconds) and ``max_downloads`` are signed into the link (its id is
    random); :func:`issue_link` also records it for the API. ``name_if_possible``: see
    :meth:`LinkIssuer.sign`. Raises UnsafePath for a name that could leave the media root or
    that nginx would rewrite, ValueError for an option the target cannot carry.
    """
    return LinkIssuer(request, ttl=ttl).sign(name, filename=filename, disposition=disposition, client_ip=client_ip,
                                             not_before=not_before, max_downloads=max_downloads,
                                             name_if_possible=name_if_possible)


def issue_link(
    name: str,
    *,
    owner: AbstractBaseUser | None,
    subject: str = "",
    created_by: AbstractBaseUser | None = None,
    ttl: int | timedelta | None = None,
    filename: str | None = None,
    disposition: str | None = None,
    client_ip: str | None = None,
    not_before: datetime | None = None,
    max_downloads: int | None = None,
    request: HttpRequest | None = None,
) -> tuple[SignedLink, IssuedLink | None]:
    """Sign a link to the stored file ``name`` and record it by its link id (an
    :class:`~signing.django.models.IssuedLink`), so that ``owner`` (and staff) can look it up,
    follow its downloads and revoke it alone.

    ``subject`` names what the link is to in the project's own terms (``"image:42"``), so
    that its links can be listed and removed with it. A CDN's links carry no link id: they
    are signed, not recorded (the record is None). Raises as :func:`sign_file`.
    """
    from .models import GrantKind

    link = LinkIssuer(request, ttl=ttl).sign(
        name, filename=filename, disposition=disposition, client_ip=client_ip,
        not_before=None if not_before is None else int(not_before.timestamp()), max_downloads=max_downloads,
        link_id=_issued_link_id(),
    )
    if link.link_id is None:
        return link, None
    return link, _record_grant(GrantKind.FILE, link, owner=owner, subject=subject, created_by=created_by,
                               max_downloads=link.max_downloads)


def sign_directory(
    name: str,
    *,
    ttl: int | timedelta | None = None,
    client_ip: str | None = None,
    not_before: int | None = None,
    link_id: str | None = None,
    request: HttpRequest | None = None,
) -> SignedLink:
    """Sign every file below the stored folder ``name`` (``videos/42/``) with one token.

    ``url`` ends with ``/``: append a file's path below the folder (``720p/seg001.ts``),
    or let a player resolve a playlist's relative URLs against it. It carries a link id
    (random unless given) and ``not_before`` (Unix seconds) when given; :func:`issue_directory`
    also records it, so that it can be revoked alone.
    """
    signed = get_link_signer().sign_directory(
        media_folder(name), ttl=link_settings().default_ttl if ttl is None else ttl, client_ip=client_ip,
        link_id=link_id, not_before=not_before,
    )
    return signed.with_base(absolute_url("", request))


def sign_folder_cookie(
    name: str,
    *,
    ttl: int | timedelta | None = None,
    client_ip: str | None = None,
    not_before: int | None = None,
    link_id: str | None = None,
) -> CookieGrant:
    """The delivery target's cookies for every file below the stored folder ``name`` (``videos/42/``).

    Our nginx checks one cookie, ``secure_link_folder``, which names the grant by its link id
    (random unless given); CloudFront, Cloud CDN and Akamai their own (docs/cdn.md). Set them
    on a response with :func:`set_folder_cookies`; :func:`issue_folder_cookie` also records the
    grant. Raises UnsafePath for a folder a cookie cannot grant exactly (names outside
    ``A-Z a-z 0-9 . _ ~ -``), ValueError for an option the target cannot carry.
    """
    return get_link_signer().sign_folder_cookie(
        media_folder(name), ttl=link_settings().default_ttl if ttl is None else ttl, client_ip=client_ip,
        link_id=link_id, not_before=not_before,
    )


def _issued_link_id() -> str | None:
    """A fresh id for a grant to record (random also with an expiry bucket: each issued grant is its own),
    or None for a delivery target whose links carry none (a CDN's: signed, not recorded)."""
    return new_link_id() if get_link_signer().carries_link_ids else None


def _record_grant(kind: str, grant: SignedLink | CookieGrant, *, owner: AbstractBaseUser | None, subject: str,
                  created_by: AbstractBaseUser | None, max_downloads: int | None = None) -> IssuedLink:
    """The row of a grant just signed (a file link, a directory link or folder cookies), by its link id."""
    from .models import IssuedLink

    return IssuedLink.objects.create(
        id=grant.link_id, owner=owner, subject=subject, path=grant.path, kind=kind, created_by=created_by,
        kid=grant.kid, expires_at=grant.expires_at, not_before=grant.not_before_at, max_downloads=max_downloads,
    )


def issue_directory(
    name: str,
    *,
    owner: AbstractBaseUser | None,
    subject: str = "",
    created_by: AbstractBaseUser | None = None,
    ttl: int | timedelta | None = None,
    client_ip: str | None = None,
    not_before: datetime | None = None,
    request: HttpRequest | None = None,
) -> tuple[SignedLink, IssuedLink]:
    """Sign a directory link to the stored folder ``name`` and record it by its link id, as
    :func:`issue_link` records a file link: revocable alone (one stream, every other viewer's
    grant of the folder keeps working), its requests in the download log by its id."""
    from .models import GrantKind

    link = sign_directory(name, ttl=ttl, client_ip=client_ip, request=request, link_id=_issued_link_id(),
                          not_before=None if not_before is None else int(not_before.timestamp()))
    return link, _record_grant(GrantKind.DIRECTORY, link, owner=owner, subject=subject, created_by=created_by)


def issue_folder_cookie(
    name: str,
    *,
    owner: AbstractBaseUser | None,
    subject: str = "",
    created_by: AbstractBaseUser | None = None,
    ttl: int | timedelta | None = None,
    client_ip: str | None = None,
    not_before: datetime | None = None,
) -> tuple[CookieGrant, IssuedLink | None]:
    """The folder cookies of the stored folder ``name``, recorded by the grant's link id as
    :func:`issue_directory` records a directory link. A CDN's cookies carry no link id: they are
    signed, not recorded (the record is None)."""
    from .models import GrantKind

    grant = sign_folder_cookie(name, ttl=ttl, client_ip=client_ip, link_id=_issued_link_id(),
                               not_before=None if not_before is None else int(not_before.timestamp()))
    if grant.link_id is None:
        return grant, None
    return grant, _record_grant(GrantKind.COOKIE, grant, owner=owner, subject=subject, created_by=created_by)


def plain_url(name: str, request: HttpRequest | None = None) -> str:
    """The stored file's URL without a token (what a folder cookie opens), for the delivery target."""
    config = link_settings()
    path = quote_path(media_path(name))
    return config.delivery.base_url + path if not config.delivery.is_nginx else absolute_url(path, request)


def set_folder_cookies(response: HttpResponseBase, grant: CookieGrant) -> HttpResponseBase:
    """Add ``grant``'s cookies to ``response`` (for the page that embeds a player), and return it.

    Each cookie has ``Path`` the folder, ``Expires`` the grant's, ``HttpOnly``,
    ``SameSite=Lax``, ``Secure`` unless ``SECURE_LINK['COOKIE_SECURE']`` is off (a plain-HTTP
    demo) and ``Domain`` ``SECURE_LINK['COOKIE_DOMAIN']`` when set. Values are sent as they
    are: they hold only cookie-safe characters, which Django's cookie jar would quote.
    """
    config = link_settings()
    for name, morsel in grant.morsels(secure=config.cookie_secure, domain=config.cookie_domain).items():
        response.cookies[name] = morsel
    return response


DEFAULT_IPV6_LENGTH = 64  # an IPv6 client's network when bind_ip is a length and bind_ip6 is not given


def bound_client(address: str, bind_ip: bool | int, bind_ip6: int | None = None) -> str | None:
    """The ``client_ip`` a grant is signed with for a client at ``address``: None (``bind_ip`` false),
    the address itself (``true``), or ``ADDRESS/LENGTH``, the network of ``bind_ip`` bits for an IPv4
    client (an IPv4-mapped one too) and of ``bind_ip6`` bits for an IPv6 one (64 when only ``bind_ip``
    is a length; the address itself when ``bind_ip`` is true and ``bind_ip6`` not given)."""
    if bind_ip is False:
        return None
    parsed = ipaddress.ip_address(address)
    ipv4 = isinstance(parsed, ipaddress.IPv4Address) or parsed.ipv4_mapped is not None
    if ipv4:
        length = None if bind_ip is True else bind_ip
    else:
        length = bind_ip6 if bind_ip6 is not None else (None if bind_ip is True else DEFAULT_IPV6_LENGTH)
    return address if length is None else f"{address}/{length}"


def client_address(request: HttpRequest) -> str:
    """The client's address as nginx's ``$remote_addr`` will see it.

    ``X-Real-IP`` (set by nginx/secure_link.conf, which overwrites any client value) is
    believed only when the direct peer is a trusted proxy; ``X-Forwarded-For`` never is.
    """
    peer = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_REAL_IP", "").strip()
    if forwarded and peer in link_settings().trusted_proxies:
        try:
            ipaddress.ip_address(forwarded)
        except ValueError:
            return peer
        return forwarded
    return peer
