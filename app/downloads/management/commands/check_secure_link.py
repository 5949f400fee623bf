"""``manage.py check_secure_link``: probe a running nginx end to end with a canary file.

Each probe prints one line; on any failure the command says what is most likely wrong and
exits 1. The canary file, its database row and its owner are removed afterwards.
"""

from __future__ import annotations

import io
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse
from PIL import Image as PillowImage

from app.downloads.conf import INTERNAL_MEDIA_PREFIX, get_link_signer, get_share_signer, link_settings, operator_base_url
from app.downloads.fleet import Answer, http_get
from app.downloads.links import media_path
from app.downloads.models import Image
from signing import SecureLinkSigner

CANARY_USER = "secure-link-canary"


@dataclass
class Probe:
    name: str
    target: str
    expected: int
    diagnose: Callable[[Answer], str]
    expected_body: bytes | None = None
    base: SplitResult | None = None  # where to send it: an edge, else the nginx under test
    cache_status: str | None = None  # the X-Cache-Status an edge must report


def canary_png() -> bytes:
    """A small PNG of random pixels: unique bytes each run, and a real image for the model."""
    buffer = io.BytesIO()
    PillowImage.frombytes("RGB", (4, 4), secrets.token_bytes(48)).save(buffer, format="PNG")
    return buffer.getvalue()


def expired_link(signer: SecureLinkSigner, path: str) -> str:
    """A link to ``path`` with the signer's own keys (each in its algorithm) that expired an hour ago."""
    past = SecureLinkSigner(signer.key_set, prefix=signer.prefix, clock=lambda: time.time() - 3600)
    return past.sign(path, ttl=60).url


