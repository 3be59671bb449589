"""Samples grouped by repeat, and the few statistics the report needs.

A measurement is made of repeats: each repeat is one A/B round in which every target ran the
same chunk of work back to back, so slow drift of the machine lands on all targets alike. A
headline number is the median of the per-repeat medians; tail percentiles are taken over all
samples pooled, since one repeat rarely holds enough calls for a stable p99.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Aggregate", "Results", "Samples", "percentile"]

# How a row turns samples into one number: median of per-repeat medians, or mean, percentile or max of all.
Aggregate = Literal["median", "mean", "p50", "p90", "p99", "max"]


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0–100) of `values`, interpolating linearly between ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(slots=True)
class Samples:
    """One target's samples of one measurement, a list per repeat."""

    repeats: list[list[float]] = field(default_factory=list)

    def add(self, values: Iterable[float]) -> None:
        """Record one repeat's samples."""
        self.repeats.append(list(values))

    @property
    def pooled(self) -> list[float]:
        return [value for repeat in self.repeats for value in repeat]

    def value(self, how: Aggregate) -> float | None:
        """The number a report row shows, or None when nothing was recorded."""
        pooled = self.pooled
        if not pooled:
            return None
        if how == "median":
            return statistics.median(statistics.median(r) for r in self.repeats if r)
        if how == "mean":
            return statistics.fmean(pooled)
        if how == "max":
            return max(pooled)
        return percentile(pooled, float(how[1:]))

    def summary(self) -> dict[str, Any]:
        """What the JSON file keeps: counts, per-repeat medians and pooled percentiles, not every sample."""
        pooled = self.pooled
        if not pooled:
            return {"n": 0}
        return {
            "n": len(pooled),
            "repeat_medians": [statistics.median(r) for r in self.repeats if r],
            "median": self.value("median"),
            "p50": percentile(pooled, 50),
            "p90": percentile(pooled, 90),
            "p99": percentile(pooled, 99),
            "min": min(pooled),
            "max": max(pooled),
        }


@dataclass(slots=True)
class Results:
    """Every measurement of one run, keyed by measurement then target, plus why any was skipped.

    Measurements are named `<workload>.<what>` (`warm.call_ms`), so a workload that failed as a
    whole explains every row drawn from it.
    """

    samples: dict[str, dict[str, Samples]] = field(default_factory=dict)
    # A workload or measurement, alone or as "…/target" -> why it has no samples.
    skipped: dict[str, str] = field(default_factory=dict)

    def add(self, measurement: str, target: str, values: Iterable[float]) -> None:
        """Record one repeat of `measurement` for `target`."""
        self.samples.setdefault(measurement, {}).setdefault(target, Samples()).add(values)

    def skip(self, what: str, reason: str, target: str | None = None) -> None:
        """Say why a workload or measurement (for one target, or for all) was not measured."""
        self.skipped.setdefault(what if target is None else f"{what}/{target}", reason)

    def get(self, measurement: str, target: str) -> Samples | None:
        return self.samples.get(measurement, {}).get(target)

    def reason(self, measurement: str, target: str) -> str | None:
        """Why `measurement` has no samples for `target`, if anyone said."""
        workload = measurement.partition(".")[0]
        for key in (f"{measurement}/{target}", f"{workload}/{target}", measurement, workload):
            if key in self.skipped:
                return self.skipped[key]
        return None
