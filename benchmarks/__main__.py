"""``python -m benchmarks``: every benchmark in one run, side by side; about 10 minutes.

Prints a table of rates and ratios with their targets, writes benchmarks/results.md and
benchmarks/results.png. ``--quick`` is a smoke run of every section in about two minutes
(``make bench-quick``): it writes to var/bench-quick/ and gives no verdicts. Load goes to
loopback only; every process started is stopped.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from harness.ports import stop_like_ctrl_c_on_sigterm

from . import api_bench, downloads_bench, edge_bench, gain_bench, links_bench, s3_bench, signing_bench
from .budget import BUDGET
from .machine import describe
from .results import Report
from .setup import prepare_bench

HERE = Path(__file__).resolve().parent
SIZES = {"20KB": 20_000, "10MB": 10_000_000, "100MB": 100_000_000}
SECTIONS = ("signing", "api", "downloads", "edge", "links", "gain", "s3")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, help="folder for results.md and results.png "
                        "(default: benchmarks/, or var/bench-quick/ with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run of every section, runs of a second, no verdicts (make bench-quick)")
    parser.add_argument("--only", choices=list(SECTIONS), action="append",
                        help="run only these sections (repeatable); the default is every section")
    options = parser.parse_args(argv)
    wanted = options.only or list(SECTIONS)
    BUDGET.quick = options.quick
    output: Path = options.output or (HERE.parent / "var" / "bench-quick" if options.quick else HERE)
    output.mkdir(parents=True, exist_ok=True)
    stop_like_ctrl_c_on_sigterm()  # every started process is stopped on the way out
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:5.1f} s] {message}", flush=True)

    report = Report(describe())
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        progress("preparing Django, the database and files of 20 KB, 10 MB and 100 MB")
        data = prepare_bench(Path(folder) / "var", SIZES)
        if "signing" in wanted:
            cpu = next(iter(os.sched_getaffinity(0)))
            affinity = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {cpu})  # section 1 measures one core
            try:
                signing_bench.run(report, progress)
            finally:
                os.sched_setaffinity(0, affinity)
        if "api" in wanted:
            api_bench.run(report, data, progress)
        if "downloads" in wanted:
            downloads_bench.run(report, data, progress)
        if "edge" in wanted:
            edge_bench.run(report, data, progress)
        if "links" in wanted:
            links_bench.run(report, data, progress)
        if "gain" in wanted:
            gain_bench.run(report, data, progress)
        if "s3" in wanted:
            s3_bench.run(report, data, progress)
    markdown = report.markdown()
    (output / "results.md").write_text(markdown)
    written = [output / "results.md"]
    if report.targets:  # a section without targets has no chart
        report.chart(output / "results.png")
        written.append(output / "results.png")
    print()
    print(markdown)
    print(f"Wrote {' and '.join(map(str, written))} in {time.monotonic() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
