"""Sections 2 and 4: downloads through one nginx with wrk, and the Django worker's memory."""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.ports import free_port, stop_process
from harness.stack import Stack, start_gunicorn, start_stack
from tests.client import fetch

from .load import CONNECTIONS, WRK_SECONDS, wrk
from .pinned import measure_pairs
from .results import Report
from .setup import BenchData

PINNED_ROUNDS = {"20KB": 6, "10MB": 4}
PINNED_SECONDS = 4


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
        "location /unprotected-again/ { alias $secure_link_media_root/; }\n"  # the A/A control
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
    signer = stack.signer()
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
        report.target(f"signed / compatibility view ({label})", rates["signed link"] / rates["compatibility view (X-Accel)"], 20)
        _signed_against_static(report, stack, data, label, progress)


def _signed_against_static(report: Report, stack: Stack, data: BenchData, label: str,
                           progress: Callable[[str], None]) -> None:
    """Signed links against static files, pinned and in alternating rounds, with an A/A control."""
    signer = stack.signer()
    name = data.names[label]
    targets = {
        "unprotected static": f"/unprotected/{name}",
        "unprotected static again (A/A control)": f"/unprotected-again/{name}",
        "signed link": signer.sign("/media/" + name, ttl=3600).url,
        "signed link with filename and disposition": signer.sign("/media/" + name, ttl=3600, filename="photo é.bmp",
                                                                 disposition="inline").url,
    }
    rounds = PINNED_ROUNDS[label]
    progress(f"downloads: {label} signed against static, pinned, {rounds} alternating rounds")
    load_before = os.getloadavg()[0]
    paired = measure_pairs(stack.nginx, targets, pairs=rounds, seconds=PINNED_SECONDS)
    section = (f"Signed links against static files, {label} (nginx and wrk pinned apart, {rounds} alternating rounds of "
               f"{PINNED_SECONDS} s; load average {load_before:.2f} before)")
    control, control_low, control_high = paired.median_ratio("unprotected static again (A/A control)", "unprotected static")
    valid = abs(control - 1) <= 0.03
    for scenario in targets:
        median, low, high = paired.median_ratio(scenario, "unprotected static")
        report.add(section, f"{scenario} / static", median, "x",
                   f"rounds {low:.2f}-{high:.2f}; by CPU {paired.cpu_ratio(scenario, 'unprotected static'):.2f}x; "
                   f"worker user {statistics.median(paired.user_us[scenario]):.2f} µs + system "
                   f"{statistics.median(paired.system_us[scenario]):.2f} µs per request")
    if not valid:
        report.add(section, "run rejected: the A/A control is more than 3% off", control, "x",
                   f"rounds {control_low:.2f}-{control_high:.2f}; the targets below use this run anyway, marked")
    suffix = "" if valid else " (control off: rerun)"
    if label == "20KB":
        report.target(f"signed / static, 20KB, by CPU{suffix}", paired.cpu_ratio("signed link", "unprotected static"), 0.95)
        report.target(f"signed with filename / static, 20KB, by CPU{suffix}",
                      paired.cpu_ratio("signed link with filename and disposition", "unprotected static"), 0.92)
    else:
        report.target(f"signed / static, {label}{suffix}", paired.median_ratio("signed link", "unprotected static")[0], 0.98)


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
