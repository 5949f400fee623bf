"""Start Debian's nginx with the shipped configs in ``nginx/``, unmodified.

A run folder is laid out as a deployment's ``/etc/nginx`` is: the shipped main config
(``nginx/nginx.conf``), and what the package's installer (:func:`signing.nginx.install.install`)
writes for an operator: the ``secure_link/`` folder, the role files, the keys includes and the
Lua path. The one file made per instance is its site, ``sites/origin.conf`` or
``sites/edge.conf``, rendered from the shipped template; workers and the user come from
``nginx -g``.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from signing import KeySet, LinkState
from signing.nginx.counter import DownloadCounter
from signing.buckets import Bucket
from signing.keys import write_private_file
from signing.nginx.install import DEFAULT_FRESHNESS, OriginBucket, install, render_template, shipped_folder

from .ports import child_pids, free_port, stop_process, wait_for_port

REPO_ROOT = Path(__file__).resolve().parent.parent
NGINX_DIR = shipped_folder()
MAIN_CONF = NGINX_DIR / "nginx.conf"
SNIPPETS_DIR = NGINX_DIR / "secure_link"  # the folder the installer copies whole
SECURE_LINK_CONF = NGINX_DIR / "secure_link.conf"
EDGE_CONF = NGINX_DIR / "edge.conf"
LUA_MODULE = "/usr/lib/nginx/modules/ngx_http_lua_module.so"  # Debian's libnginx-mod-http-lua
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/local/sbin"])


def nginx_binary() -> str:
    """Path of the nginx executable, or a RuntimeError that says how to install it."""
    binary = shutil.which("nginx", path=_SEARCH_PATH)
    if binary is None:
        raise RuntimeError("nginx is not installed: run `make nginx` (Debian's package 'nginx')")
    if not Path(LUA_MODULE).exists():
        raise RuntimeError("nginx's lua module is not installed: run `make nginx` (Debian's 'libnginx-mod-http-lua')")
    return binary


@dataclass
class NginxServer:
    """A running nginx; ``stop()`` ends it by its own pid."""

    run_dir: Path
    host: str
    port: int
    process: subprocess.Popen[bytes]
    key_set: KeySet
    state_root: Path
    workers: int = 1
    media_root: Path | None = None  # an origin's files on disk
    bucket: OriginBucket | None = None  # an origin's files in a bucket: its signer's socket, gate, cache

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _log(self, name: str) -> str:
        path = self.run_dir / name
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def access_log(self) -> str:
        """The access log (``access_log=True`` at start), in the shipped ``secure_link`` format."""
        return self._log("access.log")

    @property
    def fetch_log(self) -> str:
        """A bucket origin's signer's log (object key, status, the storage's status, bytes)."""
        return self._log("s3_fetches.log")

    @property
    def error_log(self) -> str:
        return self._log("error.log")

    @property
    def reload_command(self) -> str:
        """The shell command that reloads this nginx, from any folder."""
        return f"{nginx_binary()} -p {self.run_dir} -c nginx.conf -s reload"

    def set_keys(self, key_set: KeySet) -> None:
        """Rewrite the keys includes and reload nginx; returns once new workers serve."""
        key_set.write_nginx_includes(self.run_dir)
        self.key_set = key_set
        self.reload()

    def reload(self) -> None:
        check_config(self.run_dir)
        before = self._worker_pids()
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            workers = self._worker_pids()
            if workers and not workers & before:
                return
            time.sleep(0.05)
        raise TimeoutError(f"nginx did not reload within 10 s:\n{self.error_log}")

    def _worker_pids(self) -> set[int]:
        return set(child_pids(self.process.pid))

    def stop(self) -> None:
        stop_process(self.process)

    def restart(self) -> None:
        """Stop nginx and start it again on the same port and config (shared memory is lost).

        After a ``kill -9`` the signer's unix socket is left behind and nginx cannot bind it again:
        it is removed first, as a service manager's start does (docs/deployment.md)."""
        self.stop()
        if self.bucket is not None:
            self.bucket.signer_socket.unlink(missing_ok=True)
        self.process = _spawn(self.run_dir, self.workers)
        wait_for_port(self.host, self.port, self.process)


def global_directives(workers: int = 1) -> str:
    """What ``-g`` gives the shipped main config: the worker count, and root workers when run as root."""
    user = "user root root; " if os.geteuid() == 0 else ""
    return f"{user}worker_processes {workers};"


def config_test_command(run_dir: Path, workers: int = 1) -> list[str]:
    """``nginx -t`` for the config in ``run_dir`` (what the harness and the sync agents run)."""
    return [nginx_binary(), "-t", "-q", "-p", str(run_dir), "-c", "nginx.conf", "-e", "error.log",
            "-g", global_directives(workers)]


def check_config(run_dir: Path) -> None:
    """Run ``nginx -t`` on the installed config; raise with nginx's own words if it fails."""
    result = subprocess.run(config_test_command(run_dir), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"nginx -t failed:\n{result.stderr}")


@dataclass(frozen=True)
class Role:
    """What differs between an origin and an edge: the site template, its file and its upstream."""

    name: str
    upstream_placeholder: str

    @property
    def template(self) -> Path:
        return NGINX_DIR / "templates" / f"{self.name}-site.conf"


ORIGIN = Role("origin", "APP_SERVERS")
ORIGIN_S3 = Role("origin-s3", "APP_SERVERS")  # an origin whose files are in a bucket
EDGE = Role("edge", "ORIGIN_SERVERS")


def origin_bucket(run_dir: Path, bucket: Bucket, freshness: int = DEFAULT_FRESHNESS) -> OriginBucket:
    """What an origin in ``run_dir`` needs to fetch from ``bucket`` (read with its credentials file):
    its cache, its signer's socket (a short path: a unix socket's is at most 107 bytes), fetch log
    and freshness bound (seconds)."""
    socket = run_dir.resolve() / "s3.sock"
    if len(str(socket)) > 100:
        socket = Path(tempfile.gettempdir()) / f"secure_link_s3_{secrets.token_hex(6)}.sock"
    return OriginBucket(bucket, bucket.credentials(), run_dir.resolve() / "cache", socket,
                        run_dir.resolve() / "s3_fetches.log", freshness=freshness)


def write_config(
    run_dir: Path,
    *,
    role: Role,
    key_set: KeySet,
    listen: Sequence[tuple[str, int]],
    upstream_address: str | Sequence[str],
    site_values: Mapping[str, str | Sequence[str]],
    site_directives: str = "",
    access_log: bool = False,
    download_log: bool = True,
    state_root: Path,
    snippets: Mapping[str, Path] | None = None,
    main_conf: Path = MAIN_CONF,
    site_template: Path | None = None,
    bucket: OriginBucket | None = None,
    counter: DownloadCounter | None = None,
) -> None:
    """Lay out ``run_dir``: the shipped main config, what the installer writes, and the site.

    ``snippets`` replaces a file below the run folder by another, or adds one
    (``{"secure_link/location/check.conf": copy}``; only tests that run a deliberately broken
    copy, and benchmarks that compare variants, use it, with their own ``main_conf`` and
    ``site_template`` where a variant needs one). ``site_values`` fill the role's own
    placeholders; ``state_root`` is the per-link state folder; ``counter`` the app servers an
    origin asks to count limited downloads.
    """
    for temp in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run_dir / "temp" / temp).mkdir(parents=True, exist_ok=True)
    _link(run_dir / "nginx.conf", main_conf)
    install(run_dir, key_set, bucket=bucket, counter=counter, replacing=snippets)
    logs = ["access_log access.log secure_link;",
            "access_log failures.log secure_link_failures if=$secure_link_failure;"] if access_log else []
    if download_log:
        logs.append("access_log downloads.log secure_link_downloads buffer=64k flush=1s if=$secure_link_id;")
    LinkState(state_root).ensure()
    listen_lines = [f"listen {'[' + host + ']' if ':' in host else host}:{port};" for host, port in listen]
    template = site_template or role.template
    site = render_template(template, {
        role.upstream_placeholder: [f"server {address};" for address in _addresses(upstream_address)], "LISTEN": listen_lines, "ACCESS_LOGS": logs or ["access_log off;"],
        "STATE_ROOT": str(state_root.resolve()), "EXTRA": site_directives.splitlines(), **site_values,
    })
    (run_dir / "sites").mkdir(exist_ok=True)
    # 0600: a benchmark's site directives may hold a secret (its copies of the check).
    write_private_file(run_dir / "sites" / f"{role.name}.conf",
                       f"# Rendered by harness/nginx.py from {template}.\n{site}")


