"""Delivery targets: who checks a link. Our nginx, or a commercial CDN in its own format.

A target is one value, :class:`DeliveryTarget` (``"nginx"``, or ``"cloudfront
https://d111111abcdef8.cloudfront.net"``). :func:`link_signer` gives the signer of a key set
for it: :class:`~signing.SecureLinkSigner` for nginx, :class:`~signing.cdn.CDNLinkSigner` for a
CDN. Both answer the same calls (``sign``, ``sign_folder_cookie``, ``expires_for``), so code
that mints links never asks which target it mints for. A link form a target cannot express (a download
name on CloudFront, a start time on Cloud CDN) is a ValueError that says so, never a link
that the CDN would read differently. docs/cdn.md has the table of what each target expresses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union
from urllib.parse import urlsplit

from .algorithms import DELIVERY_TARGETS, NGINX_TARGET
from .cdn.signer import CDNLinkSigner
from .keys import Key, KeySet
from .nginx.signer import SecureLinkSigner


@dataclass(frozen=True)
class DeliveryTarget:
    """Who checks the links: ``name`` (nginx, cloudfront, cloudcdn or akamai) and, for a CDN,
    the ``base_url`` its links start with (``https://d111111abcdef8.cloudfront.net``)."""

    name: str = NGINX_TARGET
    base_url: str = ""

    @classmethod
    def parse(cls, text: str) -> DeliveryTarget:
        """``"nginx"`` or ``"TARGET BASE_URL"``; ValueError in one line saying what to write."""
        name, _, base_url = text.strip().partition(" ")
        return cls(name, base_url.strip()).check()

    def check(self) -> DeliveryTarget:
        if self.name not in DELIVERY_TARGETS:
            raise ValueError(f"delivery target {self.name!r} is not one of {', '.join(DELIVERY_TARGETS)}")
        if self.name == NGINX_TARGET:
            if self.base_url:
                raise ValueError("the nginx target takes no base URL here: set SITE_BASE_URL (SECURE_LINK['BASE_URL'])")
            return self
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("https", "http") or not parts.netloc or parts.path not in ("", "/") or parts.query:
            raise ValueError(f"the {self.name} target needs its base URL, scheme and host alone: "
                             f"'{self.name} https://cdn.example.com', got {self.base_url!r}")
        if self.name == "cloudcdn" and parts.port is not None:
            raise ValueError(f"a Cloud CDN URL prefix cannot name a port: drop ':{parts.port}' from {self.base_url!r}")
        return self if not self.base_url.endswith("/") else DeliveryTarget(self.name, self.base_url.rstrip("/"))

    @property
    def is_nginx(self) -> bool:
        return self.name == NGINX_TARGET

    def signs_with(self, key: Key) -> bool:
        """Whether links signed with ``key`` are this target's (an nginx key for nginx, a CDN's own for it)."""
        return key.algorithm.delivery_target == self.name

    def __str__(self) -> str:
        return self.name if self.is_nginx else f"{self.name} {self.base_url}"


LinkSigner = Union[SecureLinkSigner, CDNLinkSigner]


def link_signer(
    key_set: KeySet,
    target: DeliveryTarget = DeliveryTarget(),
    *,
    prefix: str = "/media/",
    expiry_bucket: int = 0,
    clock: Callable[[], float] = time.time,
) -> LinkSigner:
    """The signer of ``key_set``'s links for ``target``: nginx's, or the CDN's."""
    if target.is_nginx:
        return SecureLinkSigner(key_set, prefix=prefix, expiry_bucket=expiry_bucket, clock=clock)
    return CDNLinkSigner(key_set, target, prefix=prefix, expiry_bucket=expiry_bucket, clock=clock)
