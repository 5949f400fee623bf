"""signing.fleet.agent: one round of a verifier's agent against a local app stand-in (no nginx)."""

from __future__ import annotations

import http.server
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signing import HMAC_SHA256, Key, KeySet
from signing.fleet.agent import KeySync
from signing.fleet.protocol import KEYS_PATH

TOKEN = "fleet-token-for-the-test"
OLD = KeySet((Key("k1", "1" * 43),))
NEW = KeySet((Key("k1", "1" * 43), Key("h2", "2" * 43, HMAC_SHA256)))


class App(http.server.BaseHTTPRequestHandler):
    body = b""
    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def app() -> Iterator[str]:
    App.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def nginx_master(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A stand-in for nginx's master: counts the SIGHUPs it gets in a file."""
    hups = tmp_path / "hups"
    code = ("import signal, sys, time\n"
            f"signal.signal(signal.SIGHUP, lambda *a: open({str(hups)!r}, 'a').write('hup\\n'))\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    pid_file = tmp_path / "nginx.pid"
    pid_file.write_text(f"{process.pid}\n")
    yield pid_file, hups
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)


def sync(app: str, folder: Path, pid_file: Path, test_command: str = "true") -> KeySync:
    return KeySync(source=app, token=TOKEN, output=folder, pid_file=pid_file, test_command=test_command, timeout=2)


def hup_count(hups: Path, at_least: int = 1) -> int:
    """The SIGHUPs the stand-in wrote down, once there are ``at_least`` or 2 s passed (its handler
    creates the file before it writes the line: an empty file is not yet a count)."""
    deadline = time.monotonic() + 2
    while True:
        count = len(hups.read_text().splitlines()) if hups.exists() else 0
        if count >= at_least or time.monotonic() >= deadline:
            return count
        time.sleep(0.02)


def test_a_change_is_installed_and_nginx_reloaded_once(app, nginx_master, tmp_path):
    pid_file, hups = nginx_master
    App.body = NEW.render().encode()
    agent = sync(app, tmp_path, pid_file)
    assert agent.sync_once().changed and hup_count(hups) == 1
    assert (tmp_path / "secure_link_hmac_keys.conf").read_text() == NEW.nginx_includes()["secure_link_hmac_keys.conf"]
    assert (tmp_path / "secure_link_keys.conf").stat().st_mode & 0o777 == 0o600
    assert agent.sync_once().changed is False and hup_count(hups) == 1  # nothing new: no reload
    assert App.seen[0] == (KEYS_PATH, f"Bearer {TOKEN}") and TOKEN not in App.seen[0][0]


@pytest.mark.parametrize("body", [b"", b"k1=short", b"<html>502</html>", b"\xff\x00", NEW.render().encode()[:30]])
def test_what_is_not_a_usable_key_set_changes_nothing(app, nginx_master, tmp_path, body):
    pid_file, hups = nginx_master
    OLD.write_nginx_includes(tmp_path)
    before = {path.name: path.read_text() for path in tmp_path.glob("secure_link_*")}
    App.body = body
    result = sync(app, tmp_path, pid_file).sync_once()
    assert not result.changed and result.error
    assert {path.name: path.read_text() for path in tmp_path.glob("secure_link_*")} == before
    assert not hups.exists()


def test_includes_that_nginx_refuses_are_rolled_back(app, nginx_master, tmp_path, caplog):
    pid_file, hups = nginx_master
    OLD.write_nginx_includes(tmp_path)
    before = {path.name: path.read_text() for path in tmp_path.glob("secure_link_*")}
    App.body = NEW.render().encode()
    result = sync(app, tmp_path, pid_file, test_command="false").sync_once()
    assert result.error and "the old ones are back" in result.error
    assert {path.name: path.read_text() for path in tmp_path.glob("secure_link_*")} == before
    assert not hups.exists() and "2" * 43 not in caplog.text


def test_an_unreachable_app_keeps_the_keys_and_says_so_once(nginx_master, tmp_path, caplog):
    pid_file, _ = nginx_master
    agent = sync("http://127.0.0.1:9", tmp_path, pid_file)
    assert "cannot reach" in (agent.sync_once().error or "")
    agent.sync_once()
    assert caplog.text.count("cannot reach") == 1  # one line per new failure, not one per round


class Redirecting(App):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(302)
        self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/elsewhere")
        self.end_headers()


def test_a_redirect_is_refused_and_the_token_goes_nowhere_else(nginx_master, tmp_path):
    Redirecting.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = sync(f"http://127.0.0.1:{server.server_port}", tmp_path, nginx_master[0]).sync_once()
    finally:
        server.shutdown()
    assert result.error and "answered 302" in result.error
    assert [path for path, _ in Redirecting.seen] == [KEYS_PATH]


@pytest.mark.parametrize("source", ["http://origin.example", "ftp://127.0.0.1", "http://10.0.0.1"])
def test_the_keys_travel_only_over_tls_or_loopback(source, tmp_path):
    with pytest.raises(ValueError, match="would travel in clear"):
        KeySync(source=source, token=TOKEN, output=tmp_path, pid_file=tmp_path / "pid")
    KeySync(source="https://origin.example", token=TOKEN, output=tmp_path, pid_file=tmp_path / "pid")


def test_a_reload_that_could_not_be_signalled_is_retried(app, nginx_master, tmp_path):
    pid_file, hups = nginx_master
    App.body = NEW.render().encode()
    agent = sync(app, tmp_path, tmp_path / "no-such.pid")
    assert "cannot signal nginx" in (agent.sync_once().error or "")
    agent.pid_file = pid_file  # the files on disk are new now, but nginx never loaded them
    assert agent.sync_once().changed and hup_count(hups) == 1


def test_the_first_round_reloads_nginx_even_when_the_files_on_disk_are_already_the_wanted_ones(app, nginx_master,
                                                                                                 tmp_path):
    pid_file, hups = nginx_master
    NEW.write_nginx_includes(tmp_path)  # written by someone else; whether nginx loaded them is unknown
    App.body = NEW.render().encode()
    agent = sync(app, tmp_path, pid_file)
    assert agent.sync_once().changed and hup_count(hups) == 1
    assert agent.sync_once().changed is False and hup_count(hups) == 1


def test_includes_another_writer_put_on_disk_are_reloaded_all_the_same(app, nginx_master, tmp_path):
    pid_file, hups = nginx_master
    App.body = OLD.render().encode()
    agent = sync(app, tmp_path, pid_file)
    assert agent.sync_once().changed and hup_count(hups) == 1
    NEW.write_nginx_includes(tmp_path)  # as `rotate_key add --nginx-keys` does, before the agent's next round
    App.body = NEW.render().encode()
    assert agent.sync_once().changed and hup_count(hups, at_least=2) == 2  # nginx never loaded what is on disk
