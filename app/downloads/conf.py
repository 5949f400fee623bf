"""The one place that reads ``settings.SECURE_LINK``; everything else takes arguments.

``settings.SECURE_LINK`` holds overrides; every default is in :data:`DEFAULTS` (as DRF's
``rest_framework/settings.py`` does). The settings are read once and cached until Django
says a setting changed (``setting_changed``: ``override_settings`` in tests), so the signing
path pays a cache lookup, not a settings parse. The keys come as one value, a
:class:`~signing.KeySet`: the fixed ``KEYS``, else the keys file, watched by a
:class:`~app.downloads.keyring.KeysFileWatcher` so that a running server follows
``rotate_key`` by itself; signers are rebuilt only when the key set changes.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from signing import KeySet, KeySetError, LinkState, SecureLinkVerifier, TimedTokenSigner
from signing.delivery import DeliveryTarget, LinkSigner, link_signer

from .keyring import KeysFileWatcher, StaticKeys

logger = logging.getLogger("app.downloads.keys")

SHARE_SALT = "app.downloads.share-image"
DEMO_RECORD = "demo.json"  # written by `make run` in the var folder: the addresses of its servers
INTERNAL_MEDIA_PREFIX = "/_protected/media/"
DEMO_BASE_URL = "http://127.0.0.1:8080"

DEFAULTS: dict[str, Any] = {
    "KEYS": KeySet(),  # fixed keys; when empty, the keys come from KEYS_FILE
    "KEYS_FILE": None,  # a keys file, re-read when it changes
    "KEYS_CHECK_INTERVAL": 1.0,  # seconds between two looks (a stat) at the keys file
    "ACTIVE_KID": None,  # pins the signing key over the keys' own choice
    "DEFAULT_TTL": 3600,
    "MAX_TTL": 7 * 24 * 3600,
    "EXPIRY_BUCKET": 0,
    "SHARE_TTL": 24 * 3600,
    "BASE_URL": "",
    "SERVE_WITH_DJANGO": None,  # None: settings.DEBUG
    "TRUSTED_PROXIES": ("127.0.0.1", "::1"),
    "NGINX_CONF": None,  # None: BASE_DIR/nginx/secure_link.conf
    # The fleet (docs/fleet.md): the verifiers as (name, base URL) pairs, None for the running
    # demo's; the token their sync agents pull the keys with; how long a key change may take
    # to reach every verifier (agent interval + one pull + one reload); one probe's timeout.
    "VERIFIERS": None,
    "FLEET_TOKEN_FILE": None,
    "FLEET_BOUND": 10.0,
    "PROBE_TIMEOUT": 2.0,
    # Per-link state (docs/operations.md): the folder the origin nginx reads as
    # $secure_link_state_root (None: VAR_DIR/state), and the verifiers' download logs as
    # (name, path) pairs, read by the downloads API and `manage.py link_downloads`.
    "STATE_DIR": None,
    "DOWNLOAD_LOGS": (),
    # Who checks the links (docs/cdn.md): "nginx", or a CDN and the base URL its links start
    # with ("cloudfront https://d111111abcdef8.cloudfront.net"); its keys are in the key set.
    "DELIVERY": "nginx",
    # Folder cookies' attributes: Secure (off only for a plain-HTTP demo) and Domain (a CDN on
    # a sibling host, cdn.example.com, needs "example.com").
    "COOKIE_SECURE": True,
    "COOKIE_DOMAIN": None,
}


@dataclass(frozen=True)
class LinkSettings:
    keys: KeySet
    keys_file: Path | None
    keys_check_interval: float
    active_kid: str | None
    default_ttl: int
    max_ttl: int
    expiry_bucket: int
    share_ttl: int
    base_url: str
    serve_with_django: bool
    trusted_proxies: tuple[str, ...]
    nginx_conf: Path
    media_url: str
    verifiers: tuple[tuple[str, str], ...] | None
    fleet_token_file: Path | None
    fleet_bound: float
    probe_timeout: float
    state_dir: Path
    download_logs: tuple[tuple[str, Path], ...]
    delivery: DeliveryTarget
    cookie_secure: bool
    cookie_domain: str | None

    @property
    def link_state(self) -> LinkState:
        """The origin's per-link state: revocations and download counts."""
        return LinkState(self.state_dir)

    @property
    def old_key_lifetime(self) -> int:
        """How long after an activation a link signed with the old key can still live.

        App servers sign with the old key for up to the pick-up bound after the activation,
        and such a link lives for the longest TTL plus the expiry bucket.
        """
        return math.ceil(self.pickup_bound) + self.max_ttl + max(self.expiry_bucket, 0)

    @property
    def pickup_bound(self) -> float:
        """Seconds within which every running app server follows a change of the keys file.

        One check interval, plus one second because ``active since`` is in whole seconds.
        """
        return self.keys_check_interval + 1


