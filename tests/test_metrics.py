"""The metrics recorder: a no-op that never loads `prometheus_client`, and a Prometheus one per registry."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

from pluggedin_proxy.catalog.cache import CacheStats
from pluggedin_proxy.metrics import NO_METRICS, LiveState, PrometheusMetrics
from tests.conftest import REPO


def samples(metrics: PrometheusMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample `metrics` renders, by name and labels."""
    body, _ = metrics.render()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_no_metrics_records_nothing_and_stdio_mode_never_imports_prometheus_client() -> None:
    """Recording on `NO_METRICS` is accepted and dropped, and nothing on the stdio path loads the library."""
    script = textwrap.dedent(
        """
        import sys
        import pluggedin_proxy.cli, pluggedin_proxy.runtime, pluggedin_proxy.proxy.stdio
        from pluggedin_proxy.metrics import NO_METRICS, LiveState
        NO_METRICS.request("tools/call", 0.1, "jsonrpc")
        NO_METRICS.upstream_request("echo", "tools/call", 0.1, None)
        NO_METRICS.app_request("GET", "/api/tools", 0.1, "500")
        NO_METRICS.watch(LiveState)
        assert "prometheus_client" not in sys.modules, "prometheus_client was imported"
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_requests_are_counted_timed_and_failures_counted_by_kind() -> None:
    """Each handled request counts once and lands in one histogram bucket; a failure also counts by kind."""
    metrics = PrometheusMetrics()
    metrics.request("tools/call", 0.02, None)
    metrics.request("tools/call", 3.0, "jsonrpc")
    metrics.request("tools/call", 0.2, "tool")
    metrics.request("tools/list", 0.001, None)

    got = samples(metrics)
    assert got[key("pluggedin_requests_total", method="tools/call")] == 3
    assert got[key("pluggedin_requests_total", method="tools/list")] == 1
    assert got[key("pluggedin_request_errors_total", method="tools/call", kind="jsonrpc")] == 1
    assert got[key("pluggedin_request_errors_total", method="tools/call", kind="tool")] == 1
    assert key("pluggedin_request_errors_total", method="tools/list", kind="jsonrpc") not in got
    assert got[key("pluggedin_request_duration_seconds_count", method="tools/call")] == 3
    assert got[key("pluggedin_request_duration_seconds_bucket", method="tools/call", le="0.025")] == 1
    assert got[key("pluggedin_request_duration_seconds_bucket", method="tools/call", le="2.5")] == 2
    assert got[key("pluggedin_request_duration_seconds_sum", method="tools/call")] == 3.22


def test_upstream_and_app_requests_are_recorded_under_their_labels() -> None:
    """Upstream calls count by server and method; App exchanges are timed by method and path template."""
    metrics = PrometheusMetrics()
    metrics.upstream_request("echo", "tools/call", 0.5, None)
    metrics.upstream_request("echo", "resources/read", 0.1, "unavailable")
    metrics.app_request("GET", "/api/tools", 0.05, None)
    metrics.app_request("GET", "/api/documents/{id}", 0.05, "404")

    got = samples(metrics)
    assert got[key("pluggedin_upstream_requests_total", upstream="echo", method="tools/call")] == 1
    assert (
        got[
            key("pluggedin_upstream_request_errors_total", upstream="echo", method="resources/read", kind="unavailable")
        ]
        == 1
    )
    assert got[key("pluggedin_upstream_request_duration_seconds_count", upstream="echo")] == 2
    assert got[key("pluggedin_app_request_duration_seconds_count", method="GET", path="/api/tools")] == 1
    assert got[key("pluggedin_app_request_errors_total", method="GET", path="/api/documents/{id}", reason="404")] == 1
    assert key("pluggedin_app_request_errors_total", method="GET", path="/api/tools", reason="404") not in got


def test_live_state_is_read_at_each_scrape() -> None:
    """Gauges and cache counters come from the watched state as it is when scraped, not when watched."""
    metrics = PrometheusMetrics()
    stats = CacheStats(hits=4, misses=1)
    state = {"sessions": 2}

    def read() -> LiveState:
        return LiveState(
            http_sessions={"streamable-http": state["sessions"], "sse": 0},
            upstream_sessions={"echo": 1, "idle": 0},
            upstream_processes=1,
            caches=[("tool_list", stats)],
        )

    assert key("pluggedin_http_sessions", transport="streamable-http") not in samples(metrics)
    metrics.watch(read)
    state["sessions"] = 3
    stats.stale_serves += 2
    stats.refresh_errors += 1

    got = samples(metrics)
    assert got[key("pluggedin_http_sessions", transport="streamable-http")] == 3
    assert got[key("pluggedin_upstream_sessions", upstream="echo")] == 1
    assert got[key("pluggedin_upstream_sessions", upstream="idle")] == 0
    assert got[key("pluggedin_upstream_processes")] == 1
    assert got[key("pluggedin_cache_requests_total", cache="tool_list", result="hit")] == 4
    assert got[key("pluggedin_cache_requests_total", cache="tool_list", result="miss")] == 1
    assert got[key("pluggedin_cache_requests_total", cache="tool_list", result="stale")] == 2
    assert got[key("pluggedin_cache_refresh_errors_total", cache="tool_list")] == 1


def test_each_recorder_has_its_own_registry() -> None:
    """Two recorders in one process never see each other, and the library's global registry stays untouched."""
    first, second = PrometheusMetrics(), PrometheusMetrics()
    first.request("tools/call", 0.1, None)

    assert samples(first)[key("pluggedin_requests_total", method="tools/call")] == 1
    assert key("pluggedin_requests_total", method="tools/call") not in samples(second)
    assert b"pluggedin_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)
    _, content_type = first.render()
    assert content_type == prometheus_client.CONTENT_TYPE_LATEST
    assert NO_METRICS is not first