def _addresses(upstream: str | Sequence[str]) -> list[str]:
    return [upstream] if isinstance(upstream, str) else list(upstream)


def _link(link: Path, target: Path) -> None:
    link.unlink(missing_ok=True)
    link.symlink_to(target)


def start_nginx(
    run_dir: Path,
    *,
    media_root: Path,
    key_set: KeySet,
    app_address: str | Sequence[str] = "127.0.0.1:9",
    host: str = "127.0.0.1",
    port: int | None = None,
    also_listen: Sequence[str] = (),
    extra_site_directives: str = "",
    edges: Sequence[str] = (),
    workers: int = 1,
    access_log: bool = False,
    download_log: bool = True,
    state_root: Path | None = None,
    snippets: Mapping[str, Path] | None = None,
    main_conf: Path = MAIN_CONF,
    site_template: Path | None = None,
    bucket: Bucket | None = None,
    bucket_freshness: int = DEFAULT_FRESHNESS,
    counter: DownloadCounter | None = None,
) -> NginxServer:
    """Start an origin (``nginx/secure_link.conf``) and wait until it accepts; with ``bucket``,
    an origin whose files are in that bucket (``nginx/secure_link_s3.conf``), its cached copies
    fresh for ``bucket_freshness`` seconds.

    ``also_listen`` adds hosts (such as ``::1``) on the same port; ``edges`` are the
    addresses of edges it trusts. ``state_root`` is the per-link state folder its sync agent
    keeps (default ``run_dir/state``); ``counter`` the app servers that count limited downloads
    (none: such links get 503). ``snippets``, ``main_conf`` and ``site_template`` are
    the shipped files unless a test deliberately runs a broken copy or a benchmark a variant.
    """
    site: dict[str, str | list[str]] = {"EDGES": [f"set_real_ip_from {edge};" for edge in edges]}
    if bucket is None:
        site["MEDIA_ROOT"] = str(Path(media_root).resolve())
    return _start(
        run_dir, role=ORIGIN if bucket is None else ORIGIN_S3, key_set=key_set, upstream_address=app_address,
        host=host, port=port, also_listen=also_listen, site_values=site, site_directives=extra_site_directives,
        workers=workers, access_log=access_log, download_log=download_log, state_root=state_root, snippets=snippets,
        main_conf=main_conf, site_template=site_template, media_root=Path(media_root) if bucket is None else None,
        bucket=origin_bucket(run_dir, bucket, bucket_freshness) if bucket is not None else None, counter=counter,
    )


