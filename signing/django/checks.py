"""System checks: settings that cannot work stop start-up with a message naming the fix."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import storages
from django.core.management.base import SystemCheckError

from .. import KeySet
from ..delivery import DeliveryTarget

from .conf import current_key_set, key_source, link_settings

Application = TypeVar("Application")
_KEY_PROBLEM_IDS = {"no-keys": "E001", "short-secret": "E002", "bad-kid": "E003", "bad-secret": "E003",
                    "unknown-active": "E004"}
_KEY_PROBLEM_HINTS = {"unknown-active": "Set SECURE_LINK_ACTIVE_KID to one of the configured key ids, "
                                        "or unset it to use the keys' own active key."}
_KEYS_HINT = "Set SECURE_LINK_KEYS='kid=secret' or SECURE_LINK_KEYS_FILE; `python -m signing genkey` makes a secret."
# A location that checks links either has secure_link_md5 itself or includes the shared check.
_PROTECTED_LOCATION = re.compile(
    r"location\s+(\S+)\s*\{(?:[^{}]|\{[^{}]*\})*?(?:secure_link_md5|include\s+secure_link/location/check\.conf)", re.S
)


def protected_locations(conf_text: str) -> list[str]:
    """The prefixes of the locations in an nginx config that check signed links."""
    return _PROTECTED_LOCATION.findall(conf_text)


@checks.register("secure_link")
def check_secure_link_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    config = link_settings()
    errors: list[checks.CheckMessage] = []
    key_set = current_key_set()
    source_error = key_source().error
    if source_error and not key_set.keys:  # with good keys already in use, the watcher logs the error instead
        errors.append(checks.Error(source_error, hint=_KEYS_HINT, id="secure_links.E001"))
    else:
        for problem in key_set.problems():
            message = problem.message
            if problem.code == "no-keys" and config.keys_file is not None:
                message += f" (none in SECURE_LINK_KEYS, and the keys file {config.keys_file} has none)"
            errors.append(checks.Error(message, hint=_KEY_PROBLEM_HINTS.get(problem.code, _KEYS_HINT),
                                       id=f"secure_links.{_KEY_PROBLEM_IDS[problem.code]}"))
    if key_set.keys and not key_set.problems():
        errors += _delivery_errors(config.delivery, key_set)
    errors += _ttl_errors(config.default_ttl, config.max_ttl, config.share_ttl, config.expiry_bucket)
    errors += _prefix_errors(config.media_url, config.nginx_conf)
    errors += _retired_setting_warnings()
    errors += _counter_database_errors()
    errors += _storage_errors()
    return errors


def _storage_errors() -> list[checks.CheckMessage]:
    """The default storage can be made: a bucket's URL or credentials that cannot work, or a
    backend that is not installed, fail at start."""
    try:
        storages["default"]
    except (ValueError, ImproperlyConfigured, ImportError) as error:
        missing = isinstance(error, ImportError) or isinstance(error.__cause__, ImportError)
        return [checks.Error(
            f"the default storage cannot be {'imported' if missing else 'used'}: {error}",
            hint="A bucket's storage needs django-storages and boto3: pip install 'signed-downloads[django,s3]'."
            if missing else "Check STORAGES['default'] (for a bucket, its URL: s3://BUCKET?endpoint=...&credentials=FILE; "
                            "docs/deployment.md#files-in-a-bucket).",
            id="secure_links.E011",
        )]
    return []


def _delivery_errors(delivery: DeliveryTarget, key_set: KeySet) -> list[checks.CheckMessage]:
    """The active key signs the delivery target's links: an nginx key for nginx, that CDN's key for a CDN."""
    active = key_set.active
    if delivery.signs_with(active):
        return []
    wanted = "an md5 or hmac-sha256 key" if delivery.is_nginx else f"a {delivery.name} key"
    return [checks.Error(
        f"SECURE_LINK_DELIVERY is {delivery.name} but the active key {active.kid!r} is a {active.algorithm.name} key: "
        f"no link it signs would verify there",
        hint=f"Activate {wanted} (manage.py rotate_key activate KID), or set SECURE_LINK_DELIVERY to the target "
             "the active key is for (docs/cdn.md).",
        id="secure_links.E010",
    )]


def _counter_database_errors() -> list[checks.CheckMessage]:
    """The download counter's upsert needs ``ON CONFLICT … RETURNING``: SQLite 3.35 or later."""
    from django.db import connection

    if connection.vendor != "sqlite":
        return []
    import sqlite3

    if sqlite3.sqlite_version_info >= (3, 35):
        return []
    return [checks.Error(
        f"SQLite {sqlite3.sqlite_version} cannot count downloads of limited links (the counter needs 3.35 or later)",
        hint="Use PostgreSQL (DATABASE_URL), or a Python built with SQLite 3.35+ (Debian 12's has 3.40).",
        id="secure_links.E012",
    )]


