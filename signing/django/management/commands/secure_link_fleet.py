"""``manage.py secure_link_fleet``: which key ids each verifier accepts right now, and whether it is in step.

Each verifier (SECURE_LINK_VERIFIERS, else the running demo's origin and edge) is asked for
the probe file once per key of the app's key set that nginx checks (MD5 and HMAC-SHA256; a
CDN's keys are the CDN's business, and named as not probed); a verifier is in step when it
accepts every one of them and nothing else is wrong. Exit 1 when one is not. Prints no secret.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from signing.django.conf import current_key_set, link_settings
from signing.django.fleet import ensure_probe_file, fleet, probe_all


class Command(BaseCommand):
    help = "Probe every verifier with a link per key id: which keys it accepts, and whether it is in step."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, help="seconds per probe (default: SECURE_LINK_PROBE_TIMEOUT)")

    def handle(self, *args: Any, **options: Any) -> None:
        verifiers = fleet()
        if not verifiers:
            raise CommandError("no verifiers are known: list them in SECURE_LINK_VERIFIERS (name=URL,...)")
        key_set = current_key_set().nginx_keys()  # a CDN's key signs no link our nginx could check
        not_probed = [key for key in current_key_set() if key not in key_set]
        timeout = options["timeout"] or link_settings().probe_timeout
        ensure_probe_file()
        verdicts = {key.kid: probe_all(verifiers, key_set, key.kid, timeout=timeout) for key in key_set}
        behind = 0
        for index, verifier in enumerate(verifiers):
            answers = [by_kid[index] for by_kid in verdicts.values()]
            accepted = [verdict.kid for verdict in answers if verdict.accepts]
            problems = [verdict.detail for verdict in answers if not verdict.accepts]
            state = "in step" if not problems else "NOT in step: " + "; ".join(problems)
            behind += bool(problems)
            self.stdout.write(f"{verifier}: accepts {', '.join(accepted) or 'no key'}; {state}")
        for key in not_probed:
            self.stdout.write(f"{key.kid} ({key.algorithm.name}): checked by {key.algorithm.name}, not by these verifiers; "
                              "not probed")
        if behind:
            raise CommandError(f"{behind} of {len(verifiers)} verifier(s) are not in step with the keys "
                               f"({', '.join(key_set.kids)})")
        self.stdout.write(self.style.SUCCESS(f"all {len(verifiers)} verifier(s) accept every key ({', '.join(key_set.kids)})"))
