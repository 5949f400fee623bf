"""``make run``'s program (``python -m harness.demo``) started for real, on the database under test.

On SQLite it uses its embedded default; with ``--database=postgresql`` it is given
``DATABASE_URL`` and must migrate that database on first use and keep its data there.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from harness.nginx import REPO_ROOT
from harness.ports import free_port, stop_process

pytestmark = [pytest.mark.nginx, pytest.mark.database]


def start_demo(var_dir: Path, database_url: str | None) -> tuple[subprocess.Popen[str], str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(APP_VAR_DIR=str(var_dir), PORT=str(free_port()), EDGE_PORT=str(free_port()))
    if database_url:
        env["DATABASE_URL"] = database_url
    process = subprocess.Popen([sys.executable, "-m", "harness.demo"], cwd=REPO_ROOT, env=env, text=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = ""
    deadline = time.monotonic() + 90
    assert process.stdout is not None
    while "Press Ctrl-C" not in output:
        line = process.stdout.readline()
        if not line or time.monotonic() > deadline:
            stop_process(process)
            raise AssertionError(f"the demo did not come up:\n{output}")
        output += line
    return process, output


def test_demo_runs_on_the_database_it_is_given_and_stops_cleanly(tmp_path, database_url):
    process, output = start_demo(tmp_path / "var", database_url)
    try:
        assert ("PostgreSQL from DATABASE_URL" in output) == bool(database_url)
        token = re.search(r"API token for user 'demo':\s+(\w+)", output).group(1)
        base = re.search(r"^nginx\s+(http://\S+)", output, re.M).group(1)
        listing = requests.get(f"{base}/api/images/", headers={"Authorization": f"Token {token}"}, timeout=10)
        assert listing.status_code == 200 and listing.json()["count"] == 3
        signed = re.search(r"curl \S+ -o \S+ '(http://\S+md5=\S+)'", output).group(1)
        assert requests.get(signed, timeout=10).status_code == 200
        through_edge = re.search(r"curl \S+ -D - -o \S+ '(http://\S+md5=\S+)'", output).group(1)
        assert through_edge != signed and through_edge.split("/media/")[1] == signed.split("/media/")[1]
        answers = [requests.get(through_edge, timeout=10) for _ in range(2)]
        assert [(answer.status_code, answer.headers["X-Cache-Status"]) for answer in answers] == [(200, "MISS"), (200, "HIT")]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0
    assert (tmp_path / "var" / "db.sqlite3").exists() != bool(database_url)  # the data lives where it was told
