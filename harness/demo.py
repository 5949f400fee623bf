"""``make run``: nginx in front of gunicorn and Django on 127.0.0.1:${PORT:-8080}, an edge on PORT+1.

Prepares var/ (keys, database, a demo user with an API token and sample images, a staff
login), starts the servers, records their addresses and pids in var/demo.json for the
management commands, prints commands to try, restarts gunicorn if it dies, and stops
everything on Ctrl-C. With ``STORAGE=s3`` the files live in a bucket of a SeaweedFS it starts
(var/seaweedfs/): the app writes them there, the origin nginx fetches them from there. With
``ORIGINS=N`` (and ``STORAGE=s3``) N origins and N app servers share nothing but the bucket,
the database and HTTP, on PORT, then PORT+2, PORT+3...; the edge balances across them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from app.demo_record import DEMO_RECORD
from signing import generate_secret
from signing.keys import write_private_file

from .fleet import Cluster, cluster_download_logs, download_logs_setting, start_cluster, start_fleet
from .nginx import REPO_ROOT, NginxServer
from .ports import stop_like_ctrl_c_on_sigterm
from .seaweedfs import SeaweedFS, start_seaweedfs
from .stack import Stack, manage, prepare, seed, start_gunicorn, start_stack


EDGE_ADDRESS = "127.0.0.2"  # the demo's edge connects to the origin from here; the origin trusts it


def api_post(base_url: str, path: str, token: str, body: dict[str, object]) -> dict[str, str]:
    request = urllib.request.Request(
        base_url + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, str] = json.load(response)
        return result


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main() -> int:
    # Ctrl-C stops the demo even when it was started with SIGINT ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    port = int(os.environ.get("PORT", "8080"))
    edge_port = int(os.environ.get("EDGE_PORT", port + 1))
    if edge_port == port:
        print(f"error: PORT and EDGE_PORT are both {port}; give the edge another port", file=sys.stderr)
        return 1
    for role, wanted in (("nginx", port), ("the edge", edge_port)):
        if not port_is_free(wanted):
            print(f"error: 127.0.0.1:{wanted} ({role}'s port) is in use; pick other ports: PORT={port + 2} make run "
                  "(the edge takes PORT+1, or set EDGE_PORT)", file=sys.stderr)
            return 1
    var_dir = Path(os.environ.get("APP_VAR_DIR", REPO_ROOT / "var"))
    database_url = os.environ.get("DATABASE_URL") or None
    storage_kind = os.environ.get("STORAGE", "disk").strip().lower()
    if storage_kind not in ("disk", "s3"):
        print(f"error: STORAGE={storage_kind!r}: use STORAGE=s3 (files in a bucket) or leave it unset (disk)",
              file=sys.stderr)
        return 1
    try:
        origins = int(os.environ.get("ORIGINS", "1"))
    except ValueError:
        origins = 0
    if not 1 <= origins <= 8:
        print(f"error: ORIGINS={os.environ['ORIGINS']!r}: give a number of origins from 1 to 8", file=sys.stderr)
        return 1
    if origins > 1 and storage_kind != "s3":
        print(f"error: ORIGINS={origins} needs STORAGE=s3: the origins share nothing but the bucket, the database "
              "and HTTP (ORIGINS=2 STORAGE=s3 make run)", file=sys.stderr)
        return 1
    origin_ports = [port, *(edge_port + index for index in range(1, origins))]
    for index, wanted in enumerate(origin_ports[1:], 2):
        if not port_is_free(wanted):
            print(f"error: 127.0.0.1:{wanted} (origin {index}'s port) is in use; pick other ports: "
                  f"PORT={port + 10} ORIGINS={origins} make run", file=sys.stderr)
            return 1
    storage = start_storage(var_dir) if storage_kind == "s3" else None
    try:
        if storage is not None and origins > 1:
            return run_cluster_demo(var_dir, database_url, storage, origin_ports, edge_port)
        return run_demo(var_dir, database_url, storage, port, edge_port)
    finally:
        if storage is not None:
            storage.stop()


def start_storage(var_dir: Path) -> SeaweedFS:
    """SeaweedFS in var/seaweedfs, the bucket the demo's files live in."""
    print(f"Starting SeaweedFS in {var_dir / 'seaweedfs'} (the bucket the files live in)...", flush=True)
    return start_seaweedfs(var_dir / "seaweedfs")


