"""check_secure_link against a real nginx (key rotation end to end: tests/test_rotation_live.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.nginx import REPO_ROOT, SECURE_LINK_CONF, SNIPPETS_DIR, start_nginx
from harness.ports import free_port
from harness.stack import Stack, running_stack
from signing import Key, KeySet, generate_secret

pytestmark = pytest.mark.nginx


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("var")) as running:
        yield running


def check_secure_link(stack: Stack, base_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", "check_secure_link", "--base-url", base_url, "--timeout", "5"],
                          cwd=REPO_ROOT, env=stack.env, capture_output=True, text=True, timeout=60)


def test_check_secure_link_passes_against_the_healthy_stack(stack):
    result = check_secure_link(stack, stack.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok    ") == 6 and "all 6 probes passed" in result.stdout
    assert not list((stack.media_root / "_secure_link_canary").iterdir())  # the canary is cleaned up


def broken_nginx(stack: Stack, tmp_path: Path, **options):
    defaults = {"media_root": stack.media_root, "key_set": stack.key_set(), "app_address": f"127.0.0.1:{stack.app_port}"}
    return start_nginx(tmp_path / "nginx", **{**defaults, **options})


@pytest.mark.parametrize(
    "misconfiguration, expected_lines",
    [
        ("secrets differ", ["FAIL  valid link: 403", "the secrets differ",
                            "FAIL  expired link: 403, expected 410: nginx refuses every link signed here"]),
        ("media root differs", ["FAIL  valid link: 404", "MEDIA_ROOT and $secure_link_media_root differ",
                                "FAIL  compatibility view: 404"]),
        ("internal location public", ["FAIL  internal location: 200", "reachable from outside"]),
        ("expired answers 403", ["FAIL  expired link: 403", "branch is missing"]),
    ],
)
def test_check_secure_link_diagnoses_a_misconfigured_nginx(stack, tmp_path, misconfiguration, expected_lines):
    if misconfiguration == "secrets differ":
        other_secrets = KeySet(tuple(Key(key.kid, generate_secret(), key.algorithm) for key in stack.key_set()))
        server = broken_nginx(stack, tmp_path, key_set=other_secrets)
    elif misconfiguration == "media root differs":
        (tmp_path / "elsewhere").mkdir()
        server = broken_nginx(stack, tmp_path, media_root=tmp_path / "elsewhere")
    elif misconfiguration == "internal location public":  # a deliberately broken copy of the shipped config
        text = SECURE_LINK_CONF.read_text()
        broken = text.replace("    internal;\n", "")
        assert broken != text
        (tmp_path / "broken.conf").write_text(broken)
        server = broken_nginx(stack, tmp_path, snippets={"secure_link.conf": tmp_path / "broken.conf"})
    else:  # a deliberately broken copy of the shared check
        text = (SNIPPETS_DIR / "location" / "check.conf").read_text()
        broken = text.replace("return 410;", "return 403;")
        assert broken != text
        (tmp_path / "broken_check.conf").write_text(broken)
        server = broken_nginx(stack, tmp_path, snippets={"secure_link/location/check.conf": tmp_path / "broken_check.conf"})
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
