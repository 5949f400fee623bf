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
from harness.postgres import PostgresCluster, running_postgres  # noqa: E402
from signing import HMAC_SHA256, Key, KeySet, SecureLinkSigner, generate_secret  # noqa: E402

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
    """A running nginx plus what it serves: media root, keys and a signer for them.

    Keys k1 and k2 are MD5 keys, h1, h2 and h3 HMAC-SHA256 keys (h3's is longer than
    SHA-256's 64-byte block, which HMAC hashes first).
    """

    server: NginxServer
    media_root: Path
    key_set: KeySet

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def signer(self, kid: str = "k1", **options: object) -> SecureLinkSigner:
        """A signer of this site's key set, signing with ``kid``."""
        return SecureLinkSigner(self.key_set.with_active(kid), **options)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def signing_keys() -> KeySet:
    return KeySet((Key("k1", generate_secret()), Key("k2", generate_secret()),
                   Key("h1", generate_secret(), HMAC_SHA256), Key("h2", generate_secret(), HMAC_SHA256),
                   Key("h3", generate_secret() * 3, HMAC_SHA256)), active_kid="k1")


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
    tmp_path_factory: pytest.TempPathFactory, media_root: Path, signing_keys: KeySet
) -> Iterator[NginxSite]:
    server = start_nginx(
        tmp_path_factory.mktemp("nginx"),
        media_root=media_root,
        key_set=signing_keys,
        also_listen=["::1"],
    )
    try:
        yield NginxSite(server, media_root, signing_keys)
    finally:
        server.stop()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database", choices=["sqlite", "postgresql"], default="sqlite",
        help="run the database tests on SQLite (default) or on a throwaway PostgreSQL cluster the suite starts",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --database=postgresql, run the tests that touch a database; the rest ran on SQLite."""
    if config.getoption("database") == "sqlite":
        return
    uses_database = [item for item in items if item.get_closest_marker("database") or item.get_closest_marker("django_db")
                     or {"db", "transactional_db"} & set(getattr(item, "fixturenames", ()))]
    config.hook.pytest_deselected(items=[item for item in items if item not in uses_database])
    items[:] = uses_database


@pytest.fixture(scope="session")
def postgres_cluster(request: pytest.FixtureRequest) -> Iterator[PostgresCluster | None]:
    """The suite's own PostgreSQL cluster with --database=postgresql (stopped by pid at the end), else None."""
    if request.config.getoption("database") != "postgresql":
        yield None
        return
    with running_postgres() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def django_db_modify_db_settings(postgres_cluster: PostgresCluster | None) -> None:
    """Point Django's test database at the cluster (pytest-django's hook for this)."""
    if postgres_cluster is None:
        return
    from django.conf import settings
    from django.db import connections

    from app.settings import database_from_url

    settings.DATABASES["default"] = database_from_url(postgres_cluster.url("app"))
    connections.close_all()
    connections.__dict__.pop("settings", None)  # read DATABASES again...
    try:
        del connections["default"]  # ...and open the next connection from it
    except AttributeError:
        pass


@pytest.fixture(scope="module")
def database_url(postgres_cluster: PostgresCluster | None, request: pytest.FixtureRequest) -> str | None:
    """A fresh database for a module's own app servers: PostgreSQL with --database=postgresql, else None (SQLite)."""
    if postgres_cluster is None:
        return None
    return postgres_cluster.create_database(f"stack_{request.module.__name__.rpartition('.')[2]}")


pytest_plugins = ["tests.app_fixtures"]