def prepare_demo(var_dir: Path, database_url: str | None, storage: SeaweedFS | None,
                 download_logs: str) -> tuple[dict[str, str], dict[str, Any], str]:
    """var/ made ready (keys, database, files, demo data, a staff login): the app's environment,
    the demo data and the admin login line."""
    where = "PostgreSQL from DATABASE_URL" if database_url else f"SQLite in {var_dir}"
    files = f"files in the bucket {storage.bucket().name} at {storage.endpoint}" if storage else f"files in {var_dir / 'media'}"
    print(f"Preparing {var_dir} (keys, database: {where}, {files}, demo data)...", flush=True)
    app_bucket = storage.bucket("app") if storage is not None else None
    env = prepare(var_dir, database_url=database_url, bucket=app_bucket)
    if storage is not None and (var_dir / "media").is_dir():  # a demo made on disk before: its files move in
        print(manage(env, "copy_media_to_storage", "--from", str(var_dir / "media")), flush=True)
    env["SECURE_LINK_DOWNLOAD_LOGS"] = download_logs  # for the links' download log
    return env, seed(env), ensure_admin(env, var_dir)


def write_record(var_dir: Path, *, verifiers: dict[str, NginxServer], edge: NginxServer,
                 agents: dict[str, subprocess.Popen[bytes]], app_pids: dict[str, int], storage: SeaweedFS | None) -> Path:
    """var/demo.json: the first verifier's address (the origin's), every verifier and every pid, the storage."""
    stored = {"kind": "disk", "media_root": str(var_dir / "media")} if storage is None else {
        "kind": "s3", "url": str(storage.bucket("app")), "endpoint": storage.endpoint,
        "bucket": storage.bucket().name, "credentials_file": str(storage.credentials_file("app"))}
    pids = {**app_pids, **{f"sync-keys {name}": agent.pid for name, agent in agents.items()},
            **({"seaweedfs": storage.process.pid} if storage else {})}
    record = var_dir / DEMO_RECORD
    record.write_text(json.dumps({
        "base_url": next(iter(verifiers.values())).base_url, "edge_url": edge.base_url,
        "verifiers": [{"name": name, "url": server.base_url, "pid": server.process.pid}
                      for name, server in verifiers.items()],
        "pids": pids, "storage": stored}))
    return record


def run_demo(var_dir: Path, database_url: str | None, storage: SeaweedFS | None, port: int, edge_port: int) -> int:
    env, demo, admin_login = prepare_demo(var_dir, database_url, storage, download_logs_setting(var_dir, ["edge"]))
    stack = start_stack(var_dir, port=port, env=env, edges=(EDGE_ADDRESS,), access_log=True, reserved_ports=(edge_port,),
                        bucket=storage.bucket("origin") if storage is not None else None)
    # An edge in front of the origin, and beside each nginx a sync agent that keeps its keys
    # in step with the app by itself (docs/fleet.md).
    fleet = start_fleet(stack, edges={"edge": EDGE_ADDRESS}, edge_ports=(edge_port,), access_log=True)
    edge = fleet.edges["edge"]
    record = var_dir / DEMO_RECORD
    try:
        write_record(var_dir, verifiers=fleet.verifiers, edge=edge, agents=fleet.agents,
                     app_pids={"gunicorn": stack.gunicorn.pid}, storage=storage)
        servers = (f"nginx  {stack.base_url}  (pid {stack.nginx.process.pid}) -> gunicorn {stack.app_url} "
                   f"(pid {stack.gunicorn.pid})\n"
                   f"edge   {edge.base_url}  (pid {edge.process.pid}) -> origin nginx {stack.base_url}, caching each file once")
        print(instructions(stack.base_url, edge, demo, admin_login, storage, servers=servers,
                           origins=[stack.nginx], var_dir=var_dir,
                           gunicorn_note=f"gunicorn follows the keys file by itself; to reload it anyway: "
                                         f"kill -HUP {stack.gunicorn.pid}"), flush=True)
        stop_like_ctrl_c_on_sigterm()
        return supervise(stack, edge)
    except KeyboardInterrupt:
        print("\nStopping the sync agents, the edge, nginx, gunicorn" + (" and SeaweedFS" if storage else "") + "...")
        return 0
    finally:
        record.unlink(missing_ok=True)
        fleet.stop()


