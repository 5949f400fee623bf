"""The one place that reads ``settings.SECURE_LINK``; everything else takes arguments.

The settings are read once and cached until Django says a setting changed
(``setting_changed``: ``override_settings`` in tests), so the signing path pays a cache
lookup, not a settings parse. The keys are the exception: they come from the keys file
through a :class:`~app.downloads.keyring.KeysFileWatcher`, so a running server follows
``rotate_key`` by itself; signers are rebuilt only when the key set changes.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from signing import KeySet, SecureLinkSigner, TimedTokenSigner

from .keyring import DEFAULT_CHECK_INTERVAL, KeysFileWatcher, StaticKeys

SHARE_SALT = "app.downloads.share-image"
DEMO_RECORD = "demo.json"  # written by `make run` in the var folder: the address of its nginx
INTERNAL_MEDIA_PREFIX = "/_protected/media/"


@dataclass(frozen=True)
class LinkSettings:
    keys: tuple[tuple[str, str], ...]
    algorithms: tuple[tuple[str, str], ...]
    active_kid: str | None
    active_since: int | None
    keys_file: Path | None
    keys_check_interval: float
    default_ttl: int
    max_ttl: int
    expiry_bucket: int
    share_ttl: int
    base_url: str
    serve_with_django: bool
    trusted_proxies: tuple[str, ...]
    nginx_conf: Path
    media_url: str


@functools.cache
def link_settings() -> LinkSettings:
    config = getattr(settings, "SECURE_LINK", {})
    return LinkSettings(
        keys=tuple(dict(config.get("KEYS") or {}).items()),
        algorithms=tuple(dict(config.get("ALGORITHMS") or {}).items()),
        active_kid=config.get("ACTIVE_KID") or None,
        active_since=config.get("ACTIVE_SINCE"),
        keys_file=Path(config["KEYS_FILE"]) if config.get("KEYS_FILE") else None,
        keys_check_interval=float(config.get("KEYS_CHECK_INTERVAL", DEFAULT_CHECK_INTERVAL)),
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


def operator_base_url() -> tuple[str, str]:
    """The nginx that operator commands talk to, and where that came from.

    ``SITE_BASE_URL`` when set; else the address a running ``make run`` recorded in
    ``var/demo.json``; else the demo's default address.
    """
    configured = link_settings().base_url
    if configured:
        return configured, "SITE_BASE_URL"
    record = Path(getattr(settings, "VAR_DIR", settings.BASE_DIR)) / DEMO_RECORD
    try:
        return str(json.loads(record.read_text())["base_url"]).rstrip("/"), f"the running demo ({record})"
    except (OSError, ValueError, KeyError, TypeError):
        return "http://127.0.0.1:8080", "the demo's default address (SITE_BASE_URL is not set and no demo is running)"


@functools.cache
def key_source() -> KeysFileWatcher | StaticKeys:
    """Where the keys come from: the watched ``KEYS_FILE``, else the fixed ``KEYS``.

    With a keys file, ``ACTIVE_KID`` (``SECURE_LINK_ACTIVE_KID``) pins the signing key
    over the file's ``active:`` line.
    """
    config = link_settings()
    if config.keys_file is not None:
        return KeysFileWatcher(config.keys_file, active_kid=config.active_kid, interval=config.keys_check_interval)
    return StaticKeys(KeySet(dict(config.keys), config.active_kid, config.active_since, dict(config.algorithms)))


def current_key_set() -> KeySet:
    """The keys in force now (the keys file is looked at no more than once per interval)."""
    return key_source().current()


class _Signers(NamedTuple):
    key_set: KeySet
    link: SecureLinkSigner
    share: TimedTokenSigner


_signers: _Signers | None = None  # for the last key set seen; replaced whole, never edited


def _signers_for_current_keys() -> _Signers:
    global _signers
    key_set = current_key_set()
    signers = _signers
    if signers is None or signers.key_set is not key_set:
        config = link_settings()
        active = key_set.signing_kid or ""
        keys = key_set.keys
        signers = _signers = _Signers(
            key_set,
            SecureLinkSigner(keys=keys, algorithms=key_set.algorithms, active_kid=active, prefix=config.media_url,
                             expiry_bucket=config.expiry_bucket),
            # itsdangerous signs with the last secret and accepts them all.
            TimedTokenSigner(secret_keys=[secret for kid, secret in keys.items() if kid != active] + [keys[active]],
                             salt=SHARE_SALT),
        )
    return signers


def get_link_signer() -> SecureLinkSigner:
    """The signer for nginx links, for the keys in force now."""
    return _signers_for_current_keys().link


def get_share_signer() -> TimedTokenSigner:
    """The signer of share tokens for the compatibility view (same keys, own salt)."""
    return _signers_for_current_keys().share


@receiver(setting_changed)
def _forget_cached_settings(*, setting: str, **kwargs: Any) -> None:
    if setting in ("SECURE_LINK", "MEDIA_URL", "DEBUG", "BASE_DIR"):
        global _signers
        link_settings.cache_clear()
        key_source.cache_clear()
        _signers = None
