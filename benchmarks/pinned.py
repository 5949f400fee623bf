"""Paired, pinned throughput measurements of locations of one nginx.

nginx (master and workers) runs on one core and wrk on the other; the scenarios are measured
back to back in alternating order (A-B, B-A, ...), so that drift in the machine's load hits
them alike. Besides the request rates, the worker's user and system CPU time per request is
read from /proc. Every verdict is by all the CPU a request costs the worker (user + system):
the kernel's part repeats too (the A/A control shows it), and a check that adds syscalls adds
to it. With nginx alone on its core, one over the CPU per request is its rate.

A run is trusted only when its A/A control (a second, identical unprotected location) is
within 3% of the first by total CPU per request, the measure every target is judged by.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness.nginx import NginxServer
from harness.ports import child_pids

from .budget import BUDGET
from .load import wrk
from .results import Report

PAIRS = 6  # six back-to-back pairs ...
SECONDS = 2  # ... of two seconds each (60,000+ requests at 20 KB), for every figure that has a target
CONTROL_TOLERANCE = 0.03  # the A/A control may be this far from 1.00
CONTROL = "unprotected static again (A/A control)"
STATIC = "unprotected static"


@dataclass
class PairedResult:
    rates: dict[str, list[float]]  # scenario -> requests/s per run
    user_us: dict[str, list[float]]  # scenario -> worker user CPU µs per request
    system_us: dict[str, list[float]]
    client_load: dict[str, list[float]]  # scenario -> wrk's CPU time / wall time per run
    load_averages: list[float] = field(default_factory=list)  # the 1-minute load average before each run
    pairs: int = 0
    seconds: int = 0
    control: tuple[str, str] = (CONTROL, STATIC)  # the A/A control and the scenario it repeats

    def median_ratio(self, numerator: str, denominator: str) -> tuple[float, float, float]:
        """Median, min and max of the per-pair rate ratios."""
        ratios = [a / b for a, b in zip(self.rates[numerator], self.rates[denominator], strict=True)]
        return statistics.median(ratios), min(ratios), max(ratios)

    def extra_user_us(self, numerator: str, denominator: str) -> float:
        """The numerator's median worker user CPU per request above the denominator's."""
        return statistics.median(self.user_us[numerator]) - statistics.median(self.user_us[denominator])

    def cpu_us(self, scenario: str) -> float:
        """Median worker CPU (user + system) µs per request."""
        return statistics.median(self.user_us[scenario]) + statistics.median(self.system_us[scenario])

    def extra_system_us(self, numerator: str, denominator: str) -> float:
        """The numerator's median worker system CPU per request above the denominator's."""
        return statistics.median(self.system_us[numerator]) - statistics.median(self.system_us[denominator])

    def extra_cpu_us(self, numerator: str, denominator: str) -> float:
        """The numerator's worker CPU (user + system) per request above the denominator's."""
        return self.cpu_us(numerator) - self.cpu_us(denominator)

    def extra_text(self, numerator: str, denominator: str) -> str:
        """"+U µs user + S µs system": where the numerator's extra CPU per request goes."""
        return (f"{self.extra_user_us(numerator, denominator):+.2f} µs user "
                f"{self.extra_system_us(numerator, denominator):+.2f} µs system")

    def cpu_ratio(self, numerator: str, denominator: str) -> float:
        """The denominator's total CPU per request over the numerator's (user and system alike; before
        issue 31 only user time counted): the rate ratio of a worker alone on its core. The median of
        the pairs' ratios, so that a pair the machine disturbed moves both of its runs and the
        verdict not at all."""
        return statistics.median(
            (base_user + base_system) / (user + system) for user, system, base_user, base_system in zip(
                self.user_us[numerator], self.system_us[numerator], self.user_us[denominator],
                self.system_us[denominator], strict=True))

    def median(self, scenario: str) -> float:
        return statistics.median(self.rates[scenario])

    @property
    def load_text(self) -> str:
        return f"load average {min(self.load_averages):.2f}-{max(self.load_averages):.2f}"

    def problems(self) -> list[str]:
        """Why this run cannot be trusted (empty when it can).

        Every target is judged by CPU per request, which does not depend on who set the rate
        (nginx, or a wrk that saturated its core): the A/A control by CPU decides. The
        control's rate ratio and wrk's load are reported beside it.
        """
        found = []
        control, repeated = self.control
        if control in self.rates:
            control_by_cpu = self.cpu_ratio(control, repeated)
            if abs(control_by_cpu - 1) > CONTROL_TOLERANCE:
                found.append(f"the A/A control is {control_by_cpu:.2f}x by CPU, more than {CONTROL_TOLERANCE:.0%} off")
        return found

    @property
    def busiest_client(self) -> float:
        """wrk's highest share of its core in any run."""
        return max(max(loads) for loads in self.client_load.values())

    def add_rows(self, report: Report, section: str, base: str = STATIC) -> None:
        """One row per scenario against ``base``: paired rate ratio, ratio by CPU, CPU per request."""
        for scenario in self.rates:
            median, low, high = self.median_ratio(scenario, base)
            report.add(section, f"{scenario} / {base}", median, "x",
                       f"pairs {low:.2f}-{high:.2f}; by CPU {self.cpu_ratio(scenario, base):.2f}x; "
                       f"{self.median(scenario):,.0f} req/s; worker user {statistics.median(self.user_us[scenario]):.2f} µs "
                       f"+ system {statistics.median(self.system_us[scenario]):.2f} µs per request; "
                       f"wrk at {max(self.client_load[scenario]):.0%} of its core")
        aa, repeated = self.control
        control = (f"; A/A control by rate {self.median_ratio(aa, repeated)[0]:.2f}x, by CPU "
                   f"{self.cpu_ratio(aa, repeated):.2f}x" if aa in self.rates else "")
        report.add(section, "method", self.pairs, "pairs",
                   f"{self.seconds} s runs, alternating order; {self.load_text}{control}; wrk at most at "
                   f"{self.busiest_client:.0%} of its core; "
                   + ("; ".join(self.problems()) or "run accepted"))


