"""Section 7: what a user gains. API latency while slow clients download a large file.

Four API clients list images (``GET /api/images/?page_size=20``) in a loop while 32 slow
clients (2 MB/s each) download a 100 MB file: by signed link (nginx alone), through the
compatibility view (Django checks, nginx sends), and through Django's ``FileResponse`` from
the same gunicorn workers that answer the API (no nginx in between, as when Django serves
files itself). Each run lasts a fixed time; every socket is closed at its end.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from harness.ports import free_port, stop_process
from harness.stack import start_gunicorn

from .downloads_bench import start_download_stack
from .budget import BUDGET
from .results import Report
from .setup import BenchData

SLOW_CLIENTS = 32
RATE = 2 * 1024 * 1024  # bytes a second, per slow client
API_CLIENTS = 4
SECONDS = 4.0
REPEATS = 3


def run(report: Report, data: BenchData, progress: Callable[[str], None]) -> None:
    stack, streaming = start_download_stack(data)
    direct_port = free_port()
    direct = start_gunicorn({**data.env, "SECURE_LINK_SERVE_WITH_DJANGO": "1"}, direct_port, workers=2,
                            log=data.var_dir / "gunicorn-direct.log")
    try:
        signer = stack.signer()
        image_id, name = data.images["100MB"], data.names["100MB"]
        auth = {"Authorization": f"Token {data.token}"}
        direct_base = f"http://127.0.0.1:{direct_port}"
        scenarios = {
            "idle (no downloads)": (stack.base_url, None),
            "signed link (nginx)": (stack.base_url, stack.base_url + signer.sign("/media/" + name, ttl=3600).url),
            "compatibility view (X-Accel)": (stack.base_url, f"{stack.base_url}/download/image/{image_id}"),
            "Django FileResponse, same workers": (direct_base, f"{direct_base}/download/image/{image_id}"),
        }
        section = (f"API latency (GET /api/images/?page_size=20, {API_CLIENTS} clients) while {SLOW_CLIENTS} clients "
                   f"download a 100 MB file at 2 MB/s each ({BUDGET.seconds(SECONDS):.0f} s a run)")
        p99: dict[str, list[float]] = {scenario: [] for scenario in scenarios}
        # Idle and signed link alternate REPEATS times: the target holds across repeats.
        order = [*[s for _ in range(BUDGET.count(REPEATS, 1)) for s in list(scenarios)[:2]], *list(scenarios)[2:]]
        for scenario in order:
            api_base, download_url = scenarios[scenario]
            progress(f"gain: {scenario} ({len(p99[scenario]) + 1})")
            latencies, answered, timeouts = api_latency_under_load(api_base, download_url, auth)
            if latencies:
                p50 = statistics.median(latencies)
                p99[scenario].append(statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 2 else latencies[0])
                report.add(section, f"{scenario}: p99 (run {len(p99[scenario])})", p99[scenario][-1] * 1000, "ms",
                           f"p50 {p50 * 1000:.1f} ms; {answered} answers, {timeouts} without an answer in {BUDGET.seconds(SECONDS):.0f} s")
            else:
                p99[scenario].append(SECONDS)
                report.add(section, f"{scenario}: no API answer at all", SECONDS * 1000, "ms",
                           f"{timeouts} requests without an answer in {BUDGET.seconds(SECONDS):.0f} s")
        ratios = [signed / idle for signed, idle in zip(p99["signed link (nginx)"], p99["idle (no downloads)"], strict=True)]
        report.target("API p99 while 32 slow clients download by signed link / idle (worst of the repeats)", max(ratios),
                      1.5, higher_is_better=False, note="repeats " + ", ".join(f"{ratio:.2f}x" for ratio in ratios))
    finally:
        stop_process(direct)
        stop_process(streaming)
        stack.stop()


def api_latency_under_load(api_base: str, download_url: str | None,
                           headers: dict[str, str]) -> tuple[list[float], int, int]:
    """(latencies in s, answers, requests without an answer) of API calls while slow clients download."""
    stop = threading.Event()
    deadline = time.monotonic() + BUDGET.seconds(SECONDS)
    downloaders = [threading.Thread(target=slow_download, args=(download_url, headers, stop))
                   for _ in range(SLOW_CLIENTS if download_url else 0)]
    for thread in downloaders:
        thread.start()
    time.sleep(1.0 if download_url else 0)  # let the downloads take hold of their servers
    latencies: list[float] = []
    timeouts = [0]
    lock = threading.Lock()

    def call_api() -> None:
        while time.monotonic() < deadline:
            started = time.monotonic()
            status = http_get(api_base + "/api/images/?page_size=20", headers, timeout=max(0.1, deadline - started))
            with lock:
                if status == 200:
                    latencies.append(time.monotonic() - started)
                else:
                    timeouts[0] += 1

    callers = [threading.Thread(target=call_api) for _ in range(API_CLIENTS)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    stop.set()
    for thread in downloaders:
        thread.join(timeout=10)
    return latencies, len(latencies), timeouts[0]


def http_get(url: str, headers: dict[str, str], timeout: float) -> int | None:
    """The status of one GET, or None when no answer came in time."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as connection:
            request = f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
            request += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
            connection.sendall(request.encode())
            head = b""
            while b"\r\n" not in head:
                chunk = connection.recv(4096)
                if not chunk:
                    return None
                head += chunk
            while connection.recv(65536):
                pass
            return int(head.split(b" ", 2)[1])
    except OSError:
        return None


def slow_download(url: str | None, headers: dict[str, str], stop: threading.Event) -> None:
    """Read ``url`` at RATE bytes a second until ``stop`` (a client on a slow line)."""
    assert url is not None
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=SECONDS + 5) as connection:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            request = f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
            request += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
            connection.sendall(request.encode())
            started, received = time.monotonic(), 0
            while not stop.is_set():
                chunk = connection.recv(64 * 1024)
                if not chunk:
                    return
                received += len(chunk)
                ahead = received / RATE - (time.monotonic() - started)
                if ahead > 0:
                    stop.wait(ahead)
    except OSError:
        return
