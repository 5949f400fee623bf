"""A throwaway PostgreSQL cluster on loopback, for the tests (``pytest --database=postgresql``).

Debian's server binaries (``initdb``, ``postgres``) run from a temporary folder, as an
unprivileged user when we are root (PostgreSQL refuses to run as root), listening on
127.0.0.1 at a free port with a random password. ``stop()`` ends the server by its pid
and removes the folder. Durability is traded for speed (``fsync=off``): nothing here
outlives the run.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .ports import free_port, stop_process, wait_for_port

SUPERUSER = "app"


def postgres_bin_dir() -> Path:
    """The folder with Debian's ``initdb`` and ``postgres``, newest version first."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(path.split("/")[4]))
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed: run `make test` (it installs Debian's 'postgresql')")
    return Path(candidates[-1]).parent


def unprivileged_user() -> pwd.struct_passwd | None:
    """The account to run the server as when we are root: ``postgres``, else ``nobody``; None when not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and no 'postgres' or 'nobody' account to run PostgreSQL as")


@dataclass
class PostgresCluster:
    base_dir: Path
    port: int
    password: str
    process: subprocess.Popen[bytes]

    def url(self, database: str) -> str:
        return f"postgres://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its ``DATABASE_URL``."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: ends open sessions), then remove the cluster's folder."""
        self.stop_server()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def stop_server(self) -> None:
        """Fast shutdown, keeping the data: ``start_server()`` brings the same cluster back."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        stop_process(self.process, timeout=20)

    def start_server(self) -> None:
        """Start the server again on its port, after ``stop_server()``; return once it accepts sessions."""
        self.process = _spawn(self.base_dir, self.port)
        wait_for_port("127.0.0.1", self.port, self.process, timeout=30)
        _wait_until_ready(self)


@contextmanager
def running_postgres() -> Iterator[PostgresCluster]:
    """``start_postgres()``, stopped by its pid (and its folder removed) on exit."""
    cluster = start_postgres()
    try:
        yield cluster
    finally:
        cluster.stop()


def start_postgres() -> PostgresCluster:
    """initdb into a new temporary folder and start the server; return once it accepts."""
    bin_dir = postgres_bin_dir()
    user = unprivileged_user()
    base_dir = Path(tempfile.mkdtemp(prefix="pg-cluster-"))
    password = secrets.token_urlsafe(16)
    password_file = base_dir / "password"
    password_file.write_text(password)
    if user is not None:
        for path in (base_dir, password_file):
            os.chown(path, user.pw_uid, user.pw_gid)
    try:
        subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(base_dir / "data"), "-U", SUPERUSER, f"--pwfile={password_file}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"],
            check=True, capture_output=True, env=_ENVIRONMENT, cwd=base_dir, **_as_user(),
        )
    except subprocess.CalledProcessError as error:
        shutil.rmtree(base_dir, ignore_errors=True)
        raise RuntimeError(f"initdb failed:\n{error.stderr.decode(errors='replace')}") from None
    for attempt in range(5):  # a free port can be taken before the server binds it
        port = free_port()
        process = _spawn(base_dir, port)
        cluster = PostgresCluster(base_dir, port, password, process)
        try:
            wait_for_port("127.0.0.1", port, process, timeout=30)
            _wait_until_ready(cluster)
            return cluster
        except (RuntimeError, TimeoutError):
            stop_process(process)
            text = (base_dir / "postgres.log").read_text(errors="replace")
            if "could not bind" not in text or attempt == 4:
                shutil.rmtree(base_dir, ignore_errors=True)
                raise RuntimeError(f"PostgreSQL did not start:\n{text[-3000:]}") from None
    raise AssertionError("unreachable")


_ENVIRONMENT = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}


def _as_user() -> dict[str, Any]:
    """subprocess's arguments that run initdb and the server as the unprivileged user (when we are root)."""
    user = unprivileged_user()
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}


def _spawn(base_dir: Path, port: int) -> subprocess.Popen[bytes]:
    with open(base_dir / "postgres.log", "ab") as log:  # the server keeps its own copy of the descriptor
        return subprocess.Popen(
            [str(postgres_bin_dir() / "postgres"), "-D", str(base_dir / "data"), "-p", str(port), "-k", str(base_dir),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=_ENVIRONMENT, cwd=base_dir,
            start_new_session=True, **_as_user(),
        )


def _wait_until_ready(cluster: PostgresCluster, timeout: float = 30.0) -> None:
    """The port opens before recovery ends: wait until a session can be opened."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(cluster.url("postgres"), connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline or cluster.process.poll() is not None:
                raise TimeoutError("PostgreSQL accepted connections but no session") from None
            time.sleep(0.1)
