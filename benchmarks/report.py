"""The report: one markdown table of medians and ratios to direct, the JSON kept between commits, deltas.

`ROWS` is the table's single definition. Each row reads one measurement, takes the direct
figure from one target and the proxy's from another (for most rows `direct` and `proxy`),
reduces each to one number (`Aggregate`), and checks the proxy's number against the row's
`Goal`, the targets of the benchmark issue. Peers get a column each on the rows measured for
them. `document()` turns a run into the JSON written to `benchmarks/results/`; `render()` and
`compare()` read only that JSON, so an old file prints the same way as a fresh run.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from benchmarks.plan import Plan
from benchmarks.stats import Aggregate, Results

__all__ = ["NOT_RUN", "ROWS", "Goal", "Row", "compare", "document", "machine", "render"]

SCHEMA = 1
# How a skip reason starts when the workload was left out on purpose (`--only`), not because it failed.
NOT_RUN = "not run"


@dataclass(frozen=True, slots=True)
class Goal:
    """A target from the issue: a bound on the proxy's ratio to direct, its added cost, or its value."""

    kind: Literal["ratio_max", "ratio_min", "added_max", "max"]
    limit: float

    def met(self, direct: float | None, proxy: float | None) -> bool | None:
        """Whether `proxy` meets the goal; None when a number it needs is missing."""
        if proxy is None:
            return None
        if self.kind == "max":
            return proxy <= self.limit
        if direct is None or direct == 0:
            return None
        if self.kind == "ratio_max":
            return proxy / direct <= self.limit
        if self.kind == "ratio_min":
            return proxy / direct >= self.limit
        return proxy - direct <= self.limit

    def describe(self, unit: str) -> str:
        limit = f"{self.limit:g}"
        return {
            "ratio_max": f"≤ {limit}× direct",
            "ratio_min": f"≥ {limit}× direct",
            "added_max": f"≤ direct + {limit} {unit}",
            "max": f"≤ {limit} {unit}".rstrip() if self.limit or unit else "none",
        }[self.kind]


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table."""

    key: str
    label: str
    unit: str
    measurement: str
    how: Aggregate = "median"
    direct: str | None = "direct"
    proxy: str = "proxy"
    goal: Goal | None = None
    # Whether proxy/direct means anything (it does not for a process count).
    ratio: bool = True

    @property
    def peers(self) -> bool:
        """Peers are measured on exactly the rows whose proxy figure comes from the plain `proxy` target."""
        return self.proxy == "proxy"


def _on(direct: str | None, proxy: str) -> Callable[..., Row]:
    """A `Row` maker whose direct and proxy figures come from these two targets."""
    return functools.partial(Row, direct=direct, proxy=proxy)


def _http(side: str) -> tuple[Row, ...]:
    """The rows of the proxy serving HTTP (`downstream`) or calling an HTTP server (`upstream`)."""
    row = _on("http-direct", f"http-{side}")
    return (
        row(f"http_{side}_p50", f"HTTP {side}: tools/call p50", "ms", "http.call_ms", goal=Goal("added_max", 0.6)),
        row(f"http_{side}_p99", f"HTTP {side}: tools/call p99", "ms", "http.call_ms", "p99"),
        row(f"http_{side}_cpu", f"HTTP {side}: CPU per call", "ms", "http.call_cpu_ms", "mean"),
        row(f"http_{side}_tput16", f"HTTP {side}: throughput, 16 in flight", "calls/s", "http.tput16"),
    )


_app = _on("direct", "proxy-app")
_fleet = _on("direct-1000", "proxy-50")
_fan_out = _on(None, "proxy-10-all")
_LAZY = "lazy first call to #{n} of {n} (direct: that server's spawn → result)"

ROWS: tuple[Row, ...] = (
    Row("call_p50", "warm tools/call p50", "ms", "warm.call_ms", goal=Goal("ratio_max", 1.5)),
    Row("call_p90", "warm tools/call p90", "ms", "warm.call_ms", "p90"),
    Row("call_p99", "warm tools/call p99", "ms", "warm.call_ms", "p99", goal=Goal("ratio_max", 2.0)),
    Row("call_cpu", "CPU per tools/call, server process only", "ms", "warm.call_cpu_ms", "mean", goal=Goal("max", 0.7)),
    Row("list_p50", "warm tools/list p50 (1 server)", "ms", "warm.list_ms"),
    Row("list_p99", "warm tools/list p99 (1 server)", "ms", "warm.list_ms", "p99"),
    Row("blob_p50", "100 KB result p50", "ms", "warm.blob_ms"),
    Row("blob_p99", "100 KB result p99", "ms", "warm.blob_ms", "p99"),
    Row("tput1", "throughput, 1 in flight", "calls/s", "warm.tput1"),
    Row("tput16", "throughput, 16 in flight", "calls/s", "warm.tput16", goal=Goal("ratio_min", 0.8)),
    Row("tput64", "throughput, 64 in flight", "calls/s", "warm.tput64"),
    Row("rss", "RSS after the warm runs, children excluded", "MB", "warm.rss_mb"),
    Row("procs", "processes after the warm runs (server + children)", "", "warm.procs", "max", ratio=False),
    Row("cold", "cold start, local config: spawn → first result", "s", "cold.first_s", goal=Goal("max", 1.0)),
    Row("ready", "cold start, local config: spawn → initialized", "s", "cold.ready_s"),
    _app("cold_app", "cold start, self-hosted App: spawn → first result", "s", "cold.first_s", goal=Goal("max", 1.0)),
    _app("ready_app", "cold start, self-hosted App: spawn → initialized", "s", "cold.ready_s"),
    Row("exit", "exit after the client closes", "s", "cold.exit_s"),
    _app("exit_app", "exit after the client closes, App mode", "s", "cold.exit_s"),
    _on("direct", "proxy-10")("lazy10", _LAZY.format(n=10), "ms", "lazy.first_ms", goal=Goal("added_max", 50)),
    _on("direct", "proxy-50")("lazy50", _LAZY.format(n=50), "ms", "lazy.first_ms", goal=Goal("added_max", 50)),
    _fleet("catalog_p50", "tools/list of 50 × 20 cached tools p50", "ms", "catalog.list_ms", goal=Goal("max", 10)),
    _fleet("catalog_p99", "tools/list of 50 × 20 cached tools p99", "ms", "catalog.list_ms", "p99"),
    _fleet("catalog_cpu", "CPU per 1,000-tool listing", "ms", "catalog.list_cpu_ms", "mean"),
    _fleet("rss_fleet", "RSS, 50 servers configured, no children", "MB", "catalog.rss_mb", goal=Goal("max", 80)),
    _fleet("procs_fleet", "processes after listing 50 servers", "", "catalog.procs", "max", ratio=False),
    _fan_out("fanout_procs", "processes after calling each of 10 servers", "", "shutdown.procs", "max", ratio=False),
    _fan_out("fanout_exit", "exit after the client closes, 10 children running", "s", "shutdown.exit_s"),
    Row("left", "children left 1 s after the client closes (max)", "", "left", "max", goal=Goal("max", 0), ratio=False),
    *_http("downstream"),
    *_http("upstream"),
)
"""The table, top to bottom. In the fleet rows, direct is one echo server listing all 1,000 tools."""


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "mcp": _version("mcp"),
        "pluggedin-mcp": _version("pluggedin-mcp"),
        "commit": _commit(),
    }


def document(
    results: Results,
    *,
    plan: Plan,
    quick: bool,
    started: datetime,
    elapsed: float,
    load: tuple[float, float],
    durations: dict[str, float],
    peers: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The JSON form of a run: its rows, each measurement's summary, and the context to read them by."""
    rows = []
    for row in ROWS:
        direct = _value(results, row.measurement, row.direct, row.how)
        proxy = _value(results, row.measurement, row.proxy, row.how)
        entry: dict[str, Any] = {
            "key": row.key,
            "label": row.label,
            "unit": row.unit,
            "direct": direct,
            "proxy": proxy,
            "relative": row.ratio,
            "ratio": proxy / direct if row.ratio and proxy is not None and direct else None,
            "goal": row.goal.describe(row.unit) if row.goal else None,
            "met": row.goal.met(direct, proxy) if row.goal else None,
            "why_not": results.reason(row.measurement, row.proxy) if proxy is None else None,
        }
        if row.peers:
            entry["peers"] = {name: _value(results, row.measurement, name, row.how) for name in peers}
        rows.append(entry)
    return {
        "schema": SCHEMA,
        "date": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": quick,
        "plan": asdict(plan),
        "elapsed_s": round(elapsed, 1),
        "workload_s": {name: round(seconds, 1) for name, seconds in durations.items()},
        "load_average": {"start": load[0], "end": load[1]},
        "peers": peers,
        "rows": rows,
        "measurements": {
            name: {target: samples.summary() for target, samples in by_target.items()}
            for name, by_target in results.samples.items()
        },
        "skipped": results.skipped,
    }


