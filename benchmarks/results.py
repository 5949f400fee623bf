"""Measurements, targets and their report: a Markdown table and a bar chart PNG."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .budget import BUDGET


@dataclass
class Rate:
    section: str
    name: str
    value: float
    unit: str
    note: str = ""


@dataclass
class Target:
    name: str
    ratio: float
    goal: float
    higher_is_better: bool = True
    unit: str = "x"  # "x" for a ratio; a count says what it counts
    note: str = ""  # the measured reason when a target is not met
    rejected: str = ""  # why the run behind the figure cannot be trusted: then it has no verdict
    unresolved: str = ""  # why a trusted run still cannot tell met from not met (the gap is within its noise)

    @property
    def met(self) -> bool:
        return not (self.rejected or self.unresolved) and (
            self.ratio >= self.goal if self.higher_is_better else self.ratio <= self.goal)

    @property
    def verdict(self) -> str:
        return "REJECTED" if self.rejected else "CANNOT RESOLVE" if self.unresolved else "met" if self.met else "NOT MET"

    @property
    def goal_text(self) -> str:
        return f"{'>=' if self.higher_is_better else '<='} {self.goal:g}{self.unit}"

    @property
    def measured_text(self) -> str:
        return f"{self.ratio:.2f}{self.unit}" if self.unit == "x" or not self.ratio.is_integer() else f"{self.ratio:g}{self.unit}"


@dataclass
class Report:
    machine: dict[str, str]
    rates: list[Rate] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def add(self, section: str, name: str, value: float, unit: str, note: str = "") -> Rate:
        rate = Rate(section, name, value, unit, note)
        self.rates.append(rate)
        return rate

    def target(self, name: str, ratio: float, goal: float, higher_is_better: bool = True, unit: str = "x",
               note: str = "", rejected: str = "", unresolved: str = "") -> Target:
        if BUDGET.quick:
            rejected = "smoke run (make bench-quick): no verdict"
        if rejected:
            note = f"run rejected: {rejected}; {note}"
        elif unresolved:
            note = f"cannot resolve: {unresolved}; {note}"
        target = Target(name, ratio, goal, higher_is_better, unit, note, rejected, unresolved)
        self.targets.append(target)
        return target

    def markdown(self) -> str:
        lines = ["# Benchmark results", "", "Machine: " + ", ".join(f"{k} {v}" for k, v in self.machine.items()), ""]
        lines += ["## Targets", "", "| ratio | measured | target | met | note |", "|---|---:|---:|---|---|"]
        lines += [f"| {t.name} | {t.measured_text} | {t.goal_text} | {t.verdict} | {t.note} |"
                  for t in self.targets]
        lines += ["", METHOD]
        for section in dict.fromkeys(rate.section for rate in self.rates):
            lines += ["", f"## {section}", "", "| what | rate | note |", "|---|---:|---|"]
            lines += [f"| {r.name} | {format_value(r.value) + ' ' + r.unit if r.value else '-'} | {r.note} |"
                      for r in self.rates if r.section == section]
        return "\n".join(lines) + "\n"

    def chart(self, path: Path) -> None:
        draw_chart(self.targets, path)


METHOD = """\
How these figures are measured. Every figure comes from this one run, side by side. nginx
figures: nginx (master and worker) pinned to one core and wrk to the other; the scenarios run
back to back in alternating order (A-B, B-A, ...), six pairs of 2 s for each figure with a
target; the rate ratio is the median of the per-pair ratios (min-max beside it). Every target
is judged by all the CPU a request costs the worker, user and system: the median over the
pairs of T_base / T, from the worker's utime and stime in /proc (nginx alone on its core: one
over it is the rate); each note says how much of the extra is user and how much system time.
Each such run has an A/A control (a second, identical unprotected location) and is rejected
when the control is more than 3% off by total CPU; a rejected run is measured once more, and
a figure whose second run is rejected too gets no verdict (REJECTED). A figure over its goal
by less than its run's A/A difference gets none either (CANNOT RESOLVE). Syscalls per request
come from strace -c on the worker, outside the timed pairs. CPU per request does not depend
on who set the rate, so a saturated wrk (at 10 MB it copies 3 GB/s out of its sockets) and
the control's rate ratio are reported, not judged.
The load average before every run is recorded. Sections without a target use fewer pairs.
A smoke run (make bench-quick) gives no verdicts."""


def format_value(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def draw_chart(targets: list[Target], path: Path) -> None:
    """One horizontal bar per target: the measured ratio, with the target marked."""
    font = ImageFont.load_default(size=15)
    row, left, width = 46, 430, 520
    image = Image.new("RGB", (left + width + 130, 70 + row * len(targets)), "white")
    draw = ImageDraw.Draw(image)
    draw.text((16, 14), "Measured ratio (bar) against its target (black line); log scale", fill="black", font=font)
    top = max([t.ratio for t in targets] + [t.goal for t in targets]) * 1.2
    import math

    def x_of(value: float) -> float:
        lowest = 0.01
        return left + width * (math.log10(max(value, lowest)) - math.log10(lowest)) / (math.log10(top) - math.log10(lowest))

    for index, target in enumerate(targets):
        y = 50 + index * row
        draw.text((16, y + 8), target.name, fill="black", font=font)
        color = (46, 139, 87) if target.met else (150, 150, 150) if target.rejected else (205, 92, 92)
        draw.rectangle([left, y + 4, x_of(target.ratio), y + row - 12], fill=color)
        goal_x = x_of(target.goal)
        draw.line([goal_x, y, goal_x, y + row - 8], fill="black", width=3)
        rejected = ", run rejected" if target.rejected else ""
        draw.text((x_of(target.ratio) + 8, y + 8), f"{target.measured_text} ({target.goal_text}{rejected})", fill="black",
                  font=font)
    image.save(path)
