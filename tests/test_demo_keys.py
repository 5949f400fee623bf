"""``make run``'s program with its keys: an HMAC-SHA256 key active, then a rotation by commands alone.

The demo runs a sync agent beside its origin and its edge (docs/fleet.md), so an operator's
``rotate_key add`` and ``rotate_key activate`` are all it takes to keep the edge in step.
Nothing here depends on the database (test_demo.py runs the demo on each).
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time

import pytest
import requests
from PIL import Image as PillowImage

from harness.nginx import REPO_ROOT
from harness.ports import interrupt_process
from harness.stack import django_environment
from signing import HMAC_SHA256, Key, KeySet, generate_secret
from signing.keys import KEYS_FILE_NAME
from tests.test_demo import start_demo

pytestmark = pytest.mark.nginx


def test_with_an_hmac_key_active_every_probe_passes_and_a_rotation_alone_keeps_the_edge_in_step(tmp_path):
    var_dir = tmp_path / "var"
    KeySet((Key("k1", generate_secret()), Key("h1", generate_secret(), HMAC_SHA256)), "h1").write(var_dir / KEYS_FILE_NAME)
    process, output = start_demo(var_dir, None)
    try:
        edge = re.search(r"^edge\s+(http://\S+)", output, re.M).group(1)
        env = django_environment(var_dir)

        def manage(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                                  text=True, timeout=60)

        check = manage("check_secure_link", "--edge", edge)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "ok    expired link: 410" in check.stdout and ": expired link: 410" in check.stdout  # origin, edge
        assert "ok    valid md5 link: 200" in check.stdout  # each algorithm nginx checks (HMAC in Lua, MD5 in C)
        assert "all 11 probes passed" in check.stdout

        # The rotation an operator runs, and nothing else: the demo's edge follows by itself.
        assert manage("rotate_key", "add", "k2").returncode == 0
        activated = manage("rotate_key", "activate", "k2")
        assert activated.returncode == 0, activated.stdout + activated.stderr
        token = re.search(r"API token for user 'demo':\s+(\w+)", output).group(1)
        base = re.search(r"^nginx\s+(http://\S+)", output, re.M).group(1)
        picture = io.BytesIO()
        PillowImage.new("RGB", (4, 4), "teal").save(picture, format="PNG")
        uploaded = requests.post(f"{base}/api/images/", files={"file": ("after rotation.png", picture.getvalue())},
                                 headers={"Authorization": f"Token {token}"}, timeout=10)
        assert uploaded.status_code == 201, uploaded.text
        image_id = uploaded.json()["id"]
        deadline = time.monotonic() + 5
        while True:
            link = requests.post(f"{base}/api/images/{image_id}/links/", json={},
                                 headers={"Authorization": f"Token {token}"}, timeout=10).json()
            if link["kid"] == "k2" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert link["kid"] == "k2" and "md5=" in link["url"]
        assert requests.get(link["url"].replace(base, edge), timeout=10).status_code == 200
        assert manage("secure_link_fleet").returncode == 0

        # The printed reload commands work as written, from the project root.
        for command in re.search(r"Reload nginx by hand: (.+?)   \(the edge: (.+?)\)$", output, re.M).groups():
            assert subprocess.run(command, shell=True, cwd=REPO_ROOT, capture_output=True).returncode == 0, command
    finally:
        interrupt_process(process, timeout=30)