@functools.cache
def link_settings() -> LinkSettings:
    config = {**DEFAULTS, **getattr(settings, "SECURE_LINK", {})}
    serve_with_django = config["SERVE_WITH_DJANGO"]
    return LinkSettings(
        keys=config["KEYS"],
        keys_file=Path(config["KEYS_FILE"]) if config["KEYS_FILE"] else None,
        keys_check_interval=float(config["KEYS_CHECK_INTERVAL"]),
        active_kid=config["ACTIVE_KID"] or None,
        default_ttl=config["DEFAULT_TTL"],
        max_ttl=config["MAX_TTL"],
        expiry_bucket=config["EXPIRY_BUCKET"],
        share_ttl=config["SHARE_TTL"],
        base_url=config["BASE_URL"].rstrip("/"),
        serve_with_django=bool(settings.DEBUG if serve_with_django is None else serve_with_django),
        trusted_proxies=tuple(address.strip() for address in config["TRUSTED_PROXIES"]),
        nginx_conf=Path(config["NGINX_CONF"] or Path(settings.BASE_DIR) / "nginx" / "secure_link.conf"),
        media_url=settings.MEDIA_URL,
        verifiers=None if config["VERIFIERS"] is None else tuple((str(n), str(u)) for n, u in config["VERIFIERS"]),
        fleet_token_file=Path(config["FLEET_TOKEN_FILE"]) if config["FLEET_TOKEN_FILE"] else None,
        fleet_bound=float(config["FLEET_BOUND"]),
        probe_timeout=float(config["PROBE_TIMEOUT"]),
        state_dir=Path(config["STATE_DIR"] or Path(getattr(settings, "VAR_DIR", settings.BASE_DIR)) / "state"),
        download_logs=tuple((str(name), Path(path)) for name, path in config["DOWNLOAD_LOGS"]),
        delivery=_delivery_target(config["DELIVERY"]),
        cookie_secure=bool(config["COOKIE_SECURE"]),
        cookie_domain=config["COOKIE_DOMAIN"] or None,
    )


def _delivery_target(value: str | DeliveryTarget) -> DeliveryTarget:
    """The DELIVERY setting as one value; a setting that cannot work stops start-up in one line."""
    try:
        return value.check() if isinstance(value, DeliveryTarget) else DeliveryTarget.parse(str(value))
    except ValueError as error:
        raise ImproperlyConfigured(f"SECURE_LINK_DELIVERY: {error}") from None


def demo_record() -> dict[str, Any]:
    """What a running ``make run`` recorded about itself (its servers' addresses), or ``{}``."""
    record = Path(getattr(settings, "VAR_DIR", settings.BASE_DIR)) / DEMO_RECORD
    try:
        content = json.loads(record.read_text())
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def operator_base_url() -> tuple[str, str]:
    """The nginx that operator commands talk to, and where that came from.

    ``SITE_BASE_URL`` when set; else the address a running ``make run`` recorded in
    ``var/demo.json``; else the demo's default address.
    """
    configured = link_settings().base_url
    if configured:
        return configured, "SITE_BASE_URL"
    recorded = demo_record().get("base_url")
    if isinstance(recorded, str):
        return recorded.rstrip("/"), "the running demo (var/demo.json)"
    return DEMO_BASE_URL, "the demo's default address (SITE_BASE_URL is not set and no demo is running)"


@functools.cache
def key_source() -> KeysFileWatcher | StaticKeys:
    """Where the keys come from: the fixed ``KEYS``, else the watched ``KEYS_FILE``.

    ``ACTIVE_KID`` (``SECURE_LINK_ACTIVE_KID``) pins the signing key over the keys' own choice.
    """
    config = link_settings()
    if config.keys.keys or config.keys_file is None:
        keys = config.keys.with_active(config.active_kid) if config.active_kid else config.keys
        return StaticKeys(keys)
    return KeysFileWatcher(config.keys_file, active_kid=config.active_kid, interval=config.keys_check_interval)


def current_key_set() -> KeySet:
    """The keys in force now (the keys file is looked at no more than once per interval)."""
    return key_source().current()


class _Signers(NamedTuple):
    key_set: KeySet
    link: LinkSigner
    verifier: SecureLinkVerifier
    share: TimedTokenSigner


_signers: _Signers | None = None  # for the last key set seen; replaced whole, never edited
_refused: KeySet | None = None  # a key set the delivery target cannot sign with (logged once)


def _signers_for_current_keys() -> _Signers:
    """The signers of the keys in force; a key set that cannot sign for the delivery target
    (its active key is another target's) never replaces working signers: one error line, and
    the last good keys keep signing, as the keys-file watcher does for an unreadable file."""
    global _signers, _refused
    key_set = current_key_set()
    signers = _signers
    if signers is None or signers.key_set is not key_set:
        if signers is not None and key_set is _refused:
            return signers
        config = link_settings()
        try:
            signers = _Signers(
                key_set,
                link_signer(key_set, config.delivery, prefix=config.media_url, expiry_bucket=config.expiry_bucket),
                SecureLinkVerifier(key_set, prefix=config.media_url),
                TimedTokenSigner(key_set, salt=SHARE_SALT),
            )
        except KeySetError as error:
            if signers is None:
                raise
            _refused = key_set
            logger.error("cannot sign for SECURE_LINK_DELIVERY=%s with the new keys: %s; still signing with %s",
                         config.delivery, error, signers.key_set.active.kid)
            return signers
        _signers = signers
    return signers


def get_link_signer() -> LinkSigner:
    """The signer of the delivery target's links (nginx's, or a CDN's), for the keys in force now."""
    return _signers_for_current_keys().link


def get_link_verifier() -> SecureLinkVerifier:
    """The Python verifier of nginx links (for serving ``/media/`` without nginx)."""
    return _signers_for_current_keys().verifier


def get_share_signer() -> TimedTokenSigner:
    """The signer of share tokens for the compatibility view (same keys, own salt)."""
    return _signers_for_current_keys().share


@receiver(setting_changed)
def _forget_cached_settings(*, setting: str, **kwargs: Any) -> None:
    if setting in ("SECURE_LINK", "MEDIA_URL", "DEBUG", "BASE_DIR"):
        global _signers, _refused
        link_settings.cache_clear()
        key_source.cache_clear()
        _signers = _refused = None