def run_cluster_demo(var_dir: Path, database_url: str | None, storage: SeaweedFS, origin_ports: list[int],
                     edge_port: int) -> int:
    """``ORIGINS=N STORAGE=s3 make run``: N origins and N app servers with nothing shared but the bucket,
    the database and HTTP, the edge balancing across the origins (docs/scaling.md)."""
    env, demo, admin_login = prepare_demo(var_dir, database_url, storage,
                                          cluster_download_logs(var_dir, len(origin_ports)))
    cluster = start_cluster(var_dir, env, storage=storage, origins=len(origin_ports), apps=len(origin_ports),
                            ports=origin_ports, edge_port=edge_port)
    assert cluster.edge is not None
    record = var_dir / DEMO_RECORD
    try:
        write_record(var_dir, verifiers=cluster.verifiers, edge=cluster.edge, agents=cluster.agents,
                     app_pids={f"gunicorn {cluster.app_url(index)}": app.pid for index, app in enumerate(cluster.apps)},
                     storage=storage)
        base = cluster.origins[0].base_url
        apps = ", ".join(f"{cluster.app_url(index)} (pid {app.pid})" for index, app in enumerate(cluster.apps))
        servers = "\n".join(
            [f"nginx  {origin.base_url}  (pid {origin.process.pid}) -> gunicorn {apps}" for origin in cluster.origins]
            + [f"edge   {cluster.edge.base_url}  (pid {cluster.edge.process.pid}) -> "
               f"{' and '.join(origin.base_url for origin in cluster.origins)}, caching each file once"])
        print(instructions(base, cluster.edge, demo, admin_login, storage, servers=servers, origins=cluster.origins,
                           var_dir=var_dir, gunicorn_note="The app servers follow the keys file by themselves."),
              flush=True)
        stop_like_ctrl_c_on_sigterm()
        return supervise_cluster(cluster)
    except KeyboardInterrupt:
        print("\nStopping the sync agents, the edge, the origins, the app servers and SeaweedFS...")
        return 0
    finally:
        record.unlink(missing_ok=True)
        cluster.stop()


def supervise_cluster(cluster: Cluster) -> int:
    """Wait while every nginx and app server runs; report the first one that exits (the others keep serving)."""
    named = {**{f"nginx {name}": server.process for name, server in cluster.verifiers.items()},
             **{f"gunicorn {cluster.app_url(index)}": app for index, app in enumerate(cluster.apps)}}
    while True:
        for name, process in named.items():
            if process.poll() is not None:
                print(f"{name} (pid {process.pid}) exited with status {process.returncode}; stopping", file=sys.stderr)
                return 1
        time.sleep(1)


def ensure_admin(env: dict[str, str], var_dir: Path) -> str:
    """A staff login for /admin/: its password is generated once and kept in var/ (mode 0600)."""
    password_file = var_dir / "admin_password"
    if password_file.exists():
        return f"admin / the password in {password_file}"
    password = generate_secret()[:20]
    seed(env, "--no-images", "--username", "admin", "--staff", f"--password={password}")  # it may start with "-"
    write_private_file(password_file, password + "\n")
    return f"admin / {password}  (shown once; kept in {password_file})"


