"""Keep one verifier's nginx keys includes in step with the app's key set, by pulling.

Every verifier (the origin's nginx and each edge) runs one agent,
``python -m signing sync-keys``, beside its nginx. Every ``interval`` seconds it asks the
app for the key set (``GET /_secure_link/keys`` with the fleet token in a header, never in
the URL), and when the includes that key set renders differ from what nginx runs it

1. refuses anything that does not parse as a usable key set (a truncated answer, an error
   page, a key nginx cannot hold): the last good includes stay, one log line says why;
2. replaces the includes atomically (mode 0600), runs the nginx config test, and puts the
   old files back if the test fails;
3. sends nginx's master SIGHUP: new workers verify with the new keys, old ones finish.

What nginx runs is what the agent last had it load, never the files on disk: another writer
(``rotate_key --nginx-keys``, a hand edit) can put the wanted includes there without a reload,
so the agent reloads once when it starts and again whenever the wanted includes differ from
those it last loaded. So a retired key stops at a verifier within ``interval`` + one fetch +
one reload, whoever wrote the files, and a verifier that cannot reach the app keeps
verifying with its last good keys. Secrets never
reach a log line, a URL or a world-readable file.

With a state folder (``--state-dir``, the verifier's ``$secure_link_state_root``) the agent
also pulls the revoked link ids (``GET /_secure_link/revocations``) and keeps one file per
id below it (:class:`~signing.nginx.LinkState`): nginx checks them with one ``stat``
and needs no reload, so a revoked link stops at the verifier within ``interval`` + one fetch.
"""

from __future__ import annotations

import ipaddress
import json
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
from urllib.parse import urlsplit

from ..exc import KeySetError
from ..keys import KeySet, write_private_file
from ..nginx.link_state import LinkState
from ..nginx.signed_string import LINK_ID_PATTERN
from .protocol import KEYS_PATH, REVOCATIONS_PATH, TOKEN_HEADER

logger = logging.getLogger("signing.fleet")

DEFAULT_TEST_COMMAND = "nginx -t -q"


@dataclass(frozen=True)
class SyncResult:
    """What one round did: ``changed`` (nginx reloaded), or the ``error`` that kept the old keys."""

    changed: bool
    kids: tuple[str, ...] = ()
    error: str | None = None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the fleet token to another address: refuse it (urllib's default follows)."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class KeySync:
    """Pulls the key set from ``source`` and installs it in one nginx's config folder.

    ``source`` must be https, or http to a loopback address (the demo): the answer holds
    every secret. What this nginx runs is what this agent last had it load (unknown at
    start, so the first round reloads), so a reload that failed is retried.
    """

    def __init__(
        self,
        *,
        source: str,
        token: str,
        output: Path,
        pid_file: Path,
        test_command: str = DEFAULT_TEST_COMMAND,
        timeout: float = 3.0,
        state: LinkState | None = None,
    ) -> None:
        if not token:
            raise ValueError("the fleet token is empty: give its file with --token-file")
        if not _private_channel(source):
            raise ValueError(f"{source} is not https (nor http to a loopback address): the keys would travel in clear")
        self.source = source.rstrip("/") + KEYS_PATH
        self.revocations_source = source.rstrip("/") + REVOCATIONS_PATH
        self.state = state
        self._token = token
        self.output = Path(output)
        self.pid_file = Path(pid_file)
        self.test_command = test_command
        self.timeout = timeout
        self._last_error: str | None = None
        self.revocation_error: str | None = None
        self._running: dict[str, str | None] | None = None  # the includes nginx last loaded; None: unknown

    def __repr__(self) -> str:
        return f"<KeySync {self.source} -> {self.output}>"

    def _get(self, url: str, limit: int) -> bytes:
        request = urllib.request.Request(url, headers={TOKEN_HEADER: f"Bearer {self._token}"})
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                body: bytes = response.read(limit)
                return body
        except urllib.error.HTTPError as error:
            raise KeySetError(f"{url} answered {error.code}") from None
        except (OSError, ValueError) as error:
            raise KeySetError(f"cannot reach {url}: {getattr(error, 'reason', error)}") from None

    def fetch(self) -> KeySet:
        """The app's key set; KeySetError for anything that is not a usable one."""
        body = self._get(self.source, 1 << 20)
        try:
            key_set = KeySet.parse(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise KeySetError(f"{self.source} sent something that is not a keys file") from None
        return key_set.check()

    def fetch_revocations(self) -> dict[str, int]:
        """The revoked link ids with their expiry; KeySetError for an answer that is not such a list."""
        body = self._get(self.revocations_source, 64 << 20)
        try:
            revoked = json.loads(body)["revoked"]
            wanted = {str(link_id): int(expires) for link_id, expires in revoked.items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise KeySetError(f"{self.revocations_source} sent something that is not a revocation list") from None
        if not all(LINK_ID_PATTERN.fullmatch(link_id) for link_id in wanted):
            raise KeySetError(f"{self.revocations_source} sent a link id that is not one")
        return wanted

    def sync_revocations(self) -> str | None:
        """Make the state folder's revocations the app's; the error that kept the old ones, or None."""
        if self.state is None:
            return None
        try:
            added, removed = self.state.replace_revocations(self.fetch_revocations())
        except (KeySetError, OSError) as error:
            message = f"revocations not updated: {error}"
            if message != self.revocation_error:
                logger.error("%s; %s keeps the last list", message, self.state.root)
            self.revocation_error = message
            return message
        self.revocation_error = None
        if added or removed:
            logger.info("revocations: %d added, %d removed in %s", added, removed, self.state.root)
        return None

    def sync_once(self) -> SyncResult:
        """One round: the revocations, then the keys (installed, tested and reloaded only if they change)."""
        self.sync_revocations()
        try:
            key_set = self.fetch()
        except KeySetError as error:
            return self._failed(str(error))
        wanted: dict[str, str | None] = dict(key_set.nginx_includes())
        on_disk = {name: _read(self.output / name) for name in wanted}
        if self._running == wanted and on_disk == wanted:
            self._last_error = None
            return SyncResult(False, key_set.kids)
        if on_disk != wanted:
            for name, content in wanted.items():
                write_private_file(self.output / name, content or "")
        problem = self._test_config()
        if problem:
            _restore(self.output, on_disk)
            return self._failed(f"nginx refused the new keys, the old ones are back: {problem}")
        try:
            os.kill(int(self.pid_file.read_text().strip()), signal.SIGHUP)
        except (OSError, ValueError) as error:  # not reloaded: self._running stays, the next round tries again
            return self._failed(f"wrote the keys but cannot signal nginx ({self.pid_file}): {error}")
        self._running = wanted
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
        """Why nginx refuses its config now, or None when it accepts it."""
        try:
            result = subprocess.run(shlex.split(self.test_command), capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as error:
            return f"cannot run {self.test_command!r}: {error}"
        return None if result.returncode == 0 else (result.stderr.strip().splitlines() or ["failed"])[-1]

    def _failed(self, message: str) -> SyncResult:
        if message != self._last_error:  # one line per distinct failure, not one per round
            logger.error("%s; %s keeps its last good keys", message, self.output)
        self._last_error = message
        return SyncResult(False, error=message)


def _restore(folder: Path, contents: dict[str, str | None]) -> None:
    """Put back the files as they were; remove those that did not exist."""
    for name, content in contents.items():
        if content is None:
            (folder / name).unlink(missing_ok=True)
        else:
            write_private_file(folder / name, content)


def _private_channel(source: str) -> bool:
    parts = urlsplit(source)
    if parts.scheme == "https":
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    try:
        return parts.hostname == "localhost" or ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None
