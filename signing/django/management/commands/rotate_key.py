"""``manage.py rotate_key``: add, activate and retire signing keys without breaking live links.

The safe order, whose rules live in :class:`signing.KeySet` (this command parses and prints):

1. ``rotate_key add``: a new key joins the keys file (not yet signing). Every verifier's
   sync agent pulls it within ``SECURE_LINK_FLEET_BOUND`` (docs/fleet.md); without agents,
   ``--nginx-keys`` rewrites one nginx's includes, to be reloaded by hand.
2. ``rotate_key activate KID``: first proves, by probing, that every verifier accepts KID,
   and refuses (the old key keeps signing) if one does not; ``--force`` activates anyway.
   Running app servers pick the change up within ``SECURE_LINK_KEYS_CHECK_INTERVAL`` + 1 s.
3. ``rotate_key retire OLD``: allowed only once every link the old key signed has expired
   (the pick-up bound + ``SECURE_LINK_MAX_TTL`` + ``SECURE_LINK_EXPIRY_BUCKET`` after step 2); then waits until
   every verifier refuses OLD and names those that still accept it.

``--force`` retires at once: that is how to revoke every link in flight. Run right after
``activate``, it first waits out the pick-up interval, so that no app server is still
signing with the key being retired.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from signing import KeySet, KeySetError, KeyState
from signing.algorithms import ALGORITHMS, MD5, CDNKeyAlgorithm
from signing.encoding import utc_iso
from signing.django.conf import link_settings
from signing.django.fleet import fleet, wait_for
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
        parser.add_argument("--force", action="store_true",
                            help="activate even if a verifier refuses the key; retire even if live links may use it")
        parser.add_argument("--no-wait", action="store_true",
                            help="retire: do not wait for the verifiers to refuse the key (reload them by hand)")
        parser.add_argument("--algorithm", choices=list(ALGORITHMS), default=MD5.name,
                            help="for add: md5 (nginx's stock module, the default), hmac-sha256 (checked in Lua), or a CDN's "
                                 "key: cloudfront, cloudcdn, akamai (docs/cdn.md)")
        parser.add_argument("--secret-file", type=Path,
                            help="for add, a Cloud CDN (base64url) or Akamai (hex) key: the file holding it")
        parser.add_argument("--private-key", type=Path, help="for add --algorithm cloudfront: the RSA private key (PEM)")
        parser.add_argument("--key-pair-id", help="for add --algorithm cloudfront: the public key's id in CloudFront")

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
            nginx_folder = nginx_includes_directory(options["nginx_keys"]) if options["nginx_keys"] else None
        except KeySetError as error:
            raise CommandError(f"--nginx-keys {error}") from None
        try:
            changed = getattr(self, action)(key_set, kid, options)
        except KeySetError as error:
            raise CommandError(str(error)) from None
        changed.write(keys_file)
        self.stdout.write(f"updated {keys_file}")
        if nginx_folder is not None:
            written = changed.write_nginx_includes(nginx_folder)
            self.stdout.write(f"rewrote {' and '.join(map(str, written))}; now reload nginx")
        if action == "retire" and not options["no_wait"] and not isinstance(key_set[kid].algorithm, CDNKeyAlgorithm):
            self.confirm_retired(key_set, kid)

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
        for key, state in key_set.states(now=now(), max_lifetime=link_settings().old_key_lifetime):
            label = f"{key.kid} ({key.algorithm.name})"
            if state is KeyState.PENDING:
                self.stdout.write(f"{label}: {state.value} (next: manage.py rotate_key activate {key.kid})")
            elif state is KeyState.ACTIVE and key_set.active_since:
                self.stdout.write(f"{label}: {state.value} since {utc_iso(key_set.active_since)}")
            elif state is KeyState.IN_USE:
                safe_after = key_set.retire_safe_after(link_settings().old_key_lifetime) or 0
                self.stdout.write(f"{label}: verifies only; in use until {utc_iso(safe_after)}")
            else:
                self.stdout.write(f"{label}: {state.value}")
        if key_set.retired_kids:
            self.stdout.write(f"retired, never used again: {', '.join(key_set.retired_kids)}")

    def add(self, key_set: KeySet, kid: str | None, options: dict[str, Any]) -> KeySet:
        algorithm = ALGORITHMS[options["algorithm"]]
        changed, key = key_set.add(kid, algorithm=algorithm, now=now(), secret=self.given_secret(algorithm, options))
        if isinstance(algorithm, CDNKeyAlgorithm):
            self.stdout.write(f"added {algorithm.name} key {key.kid}" + (" (it signs new links)" if not key_set.keys
                              else " (not signing yet)") + f".\nNext: give {algorithm.name} the key (docs/cdn.md), "
                              f"then: manage.py rotate_key activate {key.kid} --force")
            return changed
        next_step = "reload nginx" if options["nginx_keys"] else \
            f"the verifiers' sync agents pull it within {link_settings().fleet_bound:g} s"
        if not key_set.keys:
            first_step = "reload nginx" if options["nginx_keys"] else \
                "put nginx's folder and its keys in place (manage.py install_nginx), then start each verifier's sync agent"
            self.stdout.write(f"created the first key, {key.kid} ({key.algorithm.name}), which signs new links.\n"
                              f"Next: {first_step}")
        else:
            self.stdout.write(f"added {key.algorithm.name} key {key.kid} (not signing yet).\n"
                              f"Next: {next_step}, then: manage.py rotate_key activate {key.kid}")
        return changed

    def given_secret(self, algorithm: Any, options: dict[str, Any]) -> str | None:
        """A CDN key's secret, from the files named on the command line (never from the command line itself)."""
        if not isinstance(algorithm, CDNKeyAlgorithm):
            return None
        try:
            if algorithm.name == "cloudfront":
                if not options["private_key"] or not options["key_pair_id"]:
                    raise CommandError("a cloudfront key needs --private-key PEM and --key-pair-id ID")
                from signing.cdn.cloudfront import cloudfront_secret

                return cloudfront_secret(options["key_pair_id"], options["private_key"].read_bytes())
            if not options["secret_file"]:
                raise CommandError(f"a {algorithm.name} key needs --secret-file FILE holding it")
            return str(options["secret_file"].read_text(encoding="ascii")).strip()
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"cannot read the key: {error}") from None

    def activate(self, key_set: KeySet, kid: str, options: dict[str, Any]) -> KeySet:
        key_set.activate(kid, now=now())  # the rules first: no probing for a key that cannot be activated
        algorithm, target = key_set[kid].algorithm, link_settings().delivery
        if not target.signs_with(key_set[kid]):  # the app servers could not sign with it (E010)
            raise CommandError(
                f"{kid} is a {algorithm.name} key, but SECURE_LINK_DELIVERY is {target.name}: no app server could sign "
                f"with it. To move to {algorithm.delivery_target}, set SECURE_LINK_DELIVERY and "
                f"SECURE_LINK_ACTIVE_KID={kid} together on every app server, then run this again (docs/cdn.md)"
            )
        if isinstance(key_set[kid].algorithm, CDNKeyAlgorithm):  # our verifiers never see it; nothing to probe
            if not options["force"]:
                raise CommandError(f"{kid} is a {key_set[kid].algorithm.name} key, which only the CDN checks: make "
                                   "sure the CDN has it (docs/cdn.md), then pass --force")
            return self.activated(key_set, kid)
        self.gate(key_set, kid, force=options["force"])
        return self.activated(key_set, kid)

    def activated(self, key_set: KeySet, kid: str) -> KeySet:
        changed = key_set.activate(kid, now=now())  # "since" is when it really starts signing
        self.stdout.write(
            f"{kid} signs new links from {utc_iso(now())}; running app servers follow within "
            f"{link_settings().pickup_bound:g} s (no reload needed)."
        )
        return changed

    def retire(self, key_set: KeySet, kid: str, options: dict[str, Any]) -> KeySet:
        config = link_settings()
        changed = key_set.retire(kid, now=now(), max_lifetime=config.old_key_lifetime, force=options["force"])
        self.wait_for_app_servers(key_set)
        self.stdout.write(
            f"retired {kid}: its links get 403 once each verifier has its new keys (within "
            f"{config.fleet_bound:g} s with sync agents); its share links stop within {config.pickup_bound:g} s."
        )
        return changed

    def gate(self, key_set: KeySet, kid: str, *, force: bool) -> None:
        """Refuse to activate ``kid`` unless every verifier accepts it (probed, bounded in time)."""
        config = link_settings()
        verifiers = fleet()
        if not verifiers:
            if not force:
                raise CommandError("no verifiers are known, so nothing proves they accept the new key: list them "
                                   "in SECURE_LINK_VERIFIERS (name=URL,...), or pass --force")
            self.stdout.write(f"--force: no verifiers are known; links signed with {kid} may get 403 everywhere")
            return
        self.stdout.write(f"checking that {len(verifiers)} verifier(s) accept {kid} (up to {config.fleet_bound:g} s)...")
        refusing = wait_for(verifiers, key_set, kid, accepted=True, bound=config.fleet_bound,
                            timeout=config.probe_timeout)
        if not refusing:
            return
        lines = "\n".join(f"  {verdict}" for verdict in refusing)
        if not force:
            raise CommandError(f"not activating {kid}; {key_set.active.kid} keeps signing. "
                               f"{len(refusing)} verifier(s) do not accept {kid}:\n{lines}")
        self.stdout.write(f"--force: activating {kid} although links signed with it will get 403 or no answer at:\n{lines}")

    def confirm_retired(self, key_set: KeySet, kid: str) -> None:
        """Wait until every verifier refuses ``kid`` (signed with the secret ``key_set`` still holds)."""
        config = link_settings()
        verifiers = fleet()
        if not verifiers:
            self.stdout.write("no verifiers are known (SECURE_LINK_VERIFIERS): check that each nginx refuses it")
            return
        accepting = wait_for(verifiers, key_set, kid, accepted=False, bound=config.fleet_bound,
                             timeout=config.probe_timeout)
        if accepting:
            lines = "\n".join(f"  {verdict}" for verdict in accepting)
            raise CommandError(f"{kid} is retired in the keys file, but {config.fleet_bound:g} s later "
                               f"{len(accepting)} verifier(s) still do not refuse it:\n{lines}")
        self.stdout.write(f"every verifier refuses {kid} now")

    def wait_for_app_servers(self, key_set: KeySet) -> None:
        """Right after ``activate``, wait until every app server signs with the new key."""
        if key_set.active_since is None:
            return
        remaining = key_set.active_since + link_settings().pickup_bound - now()
        if remaining > 0:
            self.stdout.write(f"waiting {remaining:.1f} s for the app servers to sign with {key_set.active.kid}...")
            time.sleep(remaining)
