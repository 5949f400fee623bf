"""What the nginx parity modules share: a case, a signer an hour ago, the verifier's status."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from signing import BadSignature, KeySet, LinkExpired, MalformedRequest, SecureLinkSigner, SecureLinkVerifier


@dataclass(frozen=True)
class Case:
    """A request built from a signer (or a site), the status both sides must give, and its source."""

    build: Callable[[Any], str]
    expected: int
    source_address: str = "127.0.0.1"


def past(signer: SecureLinkSigner) -> SecureLinkSigner:
    """The same signer an hour ago."""
    earlier = copy.copy(signer)
    earlier.clock = lambda: time.time() - 3600
    return earlier


def link_field_cases(signer_of: Callable[[Any], SecureLinkSigner], path: str) -> dict[str, Case]:
    """The link's own fields (id, not-before, limit), tampered and not, for one kind of signer."""

    def sign(s: Any, **options: Any) -> str:
        return signer_of(s).sign(path, ttl=300, **options).url

    def edit_id(url: str) -> str:
        link_id = url.split("&id=")[1].split("&")[0]
        return url.replace(f"id={link_id}", f"id={link_id[:-1]}{'A' if link_id[-1] != 'A' else 'B'}")

    def ahead(s: Any) -> tuple[str, int]:
        """A link that opens in two minutes (the time is read when the case runs, not when it is built)."""
        opens = int(time.time()) + 120
        return sign(s, not_before=opens), opens

    def passed(s: Any) -> str:
        return sign(s, not_before=int(time.time()) - 10)

    return {
        "link id edited": Case(lambda s: edit_id(sign(s)), 403),
        "link id removed": Case(lambda s: sign(s).split("&id=")[0], 403),
        "link id of another link": Case(lambda s: sign(s).split("&id=")[0] + "&id=" + sign(s).split("&id=")[1], 403),
        "link id too short": Case(lambda s: sign(s, link_id="AbCdEfGh").replace("id=AbCdEfGh", "id=AbCdEfG"), 403),
        "link id chosen by the signer": Case(lambda s: sign(s, link_id="a-B_c" * 4), 200),
        "not-before passed": Case(passed, 200),
        "not-before ahead": Case(lambda s: ahead(s)[0], 403),
        "not-before edited": Case(lambda s: (lambda url, opens: url.replace(f"nb={opens}", f"nb={opens - 200}"))(*ahead(s)), 403),
        "not-before removed": Case(lambda s: (lambda url, opens: url.replace(f"&nb={opens}", ""))(*ahead(s)), 403),
        "not-before with a leading zero": Case(lambda s: passed(s).replace("&nb=", "&nb=0"), 403),
        # These nginx run alone: a verified limited link reaches the download counter (the app), which
        # is not running, so it is refused (503), never sent uncounted; test_link_control_live counts them.
        "download limit, first download": Case(lambda s: sign(s, max_downloads=2), NO_COUNTER),
        "download limit edited": Case(lambda s: sign(s, max_downloads=2).replace("&limit=2", "&limit=9"), 403),
        "download limit removed": Case(lambda s: sign(s, max_downloads=2).replace("&limit=2", ""), 403),
        "download limit added": Case(lambda s: sign(s) + "&limit=5", 403),
    }


NO_COUNTER = 503  # a verified download-limited link at an nginx whose download counter does not answer


def python_status(key_set: KeySet, target: str | bytes, remote_addr: str, cookie: str = "") -> int:
    """The status the Python verifier predicts, mapped as the shipped config maps it, for an nginx
    without a download counter (``NO_COUNTER`` for a verified download-limited link).

    ``cookie`` is the request's Cookie header, if it sends one."""
    raw = target if isinstance(target, bytes) else target.encode()
    raw_path, _, query = raw.partition(b"?")
    try:
        verified = SecureLinkVerifier(key_set).verify(raw_path=raw_path, query=query, remote_addr=remote_addr,
                                                      cookies=[cookie.encode()] if cookie else [])
    except MalformedRequest:
        return 400
    except LinkExpired:
        return 410
    except BadSignature:
        return 403
    return NO_COUNTER if verified.max_downloads is not None else 200