def start_edge(
    run_dir: Path,
    *,
    origin_address: str | Sequence[str],
    key_set: KeySet,
    bind_address: str,
    host: str = "127.0.0.1",
    port: int | None = None,
    freshness: str | None = None,
    extra_site_directives: str = "",
    workers: int = 1,
    access_log: bool = False,
    download_log: bool = True,
    snippets: Mapping[str, Path] | None = None,
) -> NginxServer:
    """Start an edge (``nginx/edge.conf``) in front of ``origin_address``; wait until it accepts.

    The edge connects to the origin from ``bind_address`` (the address the origin must
    trust); ``freshness`` (an nginx time such as ``"2s"``) overrides the shipped 60 s.
    ``snippets`` are the shipped files unless a benchmark runs a variant for comparison.
    """
    site = f"proxy_bind {bind_address};\n"
    if freshness:
        site += f"proxy_cache_valid 200 206 {freshness};\n"
    site += extra_site_directives
    return _start(
        run_dir, role=EDGE, key_set=key_set, upstream_address=origin_address, host=host, port=port,
        also_listen=(), site_values={"CACHE_DIR": str((run_dir / "cache").resolve())}, site_directives=site,
        workers=workers, access_log=access_log, download_log=download_log, state_root=None, snippets=snippets,
    )