@dataclass(frozen=True)
class OtherServer:
    """A server that is not nginx (the storage, asked directly): every thread of its one process counts."""

    base_url: str
    pid: int


Server = NginxServer | OtherServer


def nginx_pids(server: NginxServer) -> list[int]:
    """The master's pid, then its workers' (not the cache manager and loader)."""
    workers = [pid for pid in child_pids(server.process.pid)
               if b"worker process" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    return [server.process.pid, *workers]


def counted_pids(server: Server) -> list[int]:
    """The processes whose CPU a request to ``server`` costs: nginx's workers, or the other server's process."""
    return [server.pid] if isinstance(server, OtherServer) else nginx_pids(server)[1:]


def cpu_times(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of ``pids`` (each with all its threads)."""
    user = system = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])
    ticks = os.sysconf("SC_CLK_TCK")
    return user / ticks, system / ticks


@contextmanager
def pinned(server: NginxServer) -> Iterator[list[int]]:
    """nginx on the first allowed core, this process (and the wrk it starts) on the second."""
    pids = nginx_pids(server)
    with pinned_pids(pids):
        yield pids


@contextmanager
def pinned_pids(pids: list[int]) -> Iterator[None]:
    """``pids`` (with their threads) on the first allowed core, this process (and its wrk) on the second."""
    cores = sorted(os.sched_getaffinity(0))
    mine = os.sched_getaffinity(0)
    threads = [int(task) for pid in pids for task in os.listdir(f"/proc/{pid}/task")]
    if len(cores) >= 2:
        for thread in threads:
            os.sched_setaffinity(thread, {cores[0]})
        os.sched_setaffinity(0, {cores[1]})
    try:
        yield
    finally:
        os.sched_setaffinity(0, mine)
        for thread in threads:
            try:
                os.sched_setaffinity(thread, mine)
            except ProcessLookupError:  # a thread that ended meanwhile
                pass


def measure_trusted_pairs(server: NginxServer, targets: Mapping[str, str | Path], *,
                          progress: Callable[[str], None], **options: Any) -> tuple[PairedResult, str]:
    """``measure_pairs``, once more if the run is rejected; returns the result and why it is still rejected ("")."""
    paired = measure_pairs(server, targets, **options)
    if BUDGET.quick:  # a smoke run has no verdicts to rescue
        return paired, "smoke run (make bench-quick): no verdict"
    if rejected := "; ".join(paired.problems()):
        progress(f"run rejected ({rejected}): measuring once more")
        paired = measure_pairs(server, targets, **options)
        rejected = "; ".join(paired.problems())
    return paired, rejected


def measure_pairs(server: NginxServer, targets: Mapping[str, str | Path], *, pairs: int = PAIRS,
                  seconds: int = SECONDS, before_run: Callable[[str], None] | None = None,
                  servers: Mapping[str, Server] | None = None,
                  also_counted: Mapping[str, Sequence[Server]] | None = None,
                  control: tuple[str, str] = (CONTROL, STATIC)) -> PairedResult:
    """``pairs`` back-to-back runs of each target (alternating order), the servers and wrk pinned apart.

    A target is a path with its query, or a wrk script (:func:`benchmarks.load.rotating_script`);
    ``servers`` names another server for some scenarios (all pinned to the same core);
    ``also_counted`` names, for a scenario, the servers behind the one asked whose CPU the
    request costs too (an origin's storage); ``control`` names the A/A control and the scenario it
    repeats; ``before_run(name)`` runs, unmeasured, before each run.
    """
    names = list(targets)
    pairs, seconds = BUDGET.pairs(pairs), int(BUDGET.seconds(seconds))
    result = PairedResult(rates={n: [] for n in names}, user_us={n: [] for n in names},
                          system_us={n: [] for n in names}, client_load={n: [] for n in names}, pairs=pairs,
                          seconds=seconds, control=control)
    serving: dict[str, Server] = {name: (servers or {}).get(name, server) for name in names}
    behind = {name: list((also_counted or {}).get(name, ())) for name in names}
    every = {id(one): one for one in [*serving.values(), *(one for ones in behind.values() for one in ones)]}
    pinned_set = [pid for one in every.values()
                  for pid in ([one.pid] if isinstance(one, OtherServer) else nginx_pids(one))]
    counted = {name: [pid for one in (serving[name], *behind[name]) for pid in counted_pids(one)] for name in names}
    with pinned_pids(pinned_set):
        for index in range(pairs):
            for name in names if index % 2 == 0 else reversed(names):
                if before_run is not None:
                    before_run(name)
                result.load_averages.append(os.getloadavg()[0])
                target, answering = targets[name], serving[name]
                user_before, system_before = cpu_times(counted[name])
                if isinstance(target, Path):
                    run = wrk(answering.base_url + "/", seconds=seconds, script=target)
                else:
                    run = wrk(answering.base_url + target, seconds=seconds)
                if run.errors:
                    raise RuntimeError(f"{name}: {run.errors} failed requests under load")
                user_after, system_after = cpu_times(counted[name])
                result.rates[name].append(run.requests_per_second)
                result.user_us[name].append((user_after - user_before) / max(run.requests, 1) * 1e6)
                result.system_us[name].append((system_after - system_before) / max(run.requests, 1) * 1e6)
                result.client_load[name].append(run.client_load)
    return result
