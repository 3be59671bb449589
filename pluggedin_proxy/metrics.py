"""What the proxy reports to Prometheus, and the no-op it reports to when nobody is scraping.

The proxy, catalog and HTTP layers record through a `Metrics` object handed to them by the
composition root. `NO_METRICS` (the default) records nothing and costs a method call, so stdio
mode never imports `prometheus_client`; HTTP mode builds a `PrometheusMetrics`, which imports it,
keeps its own `CollectorRegistry` (so two in one process never see each other), and renders it
for `GET /metrics`.

Two layers are counted apart. The MCP handlers count every request they answer, by method
(`pluggedin_requests_total`), and time the whole handler; a request is an error when the handler
raised (answered with a JSON-RPC error, `kind="jsonrpc"`) or was cancelled (`kind="cancelled"`),
and a `tools/call` result with `isError` is counted as `kind="tool"`, though it is a result, not
an error, on the wire. Requests forwarded to an upstream are counted again by upstream server and
method (`pluggedin_upstream_requests_total`), timed from sending to answer (including starting the
upstream if need be), with the same error kinds plus `unavailable` (no answer: the upstream could
not be started or reached, or went away). So built-in tools, lists and names that route nowhere
appear only in the first layer.

Gauges of what is alive (HTTP sessions, upstream sessions and processes) and the App caches'
counters are read when scraped, from a `LiveState` the HTTP app supplies, never kept up to date
on the hot path. Labels carry only method names, server names, cache names, App path templates and
outcomes: never a URL, a key or an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Generic, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram
    from prometheus_client.metrics_core import Metric

__all__ = ["NO_METRICS", "CacheCounts", "Failure", "LiveState", "Metrics", "PrometheusMetrics"]

Failure = Literal["jsonrpc", "tool", "unavailable", "cancelled"]
"""Why a request counts as failed; `None` where one is expected means it succeeded."""

# A tool call may legitimately take minutes; the defaults of `prometheus_client` stop at 10 s.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# App calls time out after at most 30 s (discovery); most answer in well under a second.
APP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class CacheCounts(Protocol):
    """What one cache has counted since the proxy started (`catalog.cache.CacheStats` is one)."""

    @property
    def hits(self) -> int: ...
    @property
    def misses(self) -> int: ...
    @property
    def stale_serves(self) -> int: ...
    @property
    def refresh_errors(self) -> int: ...


@dataclass(frozen=True, slots=True)
class LiveState:
    """What is alive and counted at the moment of a scrape."""

    http_sessions: Mapping[str, int] = field(default_factory=dict)
    """Open downstream MCP sessions by HTTP transport (`streamable-http`, `sse`)."""
    upstream_sessions: Mapping[str, int] = field(default_factory=dict)
    """Live upstream sessions by server name (known servers with none at 0)."""
    upstream_processes: int = 0
    """Live upstream sessions that run a local (stdio) process."""
    caches: Sequence[tuple[str, CacheCounts]] = ()
    """Each catalog cache, by name, with its counters."""


class Metrics:
    """Records nothing; the base of `PrometheusMetrics`, and what a proxy without metrics gets."""

    __slots__ = ()

    def request(self, method: str, seconds: float, failure: Failure | None) -> None:
        """One MCP request answered by the proxy's handler for `method`, taking `seconds`."""

    def upstream_request(self, upstream: str, method: str, seconds: float, failure: Failure | None) -> None:
        """One request forwarded to the upstream server named `upstream`, from sending to answer."""

    def app_request(self, method: str, path: str, seconds: float, failure: str | None) -> None:
        """One HTTP exchange with the App; `path` is a template, `failure` a status code, `timeout` or `unreachable`."""

    def watch(self, read: Callable[[], LiveState]) -> None:
        """Call `read` at every scrape for the gauges of what is alive (replacing an earlier `read`)."""


NO_METRICS: Final = Metrics()
"""The metrics of a proxy nobody scrapes."""

_MetricT = TypeVar("_MetricT", "Counter", "Histogram")


