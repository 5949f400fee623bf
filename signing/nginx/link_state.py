"""Per-link state that nginx reads without Python: the revoked link ids, as files.

One folder per verifier (``$secure_link_state_root`` in nginx), kept by that verifier's sync
agent (``python -m signing sync-keys --state-dir``, :mod:`signing.fleet.agent`) from the app's
list, holds ``revoked/<link id>``: the link is refused (403). nginx checks it with ``-f``, one
``stat``; the file holds the link's ``expires``, so that it can be removed once the link has
expired anyway (:meth:`LinkState.prune`). Download counts are not here: every origin asks the
app's counter (:mod:`signing.nginx.counter`).

This module is the one Python side of that layout (docs/link-format.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from .signed_string import LINK_ID_PATTERN

REVOKED = "revoked"


def _checked(link_id: str) -> str:
    if not LINK_ID_PATTERN.fullmatch(link_id):
        raise ValueError(f"{link_id!r} is not a link id (8 to 64 of A-Z a-z 0-9 _ -)")
    return link_id


class LinkState:
    """The revocations under ``root`` (see the module's docstring)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"<LinkState {self.root}>"

    def ensure(self) -> LinkState:
        """Create the folder and ``revoked/``."""
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

    # Housekeeping ------------------------------------------------------------------------

    def prune(self, *, now: float | None = None) -> int:
        """Remove revocations of links that have expired anyway; returns how many."""
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
