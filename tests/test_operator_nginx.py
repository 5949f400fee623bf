"""Operator commands against a real nginx: key rotation end to end, and check_secure_link."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from app.downloads.conf import get_link_signer
from app.downloads.management.commands import rotate_key
from harness.nginx import REPO_ROOT, SECURE_LINK_CONF, start_nginx
from harness.ports import free_port
from harness.stack import Stack, prepare, start_stack
from signing import generate_secret, parse_key_set
from tests.client import fetch

pytestmark = pytest.mark.nginx


def test_key_rotation_end_to_end_against_nginx(tmp_path, settings, monkeypatch):
    media = tmp_path / "media"
    (media / "docs").mkdir(parents=True)
    (media / "docs" / "report.pdf").write_bytes(b"%PDF rotation test")
    keys_file = tmp_path / "secure_link.keys"
    keys_file.write_text(f"k1={generate_secret()}\n")
    server = start_nginx(tmp_path / "nginx", media_root=media, keys=parse_key_set(keys_file.read_text()).keys)
    nginx_keys = server.run_dir / "secure_link_keys.conf"
    clock = {"now": 2_000_000_000}
    monkeypatch.setattr(rotate_key, "now", lambda: clock["now"])

    def rotate(*args: str) -> None:
        call_command("rotate_key", *args, "--keys-file", str(keys_file), "--nginx-keys", str(nginx_keys), stdout=StringIO())

    def restart_app() -> None:  # what reloading the app servers does: settings read the keys file again
        key_set = parse_key_set(keys_file.read_text())
        settings.SECURE_LINK = {**settings.SECURE_LINK, "KEYS": key_set.keys, "ACTIVE_KID": key_set.active_kid,
                                "ACTIVE_SINCE": key_set.active_since, "KEYS_FILE": keys_file}

    def status(url: str) -> int:
        return fetch(server.base_url, url).status

    def new_link() -> str:
        return get_link_signer().sign("/media/docs/report.pdf", ttl=3600).url

    try:
        restart_app()
        old_link = new_link()
        assert "kid=k1" in old_link and status(old_link) == 200

        rotate("add", "k2")  # 1. nginx learns the new key; Django keeps signing with k1
        server.reload()
        restart_app()
        assert "kid=k1" in new_link()
        k2_probe = get_link_signer().sign("/media/docs/report.pdf", ttl=60, kid="k2").url
        assert (status(old_link), status(k2_probe)) == (200, 200)

        rotate("activate", "k2")  # 2. Django signs with k2; old links still work
        restart_app()
        fresh_link = new_link()
        assert "kid=k2" in fresh_link
        assert (status(old_link), status(fresh_link)) == (200, 200)

        with pytest.raises(CommandError, match="may live until"):  # 3. too early to retire k1
            rotate("retire", "k1")
        assert status(old_link) == 200

        clock["now"] += settings.SECURE_LINK["MAX_TTL"] + 1
        rotate("retire", "k1")  # 4. after the longest TTL: k1 goes; its links get 403
        server.reload()
        restart_app()
        assert (status(old_link), status(fresh_link), status(new_link())) == (403, 200, 200)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var_dir = tmp_path_factory.mktemp("var")
    prepare(var_dir)
    running = start_stack(var_dir)
    try:
        yield running
    finally:
        running.stop()


def check_secure_link(stack: Stack, base_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", "check_secure_link", "--base-url", base_url, "--timeout", "5"],
                          cwd=REPO_ROOT, env=stack.env, capture_output=True, text=True, timeout=60)


def test_check_secure_link_passes_against_the_healthy_stack(stack):
    result = check_secure_link(stack, stack.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok    ") == 6 and "all 6 probes passed" in result.stdout
    assert not list((stack.media_root / "canary").iterdir())  # the canary is cleaned up


def broken_nginx(stack: Stack, tmp_path: Path, **options):
    defaults = {"media_root": stack.media_root, "keys": stack.keys(), "app_address": f"127.0.0.1:{stack.app_port}"}
    return start_nginx(tmp_path / "nginx", **{**defaults, **options})


@pytest.mark.parametrize(
    "misconfiguration, expected_lines",
    [
        ("secrets differ", ["FAIL  valid link: 403", "the secrets differ",
                            "FAIL  expired link: 403, expected 410: nginx refuses every link signed here"]),
        ("media root differs", ["FAIL  valid link: 404", "MEDIA_ROOT and nginx's $secure_link_media_root differ",
                                "FAIL  compatibility view: 404"]),
        ("internal location public", ["FAIL  internal location: 200", "reachable from outside"]),
        ("expired answers 403", ["FAIL  expired link: 403", "branch is missing"]),
    ],
)
def test_check_secure_link_diagnoses_a_misconfigured_nginx(stack, tmp_path, misconfiguration, expected_lines):
    if misconfiguration == "secrets differ":
        server = broken_nginx(stack, tmp_path, keys={kid: generate_secret() for kid in stack.keys()})
    elif misconfiguration == "media root differs":
        (tmp_path / "elsewhere").mkdir()
        server = broken_nginx(stack, tmp_path, media_root=tmp_path / "elsewhere")
    else:  # a deliberately broken copy of the shipped config
        text = SECURE_LINK_CONF.read_text()
        broken = text.replace("        internal;\n", "") if misconfiguration == "internal location public" else \
            text.replace('return 410;', 'return 403;')
        assert broken != text
        (tmp_path / "broken.conf").write_text(broken)
        server = broken_nginx(stack, tmp_path, secure_link_conf=tmp_path / "broken.conf")
    try:
        result = check_secure_link(stack, server.base_url)
    finally:
        server.stop()
    assert result.returncode == 1
    for line in expected_lines:
        assert line in result.stdout, result.stdout
    assert "probes failed" in result.stderr


def test_check_secure_link_notices_django_without_nginx(stack):
    result = check_secure_link(stack, stack.app_url)
    assert result.returncode == 1
    assert "X-Accel-Redirect reached the client: nginx is not in front of Django" in result.stdout


def test_check_secure_link_says_when_nothing_listens(stack):
    result = check_secure_link(stack, f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1 and "nginx is not reachable" in result.stderr