class _Children(Generic[_MetricT]):
    """A labelled metric whose children are kept once looked up (`labels()` takes a lock on every call)."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: _MetricT) -> None:
        self._metric: _MetricT = metric
        self._children: dict[tuple[str, ...], _MetricT] = {}

    def __call__(self, *labels: str) -> _MetricT:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._metric.labels(*labels)
        return child


class PrometheusMetrics(Metrics):
    """Metrics kept in a registry of their own, rendered in the Prometheus text format."""

    __slots__ = (
        "_app_errors",
        "_app_seconds",
        "_live",
        "_request_errors",
        "_request_seconds",
        "_requests",
        "_upstream_errors",
        "_upstream_requests",
        "_upstream_seconds",
        "registry",
    )

    def __init__(self) -> None:
        # Imported here, not at the top: only a process that serves `/metrics` pays for the import.
        from prometheus_client import CollectorRegistry, Counter, Histogram
        from prometheus_client.process_collector import ProcessCollector

        self.registry = CollectorRegistry()
        reg = self.registry
        self._requests = _Children(
            Counter("pluggedin_requests", "MCP requests answered, by method.", ["method"], registry=reg)
        )
        self._request_errors = _Children(
            Counter(
                "pluggedin_request_errors",
                "MCP requests that failed, by method and kind (jsonrpc, tool, cancelled).",
                ["method", "kind"],
                registry=reg,
            )
        )
        self._request_seconds = _Children(
            Histogram(
                "pluggedin_request_duration_seconds",
                "Time the proxy took to answer an MCP request, by method.",
                ["method"],
                buckets=REQUEST_BUCKETS,
                registry=reg,
            )
        )
        self._upstream_requests = _Children(
            Counter(
                "pluggedin_upstream_requests",
                "Requests forwarded to an upstream server, by server and method.",
                ["upstream", "method"],
                registry=reg,
            )
        )
        self._upstream_errors = _Children(
            Counter(
                "pluggedin_upstream_request_errors",
                "Forwarded requests that failed, by server, method and kind (jsonrpc, tool, unavailable, cancelled).",
                ["upstream", "method", "kind"],
                registry=reg,
            )
        )
        self._upstream_seconds = _Children(
            Histogram(
                "pluggedin_upstream_request_duration_seconds",
                "Time spent waiting on an upstream server's answer, by server.",
                ["upstream"],
                buckets=REQUEST_BUCKETS,
                registry=reg,
            )
        )
        self._app_seconds = _Children(
            Histogram(
                "pluggedin_app_request_duration_seconds",
                "Time one HTTP exchange with the plugged.in App took, by method and path template.",
                ["method", "path"],
                buckets=APP_BUCKETS,
                registry=reg,
            )
        )
        self._app_errors = _Children(
            Counter(
                "pluggedin_app_request_errors",
                "HTTP exchanges with the plugged.in App that failed, by method, path template and reason "
                "(an HTTP status, timeout or unreachable).",
                ["method", "path", "reason"],
                registry=reg,
            )
        )
        self._live = _LiveCollector()
        reg.register(self._live)
        ProcessCollector(registry=reg)

    def request(self, method: str, seconds: float, failure: Failure | None) -> None:
        self._requests(method).inc()
        self._request_seconds(method).observe(seconds)
        if failure is not None:
            self._request_errors(method, failure).inc()

    def upstream_request(self, upstream: str, method: str, seconds: float, failure: Failure | None) -> None:
        self._upstream_requests(upstream, method).inc()
        self._upstream_seconds(upstream).observe(seconds)
        if failure is not None:
            self._upstream_errors(upstream, method, failure).inc()

    def app_request(self, method: str, path: str, seconds: float, failure: str | None) -> None:
        self._app_seconds(method, path).observe(seconds)
        if failure is not None:
            self._app_errors(method, path, failure).inc()

    def watch(self, read: Callable[[], LiveState]) -> None:
        self._live.read = read

    def render(self) -> tuple[bytes, str]:
        """The registry in the Prometheus text format, and the content type to serve it with."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _LiveCollector:
    """Gauges and counters computed at scrape time from a `LiveState`."""

    def __init__(self) -> None:
        self.read: Callable[[], LiveState] | None = None

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily

        if self.read is None:
            return
        state = self.read()
        downstream = GaugeMetricFamily(
            "pluggedin_http_sessions", "Downstream MCP sessions open over HTTP, by transport.", labels=["transport"]
        )
        for transport, count in sorted(state.http_sessions.items()):
            downstream.add_metric([transport], count)
        yield downstream
        sessions = GaugeMetricFamily(
            "pluggedin_upstream_sessions", "Live sessions with upstream servers, by server.", labels=["upstream"]
        )
        for name, count in sorted(state.upstream_sessions.items()):
            sessions.add_metric([name], count)
        yield sessions
        yield GaugeMetricFamily(
            "pluggedin_upstream_processes",
            "Upstream server processes (stdio) running.",
            value=state.upstream_processes,
        )
        lookups = CounterMetricFamily(
            "pluggedin_cache_requests",
            "Reads of the App listing caches, by cache and result (hit, miss, stale).",
            labels=["cache", "result"],
        )
        refresh_errors = CounterMetricFamily(
            "pluggedin_cache_refresh_errors",
            "Failed refreshes of the App listing caches, by cache.",
            labels=["cache"],
        )
        for name, counts in state.caches:
            lookups.add_metric([name, "hit"], counts.hits)
            lookups.add_metric([name, "miss"], counts.misses)
            lookups.add_metric([name, "stale"], counts.stale_serves)
            refresh_errors.add_metric([name], counts.refresh_errors)
        yield lookups
        yield refresh_errors
