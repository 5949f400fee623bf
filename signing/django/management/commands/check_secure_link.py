"""``manage.py check_secure_link``: probe a running nginx end to end (:mod:`signing.django.selfcheck`).

Each probe prints one line; on any failure the command says what is most likely wrong and
exits 1. The canary file is removed afterwards.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser

from signing.django.conf import link_settings
from signing.django.selfcheck import SelfCheck


def http_base(url: str, option: str) -> SplitResult:
    parts = urlsplit(url.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CommandError(f"{option} {url!r} is not an http(s) URL such as http://127.0.0.1:8080")
    return parts


class Command(BaseCommand):
    help = "Probe nginx in front of this app with a canary file; exit 1 with a diagnosis if anything is off."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", help="nginx's address (default: SECURE_LINK['ORIGIN_URL'], else BASE_URL)")
        parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
        parser.add_argument("--edge", action="append", default=[], metavar="URL",
                            help="also probe this edge (nginx/edge.conf) in front of the origin; repeatable")

    def handle(self, *args: Any, **options: Any) -> None:
        config = link_settings()
        if not config.delivery.is_nginx:
            raise CommandError(f"SECURE_LINK_DELIVERY is {config.delivery}: this command probes our nginx, and "
                               f"{config.delivery.name} checks the links; try one from `manage.py sign_url` (docs/cdn.md)")
        base_url = options["base_url"] or config.origin_url
        if not base_url:
            raise CommandError("which nginx? pass --base-url http://HOST:PORT, or set SECURE_LINK['ORIGIN_URL'] "
                               "(SECURE_LINK_ORIGIN_URL) or BASE_URL (SITE_BASE_URL)")
        base = http_base(base_url, "--base-url")
        edges = [http_base(edge, "--edge") for edge in options["edge"]]
        check = SelfCheck(base, edges=edges, timeout=options["timeout"], write=self.stdout.write)
        try:
            failed, total = check.run()
        except ConnectionError as error:
            raise CommandError(str(error)) from None
        if failed:
            raise CommandError(f"{failed} of {total} probes failed against {base.geturl()} (see above)")
        self.stdout.write(self.style.SUCCESS(f"all {total} probes passed against {base.geturl()}"))
