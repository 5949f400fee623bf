"""The one place that reads ``settings.SECURE_LINK``; everything else takes arguments.

The settings are read once and cached until Django says a setting changed
(``setting_changed``: ``override_settings`` in tests), so the signing path pays a cache
lookup, not a settings parse. Signers are cached per distinct configuration.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from signing import SecureLinkSigner, TimedTokenSigner

SHARE_SALT = "app.downloads.share-image"
INTERNAL_MEDIA_PREFIX = "/_protected/media/"


@dataclass(frozen=True)
class LinkSettings:
    keys: tuple[tuple[str, str], ...]
    active_kid: str | None
    active_since: int | None
    keys_file: Path | None
    default_ttl: int
    max_ttl: int
    expiry_bucket: int
    share_ttl: int
    base_url: str
    serve_with_django: bool
    trusted_proxies: tuple[str, ...]
    nginx_conf: Path
    media_url: str

    @property
    def active_key_id(self) -> str | None:
        """The key that signs: ``ACTIVE_KID``, else the last key listed."""
        return self.active_kid or (self.keys[-1][0] if self.keys else None)


@functools.cache
def link_settings() -> LinkSettings:
    config = getattr(settings, "SECURE_LINK", {})
    return LinkSettings(
        keys=tuple(dict(config.get("KEYS", {})).items()),
        active_kid=config.get("ACTIVE_KID") or None,
        active_since=config.get("ACTIVE_SINCE"),
        keys_file=Path(config["KEYS_FILE"]) if config.get("KEYS_FILE") else None,
        default_ttl=config.get("DEFAULT_TTL", 3600),
        max_ttl=config.get("MAX_TTL", 7 * 24 * 3600),
        expiry_bucket=config.get("EXPIRY_BUCKET", 0),
        share_ttl=config.get("SHARE_TTL", 24 * 3600),
        base_url=config.get("BASE_URL", "").rstrip("/"),
        serve_with_django=bool(config.get("SERVE_WITH_DJANGO", settings.DEBUG)),
        trusted_proxies=tuple(address.strip() for address in config.get("TRUSTED_PROXIES", ())),
        nginx_conf=Path(config.get("NGINX_CONF") or Path(settings.BASE_DIR) / "nginx" / "secure_link.conf"),
        media_url=settings.MEDIA_URL,
    )


@functools.cache
def get_link_signer() -> SecureLinkSigner:
    """The signer for nginx links, built from the current settings."""
    config = link_settings()
    return SecureLinkSigner(keys=dict(config.keys), active_kid=config.active_key_id or "",
                            prefix=config.media_url, expiry_bucket=config.expiry_bucket)


@functools.cache
def get_share_signer() -> TimedTokenSigner:
    """The signer of share tokens for the compatibility view (same keys, own salt; active key last)."""
    config = link_settings()
    keys = dict(config.keys)
    active = config.active_key_id or ""
    secrets = [secret for kid, secret in keys.items() if kid != active] + [keys[active]]
    return TimedTokenSigner(secret_keys=secrets, salt=SHARE_SALT)


@receiver(setting_changed)
def _forget_cached_settings(*, setting: str, **kwargs: Any) -> None:
    if setting in ("SECURE_LINK", "MEDIA_URL", "DEBUG", "BASE_DIR"):
        for cached in (link_settings, get_link_signer, get_share_signer):
            cached.cache_clear()
