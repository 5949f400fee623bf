"""``make run``: nginx in front of gunicorn and Django on 127.0.0.1:${PORT:-8080}, an edge on PORT+1.

Prepares var/ (keys, database, a demo user with an API token and sample images, a staff
login), starts the servers, records their address in var/demo.json for the management
commands, prints commands to try, restarts gunicorn if it dies, and stops everything on Ctrl-C.
With ``STORAGE=s3`` the files live in a bucket of a SeaweedFS it starts (var/seaweedfs/):
the app writes them there, the origin nginx fetches them from there.
"""

from __future__ import annotations

import json
import os
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

from .fleet import download_logs_setting, start_fleet
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
    storage = start_storage(var_dir) if storage_kind == "s3" else None
    try:
        return run_demo(var_dir, database_url, storage, port, edge_port)
    finally:
        if storage is not None:
            storage.stop()


def start_storage(var_dir: Path) -> SeaweedFS:
    """SeaweedFS in var/seaweedfs, the bucket the demo's files live in."""
    print(f"Starting SeaweedFS in {var_dir / 'seaweedfs'} (the bucket the files live in)...", flush=True)
    return start_seaweedfs(var_dir / "seaweedfs")


def run_demo(var_dir: Path, database_url: str | None, storage: SeaweedFS | None, port: int, edge_port: int) -> int:
    where = "PostgreSQL from DATABASE_URL" if database_url else f"SQLite in {var_dir}"
    files = f"files in the bucket {storage.bucket().name} at {storage.endpoint}" if storage else f"files in {var_dir / 'media'}"
    print(f"Preparing {var_dir} (keys, database: {where}, {files}, demo data)...", flush=True)
    app_bucket = storage.bucket("app") if storage is not None else None
    env = prepare(var_dir, database_url=database_url, bucket=app_bucket)
    if storage is not None and (var_dir / "media").is_dir():  # a demo made on disk before: its files move in
        print(manage(env, "copy_media_to_storage", "--from", str(var_dir / "media")), flush=True)
    env["SECURE_LINK_DOWNLOAD_LOGS"] = download_logs_setting(var_dir, ["edge"])  # for the links' download log
    demo = seed(env)
    admin_login = ensure_admin(env, var_dir)
    stack = start_stack(var_dir, port=port, env=env, edges=(EDGE_ADDRESS,), access_log=True, reserved_ports=(edge_port,),
                        bucket=storage.bucket("origin") if storage is not None else None)
    # An edge in front of the origin, and beside each nginx a sync agent that keeps its keys
    # in step with the app by itself (docs/fleet.md).
    fleet = start_fleet(stack, edges={"edge": EDGE_ADDRESS}, edge_ports=(edge_port,), access_log=True)
    edge = fleet.edges["edge"]
    record = var_dir / DEMO_RECORD
    try:
        verifiers = [{"name": name, "url": server.base_url} for name, server in fleet.verifiers.items()]
        stored = {"kind": "s3", "url": str(storage.bucket("app")), "endpoint": storage.endpoint,
                  "bucket": storage.bucket().name, "credentials_file": str(storage.credentials_file("app"))} \
            if storage else \
            {"kind": "disk", "media_root": str(var_dir / "media")}
        record.write_text(json.dumps({"base_url": stack.base_url, "edge_url": edge.base_url, "verifiers": verifiers,
                                      "storage": stored}))
        print(instructions(stack, edge, demo, admin_login, storage), flush=True)
        stop_like_ctrl_c_on_sigterm()
        return supervise(stack, edge)
    except KeyboardInterrupt:
        print("\nStopping the sync agents, the edge, nginx, gunicorn" + (" and SeaweedFS" if storage else "") + "...")
        return 0
    finally:
        record.unlink(missing_ok=True)
        fleet.stop()


def ensure_admin(env: dict[str, str], var_dir: Path) -> str:
    """A staff login for /admin/: its password is generated once and kept in var/ (mode 0600)."""
    password_file = var_dir / "admin_password"
    if password_file.exists():
        return f"admin / the password in {password_file}"
    password = generate_secret()[:20]
    seed(env, "--no-images", "--username", "admin", "--staff", f"--password={password}")  # it may start with "-"
    write_private_file(password_file, password + "\n")
    return f"admin / {password}  (shown once; kept in {password_file})"


def instructions(stack: Stack, edge: NginxServer, demo: dict[str, Any], admin_login: str,
                 storage: SeaweedFS | None) -> str:
    base, token = stack.base_url, demo["token"]
    image = demo["images"][0]
    link = api_post(base, f"/api/images/{image['id']}/links/", token, {"ttl": 3600})
    share = api_post(base, f"/api/images/{image['id']}/share/", token, {"ttl": 3600})
    once = api_post(base, f"/api/images/{image['id']}/links/", token, {"ttl": 3600, "max_downloads": 1})
    plain_url = api_post(base, f"/api/images/{image['id']}/cookies/", token, {"ttl": 3600})["url"]
    edge_link = edge.base_url + link["url"][len(base):]
    downloads = stack.var_dir / "downloads"
    downloads.mkdir(exist_ok=True)
    nginx_dir, edge_dir = stack.nginx.run_dir, edge.run_dir
    files = (f"bucket {storage.bucket().name} at {storage.endpoint} (SeaweedFS, pid {storage.process.pid}); the origin "
             f"caches each object once and logs its fetches in {nginx_dir}/s3_fetches.log") if storage else \
        f"{stack.media_root} (disk)"
    return f"""
nginx  {base}  (pid {stack.nginx.process.pid}) -> gunicorn {stack.app_url} (pid {stack.gunicorn.pid})
edge   {edge.base_url}  (pid {edge.process.pid}) -> origin nginx {base}, caching each file once
files  {files}

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

Logs: {nginx_dir}/access.log, downloads.log and error.log (nginx), {edge_dir}/access.log and downloads.log (edge),
  {stack.var_dir}/gunicorn.log; they name links by id, never by token
Keys: `manage.py rotate_key add`, then `manage.py rotate_key activate KID` (it checks that the origin and the
  edge accept KID first). A sync agent beside each nginx pulls the keys and reloads it (logs: sync-keys.log
  in {nginx_dir} and {edge_dir}); `manage.py secure_link_fleet` shows which keys each accepts.
Reload nginx by hand: {stack.nginx.reload_command}   (the edge: {edge.reload_command})
gunicorn follows the keys file by itself; to reload it anyway: kill -HUP {stack.gunicorn.pid}
manage.py commands (.venv/bin/python manage.py ...) find this demo's keys, database and address in {stack.var_dir}.
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
