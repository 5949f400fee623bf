"""16 clients at once against real nginx + gunicorn, on SQLite and on PostgreSQL.

Each client uploads, mints and downloads links, shares, lists, revokes and deletes, all at
the same time. No answer may be a server error or otherwise unexpected, and afterwards the
database rows and the files on disk match one for one.
"""

from __future__ import annotations

import io
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image as PillowImage

from harness.stack import Stack, manage, running_stack, seed
from tests.client import fetch

pytestmark = [pytest.mark.nginx, pytest.mark.database]

CLIENTS = 16
ROUNDS = 6  # per client; the run is also bounded in time
TIME_LIMIT = 120.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database_url: str | None) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("var"), database_url=database_url) as running:
        yield running


def png(seed_value: int) -> bytes:
    buffer = io.BytesIO()
    PillowImage.new("RGB", (16, 12), (seed_value % 256, 80, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


class Client:
    """One API user doing everything a user does, recording every answer it did not expect."""

    def __init__(self, stack: Stack, index: int, deadline: float) -> None:
        self.base = stack.base_url
        self.headers = {"Authorization": f"Token {seed(stack.env, '--no-images', '--username', f'user{index}')['token']}"}
        self.random = random.Random(index)
        self.index = index
        self.deadline = deadline
        self.images: dict[int, bytes] = {}
        self.unexpected: list[str] = []
        self.requests = 0

    def call(self, method: str, path: str, expected: int, **kwargs: object) -> requests.Response:
        response = requests.request(method, self.base + path, headers=self.headers, timeout=30, **kwargs)
        self.requests += 1
        if response.status_code != expected:
            self.unexpected.append(f"{method} {path}: {response.status_code} (expected {expected}) {response.text[:120]}")
        return response

    def download(self, url: str, expected_body: bytes) -> None:
        parts = urlsplit(url)
        answer = fetch(self.base, f"{parts.path}?{parts.query}" if parts.query else parts.path, headers=self.headers)
        self.requests += 1
        if (answer.status, answer.body) != (200, expected_body):
            self.unexpected.append(f"GET {url}: {answer.status}, {len(answer.body)} bytes")

    def run(self) -> None:
        for round_number in range(ROUNDS):
            if time.monotonic() > self.deadline:
                return
            data = png(self.index * 100 + round_number)
            created = self.call("POST", "/api/images/", 201, files={"file": (f"c{self.index} r{round_number}.png", data)})
            if created.status_code != 201:
                continue
            image_id = created.json()["id"]
            self.images[image_id] = data
            self.download(created.json()["download_url"], data)
            minted = self.call("POST", f"/api/images/{image_id}/links/", 201, json={"ttl": 60})
            if minted.status_code == 201:
                self.download(minted.json()["url"], data)
            shared = self.call("POST", f"/api/images/{image_id}/share/", 201, json={})
            if shared.status_code == 201:
                self.download(shared.json()["url"], data)
            self.call("GET", "/api/images/?page_size=50", 200)
            if self.random.random() < 0.4:
                revoked = self.call("POST", f"/api/images/{image_id}/revoke/", 200)
                if revoked.status_code == 200:
                    self.download(revoked.json()["download_url"], data)
            if self.images and self.random.random() < 0.5:
                victim = self.random.choice(list(self.images))
                self.call("DELETE", f"/api/images/{victim}/", 204)
                del self.images[victim]


def stored_names(stack: Stack) -> list[str]:
    script = "import json; from app.downloads.models import Image; print(json.dumps(list(Image.objects.values_list('file', flat=True))))"
    names: list[str] = json.loads(manage(stack.env, "shell", "--verbosity", "0", "-c", script))
    return names


def files_on_disk(media_root: Path) -> list[str]:
    images = media_root / "images"
    return [str(path.relative_to(media_root)) for path in images.rglob("*") if path.is_file()] if images.exists() else []


def test_sixteen_clients_at_once_get_no_server_error_and_leave_no_orphan(stack):
    deadline = time.monotonic() + TIME_LIMIT
    clients = [Client(stack, index, deadline) for index in range(CLIENTS)]
    threads = [threading.Thread(target=client.run) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIME_LIMIT + 30)
    unexpected = [problem for client in clients for problem in client.unexpected]
    total = sum(client.requests for client in clients)
    assert total > CLIENTS * ROUNDS * 5
    assert unexpected == [], f"{len(unexpected)} unexpected answers of {total}: {unexpected[:5]}"
    rows = stored_names(stack)
    assert sorted(rows) == sorted(files_on_disk(stack.media_root))
    assert len(rows) == sum(len(client.images) for client in clients) > 0
    assert not any(name.startswith(".") for name in os.listdir(stack.media_root))


def test_the_app_servers_run_on_the_database_under_test(stack, request):
    vendor = manage(stack.env, "shell", "--verbosity", "0", "-c", "from django.db import connection; print(connection.vendor)")
    assert vendor.strip() == request.config.getoption("database")