def _retired_setting_warnings() -> list[checks.CheckMessage]:
    """SECURE_LINK_STATE_DIR is gone: the app writes nothing into nginx's folders any more."""
    if "STATE_DIR" not in getattr(settings, "SECURE_LINK", {}) and "SECURE_LINK_STATE_DIR" not in os.environ:
        return []
    return [checks.Warning(
        "SECURE_LINK_STATE_DIR is no longer read: revocations reach every nginx through its sync agent, and "
        "download counts live in the database",
        hint="Remove the setting; run each origin's agent with --state-dir (docs/per-link.md).",
        id="secure_links.W009",
    )]


def _ttl_errors(default_ttl: object, max_ttl: object, share_ttl: object, bucket: object) -> list[checks.CheckMessage]:
    errors = []
    for name, value in (("SECURE_LINK_MAX_TTL", max_ttl), ("SECURE_LINK_DEFAULT_TTL", default_ttl), ("SECURE_LINK_SHARE_TTL", share_ttl)):
        if type(value) is not int or value <= 0:
            errors.append(checks.Error(
                f"{name}={value!r} must be a positive number of seconds",
                hint=f"Set {name} to a whole number of seconds greater than 0.",
                id="secure_links.E005",
            ))
    if type(default_ttl) is int and type(max_ttl) is int and 0 < max_ttl < default_ttl:
        errors.append(checks.Error(
            f"SECURE_LINK_DEFAULT_TTL={default_ttl} is above SECURE_LINK_MAX_TTL={max_ttl}",
            hint="Lower SECURE_LINK_DEFAULT_TTL or raise SECURE_LINK_MAX_TTL.",
            id="secure_links.E006",
        ))
    if type(bucket) is not int or bucket < 0:
        errors.append(checks.Error(
            f"SECURE_LINK_EXPIRY_BUCKET={bucket!r} must be 0 (off) or a positive number of seconds",
            hint="Set SECURE_LINK_EXPIRY_BUCKET to 0 or, say, 300.",
            id="secure_links.E007",
        ))
    return errors


def _prefix_errors(media_url: str, nginx_conf: Any) -> list[checks.CheckMessage]:
    try:
        locations = protected_locations(nginx_conf.read_text())
    except OSError as error:
        return [checks.Warning(f"cannot read {nginx_conf}: {error}", id="secure_links.W001")]
    if media_url not in locations:
        return [checks.Error(
            f"MEDIA_URL={media_url!r} is not the prefix nginx protects with secure_link ({', '.join(locations) or 'none'})",
            hint=f"Set MEDIA_URL to {locations[0]!r}, or point SECURE_LINK['NGINX_CONF'] at the origin's role file you "
                 "run." if locations else f"Check {nginx_conf}, or point SECURE_LINK['NGINX_CONF'] at the one you run.",
            id="secure_links.E008",
        )]
    return []


def fail_on_check_errors() -> None:
    """Raise SystemCheckError listing every error, for app servers that skip `manage.py check`."""
    errors = [message for message in checks.run_checks() if message.is_serious()]
    if errors:
        raise SystemCheckError("\n".join(f"{message.id}: {message.msg}\n\tHINT: {message.hint}" for message in errors))


def application_or_exit(make_application: Callable[[], Application]) -> Application:
    """Build the app server's application; for a setting that cannot work print one line and exit 1.

    The line names the fix; app servers otherwise print a traceback per worker around it.
    """
    try:
        application = make_application()
        fail_on_check_errors()
    except (ImproperlyConfigured, SystemCheckError) as error:
        sys.stderr.write(f"error: {error}\n")
        raise SystemExit(1) from None
    return application
