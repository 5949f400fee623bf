"""``make run``: nginx in front of gunicorn and Django on 127.0.0.1:${PORT:-8080}.

Prepares var/ (keys, database, a demo user with an API token and sample images), starts
both servers, prints commands to try, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import urllib.request
from pathlib import Path
from types import FrameType

from .nginx import REPO_ROOT, start_edge
from .stack import prepare, seed, start_stack


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
    for wanted in (port, edge_port):
        if not port_is_free(wanted):
            print(f"error: 127.0.0.1:{wanted} is in use; pick other ports: PORT={port + 2} make run "
                  "(the edge takes PORT+1, or EDGE_PORT)", file=sys.stderr)
            return 1
    var_dir = Path(os.environ.get("APP_VAR_DIR", REPO_ROOT / "var"))
    database_url = os.environ.get("DATABASE_URL") or None
    where = "PostgreSQL from DATABASE_URL" if database_url else f"SQLite in {var_dir}"
    print(f"Preparing {var_dir} (keys, database: {where}, demo data)...", flush=True)
    env = prepare(var_dir, database_url=database_url)
    demo = seed(env)
    stack = start_stack(var_dir, port=port, env=env, edges=(EDGE_ADDRESS,))
    edge = None
    try:
        edge = start_edge(var_dir / "edge", origin_address=f"127.0.0.1:{port}", keys=stack.key_set(),
                          bind_address=EDGE_ADDRESS, port=edge_port)
        base, token = stack.base_url, demo["token"]
        image = demo["images"][0]
        link = api_post(base, f"/api/images/{image['id']}/links/", token, {"ttl": 3600})
        share = api_post(base, f"/api/images/{image['id']}/share/", token, {"ttl": 3600})
        edge_link = edge.base_url + link["url"][len(base):]
        print(f"""
nginx  {base}  (pid {stack.nginx.process.pid}) -> gunicorn {stack.app_url} (pid {stack.gunicorn.pid})
edge   {edge.base_url}  (pid {edge.process.pid}) -> origin nginx {base}, caching each file once

API token for user '{demo['username']}':  {token}

1. List images with their signed links (JSON):
   curl -sS -H 'Authorization: Token {token}' {base}/api/images/

2. Signed download link ({image['name']}, valid until {link['expires_at']}); nginx alone checks it:
   curl -sS -o demo-signed.png '{link['url']}'
   The same link through the edge, which checks it too and caches the file (X-Cache-Status):
   curl -sS -D - -o demo-edge.png '{edge_link}'

3. Compatibility view: Django checks the token, nginx sends the bytes (X-Accel-Redirect):
   curl -sS -o demo-compat.png -H 'Authorization: Token {token}' {base}/download/image/{image['id']}

4. Share link, no login needed (valid until {share['expires_at']}):
   curl -sS -o demo-share.png '{share['url']}'

API docs: {base}/api/docs/    Press Ctrl-C to stop.
""", flush=True)
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        while stack.nginx.process.poll() is None and stack.gunicorn.poll() is None and edge.process.poll() is None:
            try:
                stack.gunicorn.wait(timeout=1)
            except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: keep waiting
                continue
        print("a server exited unexpectedly; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping the edge, nginx and gunicorn...")
        return 0
    finally:
        if edge is not None:
            edge.stop()
        stack.stop()


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
