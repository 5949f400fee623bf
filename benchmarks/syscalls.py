"""Syscalls per request: ``strace -c -f`` on an nginx's worker processes over a fixed number of
requests on one keep-alive connection, outside the timed pairs (strace slows what it traces).

Each scenario's table is compared with a base scenario of the same nginx (static, or an
ordinary link): every syscall a check adds beyond the base's is named in results.md.
"""

from __future__ import annotations

import http.client
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from harness.nginx import NginxServer

from .budget import BUDGET
from .pinned import CONTROL, nginx_pids
from .results import Report

REQUESTS = 1000
SECTION = (f"Syscalls per request (strace -c -f on the worker, {REQUESTS:,} requests over one keep-alive connection, "
           "outside the timed pairs)")


def syscalls_per_request(server: NginxServer, targets: str | Sequence[str], requests: int = REQUESTS) -> dict[str, float]:
    """Each syscall's calls per request while the server answers ``requests`` GETs of ``targets`` (in turn)."""
    requests = max(int(BUDGET.count(requests, 200)), 1)
    paths = [targets] if isinstance(targets, str) else list(targets)
    with tempfile.NamedTemporaryFile(prefix="strace-", suffix=".txt") as output:
        tracer = subprocess.Popen(["strace", "-c", "-f", "-qq", "-o", output.name,
                                   *(argument for pid in nginx_pids(server)[1:] for argument in ("-p", str(pid)))],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.3)  # attached
            parts = urlsplit(server.base_url)
            connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
            try:
                for index in range(requests):
                    connection.request("GET", paths[index % len(paths)])
                    answer = connection.getresponse()
                    answer.read()
                    if answer.status not in (200, 206):
                        raise RuntimeError(f"{paths[index % len(paths)]} answered {answer.status} under strace")
            finally:
                connection.close()
            time.sleep(0.2)  # the log phase and its timers
        finally:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(timeout=30)
        return {name: calls / requests for name, calls in _parse(Path(output.name).read_text()).items()}


def _parse(table: str) -> dict[str, int]:
    """strace -c's summary: the calls of each syscall."""
    found: dict[str, int] = {}
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[0].replace(".", "", 1).isdigit() and fields[-1] != "total":
            found[fields[-1]] = int(fields[3])
    return found


def add_syscall_rows(report: Report, server: NginxServer, targets: Mapping[str, str | Sequence[str]], base: str,
                     label: str = "") -> None:
    """Measure every scenario of ``targets`` (but the A/A control, the same location as static) and add
    one row each: its syscalls per request, and those it makes beyond ``base``'s, named."""
    measured = {name: syscalls_per_request(server, target) for name, target in targets.items() if name != CONTROL}
    for name, table in measured.items():
        extra = {call: table.get(call, 0) - measured[base].get(call, 0) for call in {*table, *measured[base]}}
        named = ", ".join(f"{call} {count:+.2f}" for call, count in sorted(extra.items(), key=lambda item: -abs(item[1]))
                          if abs(count) >= 0.05)
        report.add(SECTION, f"{label}{name}", sum(table.values()), "syscalls",
                   f"beyond {base}: {named or 'none'}" if name != base else
                   ", ".join(f"{call} {count:.2f}" for call, count in sorted(table.items(), key=lambda item: -item[1])
                             if count >= 0.05))
