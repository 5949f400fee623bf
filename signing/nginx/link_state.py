"""Per-link state that nginx reads without Python: revocations and download counts, as files.

One folder per verifier (``$secure_link_state_root`` in nginx, ``SECURE_LINK_STATE_DIR`` in
Django) holds

- ``revoked/<link id>``: the link is refused (403). nginx checks it with ``-f``, one
  ``stat``; the file holds the link's ``expires``, so that it can be removed once the link
  has expired anyway (:meth:`LinkState.prune`).
- ``downloads.journal``: the downloads of download-limited links, one line per change,
  ``LINK_ID +1 EXPIRES`` when a download is taken and ``LINK_ID -1 EXPIRES`` when a request
  that took one sent no file bytes (404, 304, 416). A link's count is the sum of its lines,
  whatever order workers wrote them in. The origin nginx counts in a shared dict (atomic
  across its workers, kept over a reload) and appends each change before it sends the file
  (``nginx/secure_link/downloads.lua``); after a restart it adds the journal up again and
  rewrites it without expired links. Only nginx rewrites it: Python reads it, and appends
  to it only where nginx is not running (Django serving ``/media/`` itself).

This module is the one Python side of that layout (docs/link-format.md).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from .signed_string import LINK_ID_PATTERN, MAX_DOWNLOADS_LIMIT

REVOKED = "revoked"
JOURNAL = "downloads.journal"


def _checked(link_id: str) -> str:
    if not LINK_ID_PATTERN.fullmatch(link_id):
        raise ValueError(f"{link_id!r} is not a link id (8 to 64 of A-Z a-z 0-9 _ -)")
    return link_id


class LinkState:
    """The revocations and download counts under ``root`` (see the module's docstring)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"<LinkState {self.root}>"

    def ensure(self) -> LinkState:
        """Create the folder and ``revoked/`` (the origin nginx's workers must be able to write the folder)."""
        (self.root / REVOKED).mkdir(parents=True, exist_ok=True)
        return self

    # Revocations -------------------------------------------------------------------------

    def revoke(self, link_id: str, *, expires: int) -> None:
        """Refuse the link from now on, until it would have expired (atomic: write, then rename)."""
        path = self.root / REVOKED / _checked(link_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{link_id}.{os.getpid()}.tmp")
        temporary.write_text(f"{expires}\n")
        os.replace(temporary, path)

    def is_revoked(self, link_id: str) -> bool:
        return (self.root / REVOKED / _checked(link_id)).is_file()

    def revocations(self) -> dict[str, int]:
        """Every revoked link id, with the ``expires`` its file records (0 if unreadable)."""
        found: dict[str, int] = {}
        for path in self._entries(self.root / REVOKED):
            try:
                found[path.name] = int(path.read_text().strip() or 0)
            except (OSError, ValueError):
                found[path.name] = 0
        return found

    def replace_revocations(self, wanted: Mapping[str, int]) -> tuple[int, int]:
        """Make ``revoked/`` hold exactly ``wanted`` (a sync agent's copy); returns (added, removed)."""
        present = self.revocations()
        added = removed = 0
        for link_id, expires in wanted.items():
            if link_id not in present:
                self.revoke(link_id, expires=expires)
                added += 1
        for link_id in present.keys() - wanted.keys():
            (self.root / REVOKED / link_id).unlink(missing_ok=True)
            removed += 1
        return added, removed

    # Download counts ---------------------------------------------------------------------

    @property
    def journal(self) -> Path:
        return self.root / JOURNAL

    def download_counts(self) -> dict[str, int]:
        """Every download-limited link's downloads so far, from one read of the journal."""
        counts: dict[str, int] = {}
        for link_id, delta in self._journal_entries():
            counts[link_id] = counts.get(link_id, 0) + delta
        return counts

    def downloads(self, link_id: str) -> int:
        """How many downloads of the link have been taken."""
        _checked(link_id)
        return sum(delta for entry_id, delta in self._journal_entries(link_id) if entry_id == link_id)

    def take(self, link_id: str, limit: int, *, expires: int) -> int | None:
        """Take one of the link's ``limit`` downloads (its number), or None when all are taken.

        For Django serving ``/media/`` itself: a lock on the journal keeps the count exact
        across processes. Never while nginx counts into the same journal.
        """
        if not 1 <= limit <= MAX_DOWNLOADS_LIMIT:
            raise ValueError(f"limit must be 1 to {MAX_DOWNLOADS_LIMIT}, got {limit}")
        _checked(link_id)
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.journal, "a+", encoding="ascii") as journal:
            fcntl.flock(journal, fcntl.LOCK_EX)
            taken = self.downloads(link_id)
            if taken >= limit:
                return None
            journal.write(f"{link_id} +1 {expires}\n")
            return taken + 1

    def give_back(self, link_id: str, *, expires: int) -> None:
        """Return a download taken by a request that sent no file bytes."""
        with open(self.journal, "a", encoding="ascii") as journal:
            fcntl.flock(journal, fcntl.LOCK_EX)
            journal.write(f"{_checked(link_id)} -1 {expires}\n")

    def _journal_entries(self, link_id: str | None = None) -> Iterator[tuple[str, int]]:
        prefix = f"{link_id} " if link_id else ""
        try:
            with open(self.journal, encoding="ascii", errors="replace") as journal:
                for line in journal:
                    if not line.startswith(prefix):
                        continue
                    entry_id, delta, _ = (line.split() + ["", "", ""])[:3]
                    if delta in ("+1", "-1"):
                        yield entry_id, int(delta)
        except FileNotFoundError:
            return

    # Housekeeping ------------------------------------------------------------------------

    def prune(self, *, now: float | None = None) -> int:
        """Remove revocations of links that have expired anyway; returns how many (the origin
        nginx drops expired links from the journal itself, when it starts)."""
        moment = time.time() if now is None else now
        expired = [link_id for link_id, expires in self.revocations().items() if 0 < expires < moment]
        for link_id in expired:
            (self.root / REVOKED / link_id).unlink(missing_ok=True)
        return len(expired)

    @staticmethod
    def _entries(folder: Path) -> Iterator[Path]:
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if not entry.name.startswith("."):
                        yield Path(entry.path)
        except FileNotFoundError:
            return
