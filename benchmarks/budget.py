"""How long the benchmark measures: the full run (``make bench``) or a smoke run (``make bench-quick``).

Every duration and repeat count of the sections goes through :data:`BUDGET`, so a smoke run
exercises every section, every config variant and every check of the full run, with runs of
a second: its figures show that the benchmark works, never how fast anything is, and it
gives no verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Budget:
    quick: bool = False

    def pairs(self, pairs: int) -> int:
        """Alternating pairs of runs: one in a smoke run."""
        return 1 if self.quick else pairs

    def seconds(self, seconds: float) -> float:
        """The length of one load run: one second in a smoke run."""
        return min(seconds, 1) if self.quick else seconds

    def count(self, count: int, smoke: int) -> int:
        """A number of items (rounds, links, ranges): ``smoke`` of them in a smoke run."""
        return min(count, smoke) if self.quick else count


BUDGET = Budget()
