"""Paired, pinned throughput measurements of two locations of one nginx.

nginx (master and workers) runs on one core and wrk on the other; the two scenarios are
measured back to back in alternating order (A-B, B-A, ...), so that drift in the machine's
load hits both alike. Besides the request rates, the worker's user and system CPU time per
request is read from /proc: user time repeats within a fraction of a microsecond, while
kernel time (the network stack) is where the run-to-run noise lives.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.nginx import NginxServer

from .load import wrk


@dataclass
class PairedResult:
    rates: dict[str, list[float]]  # scenario -> requests/s per run
    user_us: dict[str, list[float]]  # scenario -> worker user CPU µs per request
    system_us: dict[str, list[float]]

    def median_ratio(self, numerator: str, denominator: str) -> tuple[float, float, float]:
        """Median, min and max of the per-pair rate ratios."""
        ratios = [a / b for a, b in zip(self.rates[numerator], self.rates[denominator], strict=True)]
        return statistics.median(ratios), min(ratios), max(ratios)

    def cpu_ratio(self, numerator: str, denominator: str) -> float:
        """T_base / (T_base + extra user µs): the throughput ratio if only the extra work differed."""
        base = statistics.median(self.user_us[denominator]) + statistics.median(self.system_us[denominator])
        extra = statistics.median(self.user_us[numerator]) - statistics.median(self.user_us[denominator])
        return base / (base + extra)

    def median(self, scenario: str) -> float:
        return statistics.median(self.rates[scenario])


def nginx_pids(server: NginxServer) -> list[int]:
    """The master's pid, then its workers' (not the cache manager and loader)."""
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    workers = [int(pid) for pid in children if b"worker process" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    return [server.process.pid, *workers]


def worker_times(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of the workers (every pid but the master's)."""
    user = system = 0
    for pid in pids[1:]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])
    ticks = os.sysconf("SC_CLK_TCK")
    return user / ticks, system / ticks


@contextmanager
def pinned(server: NginxServer) -> Iterator[list[int]]:
    """nginx on the first allowed core, this process (and the wrk it starts) on the second."""
    cores = sorted(os.sched_getaffinity(0))
    mine = os.sched_getaffinity(0)
    pids = nginx_pids(server)
    if len(cores) >= 2:
        for pid in pids:
            os.sched_setaffinity(pid, {cores[0]})
        os.sched_setaffinity(0, {cores[1]})
    try:
        yield pids
    finally:
        os.sched_setaffinity(0, mine)
        for pid in pids:
            os.sched_setaffinity(pid, mine)


def measure_pairs(server: NginxServer, targets: dict[str, str], *, pairs: int = 4, seconds: int = 4) -> PairedResult:
    """``pairs`` back-to-back runs of each target (alternating order), nginx and wrk pinned apart."""
    names = list(targets)
    result = PairedResult({n: [] for n in names}, {n: [] for n in names}, {n: [] for n in names})
    with pinned(server) as pids:
        for index in range(pairs):
            for name in names if index % 2 == 0 else reversed(names):
                user_before, system_before = worker_times(pids)
                run = wrk(server.base_url + targets[name], seconds=seconds)
                if run.errors:
                    raise RuntimeError(f"{name}: {run.errors} failed requests under load")
                user_after, system_after = worker_times(pids)
                result.rates[name].append(run.requests_per_second)
                result.user_us[name].append((user_after - user_before) / max(run.requests, 1) * 1e6)
                result.system_us[name].append((system_after - system_before) / max(run.requests, 1) * 1e6)
    return result
