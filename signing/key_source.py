"""The signing keys a running app server uses, picked up from the keys file as it changes.

An app server never needs a signal to learn about ``rotate_key``: every call to
:meth:`KeysFileWatcher.current` costs a clock read, and at most once per ``interval``
seconds (``SECURE_LINK_KEYS_CHECK_INTERVAL``) also a ``stat`` of the keys file. Only when
the file's identity (inode, size, modification time) changed is it read and parsed again.
A file that became unreadable or invalid, or one caught half-written, never replaces good
keys: the last good key set stays in use and one error line says what is wrong. This works
the same with or without gunicorn's ``--preload``: each worker process watches the file on
its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .exc import KeySetError
from .keys import KeySet

logger = logging.getLogger("signing.keys")

_FileIdentity = tuple[int, int, int, int]


class StaticKeys:
    """Keys fixed for the life of the process (``SECURE_LINK_KEYS`` in the environment)."""

    def __init__(self, key_set: KeySet) -> None:
        self._key_set = key_set
        self.error: str | None = None

    def current(self) -> KeySet:
        return self._key_set


class KeysFileWatcher:
    """The key set of a keys file, re-read when the file changes, checked at most every ``interval`` s.

    ``active_kid`` pins the signing key (``SECURE_LINK_ACTIVE_KID``) whatever the file's
    ``active:`` line says. ``error`` is the reason the file's current content is not in use,
    or None. Before a first good read, :meth:`current` returns an empty key set.
    """

    def __init__(
        self,
        path: Path,
        *,
        interval: float,
        active_kid: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.active_kid = active_kid
        self.interval = interval
        self.clock = clock
        self.error: str | None = None
        self._key_set = KeySet()
        self._identity: _FileIdentity | str | None = None
        self._checked_at: float | None = None
        self._lock = threading.Lock()

    def current(self) -> KeySet:
        """The keys to use now; looks at the file if ``interval`` has passed since the last look."""
        now = self.clock()
        checked_at = self._checked_at
        if checked_at is None or now - checked_at >= self.interval:
            with self._lock:
                if self._checked_at == checked_at:  # another thread may have looked meanwhile
                    self._checked_at = now
                    self._look()
        return self._key_set

    def _look(self) -> None:
        try:
            status = os.stat(self.path)
        except OSError as error:
            self._refuse(f"cannot read the keys file {self.path}: {error.strerror}", identity=f"stat:{error.errno}")
            return
        identity = (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
        if identity == self._identity:
            return
        try:
            key_set = KeySet.from_file(self.path)
            if self.active_kid:
                key_set = key_set.with_active(self.active_kid)
            key_set.check()
        except (OSError, KeySetError) as error:
            reason = error.strerror if isinstance(error, OSError) else str(error)
            self._refuse(f"cannot use the keys file {self.path}: {reason}", identity=identity)
            return
        changed = key_set != self._key_set
        self._key_set, self._identity, self.error = key_set, identity, None
        if changed:
            logger.info("signing keys from %s: %s; %s signs new links",
                        self.path, ", ".join(key_set.kids), key_set.active.kid)

    def _refuse(self, message: str, *, identity: _FileIdentity | str) -> None:
        """Keep the last good keys; log once per distinct state of the file."""
        if identity == self._identity:
            return
        self._identity, self.error = identity, message
        if self._key_set.keys:
            logger.error("%s; still using the last good keys (%s)", message, ", ".join(self._key_set.kids))
        else:
            logger.error("%s", message)
