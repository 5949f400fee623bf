"""The one place that reads ``settings.SECURE_LINK``; everything else takes arguments.

``settings.SECURE_LINK`` holds overrides; every default is in :data:`DEFAULTS` (as DRF's
``rest_framework/settings.py`` does), and :func:`settings_from_environment` maps the
``SECURE_LINK_*`` environment variables onto the same names for a project that configures
itself from the environment. The settings are read once and cached until Django says a
setting changed (``setting_changed``: ``override_settings`` in tests), so the signing path pays
a cache lookup, not a settings parse. The keys come as one value, a :class:`~signing.KeySet`:
the fixed ``KEYS``, else the keys file, watched by a
:class:`~signing.key_source.KeysFileWatcher` so that a running server follows ``rotate_key``
by itself; signers are rebuilt only when the key set changes.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from .. import KeySet, KeySetError, SecureLinkVerifier, TimedTokenSigner
from ..delivery import DeliveryTarget, LinkSigner, link_signer
from ..fleet.protocol import FLEET_TOKEN_FILE_NAME
from ..key_source import KeysFileWatcher, StaticKeys
from ..keys import ENVIRONMENT_ACTIVE_KID, ENVIRONMENT_KEYS
from ..nginx.shipped import shipped_folder

logger = logging.getLogger("signing.django")

INTERNAL_MEDIA_PREFIX = "/_protected/media/"  # the origin's internal location (nginx/secure_link.conf)

DEFAULTS: dict[str, Any] = {
    "KEYS": KeySet(),  # fixed keys; when empty, the keys come from KEYS_FILE
    # A keys file, re-read when it changes. Its folder is the deployment's private folder: the
    # fleet token lives beside it unless FLEET_TOKEN_FILE says.
    "KEYS_FILE": None,
    "KEYS_CHECK_INTERVAL": 1.0,  # seconds between two looks (a stat) at the keys file
    "ACTIVE_KID": None,  # pins the signing key over the keys' own choice
    "DEFAULT_TTL": 3600,
    "MAX_TTL": 7 * 24 * 3600,
    "EXPIRY_BUCKET": 0,
    "SHARE_TTL": 24 * 3600,  # timed tokens (share links) that Django itself checks
    "BASE_URL": "",  # scheme and host of absolute links; else the request's
    # The nginx that operator commands talk to (check_secure_link's probes, sign_url's links):
    # "" means BASE_URL.
    "ORIGIN_URL": "",
    "SERVE_WITH_DJANGO": None,  # None: settings.DEBUG
    "TRUSTED_PROXIES": ("127.0.0.1", "::1"),
    "NGINX_CONF": None,  # the origin's role file system check E008 reads; None: the one this package ships
    # The fleet (docs/fleet.md): the verifiers as (name, base URL) pairs; the token their sync
    # agents pull the keys with (None: fleet_token beside the keys file); how long a key change
    # may take to reach every verifier (agent interval + one pull + one reload); one probe's timeout.
    "VERIFIERS": (),
    "FLEET_TOKEN_FILE": None,
    "FLEET_BOUND": 10.0,
    "PROBE_TIMEOUT": 2.0,
    # Per-link state (docs/per-link.md) lives in the database; the verifiers' download logs as
    # (name, path) pairs are read by the downloads API and `manage.py link_downloads`.
    "DOWNLOAD_LOGS": (),
    # Who checks the links (docs/cdn.md): "nginx", or a CDN and the base URL its links start
    # with ("cloudfront https://d111111abcdef8.cloudfront.net"); its keys are in the key set.
    "DELIVERY": "nginx",
    # Folder cookies' attributes: Secure (off only for a plain-HTTP demo) and Domain (a CDN on
    # a sibling host, cdn.example.com, needs "example.com").
    "COOKIE_SECURE": True,
    "COOKIE_DOMAIN": None,
    # A dotted path to a project's own probes for `manage.py check_secure_link` (signing.django.selfcheck).
    "CHECK_PROBES": None,
}


@dataclass(frozen=True)
class LinkSettings:
    """``settings.SECURE_LINK`` over :data:`DEFAULTS`, each value in its one type."""

    keys: KeySet
    keys_file: Path | None
    keys_check_interval: float
    active_kid: str | None
    default_ttl: int
    max_ttl: int
    expiry_bucket: int
    share_ttl: int
    base_url: str
    origin_url: str
    serve_with_django: bool
    trusted_proxies: tuple[str, ...]
    nginx_conf: Path
    media_url: str
    verifiers: tuple[tuple[str, str], ...]
    fleet_token_file: Path | None
    fleet_bound: float
    probe_timeout: float
    download_logs: tuple[tuple[str, Path], ...]
    delivery: DeliveryTarget
    cookie_secure: bool
    cookie_domain: str | None
    check_probes: str | None

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
    keys_file = Path(config["KEYS_FILE"]) if config["KEYS_FILE"] else None
    beside_keys = keys_file.parent if keys_file is not None else None
    return LinkSettings(
        keys=config["KEYS"],
        keys_file=keys_file,
        keys_check_interval=float(config["KEYS_CHECK_INTERVAL"]),
        active_kid=config["ACTIVE_KID"] or None,
        default_ttl=config["DEFAULT_TTL"],
        max_ttl=config["MAX_TTL"],
        expiry_bucket=config["EXPIRY_BUCKET"],
        share_ttl=config["SHARE_TTL"],
        base_url=config["BASE_URL"].rstrip("/"),
        origin_url=(config["ORIGIN_URL"] or config["BASE_URL"]).rstrip("/"),
        serve_with_django=bool(settings.DEBUG if serve_with_django is None else serve_with_django),
        trusted_proxies=tuple(address.strip() for address in config["TRUSTED_PROXIES"]),
        nginx_conf=Path(config["NGINX_CONF"] or shipped_folder() / "secure_link.conf"),
        media_url=settings.MEDIA_URL,
        verifiers=tuple((str(name), str(url)) for name, url in config["VERIFIERS"] or ()),
        fleet_token_file=_path_or_beside(config["FLEET_TOKEN_FILE"], beside_keys, FLEET_TOKEN_FILE_NAME),
        fleet_bound=float(config["FLEET_BOUND"]),
        probe_timeout=float(config["PROBE_TIMEOUT"]),
        download_logs=tuple((str(name), Path(path)) for name, path in config["DOWNLOAD_LOGS"]),
        delivery=_delivery_target(config["DELIVERY"]),
        cookie_secure=bool(config["COOKIE_SECURE"]),
        cookie_domain=config["COOKIE_DOMAIN"] or None,
        check_probes=config["CHECK_PROBES"] or None,
    )


def _path_or_beside(value: str | Path | None, folder: Path | None, name: str) -> Path | None:
    """``value`` as a path; when unset, ``name`` in ``folder`` (the keys file's), else None."""
    if value:
        return Path(value)
    return folder / name if folder is not None else None


def _delivery_target(value: str | DeliveryTarget) -> DeliveryTarget:
    """The DELIVERY setting as one value; a setting that cannot work stops start-up in one line."""
    try:
        return value.check() if isinstance(value, DeliveryTarget) else DeliveryTarget.parse(str(value))
    except ValueError as error:
        raise ImproperlyConfigured(f"SECURE_LINK_DELIVERY: {error}") from None


# The environment ------------------------------------------------------------------------


def _boolean(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _pairs(value: str, *, check: Callable[[str], bool] = bool) -> list[tuple[str, str]]:
    """``name=value,name=value`` to pairs; ValueError for an entry that is not one (``_WHAT`` says what)."""
    pairs = []
    for entry in value.split(","):
        name, separator, item = entry.strip().partition("=")
        if not separator or not name.strip() or not check(item.strip()):
            raise ValueError(entry)
        pairs.append((name.strip(), item.strip()))
    return pairs


def _verifiers(value: str) -> list[tuple[str, str]]:
    """``origin=https://origin.example,edge-eu=https://eu.example`` to (name, URL) pairs."""
    return _pairs(value, check=lambda url: url.startswith(("http://", "https://")))


def _download_logs(value: str) -> list[tuple[str, str]]:
    """``origin=/var/log/nginx/downloads.log,edge-eu=/srv/logs/eu.log`` to (verifier, path) pairs."""
    return _pairs(value)


# Environment variable -> (SECURE_LINK entry, how its text is read); docs/configuration.md lists them.
ENVIRONMENT: dict[str, tuple[str, Callable[[str], object]]] = {
    ENVIRONMENT_KEYS: ("KEYS", KeySet.parse),
    "SECURE_LINK_KEYS_FILE": ("KEYS_FILE", Path),
    "SECURE_LINK_KEYS_CHECK_INTERVAL": ("KEYS_CHECK_INTERVAL", float),
    ENVIRONMENT_ACTIVE_KID: ("ACTIVE_KID", str),
    "SECURE_LINK_DEFAULT_TTL": ("DEFAULT_TTL", int),
    "SECURE_LINK_MAX_TTL": ("MAX_TTL", int),
    "SECURE_LINK_EXPIRY_BUCKET": ("EXPIRY_BUCKET", int),
    "SECURE_LINK_SHARE_TTL": ("SHARE_TTL", int),
    "SITE_BASE_URL": ("BASE_URL", str),
    "SECURE_LINK_ORIGIN_URL": ("ORIGIN_URL", str),
    "SECURE_LINK_SERVE_WITH_DJANGO": ("SERVE_WITH_DJANGO", _boolean),
    "SECURE_LINK_TRUSTED_PROXIES": ("TRUSTED_PROXIES", lambda value: value.split(",")),
    "SECURE_LINK_VERIFIERS": ("VERIFIERS", _verifiers),
    "SECURE_LINK_FLEET_TOKEN_FILE": ("FLEET_TOKEN_FILE", Path),
    "SECURE_LINK_FLEET_BOUND": ("FLEET_BOUND", float),
    "SECURE_LINK_PROBE_TIMEOUT": ("PROBE_TIMEOUT", float),
    "SECURE_LINK_DOWNLOAD_LOGS": ("DOWNLOAD_LOGS", _download_logs),
    "SECURE_LINK_DELIVERY": ("DELIVERY", str),
    "SECURE_LINK_COOKIE_SECURE": ("COOKIE_SECURE", _boolean),
    "SECURE_LINK_COOKIE_DOMAIN": ("COOKIE_DOMAIN", str),
}
_WHAT: dict[object, str] = {
    int: "a whole number", float: "a number", _verifiers: "a list of name=http(s)://address entries",
    _download_logs: "a list of name=/path/to/downloads.log entries",
}


def settings_from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """``SECURE_LINK`` entries for the ``SECURE_LINK_*`` variables that are set (:data:`ENVIRONMENT`).

    For a settings module: ``SECURE_LINK = {"KEYS_FILE": ..., **settings_from_environment()}``.
    A value that cannot be read is ImproperlyConfigured, in one line naming the variable.
    """
    overrides: dict[str, Any] = {}
    for name, (setting, parse) in ENVIRONMENT.items():
        value = environ.get(name, "")
        if not value.strip():
            continue
        try:
            overrides[setting] = parse(value)
        except KeySetError as error:  # names the line, never a secret
            raise ImproperlyConfigured(f"cannot read the signing keys from {name}: {error}") from None
        except ValueError:
            raise ImproperlyConfigured(f"{name}={value!r} is not {_WHAT.get(parse, 'valid')}") from None
    return overrides


# The keys and signers in force -------------------------------------------------------------


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
    tokens: dict[str, TimedTokenSigner]  # by salt, made on first use


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
                {},
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


def get_token_signer(salt: str) -> TimedTokenSigner:
    """The signer of timed tokens for one purpose (``salt``), with the keys in force now.

    Django checks these itself (a share link to a view); the salt keeps one purpose's tokens
    from verifying for another.
    """
    signers = _signers_for_current_keys()
    signer = signers.tokens.get(salt)
    if signer is None:
        signer = signers.tokens[salt] = TimedTokenSigner(signers.key_set, salt=salt)
    return signer


@receiver(setting_changed)
def _forget_cached_settings(*, setting: str, **kwargs: Any) -> None:
    if setting in ("SECURE_LINK", "MEDIA_URL", "DEBUG"):
        global _signers, _refused
        link_settings.cache_clear()
        key_source.cache_clear()
        _signers = _refused = None
