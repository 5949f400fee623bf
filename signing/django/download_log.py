"""A link's downloads, read from what nginx writes: the verifiers' download logs.

Every verifier (the origin and each edge) writes one JSON line per request of a link with
an id, in the shipped ``secure_link_downloads`` format (nginx/secure_link/rules.conf):
time, link id, client, status, bytes. ``SECURE_LINK_DOWNLOAD_LOGS`` names each log by its
verifier (``origin=/var/log/nginx/downloads.log,edge-eu=/srv/logs/eu/downloads.log``):
an edge's log reaches the app by the operator's log shipping, as any access log does.
The origin's fetches for edges carry no link id and are not in it, so nothing counts twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .conf import link_settings


@dataclass(frozen=True)
class Download:
    """One request of a link, as a verifier logged it; ``sent_file`` for a 200 or 206."""

    time: datetime
    verifier: str
    client: str
    status: int
    bytes: int

    @property
    def sent_file(self) -> bool:
        return self.status in (200, 206)


def downloads_of(link_id: str, logs: Iterable[tuple[str, Path]] | None = None) -> list[Download]:
    """Every logged request of ``link_id``, oldest first, from ``logs`` (default: the setting).

    A log that is missing or unreadable is skipped; a line that is not one of ours is too.
    """
    found = [
        download
        for verifier, path in (link_settings().download_logs if logs is None else logs)
        for download in _read(verifier, path, link_id)
    ]
    return sorted(found, key=lambda download: download.time)


def _read(verifier: str, path: Path, link_id: str) -> Iterator[Download]:
    needle = f'"link":"{link_id}"'
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            for line in log:
                if needle not in line:  # cheap before JSON: most lines are other links'
                    continue
                try:
                    entry = json.loads(line)
                    yield Download(datetime.fromisoformat(entry["time"]), verifier, str(entry["client"]),
                                   int(entry["status"]), int(entry["bytes"]))
                except (ValueError, KeyError, TypeError):
                    continue
    except OSError:
        return
