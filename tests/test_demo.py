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

from harness.demo import port_is_free
from harness.nginx import REPO_ROOT
from harness.ports import free_port, interrupt_process, stop_process
from harness.stack import django_environment

pytestmark = [pytest.mark.nginx, pytest.mark.database]


def start_demo(var_dir: Path, database_url: str | None,
               storage: str | None = None, origins: int = 1) -> tuple[subprocess.Popen[str], str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "STORAGE", "STORAGE_URL", "ORIGINS")}
    port = free_port()
    edge_port = free_port(avoid=(port,))
    # The demo puts origins 2.. at EDGE_PORT+1..: those must be free too, and none of them PORT.
    while any(edge_port + index == port or not port_is_free(edge_port + index) for index in range(1, origins)):
        edge_port = free_port(avoid=(port, edge_port))
    env.update(APP_VAR_DIR=str(var_dir), PORT=str(port), EDGE_PORT=str(edge_port), ORIGINS=str(origins))
    if storage:
        env["STORAGE"] = storage
    if database_url:
        env["DATABASE_URL"] = database_url
    process = subprocess.Popen([sys.executable, "-m", "harness.demo"], cwd=REPO_ROOT, env=env, text=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        return process, read_until(process, "Press Ctrl-C", timeout=90)
    except AssertionError:
        stop_process(process)
        raise


def read_until(process: subprocess.Popen[str], text: str, timeout: float = 60) -> str:
    """The demo's output up to the line that contains ``text``."""
    assert process.stdout is not None
    output = ""
    deadline = time.monotonic() + timeout
    while text not in output:
        line = process.stdout.readline()
        if not line or time.monotonic() > deadline:
            raise AssertionError(f"the demo never said {text!r}:\n{output}")
        output += line
    return output


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
        assert [(answer.status_code, answer.headers.get("X-Cache-Status")) for answer in answers] == \
            [(200, "MISS"), (200, "HIT")], [(answer.status_code, dict(answer.headers), answer.text[:200]) for answer in answers]
        assert all(line.lstrip().startswith("curl -fsS") for line in output.splitlines() if "curl " in line)
        cookie_commands = [line.strip() for line in output.splitlines() if "cookies" in line and "curl " in line]
        assert len(cookie_commands) == 3  # the folder cookies, then the plain URL at the origin and at the edge
        for command in cookie_commands:  # as printed: the cookie alone opens the plain URL
            assert subprocess.run(command, shell=True, capture_output=True, timeout=30).returncode == 0, command
        assert (tmp_path / "var" / "downloads" / "cookie.png").read_bytes() == \
            (tmp_path / "var" / "downloads" / "cookie-edge.png").read_bytes()
        assert f"-o {tmp_path / 'var' / 'downloads'}/signed.png" in output

        env = django_environment(tmp_path / "var", database_url=database_url)
        check = subprocess.run([sys.executable, "manage.py", "check_secure_link"], cwd=REPO_ROOT, env=env,
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0 and f"passed against {base}" in check.stdout  # found via var/demo.json

        password = re.search(r"login admin / (\S+)  \(shown once", output).group(1)
        admin = requests.Session()
        admin.get(f"{base}/admin/login/", timeout=10)
        logged_in = admin.post(f"{base}/admin/login/?next=/admin/", timeout=10, data={
            "username": "admin", "password": password, "csrfmiddlewaretoken": admin.cookies["csrftoken"]})
        assert logged_in.status_code == 200 and "Site administration" in logged_in.text
        home = requests.get(f"{base}/", timeout=10).text
        assert 'href="/admin/"' in home and 'href="/api/docs/"' in home

        os.kill(int(re.search(r"gunicorn http://\S+ \(pid (\d+)\)", output).group(1)), signal.SIGKILL)
        assert requests.get(signed, timeout=10).status_code == 200  # nginx serves signed links meanwhile
        restarted = read_until(process, "gunicorn is back")
        assert "nginx keeps serving signed links. Restarting gunicorn" in restarted
        assert requests.get(f"{base}/api/images/", headers={"Authorization": f"Token {token}"}, timeout=10).status_code == 200
    finally:
        interrupt_process(process, timeout=30)
    assert process.returncode == 0
    assert (tmp_path / "var" / "db.sqlite3").exists() != bool(database_url)  # the data lives where it was told
    assert not (tmp_path / "var" / "demo.json").exists()


def printed_commands(output: str) -> list[str]:
    """The demo's curl commands as printed, without the note in parentheses some of them end with."""
    return [line.strip().split("   (")[0] for line in output.splitlines() if line.lstrip().startswith("curl ")]


def test_demo_with_storage_s3_keeps_its_files_in_a_bucket_and_every_printed_command_works(tmp_path, postgres_cluster):
    """STORAGE=s3 make run: SeaweedFS under var/, the files of an earlier demo on disk moved into
    its bucket, var/media gone from the demo's path, every printed command as it was, the record
    naming the storage, and SeaweedFS stopped with the rest."""
    import json

    # A database of its own: the module's holds the disk demo's images, whose files are elsewhere.
    database_url = postgres_cluster.create_database("stack_demo_s3") if postgres_cluster else None
    var = tmp_path / "var"
    (var / "media" / "earlier").mkdir(parents=True)
    (var / "media" / "earlier" / "file.txt").write_bytes(b"made on disk")
    process, output = start_demo(var, database_url, storage="s3")
    try:
        assert "Starting SeaweedFS" in output and "files in the bucket media at http://127.0.0.1:" in output
        assert "copied 1 file(s)" in output
        record = json.loads((var / "demo.json").read_text())["storage"]
        assert record["kind"] == "s3" and record["bucket"] == "media" and record["endpoint"].startswith("http://127.0.0.1:")
        assert Path(record["credentials_file"]).stat().st_mode & 0o077 == 0
        from signing.buckets import Credentials

        secret = Credentials.from_file(Path(record["credentials_file"])).secret
        assert secret not in (var / "demo.json").read_text() and secret not in output
        commands = printed_commands(output)
        assert len(commands) >= 10
        for command in commands:
            result = subprocess.run(command, shell=True, capture_output=True, timeout=30)
            assert result.returncode == 0, (command, result.stderr[-300:])
        downloads = var / "downloads"
        assert (downloads / "signed.png").read_bytes() == (downloads / "compat.png").read_bytes() == \
            (downloads / "share.png").read_bytes() == (downloads / "cookie.png").read_bytes()
        assert not any((var / "media").rglob("*.png"))  # the images are in the bucket, not on disk
        weed = [line for line in (var / "seaweedfs" / "weed.log").read_text().splitlines() if "Start Seaweed" in line]
        assert weed  # the demo's own SeaweedFS, in var/seaweedfs
    finally:
        interrupt_process(process, timeout=30)
    assert process.returncode == 0
    assert "and SeaweedFS" in process.stdout.read()
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    assert not [line for line in processes if "weed server" in line and str(var) in line]  # stopped by its pid


def test_demo_with_two_origins_counts_each_limit_once_and_lists_every_verifier_and_pid(tmp_path, postgres_cluster):
    """ORIGINS=2 STORAGE=s3 make run: two origins and two app servers, SeaweedFS and the edge balancing
    across both origins; the printed commands work, var/demo.json lists every verifier and pid, and a
    one-download link is used up at both origins and the edge."""
    import json

    database_url = postgres_cluster.create_database("stack_demo_origins") if postgres_cluster else None
    var = tmp_path / "var"
    process, output = start_demo(var, database_url, storage="s3", origins=2)
    try:
        origins = re.findall(r"^nginx\s+(http://\S+)", output, re.M)
        assert len(origins) == 2 and "download limits are counted once for every origin" in output
        record = json.loads((var / "demo.json").read_text())
        assert [entry["name"] for entry in record["verifiers"]] == ["origin-1", "origin-2", "edge"]
        pids = [entry["pid"] for entry in record["verifiers"]] + list(record["pids"].values())
        assert len(pids) == 3 + 2 + 3 + 1  # the nginx, the app servers, the agents and SeaweedFS
        for pid in pids:
            os.kill(pid, 0)  # each runs
        once = re.search(r"curl \S+ -o \S+/once.png '(http://\S+)'", output).group(1)
        for command in printed_commands(output):
            result = subprocess.run(command, shell=True, capture_output=True, timeout=30)
            assert result.returncode == 0, (command, result.stderr[-300:])
        # The printed command took the one download at origin 1: it is used up at every verifier.
        assert [requests.get(once.replace(origins[0], entry["url"]), timeout=10).status_code
                for entry in record["verifiers"]] == [410, 410, 410]
    finally:
        interrupt_process(process, timeout=60)
    assert process.returncode == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
