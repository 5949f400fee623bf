"""A tiny HTTP client that sends the request target byte for byte (no re-encoding)."""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import requests

# How long an nginx keeps what it stat'ed or opened (nginx/secure_link/location/open_files.conf):
# a revocation, a deleted or renamed file is seen within it (plus up to a second: nginx's clock
# moves in whole seconds), read from the shipped file itself.
OPEN_FILE_CACHE_VALID = float(re.search(
    r"^open_file_cache_valid (\d+)s;", (Path(__file__).parent.parent / "nginx/secure_link/location/open_files.conf")
    .read_text(), re.M).group(1))  # type: ignore[union-attr]


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class _RawTargetConnection(http.client.HTTPConnection):
    def _encode_request(self, request: str) -> bytes:  # type: ignore[override]
        # The target arrives as latin-1 text so that raw UTF-8 bytes pass through untouched.
        return request.encode("latin-1")


def fetch(
    base_url: str,
    target: str | bytes,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    source_address: str | None = None,
    timeout: float = 10.0,
) -> Response:
    """Send one request for ``target`` (``/path?query``) to ``base_url`` and read the answer."""
    parts = urlsplit(base_url)
    raw_target = target if isinstance(target, bytes) else target.encode("utf-8")
    connection = _RawTargetConnection(
        parts.hostname or "127.0.0.1",
        parts.port,
        timeout=timeout,
        source_address=(source_address, 0) if source_address else None,
    )
    try:
        connection.request(method, raw_target.decode("latin-1"), body=body, headers=headers or {})
        answer = connection.getresponse()
        return Response(answer.status, answer.headers, answer.read())
    finally:
        connection.close()


def request_target(url: str) -> str:
    """The path and query of an absolute URL: what to ask another server for."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def token_auth(demo: dict) -> dict[str, str]:
    """The API header of the demo user ``seed_demo`` made."""
    return {"Authorization": f"Token {demo['token']}"}


def mint_link(api_url: str, demo: dict, image: dict, **options: Any) -> dict:
    """``POST /api/images/<id>/links/`` as the demo user, at the app ``api_url``: the minted link."""
    import requests

    response = requests.post(f"{api_url}/api/images/{image['id']}/links/", json=options, headers=token_auth(demo),
                             timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def link_api(api_url: str, demo: dict, link_id: str, action: str = "") -> requests.Response:
    """``GET /api/links/<id>/[action/]`` as the demo user (``POST`` for ``revoke``)."""
    import requests

    url = f"{api_url}/api/links/{link_id}/{action + '/' if action else ''}"
    return (requests.post if action == "revoke" else requests.get)(url, headers=token_auth(demo), timeout=10)


def first_demo_image(api_url: str, server_url: str, demo: dict) -> dict:
    """The first demo image (asked of the app at ``api_url``), with its bytes as ``server_url`` serves them."""
    import requests

    first = demo["images"][0]
    api = requests.get(f"{api_url}/api/images/{first['id']}/", headers=token_auth(demo), timeout=10).json()
    body = fetch(server_url, request_target(api["download_url"])).body
    assert len(body) == api["size"]
    return {"id": first["id"], "bytes": body}


def until(predicate: Callable[[], object], *, within: float) -> float:
    """Seconds until ``predicate()`` held; fails after ``within``."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < within, f"not within {within} s"
        time.sleep(0.05)
    return time.monotonic() - started
