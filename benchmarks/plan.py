"""What a run does: how much work (the default, under ten minutes on two cores, or `--quick`), and with what."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.processes import LeftoverWatch
from benchmarks.stats import Results
from benchmarks.targets import Sandbox, Target

__all__ = ["DEFAULT", "QUICK", "Plan", "Run"]


@dataclass(frozen=True, slots=True)
class Plan:
    """Counts per workload; every count is per target, and warm counts are per A/B round."""

    # Warm workloads: A/B rounds, and per round the calls, listings and 100 KB results timed.
    rounds: int
    calls: int
    lists: int
    blobs: int
    # Throughput: A/B rounds, and calls per round at each in-flight level (a multiple of 64).
    burst_rounds: int
    burst: int
    # Fresh processes timed from spawn to first result, per target.
    cold_starts: int
    # Fresh proxies timed on their first call to the last of 10 and of 50 servers, per fleet.
    lazy_starts: int
    # A/B rounds of listing 1,000 cached tools, and listings per round.
    catalog_rounds: int
    catalog_lists: int
    # Unmeasured calls (or listings) per target before a warm workload starts timing.
    warmup: int = 30


# Every warm `tools/call` and `tools/list` percentile is over 1,000 requests per target (10 rounds × 100).
DEFAULT = Plan(
    rounds=10,
    calls=100,
    lists=100,
    blobs=20,
    burst_rounds=4,
    burst=256,
    cold_starts=5,
    lazy_starts=3,
    catalog_rounds=6,
    catalog_lists=15,
)

QUICK = Plan(
    rounds=3,
    calls=60,
    lists=40,
    blobs=8,
    burst_rounds=2,
    burst=128,
    cold_starts=1,
    lazy_starts=1,
    catalog_rounds=3,
    catalog_lists=5,
    warmup=10,
)


@dataclass(frozen=True, slots=True)
class Run:
    """Everything a workload needs: the plan, the targets, where to put files and results."""

    plan: Plan
    sandbox: Sandbox
    results: Results
    watch: LeftoverWatch
    # The echo server over stdio, and the proxy in front of it with a one-server local config.
    direct: Target
    proxy: Target
    # The proxy serving the self-hosted App's one echo server; None when the App did not start.
    proxy_app: Target | None = None
    peers: tuple[Target, ...] = ()
