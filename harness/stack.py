"""The whole product on loopback: Django under gunicorn, with nginx in front of it.

``prepare()`` makes a var folder usable (keys, Django secret, database, static files);
``start_stack()`` starts gunicorn and nginx and returns a handle that stops both by pid.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signing import Key, KeySet, SecureLinkSigner, generate_secret
from signing.buckets import Bucket
from signing.nginx.install import DEFAULT_FRESHNESS
from signing.fleet.protocol import FLEET_TOKEN_FILE_NAME
from signing.nginx.counter import DownloadCounter
from signing.keys import KEYS_FILE_NAME, write_private_file

from .nginx import REPO_ROOT, NginxServer, start_nginx
from .ports import free_port, stop_process, wait_for_port
from .seaweedfs import SeaweedFS


def ensure_private_file(path: Path, make_content: Any) -> None:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private_file(path, make_content())


def django_environment(var_dir: Path, *, database_url: str | None = None, bucket: Bucket | None = None,
                       **overrides: str) -> dict[str, str]:
    """Environment for manage.py and gunicorn: settings from ``var_dir``, nothing inherited that clashes.

    The database is ``database_url`` when given, else SQLite in ``var_dir``; the files are in
    ``bucket`` when given (the app's credentials file in its URL), else under ``var_dir/media``.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_LINK_", "DJANGO_", "MEDIA_"))}
    for name in ("DATABASE_URL", "STORAGE_URL", "STORAGE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name, None)
    if database_url:
        env["DATABASE_URL"] = database_url
    if bucket is not None:
        env["STORAGE_URL"] = str(bucket)
    env.update(
        DJANGO_SETTINGS_MODULE="app.settings",
        APP_VAR_DIR=str(var_dir),
        SECURE_LINK_KEYS_FILE=str(var_dir / KEYS_FILE_NAME),
        DJANGO_SECRET_KEY_FILE=str(var_dir / "django_secret_key"),
        SECURE_LINK_FLEET_TOKEN_FILE=str(var_dir / FLEET_TOKEN_FILE_NAME),
        # The demo and the tests serve plain HTTP on loopback: a Secure cookie would not be set.
        SECURE_LINK_COOKIE_SECURE="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    """Run ``manage.py`` and return its output; raise with its stderr if it fails."""
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr or result.stdout}")
    return result.stdout


def prepare(var_dir: Path, *, database_url: str | None = None, bucket: Bucket | None = None,
            static: bool = True) -> dict[str, str]:
    """Create keys and a Django secret if missing, migrate and (``static``) collect static files."""
    var_dir.mkdir(parents=True, exist_ok=True)
    ensure_private_file(var_dir / KEYS_FILE_NAME, lambda: KeySet((Key("k1", generate_secret()),)).render())
    ensure_private_file(var_dir / "django_secret_key", generate_secret)
    ensure_private_file(var_dir / FLEET_TOKEN_FILE_NAME, generate_secret)  # the verifiers' sync agents pull keys with it
    env = django_environment(var_dir, database_url=database_url, bucket=bucket)
    manage(env, "migrate", "--noinput")
    if static:
        manage(env, "collectstatic", "--noinput")
    return env


def seed(env: dict[str, str], *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(manage(env, "seed_demo", "--json", *args))
    return result


@dataclass
class Stack:
    var_dir: Path
    env: dict[str, str]
    nginx: NginxServer
    gunicorn: subprocess.Popen[bytes]
    app_port: int

    @property
    def base_url(self) -> str:
        return self.nginx.base_url

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    @property
    def media_root(self) -> Path:
        return self.var_dir / "media"

    @property
    def keys_file(self) -> Path:
        return self.var_dir / KEYS_FILE_NAME

    def key_set(self) -> KeySet:
        """The keys file as it is now: the app's keys and its active key."""
        return KeySet.from_file(self.keys_file)

    def signer(self, **options: Any) -> SecureLinkSigner:
        """A signer of the app's keys, signing with its active key, as the app does (``options``: clock...)."""
        return SecureLinkSigner(self.key_set(), **options)

    def stop(self) -> None:
        self.nginx.stop()
        stop_process(self.gunicorn)


def start_gunicorn(env: dict[str, str], port: int, *, workers: int = 2, log: Path | None = None) -> subprocess.Popen[bytes]:
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "app.wsgi:application", "--preload", "--workers", str(workers),
         "--bind", f"127.0.0.1:{port}", "--access-logfile", "-" if log else "/dev/null",
         # The path without the query: a share token (?token=) never reaches the log.
         "--access-logformat", '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(L)ss'],
        cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
        start_new_session=True,  # a terminal's Ctrl-C reaches the harness, which stops it in order
    )
    try:
        wait_for_port("127.0.0.1", port, process, timeout=30)
    except (RuntimeError, TimeoutError):
        stop_process(process)
        detail = log.read_text(errors="replace")[-3000:] if log else ""
        raise RuntimeError(f"gunicorn did not start:\n{detail}") from None
    return process


def app_counter(var_dir: Path, app_ports: list[int]) -> DownloadCounter:
    """The app servers on ``app_ports`` as an origin's download counter, with ``var_dir``'s fleet token."""
    token = (var_dir / FLEET_TOKEN_FILE_NAME).read_text(encoding="utf-8").strip()
    return DownloadCounter.of([f"http://127.0.0.1:{port}" for port in app_ports], token)


def start_stack(var_dir: Path, *, port: int | None = None, host: str = "127.0.0.1", workers: int = 2,
                nginx_workers: int = 1, extra_site_directives: str = "", env: dict[str, str] | None = None,
                edges: tuple[str, ...] = (), access_log: bool = False, reserved_ports: tuple[int, ...] = (),
                bucket: Bucket | None = None, bucket_freshness: int = DEFAULT_FRESHNESS) -> Stack:
    """Start gunicorn, then nginx in front of it; ``prepare(var_dir)`` must have run.

    ``edges`` are the addresses of edges the origin nginx trusts (see ``harness.nginx.start_edge``);
    gunicorn never takes ``port`` or ``reserved_ports`` (ports the caller will bind next). With
    ``bucket`` (the origin's identity in its URL) the origin fetches its files from it, its copies
    fresh for ``bucket_freshness`` seconds.
    """
    env = env or django_environment(var_dir)
    app_port = free_port(avoid=(*((port,) if port else ()), *reserved_ports))
    gunicorn = start_gunicorn(env, app_port, workers=workers, log=var_dir / "gunicorn.log")
    try:
        nginx = start_nginx(
            var_dir / "nginx", media_root=var_dir / "media", key_set=KeySet.from_file(var_dir / KEYS_FILE_NAME),
            app_address=f"127.0.0.1:{app_port}", host=host, port=port, workers=nginx_workers,
            extra_site_directives=extra_site_directives, edges=edges, access_log=access_log,
            bucket=bucket, bucket_freshness=bucket_freshness, counter=app_counter(var_dir, [app_port]),
        )
    except BaseException:
        stop_process(gunicorn)
        raise
    return Stack(var_dir, env, nginx, gunicorn, app_port)


@contextmanager
def running_stack(var_dir: Path, *, database_url: str | None = None, environment: dict[str, str] | None = None,
                  storage: SeaweedFS | None = None, **options: Any) -> Iterator[Stack]:
    """Prepare ``var_dir``, start the stack (``start_stack`` options), and stop it by pid on exit.

    With ``storage``, the files are in its bucket: the app writes with its ``app`` identity and
    the origin reads with its ``origin`` one.
    """
    app_bucket = storage.bucket("app") if storage is not None else None
    prepare(var_dir, database_url=database_url, bucket=app_bucket)
    env = django_environment(var_dir, database_url=database_url, bucket=app_bucket, **(environment or {}))
    stack = start_stack(var_dir, env=env, bucket=storage.bucket("origin") if storage is not None else None, **options)
    try:
        yield stack
    finally:
        stack.stop()
