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


def python_status(key_set: KeySet, target: str | bytes, remote_addr: str) -> int:
    """The status the Python verifier predicts, mapped as the shipped config maps it."""
    raw = target if isinstance(target, bytes) else target.encode()
    raw_path, _, query = raw.partition(b"?")
    try:
        SecureLinkVerifier(key_set).verify(raw_path=raw_path, query=query, remote_addr=remote_addr)
    except MalformedRequest:
        return 400
    except LinkExpired:
        return 410
    except BadSignature:
        return 403
    return 200