@contextmanager
def running_origin_and_edge(base: Path, *, media_root: Path, key_set: KeySet, edge_address: str,
                            access_log: bool = True) -> Iterator[tuple[NginxServer, NginxServer]]:
    """An origin nginx and one edge in front of it (at ``edge_address``), both stopped by pid on exit."""
    origin = start_nginx(base / "origin", media_root=media_root, key_set=key_set, edges=(edge_address,),
                         access_log=access_log)
    try:
        edge = start_edge(base / "edge", origin_address=f"127.0.0.1:{origin.port}", key_set=key_set,
                          bind_address=edge_address, access_log=access_log)
        try:
            yield origin, edge
        finally:
            edge.stop()
    finally:
        origin.stop()


def _start(
    run_dir: Path,
    *,
    role: Role,
    key_set: KeySet,
    upstream_address: str | Sequence[str],
    host: str,
    port: int | None,
    also_listen: Sequence[str],
    site_values: Mapping[str, str | Sequence[str]],
    site_directives: str,
    workers: int,
    access_log: bool,
    download_log: bool,
    state_root: Path | None,
    snippets: Mapping[str, Path] | None,
    main_conf: Path = MAIN_CONF,
    site_template: Path | None = None,
    media_root: Path | None = None,
    bucket: OriginBucket | None = None,
    counter: DownloadCounter | None = None,
) -> NginxServer:
    run_dir.mkdir(parents=True, exist_ok=True)
    state_root = (state_root or run_dir / "state").resolve()
    attempts_left = 1 if port is not None else 5  # a free port can be taken before nginx binds it
    while True:
        attempts_left -= 1
        chosen_port = port or free_port(host)
        write_config(
            run_dir, role=role, key_set=key_set, listen=[(address, chosen_port) for address in (host, *also_listen)],
            upstream_address=upstream_address, site_values=site_values, site_directives=site_directives,
            access_log=access_log, download_log=download_log, state_root=state_root, snippets=snippets,
            main_conf=main_conf, site_template=site_template, bucket=bucket, counter=counter,
        )
        check_config(run_dir)
        process = _spawn(run_dir, workers)
        server = NginxServer(run_dir, host, chosen_port, process, key_set, state_root, workers,
                             media_root.resolve() if media_root else None, bucket)
        try:
            wait_for_port(host, chosen_port, process)
            return server
        except (RuntimeError, TimeoutError):
            server.stop()
            if attempts_left == 0 or "Address already in use" not in server.error_log:
                raise RuntimeError(f"nginx did not start:\n{server.error_log}") from None


def _spawn(run_dir: Path, workers: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [nginx_binary(), "-p", str(run_dir), "-c", "nginx.conf", "-e", "error.log",
         "-g", f"daemon off; {global_directives(workers)}"],
        stdin=subprocess.DEVNULL, start_new_session=True,  # a terminal's Ctrl-C reaches the harness, which stops it
    )


def start_key_sync(server: NginxServer, *, source: str, token_file: Path, interval: float = 1.0) -> subprocess.Popen[bytes]:
    """Start ``python -m signing sync-keys`` for ``server``: it pulls the keys from ``source`` every ``interval`` s,
    and the revoked link ids into the server's state folder (every verifier's agent does: the app
    writes nothing into nginx's folders).
    Its log is ``sync-keys.log`` in the server's run folder; stop it by its own pid.
    """
    test_command = shlex.join(config_test_command(server.run_dir, server.workers))
    log = open(server.run_dir / "sync-keys.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "signing", "sync-keys", "--from", source, "--token-file", str(token_file),
         "--output", str(server.run_dir), "--pid-file", str(server.run_dir / "nginx.pid"),
         "--test-command", test_command, "--interval", str(interval),
         "--state-dir", str(server.state_root)],
        cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
    )
