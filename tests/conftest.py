"""Shared fixtures. The ``nginx`` fixture runs the real nginx with nginx/secure_link.conf."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.nginx import NginxServer, start_nginx  # noqa: E402
from signing import SecureLinkSigner, generate_secret  # noqa: E402

# File names that stress every encoding rule: space, '+', '%', ';', '?', '#', Chinese.
TRICKY_NAMES = [
    "a b.txt",
    "a+b.txt",
    "100%.txt",
    "semi;colon.txt",
    "what?.txt",
    "hash#tag.txt",
    "你好.txt",
    "mix 你+%;?#.txt",
]
OUTSIDE_SECRET = b"this file lies outside the media root"


@dataclass
class NginxSite:
    """A running nginx plus what it serves: media root, keys and a signer for them."""

    server: NginxServer
    media_root: Path
    keys: dict[str, str]

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def signer(self, active_kid: str = "k1", **options: object) -> SecureLinkSigner:
        return SecureLinkSigner(keys=self.keys, active_kid=active_kid, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def signing_keys() -> dict[str, str]:
    return {"k1": generate_secret(), "k2": generate_secret()}


@pytest.fixture(scope="session")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("site")
    (base / "outside.txt").write_bytes(OUTSIDE_SECRET)
    root = base / "media"
    (root / "names").mkdir(parents=True)
    for index, name in enumerate(TRICKY_NAMES):
        (root / "names" / name).write_bytes(f"file {index}: {name}\n".encode())
    (root / "files").mkdir()
    (root / "files" / "blob.bin").write_bytes(os.urandom(64 * 1024))
    (root / "files" / "other.bin").write_bytes(b"another file")
    return root


@pytest.fixture(scope="session")
def nginx(
    tmp_path_factory: pytest.TempPathFactory, media_root: Path, signing_keys: dict[str, str]
) -> Iterator[NginxSite]:
    server = start_nginx(
        tmp_path_factory.mktemp("nginx"),
        media_root=media_root,
        keys=signing_keys,
        also_listen=["::1"],
    )
    try:
        yield NginxSite(server, media_root, signing_keys)
    finally:
        server.stop()


pytest_plugins = ["tests.app_fixtures"]
