"""Per-link state that nginx reads without Python: revocations and download counts, as files.

One folder per verifier (``$secure_link_state_root`` in nginx, ``SECURE_LINK_STATE_DIR`` in
Django) holds

- ``revoked/<link id>``: the link is refused (403). nginx checks it with ``-f``, one
  ``stat``; the file holds the link's ``expires``, so that it can be removed once the link
  has expired anyway (:meth:`LinkState.prune`).
- ``downloads/<link id>/<k>``: download ``k`` (1 to the link's limit) of a download-limited
  link has been taken. Taking one creates the first free slot with ``O_CREAT | O_EXCL``,
  which the kernel makes atomic across every nginx worker and process: two requests never
  get one slot, and a link with ``limit=N`` sends at most N files. A request that then
  sends no file bytes (404, 304, 416) gives its slot back. Files survive an nginx reload
  and a restart alike.

``nginx/secure_link/secure_link.js`` (``takeDownload``) does the same on the download
path; this module is the one Python side of that layout (docs/link-format.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from .link_format import LINK_ID_PATTERN, MAX_DOWNLOADS_LIMIT

REVOKED = "revoked"
DOWNLOADS = "downloads"


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
        """Create the two folders (nginx's workers must be able to write ``downloads/``)."""
        for name in (REVOKED, DOWNLOADS):
            (self.root / name).mkdir(parents=True, exist_ok=True)
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

    def downloads(self, link_id: str) -> int:
        """How many downloads of the link have been taken."""
        return sum(1 for _ in self._entries(self.root / DOWNLOADS / _checked(link_id)))

    def take(self, link_id: str, limit: int) -> int | None:
        """Take the link's first free download slot (1 to ``limit``), or None when all are taken."""
        if not 1 <= limit <= MAX_DOWNLOADS_LIMIT:
            raise ValueError(f"limit must be 1 to {MAX_DOWNLOADS_LIMIT}, got {limit}")
        folder = self.root / DOWNLOADS / _checked(link_id)
        folder.mkdir(parents=True, exist_ok=True)
        for slot in range(1, limit + 1):
            try:
                os.close(os.open(folder / str(slot), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            except FileExistsError:
                continue
            return slot
        return None

    def give_back(self, link_id: str, slot: int) -> None:
        """Return a slot taken by a request that sent no file bytes."""
        (self.root / DOWNLOADS / _checked(link_id) / str(slot)).unlink(missing_ok=True)

    # Housekeeping ------------------------------------------------------------------------

    def forget(self, link_id: str) -> None:
        """Remove everything recorded for the link (once it has expired)."""
        (self.root / REVOKED / _checked(link_id)).unlink(missing_ok=True)
        folder = self.root / DOWNLOADS / link_id
        for path in self._entries(folder):
            path.unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:
            pass

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
