"""Load from wrk, bounded in time, sent to loopback only."""

from __future__ import annotations

import re
import resource
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .budget import BUDGET

WRK_SECONDS = 3
CONNECTIONS = 16


@dataclass
class WrkResult:
    requests_per_second: float
    requests: int
    transfer: str
    latency: str
    errors: int
    cpu_seconds: float = 0.0  # wrk's own user + system CPU time
    seconds: float = 0.0
    percentiles: dict[int, float] = field(default_factory=dict)  # with percentiles=True: 50, 75, 90, 99 -> ms

    @property
    def client_load(self) -> float:
        """wrk's CPU time over the run's length: 1.0 is a saturated core."""
        return self.cpu_seconds / self.seconds if self.seconds else 0.0


def wrk(url: str, *, seconds: float = WRK_SECONDS, connections: int = CONNECTIONS, headers: dict[str, str] | None = None,
        script: Path | None = None, percentiles: bool = False) -> WrkResult:
    """One bounded wrk run against a loopback URL (``script``: a wrk Lua script choosing the requests;
    ``percentiles``: the latency distribution too); a smoke run (:data:`benchmarks.budget.BUDGET`)
    makes it one second long."""
    assert url.startswith(("http://127.", "http://[::1]")), "load goes to loopback only"
    seconds = int(BUDGET.seconds(seconds))
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s"]
    if script is not None:
        command += ["-s", str(script)]
    if percentiles:
        command.append("--latency")
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 60).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    transfer = re.search(r"Transfer/sec:\s+(\S+)", output)
    latency = re.search(r"Latency\s+(\S+)", output)
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)|Socket errors: connect (\d+)", output)
                 for n in n if n)
    if not rate:
        raise RuntimeError(f"wrk printed no rate:\n{output}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    distribution = {int(share): float(value) * scale[unit]
                    for share, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)}
    return WrkResult(float(rate.group(1)), int(total.group(1)) if total else 0,
                     transfer.group(1) if transfer else "?", latency.group(1) if latency else "?", errors, cpu, seconds,
                     distribution)


def rotating_script(folder: Path, targets: list[str]) -> Path:
    """A wrk script that asks each of ``targets`` (paths with their query) in turn, once each.

    wrk runs with one thread (``-t1``), so one Lua state walks the list; a run that asks
    for more than there are starts again at the first.
    """
    listing = folder / "targets.txt"
    listing.write_text("".join(f"{target}\n" for target in targets))
    script = folder / "rotate.lua"
    script.write_text(
        f'local targets = {{}}\nfor line in io.lines("{listing}") do targets[#targets + 1] = line end\n'
        "local next_index = 0\n"
        "request = function()\n"
        "  next_index = next_index % #targets + 1\n"
        '  return wrk.format("GET", targets[next_index])\n'
        "end\n"
    )
    return script
