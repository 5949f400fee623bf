"""Keep one verifier's nginx keys includes in step with the app's key set, by pulling.

Every verifier (the origin's nginx and each edge) runs one agent,
``python -m signing sync-keys``, beside its nginx. Every ``interval`` seconds it asks the
app for the key set (``GET /_secure_link/keys`` with the fleet token in a header, never in
the URL), and when the includes that key set renders differ from the files on disk it

1. refuses anything that does not parse as a usable key set (a truncated answer, an error
   page, a key nginx cannot hold): the last good includes stay, one log line says why;
2. replaces the includes atomically (mode 0600), runs the nginx config test, and puts the
   old files back if the test fails;
3. sends nginx's master SIGHUP: new workers verify with the new keys, old ones finish.

So a retired key stops at a verifier within ``interval`` + one fetch + one reload, and a
verifier that cannot reach the app keeps verifying with its last good keys. Secrets never
reach a log line, a URL or a world-readable file.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .exc import KeySetError
from .keys import KeySet, write_private_file

logger = logging.getLogger("signing.keysync")

KEYS_PATH = "/_secure_link/keys"  # where the app serves the key set to its verifiers
FLEET_TOKEN_FILE_NAME = "fleet_token"  # the token's file in a deployment's var folder
TOKEN_HEADER = "Authorization"


@dataclass(frozen=True)
class SyncResult:
    """What one round did: ``changed`` (nginx reloaded), or the ``error`` that kept the old keys."""

    changed: bool
    kids: tuple[str, ...] = ()
    error: str | None = None


class KeySync:
    """Pulls the key set from ``source`` and installs it in one nginx's config folder."""

    def __init__(
        self,
        *,
        source: str,
        token: str,
        output: Path,
        pid_file: Path,
        test_command: str = "nginx -t -q",
        timeout: float = 3.0,
    ) -> None:
        if not token:
            raise ValueError("the fleet token is empty: give its file with --token-file")
        self.source = source.rstrip("/") + KEYS_PATH
        self._token = token
        self.output = Path(output)
        self.pid_file = Path(pid_file)
        self.test_command = test_command
        self.timeout = timeout
        self._last_error: str | None = None

    def __repr__(self) -> str:
        return f"<KeySync {self.source} -> {self.output}>"

    def fetch(self) -> KeySet:
        """The app's key set; KeySetError for anything that is not a usable one."""
        request = urllib.request.Request(self.source, headers={TOKEN_HEADER: f"Bearer {self._token}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            raise KeySetError(f"{self.source} answered {error.code}") from None
        except (OSError, ValueError) as error:
            raise KeySetError(f"cannot reach {self.source}: {getattr(error, 'reason', error)}") from None
        try:
            key_set = KeySet.parse(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise KeySetError(f"{self.source} sent something that is not a keys file") from None
        return key_set.check()

    def sync_once(self) -> SyncResult:
        """One round: fetch, and install and reload only if the includes change."""
        try:
            key_set = self.fetch()
        except KeySetError as error:
            return self._failed(str(error))
        wanted = key_set.nginx_includes()
        current = {name: _read(self.output / name) for name in wanted}
        if current == wanted:
            self._last_error = None
            return SyncResult(False, key_set.kids)
        for name, content in wanted.items():
            write_private_file(self.output / name, content)
        problem = self._test_config()
        if problem:
            for name, previous in current.items():
                if previous is not None:
                    write_private_file(self.output / name, previous)
            return self._failed(f"nginx refused the new keys, the old ones are back: {problem}")
        try:
            os.kill(int(self.pid_file.read_text().strip()), signal.SIGHUP)
        except (OSError, ValueError) as error:
            return self._failed(f"wrote the keys but cannot signal nginx ({self.pid_file}): {error}")
        logger.info("keys %s installed in %s; nginx reloads", ", ".join(key_set.kids), self.output)
        self._last_error = None
        return SyncResult(True, key_set.kids)

    def run(self, *, interval: float, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Sync every ``interval`` seconds until ``should_stop()``."""
        while not should_stop():
            started = time.monotonic()
            self.sync_once()
            time.sleep(max(0.0, interval - (time.monotonic() - started)))

    def _test_config(self) -> str | None:
        result = subprocess.run(shlex.split(self.test_command), capture_output=True, text=True, timeout=30)
        return None if result.returncode == 0 else (result.stderr.strip().splitlines() or ["failed"])[-1]

    def _failed(self, message: str) -> SyncResult:
        if message != self._last_error:  # one line per distinct failure, not one per round
            logger.error("%s; %s keeps its last good keys", message, self.output)
        self._last_error = message
        return SyncResult(False, error=message)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None
