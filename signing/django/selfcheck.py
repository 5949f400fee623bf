"""``manage.py check_secure_link``: probe a running nginx end to end with a canary file.

A canary file is saved in the default storage; links to it (valid, tampered, expired, signed
with an unknown key, one per key algorithm) are asked of the nginx under test and of each edge,
and every answer that is not the expected one comes with the most likely cause. A project adds
probes of its own views with ``SECURE_LINK['CHECK_PROBES']``: the dotted path of a callable that
takes the :class:`Canary` and returns a context manager yielding a list of :class:`Probe` (the
demo's probes its compatibility view). The canary is removed afterwards.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ContextManager
from urllib.parse import SplitResult

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils.module_loading import import_string

from .. import SecureLinkSigner
from ..keys import KeySet
from .conf import INTERNAL_MEDIA_PREFIX, current_key_set, get_link_signer, link_settings
from .fleet import Answer, http_get
from .links import media_path

CANARY_FOLDER = "_secure_link_canary"


@dataclass(frozen=True)
class Canary:
    """The file every probe asks for: its storage name, its bytes and its decoded URL path."""

    name: str
    data: bytes
    path: str


@dataclass(frozen=True)
class Probe:
    """One request and what it must get: ``expected`` status (and body, and an edge's cache status)."""

    name: str
    target: str  # path and query
    expected: int
    diagnose: Callable[[Answer], str]  # the most likely cause, given what came instead
    expected_body: bytes | None = None
    base: SplitResult | None = None  # where to send it: an edge, else the nginx under test
    cache_status: str | None = None  # the X-Cache-Status an edge must report


@contextlib.contextmanager
def saved_canary() -> Iterator[Canary]:
    """A canary file of unique bytes in the default storage, removed on exit."""
    data = f"secure link canary {secrets.token_hex(16)}\n".encode()
    name = default_storage.save(f"{CANARY_FOLDER}/{secrets.token_hex(8)}.txt", ContentFile(data))
    try:
        yield Canary(name, data, media_path(name))
    finally:
        default_storage.delete(name)


def project_probes(canary: Canary) -> ContextManager[list[Probe]]:
    """The probes of ``SECURE_LINK['CHECK_PROBES']``, or none."""
    dotted = link_settings().check_probes
    if dotted is None:
        return contextlib.nullcontext([])
    factory: Callable[[Canary], ContextManager[list[Probe]]] = import_string(dotted)
    return factory(canary)


def expired_link(signer: SecureLinkSigner, path: str) -> str:
    """A link to ``path`` with the signer's own keys (each in its algorithm) that expired an hour ago."""
    past = SecureLinkSigner(signer.key_set, prefix=signer.prefix, clock=lambda: time.time() - 3600)
    return past.sign(path, ttl=60).url


LUA_FAILED = ("nginx could not run its Lua check (500): its Lua files are not where lua_package_path says "
              "(secure_link_lua.conf): run `manage.py install_nginx` again, and see nginx's error log")


def diagnose_valid(answer: Answer, base: SplitResult) -> str:
    if answer.status == 403:
        return ("nginx refuses a valid link: the secrets differ (run `manage.py secure_link_keys --output ...` "
                "and reload nginx), or the clocks differ")
    if answer.status == 404:
        return ("nginx cannot find the canary file: it serves other files than this app stores (MEDIA_ROOT and "
                "$secure_link_media_root differ, or the origin reads another bucket)")
    if answer.status == 410:
        return "nginx thinks a fresh link expired: its clock is ahead of this host's (sync both with NTP)"
    if answer.status == 500:
        return LUA_FAILED
    if answer.status == 200:
        return "nginx sends other bytes than the canary file: it serves other files than this app stores"
    return f"unexpected answer {answer.status}: is {base.geturl()} the nginx in front of this app?"


def other_algorithm_links(key_set: KeySet, path: str) -> list[tuple[str, str]]:
    """``(algorithm, link)`` for each nginx algorithm of the key set other than the active key's,
    signed with its newest key: each check nginx runs (MD5 in C, HMAC-SHA256 in Lua) is probed."""
    nginx_keys = key_set.nginx_keys()
    active = key_set.active.algorithm
    newest = {key.algorithm: key for key in nginx_keys}  # the last of each algorithm wins
    return [(algorithm.name, SecureLinkSigner(nginx_keys.with_active(key.kid), prefix=link_settings().media_url)
             .sign(path, ttl=60).url)
            for algorithm, key in newest.items() if algorithm is not active]


class SelfCheck:
    """The probes of one run against ``base`` (the origin) and ``edges``; ``write`` prints a line."""

    def __init__(self, base: SplitResult, *, edges: list[SplitResult], timeout: float,
                 write: Callable[[str], None]) -> None:
        self.base = base
        self.edges = edges
        self.timeout = timeout
        self.write = write
        self.passed: dict[str, bool] = {}

    def run(self) -> tuple[int, int]:
        """Save a canary, run every probe, remove it; ``(failed, total)``."""
        with saved_canary() as canary, project_probes(canary) as extra:
            probes = self.origin_probes(canary) + extra
            for edge in self.edges:
                probes += self.edge_probes(edge, canary)
            failed = sum(1 for probe in probes if not self.run_probe(probe))
        return failed, len(probes)

    def origin_probes(self, canary: Canary) -> list[Probe]:
        signer = get_link_signer()
        assert isinstance(signer, SecureLinkSigner)  # the command refuses a CDN target first
        valid = signer.sign(canary.path, ttl=60).url
        probes = [
            Probe("valid link", valid, 200, lambda a: diagnose_valid(a, self.base), canary.data),
            Probe("tampered link", valid.replace("&expires=", "&expires=1"), 403,
                  lambda a: "nginx accepts a tampered link: /media/ is not protected by secure_link"),
            Probe("expired link", expired_link(signer, canary.path), 410, self.diagnose_expired),
            Probe("unknown key id", valid.replace(f"kid={signer.active_kid}", "kid=no-such-key"), 403,
                  lambda a: "nginx accepts an unknown key id: it must refuse links whose kid it cannot map"),
            Probe("internal location", INTERNAL_MEDIA_PREFIX + canary.name, 404,
                  lambda a: f"the internal location is reachable from outside ({a.status}): mark it `internal;`"),
        ]
        for algorithm, link in other_algorithm_links(current_key_set(), canary.path):
            probes.append(Probe(f"valid {algorithm} link", link, 200, lambda a: diagnose_valid(a, self.base),
                                canary.data))
        return probes

    def edge_probes(self, edge: SplitResult, canary: Canary) -> list[Probe]:
        """An edge checks links itself and serves a file cached under any token."""
        signer = get_link_signer()
        assert isinstance(signer, SecureLinkSigner)
        first, second = signer.sign(canary.path, ttl=60).url, signer.sign(canary.path, ttl=120).url
        where, kid = edge.netloc, signer.active_kid
        refused = f"edge {where}: valid link"

        def unless_keys_differ(diagnose: Callable[[Answer], str]) -> Callable[[Answer], str]:
            """A refusal after the edge refused the valid link is that same fault, not a new one."""
            return lambda a: keys_differ(where, kid) if a.status == 403 and not self.passed.get(refused) \
                else diagnose(a)

        return [
            Probe(refused, first, 200, lambda a: diagnose_edge(a, where, kid), canary.data, edge),
            Probe(f"edge {where}: another token, cache hit", second, 200,
                  unless_keys_differ(lambda a: f"the edge fetched the file again (X-Cache-Status: "
                                     f"{a.headers.get('X-Cache-Status')}): its proxy_cache_key must be the path "
                                     "($uri), never the query"),
                  canary.data, edge, cache_status="HIT"),
            Probe(f"edge {where}: tampered link", first.replace("&expires=", "&expires=1"), 403,
                  lambda a: "the edge accepts a tampered link: its /media/ must include secure_link/location/check.conf",
                  base=edge),
            Probe(f"edge {where}: expired link", expired_link(signer, canary.path), 410,
                  unless_keys_differ(lambda a: "the edge does not answer 410 for an expired link: its check differs"),
                  base=edge),
        ]

    def run_probe(self, probe: Probe) -> bool:
        """Ask for ``probe``, print ``ok`` or ``FAIL`` with the diagnosis; ConnectionError if nginx is unreachable."""
        base = probe.base or self.base
        try:
            answer = http_get(base.geturl(), probe.target, timeout=self.timeout)
        except OSError as error:
            raise ConnectionError(f"nginx is not reachable at {base.geturl()}: {error}") from None
        ok = answer.status == probe.expected and (probe.expected_body is None or answer.body == probe.expected_body)
        ok = ok and (probe.cache_status is None or answer.headers.get("X-Cache-Status") == probe.cache_status)
        self.passed[probe.name] = ok
        if ok:
            self.write(f"ok    {probe.name}: {answer.status}")
        else:
            self.write(f"FAIL  {probe.name}: {answer.status}, expected {probe.expected}: {probe.diagnose(answer)}")
        return ok

    def diagnose_expired(self, answer: Answer) -> str:
        if answer.status == 403 and not self.passed.get("valid link"):
            return "nginx refuses every link signed here (see the valid link above), expired ones included"
        if answer.status == 403:
            return "nginx answers 403 for an expired link: the `if ($secure_link = \"0\") { return 410; }` branch is missing"
        if answer.status == 200:
            return "nginx serves an expired link: $secure_link_expires is not hashed or the expiry is not enforced"
        return f"unexpected answer {answer.status}"


def keys_differ(where: str, kid: str) -> str:
    return (f"edge {where} does not accept key {kid}: its keys differ from the origin's "
            "(is its sync-keys agent running? `manage.py secure_link_fleet` shows every verifier)")


def diagnose_edge(answer: Answer, where: str, kid: str) -> str:
    if answer.status == 403:
        return keys_differ(where, kid)
    if answer.status in (502, 504):
        return "the edge cannot fetch from the origin: check its secure_link_origin upstream"
    if answer.status == 404:
        return ("the origin refused the edge's fetch or has no such file: list the edge's address in the "
                "origin's secure_link_edges.conf")
    if answer.status == 500:
        return LUA_FAILED.replace("nginx", "the edge", 1)
    return f"unexpected answer {answer.status} from the edge"
