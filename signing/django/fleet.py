"""The fleet: every nginx that verifies links (the origin and each edge), and what each accepts.

The app never reads a verifier's files: it asks. A probe is a link to one small probe file,
signed with one key; a verifier that answers 200 with the probe's bytes accepts that key,
403 refuses it. Probes are bounded in time (``PROBE_TIMEOUT``), so a hung verifier costs
seconds. Keys reach the verifiers by themselves: each runs ``python -m signing sync-keys``,
which pulls the key set from :func:`signing.django.views.keys_for_verifiers` (docs/fleet.md
argues the choice).
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from .. import KeySet, SecureLinkSigner
from .conf import link_settings

PROBE_NAME = "_secure_link_probe/probe.txt"  # in the default storage
PROBE_BODY = b"secure link probe\n"
# On a reload nginx starts the new workers, sleeps 100 ms, then stops the old ones: for that
# moment either may answer. A verdict counts once it holds again this much later.
RELOAD_SETTLE = 0.3


@dataclass(frozen=True)
class Verifier:
    """One nginx that checks links: a name for messages and the base URL to probe."""

    name: str
    url: str

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"


@dataclass(frozen=True)
class Verdict:
    """A verifier's answer to a link signed with ``kid``: ``accepts`` True, False, or None (no clear answer)."""

    verifier: Verifier
    kid: str
    accepts: bool | None
    detail: str

    def __str__(self) -> str:
        return f"{self.verifier.name} ({self.verifier.url}) {self.detail}"


def fleet() -> list[Verifier]:
    """The verifiers of ``SECURE_LINK['VERIFIERS']``; empty when none are configured."""
    return [Verifier(name, url.rstrip("/")) for name, url in link_settings().verifiers]


def ensure_probe_file() -> None:
    """The probe file in the default storage (on disk, or in the bucket), with its known bytes."""
    if default_storage.exists(PROBE_NAME):
        with default_storage.open(PROBE_NAME, "rb") as probe:
            if probe.read() == PROBE_BODY:
                return
        default_storage.delete(PROBE_NAME)
    default_storage.save(PROBE_NAME, ContentFile(PROBE_BODY))


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: http.client.HTTPMessage


def http_get(base_url: str, target: str, *, timeout: float, limit: int | None = None) -> Answer:
    """``GET target`` from the nginx at ``base_url`` (its own ``Host``), reading ``limit`` bytes at most (None: all).

    Raises OSError (TimeoutError when ``timeout`` passes on one step), http.client.HTTPException
    for an answer that is not HTTP, and ValueError for a URL without a valid port.
    """
    parts = urlsplit(base_url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("GET", target, headers={"Host": parts.netloc})
        response = connection.getresponse()
        return Answer(response.status, response.read(limit), response.headers)
    finally:
        connection.close()


def probe_target(key_set: KeySet, kid: str) -> str:
    """The link to the probe file signed with key ``kid`` of ``key_set``, an nginx key (KeySetError otherwise)."""
    media_url = link_settings().media_url
    return SecureLinkSigner(key_set.nginx_keys().with_active(kid), prefix=media_url).sign(media_url + PROBE_NAME, ttl=300).url


def probe(verifier: Verifier, target: str, kid: str, *, timeout: float) -> Verdict:
    """Ask ``verifier`` for the probe file with ``target``, a link signed by key ``kid``."""
    try:
        answer = http_get(verifier.url, target, timeout=timeout, limit=len(PROBE_BODY) + 1)
    except TimeoutError:
        return Verdict(verifier, kid, None, f"gave no answer within {timeout:g} s")
    except OSError as error:
        return Verdict(verifier, kid, None, f"cannot be reached: {error.strerror or error}")
    except (http.client.HTTPException, ValueError) as error:
        return Verdict(verifier, kid, None, f"did not answer in HTTP ({type(error).__name__})")
    if answer.status == 200 and answer.body == PROBE_BODY:
        return Verdict(verifier, kid, True, f"accepts key {kid}")
    if answer.status == 403:
        return Verdict(verifier, kid, False, f"does not accept key {kid} (403)")
    return Verdict(verifier, kid, None, f"answered {answer.status} to a link signed with key {kid}")


def probe_all(verifiers: Sequence[Verifier], key_set: KeySet, kid: str, *, timeout: float) -> list[Verdict]:
    """One probe per verifier, all at once; a verifier still busy after a round's deadline has no answer.

    The deadline (three ``timeout``: connect, send, read) holds whatever a verifier does.
    """
    if not verifiers:
        return []
    target = probe_target(key_set, kid)
    pool = ThreadPoolExecutor(max_workers=len(verifiers))
    futures = [pool.submit(probe, verifier, target, kid, timeout=timeout) for verifier in verifiers]
    done, _ = wait(futures, timeout=3 * timeout)
    pool.shutdown(wait=False, cancel_futures=True)
    return [future.result() if future in done else Verdict(verifier, kid, None, f"gave no answer within {3 * timeout:g} s")
            for future, verifier in zip(futures, verifiers, strict=True)]


def wait_for(verifiers: Sequence[Verifier], key_set: KeySet, kid: str, *, accepted: bool, bound: float,
             timeout: float, clock: Callable[[], float] = time.monotonic) -> list[Verdict]:
    """Probe until every verifier accepts (or, with ``accepted=False``, refuses) ``kid``, or ``bound`` passes.

    Returns the verdicts that are not yet as wanted (empty: all are).
    """
    if not verifiers:
        return []
    ensure_probe_file()
    deadline = clock() + bound
    while True:
        missing = _not_yet(verifiers, key_set, kid, accepted=accepted, timeout=timeout)
        if not missing:
            time.sleep(RELOAD_SETTLE)
            missing = _not_yet(verifiers, key_set, kid, accepted=accepted, timeout=timeout)
        if not missing or clock() >= deadline:
            return missing
        time.sleep(min(0.25, max(0.0, deadline - clock())))


def _not_yet(verifiers: Sequence[Verifier], key_set: KeySet, kid: str, *, accepted: bool,
             timeout: float) -> list[Verdict]:
    return [verdict for verdict in probe_all(verifiers, key_set, kid, timeout=timeout) if verdict.accepts is not accepted]
