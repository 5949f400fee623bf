"""``manage.py rotate_key``: add, activate and retire signing keys without breaking live links.

The safe order, whose rules live in :class:`signing.KeySet` (this command parses and prints):

1. ``rotate_key add``: a new key joins the keys file (not yet signing); nginx's includes are
   rewritten (``--nginx-keys``). Reload nginx: it now accepts the new key too.
2. ``rotate_key activate KID``: the new key signs from now on. Running app servers pick
   the change up by themselves within ``SECURE_LINK_KEYS_CHECK_INTERVAL`` + 1 s.
3. ``rotate_key retire OLD``: allowed only once every link the old key signed has expired
   (``SECURE_LINK_MAX_TTL`` + ``SECURE_LINK_EXPIRY_BUCKET`` after step 2). Reload nginx.

``--force`` retires at once: that is how to revoke every link in flight. Run right after
``activate``, it first waits out the pick-up interval, so that no app server is still
signing with the key being retired.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from app.downloads.conf import link_settings
from signing import KeySet, KeySetError, KeyState
from signing.algorithms import ALGORITHMS, MD5
from signing.encoding import utc_iso
from signing.keys import nginx_includes_directory


def now() -> int:
    """The current time; the one seam tests move."""
    return int(time.time())


class Command(BaseCommand):
    help = ("Rotate signing keys: status | add [KID] [--algorithm A] | activate KID | retire KID [--force]. "
            "`add` on a server without keys creates the keys file and its first key. See docs/operations.md.")
    requires_system_checks: list[str] = []  # it must work when there are no keys yet (E001)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["status", "add", "activate", "retire"])
        parser.add_argument("kid", nargs="?", help="key id (activate, retire; optional for add)")
        parser.add_argument("--keys-file", type=Path, help="keys file to edit (default: SECURE_LINK_KEYS_FILE)")
        parser.add_argument("--nginx-keys", type=Path,
                            help="also rewrite nginx's keys includes in this folder (or at this secure_link_keys.conf)")
        parser.add_argument("--force", action="store_true", help="retire even if live links may use the key")
        parser.add_argument("--algorithm", choices=list(ALGORITHMS), default=MD5.name,
                            help="for add: md5 (nginx's stock module, the default) or hmac-sha256 (njs)")

    def handle(self, *args: Any, **options: Any) -> None:
        keys_file: Path | None = options["keys_file"] or link_settings().keys_file
        if keys_file is None:
            raise CommandError("keys come from $SECURE_LINK_KEYS: edit it by hand, or use SECURE_LINK_KEYS_FILE")
        action, kid = options["action"], options["kid"]
        if action in ("activate", "retire") and not kid:
            raise CommandError(f"rotate_key {action} needs a key id")
        key_set = self.read(keys_file, creating=action == "add")
        if action == "status":
            self.status(key_set)
            return
        try:
            changed = getattr(self, action)(key_set, kid, options)
            nginx_folder = nginx_includes_directory(options["nginx_keys"]) if options["nginx_keys"] else None
        except KeySetError as error:
            raise CommandError(str(error)) from None
        changed.write(keys_file)
        self.stdout.write(f"updated {keys_file}")
        if nginx_folder is not None:
            written = changed.write_nginx_includes(nginx_folder)
            self.stdout.write(f"rewrote {' and '.join(map(str, written))}; now reload nginx")

    def read(self, keys_file: Path, *, creating: bool) -> KeySet:
        if not keys_file.exists():
            if creating:
                return KeySet()  # the first key of a new server
            raise CommandError(f"there is no keys file {keys_file}: create the first key with `manage.py rotate_key add k1`")
        try:
            return KeySet.from_file(keys_file)
        except (OSError, KeySetError) as error:
            raise CommandError(f"cannot read {keys_file}: {error}") from None

    def status(self, key_set: KeySet) -> None:
        for key, state in key_set.states(now=now(), max_lifetime=link_settings().max_link_lifetime):
            label = f"{key.kid} ({key.algorithm.name})"
            if state is KeyState.PENDING:
                self.stdout.write(f"{label}: {state.value} (next: manage.py rotate_key activate {key.kid})")
            elif state is KeyState.ACTIVE and key_set.active_since:
                self.stdout.write(f"{label}: {state.value} since {utc_iso(key_set.active_since)}")
            elif state is KeyState.IN_USE:
                safe_after = key_set.retire_safe_after(link_settings().max_link_lifetime) or 0
                self.stdout.write(f"{label}: verifies only; in use until {utc_iso(safe_after)}")
            else:
                self.stdout.write(f"{label}: {state.value}")

    def add(self, key_set: KeySet, kid: str | None, options: dict[str, Any]) -> KeySet:
        changed, key = key_set.add(kid, algorithm=ALGORITHMS[options["algorithm"]], now=now())
        written_by_us = "reload nginx" if options["nginx_keys"] else \
            "write nginx's keys includes (--nginx-keys FOLDER, or manage.py secure_link_keys) and reload nginx"
        if not key_set.keys:
            self.stdout.write(f"created the first key, {key.kid} ({key.algorithm.name}), which signs new links.\n"
                              f"Next: {written_by_us}")
        else:
            self.stdout.write(f"added {key.algorithm.name} key {key.kid} (not signing yet).\n"
                              f"Next: {written_by_us}, then: manage.py rotate_key activate {key.kid}")
        return changed

    def activate(self, key_set: KeySet, kid: str, options: dict[str, Any]) -> KeySet:
        changed = key_set.activate(kid, now=now())
        self.stdout.write(
            f"{kid} signs new links from {utc_iso(now())}; running app servers follow within "
            f"{link_settings().pickup_bound:g} s (no reload needed)."
        )
        return changed

    def retire(self, key_set: KeySet, kid: str, options: dict[str, Any]) -> KeySet:
        config = link_settings()
        changed = key_set.retire(kid, now=now(), max_lifetime=config.max_link_lifetime, force=options["force"])
        self.wait_for_app_servers(key_set)
        self.stdout.write(
            f"retired {kid}: its links get 403 once nginx reloads (next: reload nginx); "
            f"its share links stop within {config.pickup_bound:g} s."
        )
        return changed

    def wait_for_app_servers(self, key_set: KeySet) -> None:
        """Right after ``activate``, wait until every app server signs with the new key."""
        if key_set.active_since is None:
            return
        remaining = key_set.active_since + link_settings().pickup_bound - now()
        if remaining > 0:
            self.stdout.write(f"waiting {remaining:.1f} s for the app servers to sign with {key_set.active.kid}...")
            time.sleep(remaining)