def instructions(base: str, edge: NginxServer, demo: dict[str, Any], admin_login: str, storage: SeaweedFS | None, *,
                 servers: str, origins: list[NginxServer], var_dir: Path, gunicorn_note: str) -> str:
    """What the demo prints: its servers, then commands that work as printed."""
    token = demo["token"]
    image = demo["images"][0]
    link = api_post(base, f"/api/images/{image['id']}/links/", token, {"ttl": 3600})
    share = api_post(base, f"/api/images/{image['id']}/share/", token, {"ttl": 3600})
    once = api_post(base, f"/api/images/{image['id']}/links/", token, {"ttl": 3600, "max_downloads": 1})
    plain_url = api_post(base, f"/api/images/{image['id']}/cookies/", token, {"ttl": 3600})["url"]
    edge_link = edge.base_url + link["url"][len(base):]
    downloads = var_dir / "downloads"
    downloads.mkdir(exist_ok=True)
    edge_dir = edge.run_dir
    every_nginx = " and ".join(str(origin.run_dir) for origin in origins)
    files = (f"bucket {storage.bucket().name} at {storage.endpoint} (SeaweedFS, pid {storage.process.pid}); each origin "
             f"caches each object once and logs its fetches in s3_fetches.log") if storage else \
        f"{var_dir / 'media'} (disk)"
    counted = ("" if len(origins) == 1 else
               "\n       download limits are counted once for every origin, by the app servers in the database")
    return f"""
{servers}
files  {files}{counted}

Start page: {base}/   Admin: {base}/admin/  login {admin_login}
API token for user '{demo['username']}':  {token}

1. List images with their signed links (JSON):
   curl -fsS -H 'Authorization: Token {token}' {base}/api/images/

2. Signed download link ({image['name']}, valid until {link['expires_at']}); nginx alone checks it:
   curl -fsS -o {downloads}/signed.png '{link['url']}'
   The same link through the edge, which checks it too and caches the file (X-Cache-Status):
   curl -fsS -D - -o {downloads}/edge.png '{edge_link}'

3. Compatibility view: Django checks the token, nginx sends the bytes (X-Accel-Redirect):
   curl -fsS -o {downloads}/compat.png -H 'Authorization: Token {token}' {base}/download/image/{image['id']}

4. Share link, no login needed (valid until {share['expires_at']}):
   curl -fsS -o {downloads}/share.png '{share['url']}'

5. A one-download link (link id {once['id']}): the first download gets the file, the next 410, here or at the edge;
   its state and its download log by id, and revoking one link alone:
   curl -fsS -o {downloads}/once.png '{once['url']}'
   curl -fsS -H 'Authorization: Token {token}' {base}/api/links/{once['id']}/
   curl -fsS -H 'Authorization: Token {token}' {base}/api/links/{once['id']}/downloads/
   curl -fsS -H 'Authorization: Token {token}' -X POST {base}/api/links/{link['id']}/revoke/   (link 2: 403 from now on)

6. Folder cookies: one cookie opens every file of the image's own folder by its plain URL, as a player following
   absolute URLs needs (kept here in a cookie jar; in a browser, log in at /admin/, then open {base}/images/{image['id']}/):
   curl -fsS -c {downloads}/cookies.txt -H 'Authorization: Token {token}' -X POST {base}/api/images/{image['id']}/cookies/
   curl -fsS -b {downloads}/cookies.txt -o {downloads}/cookie.png '{plain_url}'
   curl -fsS -b {downloads}/cookies.txt -o {downloads}/cookie-edge.png '{edge.base_url + plain_url[len(base):]}'

Logs: access.log, downloads.log, failures.log (5xx) and error.log in {every_nginx} (nginx) and {edge_dir} (edge),
  gunicorn*.log in {var_dir}; they name links by id, never by token
Keys: `manage.py rotate_key add`, then `manage.py rotate_key activate KID` (it checks that every origin and the
  edge accept KID first). A sync agent beside each nginx pulls the keys and the revoked link ids and reloads it
  (logs: sync-keys.log in each nginx's folder); `manage.py secure_link_fleet` shows which keys each accepts.
Reload nginx by hand: {origins[0].reload_command}   (the edge: {edge.reload_command})
{gunicorn_note}
manage.py commands (.venv/bin/python manage.py ...) find this demo's keys, database and address in {var_dir}.
Press Ctrl-C to stop.
"""


def wait_until_closed(port: int, timeout: float = 60.0) -> None:
    """Return once nothing accepts connections on 127.0.0.1:``port`` (or after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return
        time.sleep(0.2)


def supervise(stack: Stack, edge: NginxServer) -> int:
    """Wait; if gunicorn dies, start it again while nginx keeps serving signed links."""
    while stack.nginx.process.poll() is None and edge.process.poll() is None:
        try:
            stack.gunicorn.wait(timeout=1)
        except subprocess.TimeoutExpired:
            continue
        print(f"gunicorn exited with status {stack.gunicorn.returncode}; nginx keeps serving signed links. "
              f"Restarting gunicorn (log: {stack.var_dir / 'gunicorn.log'})...", file=sys.stderr, flush=True)
        wait_until_closed(stack.app_port)  # workers outlive a killed master for a moment, holding the port
        stack.gunicorn = start_gunicorn(stack.env, stack.app_port, log=stack.var_dir / "gunicorn.log")
        print(f"gunicorn is back (pid {stack.gunicorn.pid}).", file=sys.stderr, flush=True)
    print("nginx exited unexpectedly; stopping", file=sys.stderr)
    return 1



if __name__ == "__main__":
    sys.exit(main())
