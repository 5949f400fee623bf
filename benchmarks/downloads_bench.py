"""Sections 2 and 4: downloads through one nginx with wrk, and the Django worker's memory."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.ports import free_port, stop_process
from harness.stack import Stack, start_gunicorn, start_stack
from signing import SecureLinkSigner, parse_key_set
from tests.client import fetch

from .results import Report
from .setup import BenchData

WRK_SECONDS = 4
CONNECTIONS = 16


@dataclass
class WrkResult:
    requests_per_second: float
    requests: int
    transfer: str
    latency: str
    errors: int


def wrk(url: str, *, seconds: int = WRK_SECONDS, connections: int = CONNECTIONS, headers: dict[str, str] | None = None) -> WrkResult:
    """One bounded wrk run against a loopback URL."""
    assert url.startswith(("http://127.", "http://[::1]")), "load goes to loopback only"
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 60).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    transfer = re.search(r"Transfer/sec:\s+(\S+)", output)
    latency = re.search(r"Latency\s+(\S+)", output)
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)|Socket errors: connect (\d+)", output)
                 for n in n if n)
    if not rate:
        raise RuntimeError(f"wrk printed no rate:\n{output}")
    return WrkResult(float(rate.group(1)), int(total.group(1)) if total else 0,
                     transfer.group(1) if transfer else "?", latency.group(1) if latency else "?", errors)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def start_download_stack(data: BenchData) -> tuple[Stack, subprocess.Popen[bytes]]:
    """The app stack, plus on the same nginx an unprotected location and a FileResponse app."""
    streaming_port = free_port()
    extra = (
        "location /unprotected/ { alias $secure_link_media_root/; }\n"
        f"location /filresponse/ {{ proxy_pass http://127.0.0.1:{streaming_port}/; proxy_set_header Host $http_host; }}\n"
    )
    stack = start_stack(data.var_dir, env=data.env, extra_site_directives=extra, workers=2)
    streaming = start_gunicorn({**data.env, "SECURE_LINK_SERVE_WITH_DJANGO": "1"}, streaming_port, workers=2,
                               log=data.var_dir / "gunicorn-streaming.log")
    return stack, streaming


def run(report: Report, data: BenchData, progress: Callable[[str], None]) -> None:
    stack, streaming = start_download_stack(data)
    try:
        _throughput(report, stack, data, progress)
        _memory(report, stack, streaming, data, progress)
    finally:
        stop_process(streaming)
        stack.stop()


def _targets_for(stack: Stack, data: BenchData, label: str) -> dict[str, tuple[str, dict[str, str]]]:
    key_set = parse_key_set((stack.var_dir / "secure_link.keys").read_text())
    signer = SecureLinkSigner(keys=key_set.keys, active_kid=key_set.signing_kid or "")
    auth = {"Authorization": f"Token {data.token}"}
    image_id = data.images[label]
    return {
        "unprotected static": (f"/unprotected/{data.names[label]}", {}),
        "signed link": (signer.sign("/media/" + data.names[label], ttl=3600).url, {}),
        "compatibility view (X-Accel)": (f"/download/image/{image_id}", auth),
        "Django FileResponse": (f"/filresponse/download/image/{image_id}", auth),
    }


def _check(stack: Stack, target: str, headers: dict[str, str], expected: bytes) -> None:
    response = fetch(stack.base_url, target, headers=headers, timeout=60)
    if response.status != 200 or response.body != expected:
        raise RuntimeError(f"{target} answered {response.status} with {len(response.body)} bytes, not the file")


def _throughput(report: Report, stack: Stack, data: BenchData, progress: Callable[[str], None]) -> None:
    for label in ("20KB", "10MB"):
        section = f"Downloads, {label} file (wrk, {CONNECTIONS} connections, {WRK_SECONDS} s each, one nginx)"
        expected = (data.var_dir / "media" / data.names[label]).read_bytes()
        rates = {}
        for scenario, (target, headers) in _targets_for(stack, data, label).items():
            _check(stack, target, headers, expected)
            progress(f"downloads: {label} {scenario}")
            nginx_workers = worker_pids(stack.nginx.process)
            cpu_before = cpu_seconds(nginx_workers)
            result = wrk(stack.base_url + target, headers=headers)
            nginx_cpu = (cpu_seconds(nginx_workers) - cpu_before) / max(result.requests, 1) * 1e6
            if result.errors:
                raise RuntimeError(f"{scenario}: {result.errors} failed requests under load")
            rates[scenario] = report.add(section, scenario, result.requests_per_second, "req/s",
                                         f"{result.transfer}/s, mean latency {result.latency}, "
                                         f"nginx CPU {nginx_cpu:.1f} µs/request").value
        report.target(f"signed / unprotected static ({label})", rates["signed link"] / rates["unprotected static"], 0.95)
        report.target(f"signed / compatibility view ({label})", rates["signed link"] / rates["compatibility view (X-Accel)"], 20)


def worker_pids(master: subprocess.Popen[bytes]) -> list[int]:
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def peak_rss_during(master: subprocess.Popen[bytes], load: Callable[[], object]) -> tuple[int, int]:
    """(largest worker RSS before, largest worker RSS while ``load`` runs), in KiB."""
    before = max(rss_kib(pid) for pid in worker_pids(master))
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            for pid in worker_pids(master):
                try:
                    peak = max(peak, rss_kib(pid))
                except OSError:
                    pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        load()
    finally:
        done.set()
        sampler.join()
    return before, peak


def _memory(report: Report, stack: Stack, streaming: subprocess.Popen[bytes], data: BenchData,
            progress: Callable[[str], None]) -> None:
    section = f"Memory: Django worker while {CONNECTIONS} clients download a 100 MB file"
    targets = _targets_for(stack, data, "100MB")
    peaks = {}
    for scenario, master in (("compatibility view (X-Accel)", stack.gunicorn), ("Django FileResponse", streaming)):
        target, headers = targets[scenario]
        progress(f"memory: {scenario}")
        before, peak = peak_rss_during(master, lambda: wrk(stack.base_url + target, seconds=5, headers=headers))
        peaks[scenario] = peak
        report.add(section, f"{scenario}: peak worker RSS", peak / 1024, "MiB", f"{before / 1024:.1f} MiB before the load")
    report.add(section, "FileResponse peak / X-Accel peak", peaks["Django FileResponse"] / peaks["compatibility view (X-Accel)"], "x")
