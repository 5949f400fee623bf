"""``manage.py rotate_key``: add, activate and retire signing keys without breaking live links.

The safe order, which this command enforces:

1. ``rotate_key add``: a new key joins the keys file (not yet signing); nginx's include is
   rewritten (``--nginx-keys``). Reload nginx: it now accepts the new key too.
2. ``rotate_key activate KID``: the new key signs from now on. Running app servers pick
   the change up by themselves within ``SECURE_LINK_KEYS_CHECK_INTERVAL`` (1 s).
3. ``rotate_key retire OLD``: allowed only once every link the old key signed has expired
   (``SECURE_LINK_MAX_TTL`` + ``SECURE_LINK_EXPIRY_BUCKET`` after step 2). Reload nginx.

``--force`` retires at once: that is how to revoke every link in flight. Run right after
``activate``, it first waits out the pick-up interval, so that no app server is still
signing with the key being retired.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from app.downloads.conf import link_settings
from signing import KeySet, generate_secret, parse_key_set, render_key_set
from signing.keys import ALGORITHMS, KID_PATTERN, MD5, write_nginx_keys, write_private_file


def now() -> int:
    """The current time; the one seam tests move."""
    return int(time.time())


def pickup_bound() -> float:
    """Seconds within which every running app server follows a change of the keys file.

    One check interval, plus one second because ``active since`` is in whole seconds.
    """
    return link_settings().keys_check_interval + 1


def iso(moment: int) -> str:
    return datetime.fromtimestamp(moment, tz=timezone.utc).isoformat().replace("+00:00", "Z")


class Command(BaseCommand):
    help = ("Rotate signing keys: status | add [KID] [--algorithm A] | activate KID | retire KID [--force]. "
            "`add` on a server without keys creates the keys file and its first key. See the README.")
    requires_system_checks: list[str] = []  # it must work when there are no keys yet (E001)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["status", "add", "activate", "retire"])
        parser.add_argument("kid", nargs="?", help="key id (activate, retire; optional for add)")
        parser.add_argument("--keys-file", type=Path, help="keys file to edit (default: SECURE_LINK_KEYS_FILE)")
        parser.add_argument("--nginx-keys", type=Path, help="also rewrite this nginx include (0600)")
        parser.add_argument("--force", action="store_true", help="retire even if live links may use the key")
        parser.add_argument("--algorithm", choices=ALGORITHMS, default=MD5,
                            help="for add: md5 (nginx's stock module, the default) or hmac-sha256 (njs)")

    def handle(self, *args: Any, **options: Any) -> None:
        keys_file = options["keys_file"] or link_settings().keys_file
        if keys_file is None:
            raise CommandError("keys come from $SECURE_LINK_KEYS: edit it by hand, or use SECURE_LINK_KEYS_FILE")
        action = options["action"]
        if not keys_file.exists() and action == "add":
            key_set = KeySet({})  # the first key of a new server
        elif not keys_file.exists():
            raise CommandError(f"there is no keys file {keys_file}: create the first key with `manage.py rotate_key add k1`")
        else:
            try:
                key_set = parse_key_set(keys_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise CommandError(f"cannot read {keys_file}: {error}") from None
        if action != "status" and action != "add" and not options["kid"]:
            raise CommandError(f"rotate_key {action} needs a key id")
        if action == "status":
            self.status(key_set)
            return
        if action == "add":
            changed = self.add(key_set, options["kid"], options["algorithm"], nginx_keys=options["nginx_keys"])
        else:
            changed = getattr(self, action)(key_set, options["kid"], options["force"])
        keys_file.parent.mkdir(parents=True, exist_ok=True)
        write_private_file(keys_file, render_key_set(changed))
        self.stdout.write(f"updated {keys_file}")
        if options["nginx_keys"]:
            written = write_nginx_keys(options["nginx_keys"], changed)
            self.stdout.write(f"rewrote {' and '.join(map(str, written))}; now reload nginx")

    def status(self, key_set: KeySet) -> None:
        safe_after = self.retire_safe_after(key_set)
        order = list(key_set.keys)
        signing_index = order.index(key_set.signing_kid) if key_set.signing_kid in order else len(order)
        for index, kid in enumerate(order):
            label = f"{kid} ({key_set.algorithm(kid)})"
            if index > signing_index:  # keys are listed oldest first: this one was added after the active key
                self.stdout.write(f"{label}: added, not signing yet (next: manage.py rotate_key activate {kid})")
            elif kid == key_set.signing_kid:
                since = f" since {iso(key_set.active_since)}" if key_set.active_since else ""
                self.stdout.write(f"{label}: active (signs new links){since}")
            elif safe_after is None:
                self.stdout.write(f"{label}: verifies only; when it stopped signing is unknown (retire needs --force)")
            else:
                state = "may be retired" if now() > safe_after else f"in use until {iso(safe_after)}"
                self.stdout.write(f"{label}: verifies only; {state}")

    def add(self, key_set: KeySet, kid: str | None, algorithm: str, *, nginx_keys: Path | None) -> KeySet:
        kid = kid or next(f"k{n}" for n in range(1, len(key_set.keys) + 2) if f"k{n}" not in key_set.keys)
        if not KID_PATTERN.fullmatch(kid):
            raise CommandError(f"key id {kid!r} is not valid: use 1-32 characters of a-z, 0-9, '_' and '-'")
        if kid in key_set.keys:
            raise CommandError(f"key id {kid!r} exists already")
        algorithms = {**key_set.algorithms, **({kid: algorithm} if algorithm != MD5 else {})}
        secret = generate_secret()
        if not key_set.keys:  # a new server: its first key signs at once
            next_step = "reload nginx" if nginx_keys else \
                "write nginx's keys includes (manage.py secure_link_keys --output FILE) and reload nginx"
            self.stdout.write(f"created the first key, {kid} ({algorithm}), which signs new links.\nNext: {next_step}")
            return KeySet({kid: secret}, kid, now(), algorithms)
        # The current signer stays active explicitly, or the new (last) key would sign at once.
        active = key_set.signing_kid
        since = key_set.active_since if key_set.active_kid else None
        first_step = "reload nginx" if nginx_keys else "write nginx's keys includes (--nginx-keys FILE) and reload nginx"
        self.stdout.write(f"added {algorithm} key {kid} (not signing yet).\n"
                          f"Next: {first_step}, then: manage.py rotate_key activate {kid}")
        return KeySet({**key_set.keys, kid: secret}, active, since, algorithms)

    def activate(self, key_set: KeySet, kid: str, force: bool) -> KeySet:
        if kid not in key_set.keys:
            raise CommandError(f"no key {kid!r} (keys: {', '.join(key_set.keys)})")
        if kid == key_set.signing_kid:
            raise CommandError(f"{kid} already signs new links")
        self.stdout.write(
            f"{kid} signs new links from {iso(now())}; running app servers follow within "
            f"{pickup_bound():g} s (no reload needed)."
        )
        return KeySet(key_set.keys, kid, now(), key_set.algorithms)

    def retire(self, key_set: KeySet, kid: str, force: bool) -> KeySet:
        if kid not in key_set.keys:
            raise CommandError(f"no key {kid!r} (keys: {', '.join(key_set.keys)})")
        if kid == key_set.signing_kid:
            raise CommandError(f"{kid} signs new links: activate another key first")
        safe_after = self.retire_safe_after(key_set)
        if not force and (safe_after is None or now() <= safe_after):
            when = "an unknown time" if safe_after is None else iso(safe_after)
            raise CommandError(
                f"links signed with {kid} may live until {when}; retire it after that, "
                "or pass --force to revoke them now"
            )
        self.wait_for_app_servers(key_set)
        remaining = {k: v for k, v in key_set.keys.items() if k != kid}
        self.stdout.write(
            f"retired {kid}: its links get 403 once nginx reloads (next: reload nginx); "
            f"its share links stop within {pickup_bound():g} s."
        )
        algorithms = {k: v for k, v in key_set.algorithms.items() if k != kid}
        return KeySet(remaining, key_set.active_kid, key_set.active_since, algorithms)

    def wait_for_app_servers(self, key_set: KeySet) -> None:
        """Right after ``activate``, wait until every app server signs with the new key."""
        if key_set.active_since is None:
            return
        remaining = key_set.active_since + pickup_bound() - now()
        if remaining > 0:
            self.stdout.write(f"waiting {remaining:.1f} s for the app servers to sign with {key_set.signing_kid}...")
            time.sleep(remaining)

    def retire_safe_after(self, key_set: KeySet) -> int | None:
        """When every link signed by a non-active key has expired, if known."""
        if key_set.active_since is None:
            return None
        config = link_settings()
        return key_set.active_since + config.max_ttl + max(config.expiry_bucket, 0)