def render(doc: dict[str, Any]) -> str:
    """The markdown report of a run: what it ran on, then the table, then what was not measured."""
    info = doc["machine"]
    spent = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in doc.get("workload_s", {}).items())
    peers = [name for name, peer in doc["peers"].items() if "error" not in peer]
    lines = [
        f"## pluggedin-mcp benchmarks{' (quick)' if doc['quick'] else ''}",
        "",
        f"- date: {doc['date']}, wall time {doc['elapsed_s']:.0f} s ({spent})",
        f"- machine: {info['cpu']}, {info['cores']} cores, {info['os']}",
        f"- Python {info['python']}, mcp {info['mcp']}, pluggedin-mcp {info['pluggedin-mcp']} at {info['commit']}",
        f"- load average (1 min) at start {doc['load_average']['start']:.2f}, at end {doc['load_average']['end']:.2f}",
    ]
    lines += [
        f"- peer {name}: `{' '.join(peer['argv'])}`" for name, peer in doc["peers"].items() if "error" not in peer
    ]
    lines += [f"- peer {name} left out: {peer['error']}" for name, peer in doc["peers"].items() if "error" in peer]
    header = ["metric", "direct", "proxy", "ratio", *peers, "target", "met?"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in doc["rows"]:
        unit = row["unit"]
        cells = [
            row["label"],
            _number(row["direct"], unit),
            _number(row["proxy"], unit) if row["proxy"] is not None else _missing(row["why_not"]),
            _ratio(row["ratio"]),
        ]
        for name in peers:
            value = row.get("peers", {}).get(name)
            ratio = value / row["direct"] if row.get("relative", True) and value is not None and row["direct"] else None
            cells.append(_number(value, unit) + (f" ({_ratio(ratio)})" if ratio is not None else ""))
        met = row["met"]
        cells += [row["goal"] or "", {True: "yes", False: "**no**", None: "—" if row["goal"] else ""}[met]]
        lines.append("| " + " | ".join(cells) + " |")
    missing = [
        (row["label"], row["why_not"])
        for row in doc["rows"]
        if row["proxy"] is None and row["why_not"] and not row["why_not"].startswith(NOT_RUN)
    ]
    if missing:
        lines += ["", "Not measured:"]
        lines += [f"- {label}: {why}" for label, why in missing]
    return "\n".join(lines)


def compare(old: dict[str, Any], new: dict[str, Any]) -> str:
    """A markdown table of the proxy's figures in `old` and `new`, and how much each moved."""
    before = {row["key"]: row for row in old["rows"]}
    lines = [
        f"## Compared with {old['date']} ({old['machine']['commit']})",
        "",
        "| metric | old proxy | new proxy | change | old ratio | new ratio |",
        "|---|---|---|---|---|---|",
    ]
    for row in new["rows"]:
        prior = before.get(row["key"])
        if prior is None:
            continue
        unit = row["unit"]
        change = ""
        if prior["proxy"] and row["proxy"] is not None:
            change = f"{(row['proxy'] - prior['proxy']) / prior['proxy']:+.0%}"
        lines.append(
            f"| {row['label']} | {_number(prior['proxy'], unit)} | {_number(row['proxy'], unit)} | {change} "
            f"| {_ratio(prior['ratio'])} | {_ratio(row['ratio'])} |"
        )
    if old["machine"]["cpu"] != new["machine"]["cpu"] or old["machine"]["cores"] != new["machine"]["cores"]:
        lines += ["", "The two runs were on different machines; compare the ratios, not the figures."]
    if old["quick"] != new["quick"]:
        lines += ["", "One of the two runs is a --quick run, with far fewer samples."]
    return "\n".join(lines)


def _value(results: Results, measurement: str, target: str | None, how: Aggregate) -> float | None:
    if target is None:
        return None
    samples = results.get(measurement, target)
    return samples.value(how) if samples is not None else None


def _number(value: float | None, unit: str) -> str:
    """`value` in `unit`, to about three significant figures."""
    if value is None:
        return "—"
    if unit in ("", "calls/s") or abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def _missing(why: str | None) -> str:
    return "not run" if why is not None and why.startswith(NOT_RUN) else "not measured"


def _ratio(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}×"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _commit() -> str:
    """The checkout's short commit, marked `+dirty` with uncommitted changes; "unknown" outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")