class Command(BaseCommand):
    help = "Probe nginx in front of this app with a canary file; exit 1 with a diagnosis if anything is off."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", help="nginx's address (default: SITE_BASE_URL, else the running demo's)")
        parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
        parser.add_argument("--edge", action="append", default=[], metavar="URL",
                            help="also probe this edge (nginx/edge.conf) in front of the origin; repeatable")

    def handle(self, *args: Any, **options: Any) -> None:
        delivery = link_settings().delivery
        if not delivery.is_nginx:
            raise CommandError(f"SECURE_LINK_DELIVERY is {delivery}: this command probes our nginx, and "
                               f"{delivery.name} checks the links; try one from `manage.py sign_url` (docs/cdn.md)")
        base_url = (options["base_url"] or operator_base_url()[0]).rstrip("/")
        self.timeout = options["timeout"]
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CommandError(f"--base-url {base_url!r} is not an http(s) URL")
        self.base = parts
        edges = [urlsplit(edge.rstrip("/")) for edge in options["edge"]]
        if any(edge.scheme not in ("http", "https") or not edge.hostname for edge in edges):
            raise CommandError("--edge must be an http(s) URL such as http://127.0.0.1:8081")
        canary_bytes = canary_png()
        image = self.create_canary(canary_bytes)
        self.passed: dict[str, bool] = {}
        try:
            probes = self.probes(image, canary_bytes)
            for edge in edges:
                probes += self.edge_probes(edge, image, canary_bytes)
            failures = [probe for probe in probes if not self.run_probe(probe)]
        finally:
            self.remove_canary(image)
        if failures:
            raise CommandError(f"{len(failures)} of {len(probes)} probes failed against {base_url} (see above)")
        self.stdout.write(self.style.SUCCESS(f"all {len(probes)} probes passed against {base_url}"))

    def probes(self, image: Image, canary: bytes) -> list[Probe]:
        path = media_path(image.file.name)
        signer = get_link_signer()
        valid = signer.sign(path, ttl=60).url
        token, _ = get_share_signer().sign(image.share_subject, ttl=60)
        return [
            Probe("valid link", valid, 200, self.diagnose_valid, canary),
            Probe("tampered link", valid.replace("&expires=", "&expires=1"), 403,
                  lambda a: "nginx accepts a tampered link: /media/ is not protected by secure_link"),
            Probe("expired link", expired_link(signer, path), 410, self.diagnose_expired),
            Probe("unknown key id", valid.replace(f"kid={signer.active_kid}", "kid=no-such-key"), 403,
                  lambda a: "nginx accepts an unknown key id: it must refuse links whose kid it cannot map"),
            Probe("compatibility view", f"{reverse('download-image', args=[image.pk])}?token={token}", 200,
                  self.diagnose_compat, canary),
            Probe("internal location", INTERNAL_MEDIA_PREFIX + image.file.name, 404,
                  lambda a: f"the internal location is reachable from outside ({a.status}): mark it `internal;`"),
        ]

    def edge_probes(self, edge: SplitResult, image: Image, canary: bytes) -> list[Probe]:
        """An edge checks links itself and serves a file cached under any token."""
        path = media_path(image.file.name)
        signer = get_link_signer()
        first, second = signer.sign(path, ttl=60).url, signer.sign(path, ttl=120).url
        where, kid = edge.netloc, signer.active_kid
        refused = f"edge {where}: valid link"

        def unless_keys_differ(diagnose: Callable[[Answer], str]) -> Callable[[Answer], str]:
            """A refusal after the edge refused the valid link is that same fault, not a new one."""
            return lambda a: self.keys_differ(where, kid) if a.status == 403 and not self.passed.get(refused) \
                else diagnose(a)

        return [
            Probe(refused, first, 200, lambda a: self.diagnose_edge(a, where, kid), canary, edge),
            Probe(f"edge {where}: another token, cache hit", second, 200,
                  unless_keys_differ(lambda a: f"the edge fetched the file again (X-Cache-Status: "
                                     f"{a.headers.get('X-Cache-Status')}): its proxy_cache_key must be the path "
                                     "($uri), never the query"),
                  canary, edge, cache_status="HIT"),
            Probe(f"edge {where}: tampered link", first.replace("&expires=", "&expires=1"), 403,
                  lambda a: "the edge accepts a tampered link: its /media/ must include secure_link/check.conf",
                  base=edge),
            Probe(f"edge {where}: expired link", expired_link(signer, path), 410,
                  unless_keys_differ(lambda a: "the edge does not answer 410 for an expired link: its check differs"),
                  base=edge),
        ]

    @staticmethod
    def keys_differ(where: str, kid: str) -> str:
        return (f"edge {where} does not accept key {kid}: its keys differ from the origin's "
                "(is its sync-keys agent running? `manage.py secure_link_fleet` shows every verifier)")

    def diagnose_edge(self, answer: Answer, where: str, kid: str) -> str:
        if answer.status == 403:
            return self.keys_differ(where, kid)
        if answer.status in (502, 504):
            return "the edge cannot fetch from the origin: check its secure_link_origin upstream"
        if answer.status == 404:
            return ("the origin refused the edge's fetch or has no such file: list the edge's address in the "
                    "origin's secure_link_edges.conf")
        return f"unexpected answer {answer.status} from the edge"

    def run_probe(self, probe: Probe) -> bool:
        base = probe.base or self.base
        try:
            answer = self.fetch(probe.target, base)
        except OSError as error:
            raise CommandError(f"nginx is not reachable at {base.geturl()}: {error}") from None
        ok = answer.status == probe.expected and (probe.expected_body is None or answer.body == probe.expected_body)
        ok = ok and (probe.cache_status is None or answer.headers.get("X-Cache-Status") == probe.cache_status)
        self.passed[probe.name] = ok
        if ok:
            self.stdout.write(f"ok    {probe.name}: {answer.status}")
        else:
            self.stdout.write(f"FAIL  {probe.name}: {answer.status}, expected {probe.expected}: {probe.diagnose(answer)}")
        return ok

    def diagnose_valid(self, answer: Answer) -> str:
        if answer.status == 403:
            return ("nginx refuses a valid link: the secrets differ (run `manage.py secure_link_keys --output ...` "
                    "and reload nginx), or the clocks differ")
        if answer.status == 404:
            return "nginx cannot find the canary file: MEDIA_ROOT and nginx's $secure_link_media_root differ"
        if answer.status == 410:
            return "nginx thinks a fresh link expired: its clock is ahead of this host's (sync both with NTP)"
        if answer.status == 200:
            return "nginx sends other bytes than the canary file: MEDIA_ROOT and $secure_link_media_root differ"
        return f"unexpected answer {answer.status}: is {self.base.geturl()} the nginx in front of this app?"

    def diagnose_expired(self, answer: Answer) -> str:
        if answer.status == 403 and not self.passed.get("valid link"):
            return "nginx refuses every link signed here (see the valid link above), expired ones included"
        if answer.status == 403:
            return "nginx answers 403 for an expired link: the `if ($secure_link = \"0\") { return 410; }` branch is missing"
        if answer.status == 200:
            return "nginx serves an expired link: $secure_link_expires is not hashed or the expiry is not enforced"
        return f"unexpected answer {answer.status}"

    def diagnose_compat(self, answer: Answer) -> str:
        if answer.headers.get("X-Accel-Redirect"):
            return "X-Accel-Redirect reached the client: nginx is not in front of Django"
        if answer.status == 404:
            return "the X-Accel-Redirect target was not found: check the internal location's alias and MEDIA_ROOT"
        if answer.status in (502, 503, 504):
            return "nginx cannot reach Django: check the secure_link_app upstream"
        if answer.status in (403, 410):
            return "Django refused the share token: SECRET/keys differ between app servers?"
        return "the compatibility view did not send the canary bytes"

    def fetch(self, target: str, base: SplitResult) -> Answer:
        return http_get(base.geturl(), target, timeout=self.timeout)

    def create_canary(self, data: bytes) -> Image:
        name = f"canary/{secrets.token_hex(8)}.png"
        path = Path(settings.MEDIA_ROOT) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, 0o644)
        owner, _ = get_user_model().objects.get_or_create(username=CANARY_USER, defaults={"is_active": False})
        return Image.objects.create(owner=owner, file=name, original_name="canary.png",
                                    content_type="image/png", size=len(data))

    def remove_canary(self, image: Image) -> None:
        path = Path(settings.MEDIA_ROOT) / image.file.name
        Image.objects.filter(pk=image.pk).delete()
        get_user_model().objects.filter(username=CANARY_USER, images__isnull=True).delete()
        path.unlink(missing_ok=True)
